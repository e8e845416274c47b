"""Throughput of every model preset at its own input size (150x150 px, Model I; 64 px for vit-spt-lsa-stem), with
FLOPs and model FLOPs utilisation.

    PYTHONPATH=. python benchmarks/bench_throughput.py [--presets vit-tiny,vit-spt-lsa-tiny] [--device cpu|cuda]
        [--quick] [--threads N]

Per preset: parameter count; FLOPs per image (forward, and forward + backward) counted by
`torch.utils.flop_counter.FlopCounterMode` with eager attention (the counter does not see fused SDPA kernels);
inference images/s at batch 1 and 64 (default attention implementation, no_grad, eval mode); training images/s
(forward + backward + AdamW step, batch 32); each the fastest of the timed repetitions. Model FLOPs utilisation
(MFU) = achieved FLOP/s divided by the fp32 matmul FLOP/s measured in the same run with a timed square
`torch.matmul` (fastest of its repetitions, so contention on a shared machine can push MFU past 100%). Results go to
benchmarks/results/throughput.json and throughput.md, with the date, the machine and the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from lens_hf.models import count_parameters, create_model, list_presets

IMAGE_SIZE = 150  # px, DeepLense Model I
RESULTS_DIR = Path(__file__).resolve().parent / "results"
COMPARISON = ("vit-tiny", "vit-spt-lsa-tiny")  # stock HF ViT vs SPT+LSA ViT of the same size


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(
    fn: Callable[[], object], device: torch.device, *, warmup: int, min_reps: int, min_s: float
) -> float:
    """Fastest seconds per call: `warmup` untimed calls, then at least `min_reps` timed calls and `min_s` s.

    The minimum, not the mean, so that other processes on a shared machine inflate the result less.
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_s:
        tic = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - tic)
    return min(times)


def matmul_flops_per_s(device: torch.device, size: int, quick: bool) -> float:
    """fp32 FLOP/s of a square (size x size) @ (size x size) matmul, 2 * size^3 FLOPs per call."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    seconds = time_per_call(
        lambda: torch.matmul(a, b), device, warmup=2, min_reps=5, min_s=1.0 if quick else 3.0
    )
    return 2 * size**3 / seconds


def count_flops(
    model: torch.nn.Module, pixel_values: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per image, counted with eager attention."""
    implementation = getattr(model.config, "_attn_implementation", None)
    try:
        model.set_attn_implementation("eager")
    except (ValueError, AttributeError):
        implementation = None
    batch = pixel_values.shape[0]
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(pixel_values)
    forward = counter.get_total_flops() / batch
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss = torch.nn.functional.cross_entropy(model(pixel_values).logits, labels)
        loss.backward()
    model.zero_grad(set_to_none=True)
    train = counter.get_total_flops() / batch
    if implementation is not None:
        model.set_attn_implementation(implementation)
    return forward, train


