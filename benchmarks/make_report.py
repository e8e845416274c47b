"""Write docs/results.md: the task, example images, the shipped model's evaluation on an independent Model I
test set (ROC curves, confusion matrix, learning curves, attention maps) and the benchmark tables.

    python benchmarks/make_report.py --test-data data/model_i_test   # a Model I folder lens_hf reads
    python benchmarks/make_report.py --simulate-test 1000            # simulate one (seed 999) first

Every figure is regenerated from the model folder and the data; the benchmark tables are the committed
``benchmarks/results/*.md`` files, each headed by the command that produced it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"


def attention_rollout(attentions: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): average heads, add the residual identity, renormalise and
    multiply through the layers. (batch, tokens, tokens) per layer -> (batch, tokens, tokens)."""
    rollout = None
    for att in attentions:  # (batch, heads, tokens, tokens)
        a = att.mean(dim=1)
        a = a + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def token_importance(model: torch.nn.Module, pixel_values: torch.Tensor) -> np.ndarray:
    """How much each patch token feeds the pooled representation: (batch, grid, grid)."""
    with torch.no_grad():
        out = model(pixel_values=pixel_values, output_attentions=True)
    rollout = attention_rollout(out.attentions)  # (batch, 1 + n, 1 + n), token 0 = CLS
    if getattr(model.config, "pooling", "cls") == "mean":
        weights = rollout[:, 1:, 1:].mean(dim=1)  # the mean of the patch tokens is what the head sees
    else:
        weights = rollout[:, 0, 1:]
    grid = int(round(weights.shape[-1] ** 0.5))
    return weights.reshape(-1, grid, grid).numpy()


def main(argv: list[str] | None = None) -> int:
    import lens_hf  # noqa: F401  (registers the model classes)
    from lens_hf.data.readers import load_images, scan_folder
    from lens_hf.data.simulate import write_deeplense
    from lens_hf.inference import DEFAULT_MODEL_DIR, evaluate_data, load_classifier
    from lens_hf.metrics import format_table, write_evaluation
    from lens_hf.plots import plot_attention_maps, plot_examples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default: the shipped one)"
    )
    parser.add_argument(
        "--test-data", default=None, help="labelled Model I folder (any layout lens_hf reads)"
    )
    parser.add_argument(
        "--simulate-test", type=int, default=0, help="simulate this many test images per class"
    )
    parser.add_argument("--test-seed", type=int, default=999)
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "work"), help="where simulated data goes")
    args = parser.parse_args(argv)

    test_dir = Path(args.test_data) if args.test_data else None
    if test_dir is None:
        if args.simulate_test < 1:
            parser.error("give --test-data or --simulate-test N")
        test_dir = Path(args.work) / f"model_i_test_seed{args.test_seed}"
        write_deeplense(test_dir, "model_i", args.simulate_test, args.test_seed)

    FIGURES.mkdir(parents=True, exist_ok=True)
    records = scan_folder(test_dir)
    by_label: dict[str, list] = {}
    for r in records:
        by_label.setdefault(r.label, [])
        if len(by_label[r.label]) < 6:
            by_label[r.label].append(r)
    picked = [r for rs in by_label.values() for r in rs]
    images, kept, _ = load_images(picked, normalize="minmax", progress=False)
    examples: dict[str, list] = {}
    for image, rec in zip(images, kept):
        examples.setdefault(rec.label, []).append(image)
    plot_examples(
        examples, FIGURES / "examples.png", title=f"Simulated Model I images (lens_hf, seed {args.test_seed})"
    )

    loaded = load_classifier(args.model)
    y_true, preds = evaluate_data(loaded, test_dir)
    shipped = FIGURES / "shipped"
    metrics = write_evaluation(
        shipped, y_true, preds.probs, labels=loaded.labels, extra={"data": str(test_dir)}
    )
    (shipped / "predictions.csv").unlink(missing_ok=True)
    curves = loaded.path / "learning_curves.png"
    if curves.is_file():
        shutil.copyfile(curves, shipped / "learning_curves.png")

    # Attention maps: two correctly classified test images per class.
    pick_images, captions = [], []
    for label in loaded.labels:
        idx = [
            i
            for i, s in enumerate(preds.sources)
            if loaded.labels[y_true[i]] == label and preds.probs[i].argmax() == y_true[i]
        ][:2]
        for i in idx:
            from lens_hf.processing.file_io import read_image

            pick_images.append(read_image(preds.sources[i])[0])
            captions.append(f"{label} (p={preds.probs[i].max():.2f})")
    pixel_values = loaded.processor(pick_images, return_tensors="pt")["pixel_values"]
    maps = token_importance(loaded.model, pixel_values)
    plot_attention_maps(
        [p[0].numpy() for p in pixel_values],
        list(maps),
        captions,
        FIGURES / "attention_maps.png",
        title="Attention rollout of the shipped model (what the pooled tokens draw on)",
    )

    training = {}
    record = loaded.path / "lens_hf_training.json"
    if record.is_file():
        training = json.loads(record.read_text())
    write_markdown(metrics, training, loaded, test_dir, format_table(metrics))
    print(format_table(metrics))
    print(f"wrote {DOCS / 'results.md'}")
    return 0


