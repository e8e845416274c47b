"""The shipped model exported to ONNX: does ONNX Runtime give PyTorch's answers, and how fast is each on the CPU?

    PYTHONPATH=. python benchmarks/bench_onnx.py [--model checkpoints/vit-spt-lsa-model-i] [--num-images 100]
        [--seed 5151] [--threads 1]

1. Simulates ``--num-images`` Model I test files (DeepLense layout, ``--seed``, a seed used nowhere else) and
   exports the model with ``lens_hf.export.export_onnx`` (what ``lens-hf export`` runs) into a temporary folder.
2. Agreement: both folders classify every file through ``lens_hf.inference.predict_files`` (what ``lens-hf
   predict`` runs; PyTorch for the safetensors folder, ONNX Runtime for the ONNX folder), without and with D4
   test-time augmentation: max |p_onnx - p_torch| over all files and classes, and how many labels agree.
3. Speed, side by side in one process with the same threads (``torch.set_num_threads`` and ONNX Runtime's
   ``intra_op_num_threads`` both ``--threads``): images/s of the model's forward pass on the preprocessed images
   at batch 1 (each image alone) and batch 64, the two back ends timed in alternation, fastest repetition kept
   (other processes on a shared machine slow a repetition down, never speed it up); and images/s of the whole
   ``predict`` path (read, preprocess, forward, postprocess) at the same batch sizes.

Writes benchmarks/results/onnx.json (rows with split, number of images and seed) and onnx.md, with the machine,
the load average before and after (``uptime``) and the command. Exits with status 1 when the criteria fail
(max |p_onnx - p_torch| <= 1e-4 and every label the same).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnx
import onnxruntime
import torch
import transformers

from lens_hf.data.simulate import write_deeplense
from lens_hf.export import export_onnx
from lens_hf.inference import DEFAULT_MODEL_DIR, collect_files, load_classifier, predict_files
from lens_hf.labels import canonical_label
from lens_hf.redact import public_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRESET = "model_i"
TOLERANCE = 1e-4
BATCH_SIZES = (1, 64)
BACKENDS = ("pytorch", "onnxruntime")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_info(threads: int) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "cpu": platform.processor(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def agreement(torch_probs: np.ndarray, onnx_probs: np.ndarray) -> dict:
    return {
        "max_abs_diff": float(np.abs(onnx_probs - torch_probs).max()),
        "label_agreement": int((onnx_probs.argmax(1) == torch_probs.argmax(1)).sum()),
    }


def alternate_best(calls: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Fastest seconds per call of each function, after one untimed call each, the functions timed in turn
    ``reps`` times so that both see the same machine load."""
    for fn in calls.values():
        fn()
    best = {name: math.inf for name in calls}
    for _ in range(reps):
        for name, fn in calls.items():
            tic = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - tic)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="PyTorch model folder or Hub id")
    parser.add_argument("--num-images", type=int, default=100, help="simulated Model I test files")
    parser.add_argument("--seed", type=int, default=5151, help="simulation seed (used by no other run)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both back ends (default: 1)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # ONNX Runtime sessions take the same count (OnnxImageClassifier)
    transformers.utils.logging.disable_progress_bar()

    load_before = uptime()
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        data, onnx_dir = Path(tmp) / "test", Path(tmp) / "onnx"
        per_class = math.ceil(args.num_images / 3)
        write_deeplense(data, PRESET, per_class, args.seed, progress=False)
        files = collect_files([data])[: args.num_images]
        classes = Counter(canonical_label(f.parent.name) for f in files)
        tic = time.perf_counter()
        exported = export_onnx(args.model, onnx_dir)
        export_s = time.perf_counter() - tic
        onnx_mb = (onnx_dir / "model.onnx").stat().st_size / 1e6
        models = {"pytorch": load_classifier(args.model), "onnxruntime": load_classifier(onnx_dir)}
        ort_threads = models["onnxruntime"].model.session.get_session_options().intra_op_num_threads
        common = {"split": "test", "preset": PRESET, "num_images": len(files), "seed": args.seed}
        rows: list[dict] = []

        # 1. the same answers: every file through predict, both back ends
        for tta in ("none", "d4"):
            probs = {
                name: predict_files(loaded, files, batch_size=64, tta=tta, progress=False).probs
                for name, loaded in models.items()
            }
            rows.append(
                {
                    "measure": "agreement",
                    **common,
                    "tta": tta,
                    **agreement(probs["pytorch"], probs["onnxruntime"]),
                }
            )

        # 2. speed of the forward pass on preprocessed images, and of the whole predict path
        pipe = models["pytorch"].pipeline
        pixels = torch.cat([pipe.preprocess(str(f))["pixel_values"] for f in files])  # (N, 1, 64, 64)
        for batch in BATCH_SIZES:
            if batch == 1:
                inputs = [pixels[i : i + 1] for i in range(len(files))]
            else:
                inputs = [pixels[:batch]]
            images = sum(len(x) for x in inputs)

            def forward(model, inputs=inputs):
                with torch.no_grad():
                    for x in inputs:
                        model(pixel_values=x)

            seconds = alternate_best(
                {name: (lambda m=loaded.model: forward(m)) for name, loaded in models.items()}, args.reps
            )
            for name in BACKENDS:
                rows.append(
                    {
                        "measure": "throughput",
                        "stage": "forward",
                        "backend": name,
                        "batch_size": batch,
                        **common,
                        "images_timed": images,
                        "images_per_s": images / seconds[name],
                    }
                )
            seconds = alternate_best(
                {
                    name: (lambda m=loaded, b=batch: predict_files(m, files, batch_size=b, progress=False))
                    for name, loaded in models.items()
                },
                max(1, args.reps // 2),
            )
            for name in BACKENDS:
                rows.append(
                    {
                        "measure": "throughput",
                        "stage": "predict",
                        "backend": name,
                        "batch_size": batch,
                        **common,
                        "images_timed": len(files),
                        "images_per_s": len(files) / seconds[name],
                    }
                )

    checks = [r for r in rows if r["measure"] == "agreement"]
    passed = all(r["max_abs_diff"] <= TOLERANCE and r["label_agreement"] == r["num_images"] for r in checks)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "model": public_path(args.model),
        "machine": machine_info(args.threads),
        "onnxruntime_intra_op_threads": ort_threads,
        "load_before": load_before,
        "load_after": uptime(),
        "export": {
            "opset": exported.opset,
            "input_shape": list(exported.input_shape),
            "seconds": export_s,
            "model_onnx_mb": onnx_mb,
            "max_abs_diff_at_export": exported.max_abs_diff,
        },
        "classes": dict(sorted(classes.items())),
        "tolerance": TOLERANCE,
        "passed": passed,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "onnx.json", json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(report)
    write_atomic(args.out / "onnx.md", markdown)
    print(markdown)
    if not passed:
        print("FAILED: ONNX Runtime and PyTorch disagree beyond the tolerance", file=sys.stderr)
        sys.exit(1)
    return report


def render_markdown(report: dict) -> str:
    m, e = report["machine"], report["export"]
    rows = report["rows"]
    first = rows[0]
    classes = ", ".join(f"{k}: {v}" for k, v in report["classes"].items())
    lines = [
        "# ONNX export: ONNX Runtime vs PyTorch",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}`",
        f"- model: `{report['model']}`, exported with `lens_hf.export.export_onnx` (`lens-hf export`): opset "
        f"{e['opset']}, input {tuple(e['input_shape'])}, model.onnx {e['model_onnx_mb']:.1f} MB, export "
        f"{e['seconds']:.1f} s",
        f"- data: {first['num_images']} simulated {first['preset']} test files (split `{first['split']}`, seed "
        f"{first['seed']}; {classes})",
        f"- machine: {m['cpu']} ({m['cpu_count']} CPUs); torch {m['torch']}, onnxruntime {m['onnxruntime']}, "
        f"onnx {m['onnx']}; {m['platform']}",
        f"- threads: {m['threads']} torch thread(s), ONNX Runtime intra_op_num_threads "
        f"{report['onnxruntime_intra_op_threads']} (inter_op 1)",
        "- load (the machine is shared with trainings):",
        f"  - before: `{report['load_before']}`",
        f"  - after: `{report['load_after']}`",
        "",
        "## Same answers",
        "",
        f"Every file through `predict_files` (what `lens-hf predict` runs), batch 64. Criteria: max |p_onnx - "
        f"p_torch| <= {report['tolerance']:g} and every label the same: **{'passed' if report['passed'] else 'FAILED'}**.",
        "",
        "| test-time augmentation | images | max abs diff of probabilities | labels that agree |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        if r["measure"] == "agreement":
            lines.append(
                f"| {r['tta']} | {r['num_images']} | {r['max_abs_diff']:.2e} | "
                f"{r['label_agreement']}/{r['num_images']} |"
            )
    lines += [
        "",
        "## Speed (images/s, CPU)",
        "",
        "forward: the model alone on the preprocessed images (batch 1: each of the images alone; batch 64: the first "
        "64), the two back ends timed in alternation, fastest of the repetitions. predict: the whole path "
        "(read the file, preprocess, forward, softmax) over all the files.",
        "",
        "| stage | batch | PyTorch | ONNX Runtime | ONNX Runtime / PyTorch |",
        "|---|---:|---:|---:|---:|",
    ]
    speed = {
        (r["stage"], r["batch_size"], r["backend"]): r["images_per_s"]
        for r in rows
        if r["measure"] == "throughput"
    }
    for stage in ("forward", "predict"):
        for batch in BATCH_SIZES:
            pt, ort = speed[(stage, batch, "pytorch")], speed[(stage, batch, "onnxruntime")]
            lines.append(f"| {stage} | {batch} | {pt:.1f} | {ort:.1f} | {ort / pt:.2f} |")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    main()
