"""CPU inference speed of a classifier at batch 64, without and with D4 test-time augmentation: the numbers of
the model card's "CPU inference speed" table.

    PYTHONPATH=. python benchmarks/bench_inference.py [--model checkpoints/vit-spt-lsa-model-i]
        [--num-images 256] [--seed 5252] [--batch-size 64] [--threads N] [--reps 3] [--card]

1. Simulates ``--num-images`` Model I images in memory (``--seed``, a seed used nowhere else).
2. Times, for ``--tta none`` and ``--tta d4``, with ``torch.set_num_threads(--threads)`` (default: every core):
   - forward: the pipeline's forward pass (the model, and for d4 its 8 views and the mean softmax) on
     preprocessed images, ``--batch-size`` at a time;
   - predict: :func:`lens_hf.inference.predict_arrays` (what ``lens-hf predict`` runs after reading the files:
     preprocessing, forward, softmax) on the same arrays.
   Each the fastest of ``--reps`` repetitions over all the images (another process slows a repetition down,
   never speeds it up).

Writes benchmarks/results/inference_speed.json and .md (with the machine, the load average before and after and
the command); with ``--card`` also ``MODEL/inference_speed.json``, which ``lens-hf card`` renders into the card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import transformers

from lens_hf.cards import SPEED_FILE
from lens_hf.data.simulate import iter_simulations
from lens_hf.inference import DEFAULT_MODEL_DIR, load_classifier, predict_arrays
from lens_hf.labels import LABELS
from lens_hf.redact import public_path
from lens_hf.training.record import device_name
from lens_hf.utils import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import time_per_call  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PRESET = "model_i"
TTA = ("none", "d4")


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def simulate(num_images: int, seed: int) -> list[np.ndarray]:
    per_class = math.ceil(num_images / len(LABELS))
    images = [image for image, _ in iter_simulations(PRESET, per_class, seed, progress=False)]
    return images[:num_images]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model folder or Hub id")
    parser.add_argument("--num-images", type=int, default=256, help="simulated Model I images timed")
    parser.add_argument("--seed", type=int, default=5252, help="simulation seed (used by no other run)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all)"
    )
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument(
        "--card", action="store_true", help=f"also write MODEL/{SPEED_FILE} for the model card"
    )
    args = parser.parse_args(argv)
    if args.num_images < 1 or args.batch_size < 1 or args.reps < 1 or args.threads < 1:
        parser.error("--num-images, --batch-size, --reps and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()

    load_before = load_average()
    images = simulate(args.num_images, args.seed)
    loaded = load_classifier(args.model)
    pipe = loaded.pipeline
    pixels = torch.cat([pipe.preprocess(image)["pixel_values"] for image in images])
    batches = [pixels[i : i + args.batch_size] for i in range(0, len(pixels), args.batch_size)]
    cpu = torch.device("cpu")

    def best_seconds(fn) -> float:  # fastest of --reps timed calls, after one untimed call
        return time_per_call(fn, cpu, warmup=1, min_reps=args.reps, min_s=0.0)

    results = []
    for tta in TTA:

        def forward(tta: str = tta) -> None:
            for x in batches:
                pipe.forward({"pixel_values": x, "source": ["image"] * len(x)}, tta=tta)

        def predict(tta: str = tta) -> None:
            predict_arrays(loaded, images, batch_size=args.batch_size, tta=tta, progress=False)

        results.append(
            {
                "tta": tta,
                "forward_images_per_s": len(images) / best_seconds(forward),
                "predict_images_per_s": len(images) / best_seconds(predict),
            }
        )
        print(
            f"tta {tta}: forward {results[-1]['forward_images_per_s']:.1f} images/s, predict "
            f"{results[-1]['predict_images_per_s']:.1f} images/s",
            file=sys.stderr,
        )

    record = {
        "date": dt.date.today().isoformat(),
        "model": public_path(str(args.model)),
        "command": "python benchmarks/bench_inference.py "
        + " ".join(shlex.quote(public_path(a)) for a in (argv if argv is not None else sys.argv[1:])),
        "preset": PRESET,
        "seed": args.seed,
        "num_images": len(images),
        "batch_size": args.batch_size,
        "input": f"{tuple(pixels.shape[1:])} after preprocessing",
        "machine": {
            "cpu": device_name(cpu),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "inference_speed.json", json.dumps(record, indent=2) + "\n")
    lines = [
        "# CPU inference speed",
        "",
        f"- date: {record['date']}; command: `{record['command']}`",
        f"- model: `{record['model']}`; input {record['input']}",
        f"- {record['num_images']} simulated `{PRESET}` images (seed {args.seed}), batch {args.batch_size}",
        f"- machine: {record['machine']['cpu']}, {args.threads} torch thread(s) of {os.cpu_count()} CPUs, torch "
        f"{torch.__version__}; load average (1, 5, 15 min) {load_before} before, {record['machine']['load_average_after']} after",
        "- forward: the pipeline's forward pass on preprocessed images; predict: preprocessing, forward and softmax "
        "from the arrays (`lens_hf.inference.predict_arrays`); fastest of the repetitions",
        "",
        "| test-time augmentation | forward images/s | predict images/s |",
        "|---|---:|---:|",
        *[
            f"| {r['tta']} | {r['forward_images_per_s']:.1f} | {r['predict_images_per_s']:.1f} |"
            for r in results
        ],
        "",
    ]
    atomic_write_text(args.out / "inference_speed.md", "\n".join(lines))
    if args.card:
        folder = Path(args.model)
        if not folder.is_dir():
            parser.error(f"--card needs a local model folder, not {args.model}")
        atomic_write_text(folder / SPEED_FILE, json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