def write_markdown(metrics: dict, training: dict, loaded, test_dir: Path, table: str) -> None:
    from lens_hf.utils import atomic_write_text

    per_class = metrics["roc_auc_per_class"]
    rows = "\n".join(f"| {name} | {per_class[name]:.4f} |" for name in metrics["labels"])
    bench = []
    for name in ("accuracy", "accuracy_1k", "throughput", "simulation"):
        md = ROOT / "benchmarks" / "results" / f"{name}.md"
        if md.is_file():
            bench.append(md.read_text().strip())
        else:
            bench.append(
                f"_`benchmarks/results/{name}.md` has not been produced yet (see benchmarks/README.md)._"
            )
    params = training.get("num_parameters")
    command = training.get("command", "")
    text = (
        f"""# lens_hf results

Generated by `python benchmarks/make_report.py` on {_dt.date.today().isoformat()} ({platform.machine()},
{torch.get_num_threads()} threads, Python {platform.python_version()}, torch {torch.__version__}).

## The task

Strong-lensing images of DeepLense **Model I** (150x150 px at 0.05"/px, Gaussian PSF, Poisson noise; simulated
with lenstronomy by `lens-hf simulate --preset model_i`) are classified into three classes: `no_substructure`
(a smooth SIE halo with shear), `subhalo` (25 point-mass subhalos, cold dark matter) and `vortex` (a line of 100
point masses, superfluid dark matter). The metric is the one-vs-rest ROC-AUC computed on softmax probabilities,
per class, macro- and micro-averaged.

![examples](figures/examples.png)

## The shipped model: `{loaded.path.relative_to(ROOT) if loaded.path.is_relative_to(ROOT) else loaded.path}`

{type(loaded.model).__name__}, {params if params else "?"} parameters, trained with

```
{command}
```

Independent test set: `{test_dir}` ({metrics["num_samples"]} images, a seed the model never saw).

| class | ROC-AUC |
|---|---|
{rows}
| **macro** | **{metrics["roc_auc_macro"]:.4f}** |
| micro | {metrics["roc_auc_micro"]:.4f} |
| accuracy | {metrics["accuracy"]:.4f} |

```
{table}
```

![roc](figures/shipped/roc.png) ![confusion](figures/shipped/confusion_matrix.png)

Learning curves:

![curves](figures/shipped/learning_curves.png)

Attention maps (attention rollout over the layers, mean over the pooled tokens; top: model input, bottom: overlay):

![attention](figures/attention_maps.png)

Published Model I numbers for comparison (DeepLense, 5,000 test images per class): CoAtNet-nano
ImageNet-pretrained 0.9955, EfficientNet-B2 0.9943, ResNet+ViT-tiny hybrid 0.9818, CvT from scratch 0.9787,
SwinV2-tiny pretrained 0.9675.

## Benchmarks

"""
        + "\n\n".join(bench)
        + "\n"
    )
    atomic_write_text(DOCS / "results.md", text)


if __name__ == "__main__":
    sys.exit(main())