def bench_preset(name: str, device: torch.device, quick: bool) -> dict:
    torch.manual_seed(0)
    model = create_model(name).to(device)  # the preset's own input size
    size = int(getattr(model.config, "image_size", IMAGE_SIZE))
    num_labels = model.config.num_labels
    result: dict = {
        "preset": name,
        "class": type(model).__name__,
        "image_size": size,
        "parameters": count_parameters(model),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
    }
    probe = torch.randn(1, 1, size, size, device=device)
    forward_flops, train_flops = count_flops(model, probe, torch.zeros(1, dtype=torch.long, device=device))
    result["gflops_forward_per_image"] = forward_flops / 1e9
    result["gflops_train_per_image"] = train_flops / 1e9

    warmup, min_reps, min_s = (1, 3, 0.0) if quick else (3, 10, 5.0)
    model.eval()
    for batch in (1, 64):
        x = torch.randn(batch, 1, size, size, device=device)

        def infer(x=x):
            with torch.no_grad():
                return model(x).logits

        reps = min_reps * (5 if batch == 1 else 1)
        seconds = time_per_call(infer, device, warmup=warmup, min_reps=reps, min_s=min_s)
        result[f"infer_images_per_s_b{batch}"] = batch / seconds

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x = torch.randn(32, 1, size, size, device=device)
    y = torch.randint(0, num_labels, (32,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        loss.backward()
        optimizer.step()
        return loss

    seconds = time_per_call(step, device, warmup=warmup, min_reps=min_reps, min_s=min_s)
    result["train_images_per_s_b32"] = 32 / seconds
    return result


def machine_info(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    return info


def render_markdown(report: dict) -> str:
    lines = [
        "# Model throughput",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}`",
        f"- machine: {report['machine'].get('cpu', '')} ({report['machine']['cpu_count']} CPUs, "
        f"{report['machine']['torch_threads']} torch threads), device {report['machine']['device']}"
        + (f" ({report['machine']['gpu']})" if "gpu" in report["machine"] else ""),
        f"- torch {report['machine']['torch']}, {report['machine']['platform']}",
        f"- fp32 matmul peak measured: {report['matmul_gflops_per_s']:.1f} GFLOP/s "
        f"({report['matmul_size']}x{report['matmul_size']})",
        f"- mode: {'quick (few repetitions, rough)' if report['quick'] else 'full'}; 1-channel images at each preset's size",
        "",
        "| preset | px | params | GFLOPs/img fwd | GFLOPs/img train | infer img/s b1 | infer img/s b64 | infer MFU b64 "
        "| train img/s b32 | train MFU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['preset']} | {r['image_size']} | {r['parameters'] / 1e6:.2f}M | {r['gflops_forward_per_image']:.3f} "
            f"| {r['gflops_train_per_image']:.3f} | {r['infer_images_per_s_b1']:.1f} "
            f"| {r['infer_images_per_s_b64']:.1f} | {100 * r['infer_mfu_b64']:.1f}% "
            f"| {r['train_images_per_s_b32']:.1f} | {100 * r['train_mfu_b32']:.1f}% |"
        )
    by_name = {r["preset"]: r for r in report["results"]}
    if all(name in by_name for name in COMPARISON):
        stock, ours = (by_name[name] for name in COMPARISON)
        lines += [
            "",
            "## SPT+LSA ViT vs stock HF ViT of the same size",
            "",
            "| | vit-tiny (stock) | vit-spt-lsa-tiny | ratio |",
            "|---|---:|---:|---:|",
        ]
        for key, label in [
            ("parameters", "parameters"),
            ("gflops_forward_per_image", "GFLOPs/img forward"),
            ("infer_images_per_s_b1", "inference img/s, batch 1"),
            ("infer_images_per_s_b64", "inference img/s, batch 64"),
            ("train_images_per_s_b32", "training img/s, batch 32"),
        ]:
            lines.append(f"| {label} | {stock[key]:.4g} | {ours[key]:.4g} | {ours[key] / stock[key]:.2f} |")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(list_presets()), help="comma-separated preset names")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few repetitions (rough numbers, about a minute per preset on 2 CPUs)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's; 1 is steadier on a shared machine)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    presets = [name.strip() for name in args.presets.split(",") if name.strip()]
    unknown = sorted(set(presets) - set(list_presets()))
    if unknown:
        parser.error(f"unknown presets {unknown}; choose from {list_presets()}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device visible to torch")
    device = torch.device(args.device)

    matmul_size = (2048 if args.quick else 4096) if device.type == "cpu" else 8192
    # Measured before and after the models; the faster of the two is the peak (less disturbed by other work).
    peak = matmul_flops_per_s(device, matmul_size, args.quick)
    results = [bench_preset(name, device, args.quick) for name in tqdm(presets, desc="presets", unit="model")]
    peak = max(peak, matmul_flops_per_s(device, matmul_size, args.quick))
    for r in results:
        r["infer_mfu_b64"] = r["infer_images_per_s_b64"] * r["gflops_forward_per_image"] * 1e9 / peak
        r["train_mfu_b32"] = r["train_images_per_s_b32"] * r["gflops_train_per_image"] * 1e9 / peak
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "machine": machine_info(device),
        "quick": args.quick,
        "matmul_size": matmul_size,
        "matmul_gflops_per_s": peak / 1e9,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "throughput.json", json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    write_atomic(args.out / "throughput.md", markdown)
    print(markdown)
    return report


if __name__ == "__main__":
    main()
