"""Screen input and optimiser settings for training a transformer from scratch on lensing images, fast.

    python benchmarks/recipe_search.py --tag asinh_c32p4 --stretch asinh --crop 32 --patch 4 --lr 1.5e-4
    python benchmarks/recipe_search.py --report          # results/recipe_search.{json,md} from all runs so far

One training set (1,000 images per class, seed 7200) and one validation set (300 per class, seed 7201) of a
simulation preset (default Model II) are simulated once and kept in memory as tensors; a model preset is trained
with AdamW (linear warm-up, then constant or cosine), D4 augmentation (``--augment none``: none) and gradient clipping at 1, one torch thread,
and validated after every epoch (macro ROC-AUC, one-vs-rest). This is the same model, preprocessing functions
(``lens_hf.processing.file_io``) and optimiser as the recipes, without the Trainer's per-batch data pipeline,
so a setting can be screened in a few CPU-minutes; the recipes and ``family_study.py`` confirm what it finds.
``--mimetic`` and ``--sincos`` try two initialisations from the small-data ViT literature on the stock ViT
(mimetic attention initialisation, Trockman & Kolter 2023; 2-D sine-cosine position embeddings).

Each run appends one row (settings, validation AUC per epoch, CPU-minutes per epoch) to
``benchmarks/work/recipe_search/runs.jsonl``; ``--report`` writes the table (the committed rows, with each run
replacing the row of its tag).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from lens_hf.data.simulate import iter_simulations
from lens_hf.labels import LABEL2ID
from lens_hf.models import factory
from lens_hf.processing.file_io import normalize_image, stretch_image
from lens_hf.training.augment import BatchAugment
from lens_hf.training.record import device_name

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "recipe_search"
RESULTS = ROOT / "benchmarks" / "results"
SEEDS = {"train": 7200, "validation": 7201}


def simulated(preset: str, per_class: int, seed: int, work: Path = WORK) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, H, W) float32 raw, labels (n,)) of a preset, cached under ``work``."""
    cache = work / f"{preset}-{per_class}-{seed}.npz"
    if not cache.is_file():
        images, labels = [], []
        for image, meta in iter_simulations(preset, per_class, seed, progress=True):
            images.append(np.asarray(image, dtype=np.float32))
            labels.append(LABEL2ID[meta["label"]])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=np.stack(images), y=np.asarray(labels))
    data = np.load(cache)
    return data["x"], data["y"]


def model_inputs(images: np.ndarray, args: argparse.Namespace) -> torch.Tensor:
    """Raw images -> (n, 1, size, size): min-max, stretch, resize, centre crop (as LensImageProcessor does)."""
    x = np.stack([stretch_image(normalize_image(im), args.stretch, args.softening) for im in images])
    x = torch.from_numpy(x)[:, None]
    if args.resize and args.resize != x.shape[-1]:
        x = F.interpolate(x, size=(args.resize,) * 2, mode="bilinear", antialias=True, align_corners=False)
    if args.crop:
        top = (x.shape[-1] - args.crop) // 2
        x = x[..., top : top + args.crop, top : top + args.crop]
    return x.contiguous()


def _ortho_like(dim: int, alpha: float, beta: float, sign: int) -> tuple[torch.Tensor, torch.Tensor]:
    """L, R with L @ R = alpha * Z + sign * beta * I (Z Gaussian / sqrt(dim)), split by the SVD."""
    u, s, vh = torch.linalg.svd(alpha * torch.randn(dim, dim) / dim**0.5 + sign * beta * torch.eye(dim))
    return u * s.sqrt(), s.sqrt()[:, None] * vh


@torch.no_grad()
def mimetic_init(model: torch.nn.Module, a1: float, b1: float, a2: float, b2: float) -> None:
    """Per head: W_q^T W_k ~ a1 Z + b1 I and W_o W_v ~ a2 Z - b2 I (stock HF ViT/DeiT attention modules)."""
    dim, heads = model.config.hidden_size, model.config.num_attention_heads
    head = dim // heads
    modules = dict(model.named_modules())
    for name, attn in modules.items():
        if not all(hasattr(attn, k) for k in ("query", "key", "value")):
            continue
        out = modules[name.rsplit(".", 1)[0]].output.dense
        for h in range(heads):
            rows = slice(h * head, (h + 1) * head)
            left, right = _ortho_like(dim, a1, b1, 1)
            attn.query.weight[rows], attn.key.weight[rows] = left[:, :head].T, right[:head]
            left, right = _ortho_like(dim, a2, b2, -1)
            attn.value.weight[rows], out.weight[:, rows] = right[:head], left[:, :head]
        for layer in (attn.query, attn.key, attn.value, out):
            layer.bias.zero_()


@torch.no_grad()
def sincos_positions(model: torch.nn.Module) -> None:
    """2-D sine-cosine patch position embeddings (class token at 0) for a stock HF ViT."""
    pe = model.vit.embeddings.position_embeddings  # (1, 1 + grid*grid, dim)
    grid, dim = int(math.isqrt(pe.shape[1] - 1)), pe.shape[2]
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4) / (dim // 4 - 1))
    xs, ys = x.flatten()[:, None] * omega, y.flatten()[:, None] * omega
    pe[0, 1:] = 0.5 * torch.cat([xs.sin(), xs.cos(), ys.sin(), ys.cos()], dim=1)
    pe[0, :1] = 0


@torch.no_grad()
def validation_auc(model: torch.nn.Module, xv: torch.Tensor, yv: np.ndarray) -> float:
    probs = torch.cat([model(pixel_values=b).logits.softmax(-1) for b in xv.split(256)]).numpy()
    return float(roc_auc_score(yv, probs, multi_class="ovr", average="macro"))


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    xt, yt = simulated(args.preset, args.per_class, SEEDS["train"], args.work)
    xv, yv = simulated(args.preset, args.val_per_class, SEEDS["validation"], args.work)
    xt, xv = model_inputs(xt, args), model_inputs(xv, args)
    if args.standardize:
        mean, std = xt.mean(), xt.std()
        xt, xv = (xt - mean) / std, (xv - mean) / std
    yt, yv = torch.from_numpy(yt).long(), yv
    overrides = json.loads(args.overrides)
    if args.patch:
        overrides["patch_size"] = args.patch
    model = factory.create_model(args.model, image_size=xt.shape[-1], num_channels=1, **overrides)
    if args.mimetic:
        mimetic_init(model, *map(float, args.mimetic.split(",")))
    if args.sincos:
        sincos_positions(model)
    opt = torch.optim.AdamW(
        factory.param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, args.beta2)
    )
    steps = math.ceil(len(xt) / args.batch) * args.epochs

    def factor(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        if args.schedule == "const":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - args.warmup) / max(1, steps - args.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    ema = None
    if args.ema:  # an exponential moving average of the weights, validated beside the trained weights
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema)
        )
    augment = BatchAugment(args.augment)
    history, start = [], time.process_time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        losses = []
        for idx in torch.randperm(len(xt)).split(args.batch):
            batch = augment(xt[idx])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(pixel_values=batch).logits
            loss = F.cross_entropy(logits.float(), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
        model.eval()
        auc = validation_auc(model, xv, yv)
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "val_auc": auc,
                "cpu_minutes": (time.process_time() - start) / 60,
            }
        )
        if ema is not None:
            ema.eval()
            history[-1]["val_auc_ema"] = validation_auc(ema.module, xv, yv)
        print(json.dumps(history[-1]), flush=True)
    best = max(history, key=lambda h: h["val_auc"])
    settings = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("work", "out")
    }
    row = {
        "tag": args.tag,
        "settings": settings,
        "device": device_name(torch.device("cpu")),
        "best": best,
        "history": history,
    }
    args.work.mkdir(parents=True, exist_ok=True)
    with open(args.work / "runs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return row


def report(runs_file: Path = WORK / "runs.jsonl", out: Path = RESULTS) -> None:
    """Write the table from the rows already in ``out`` and the runs of ``runs_file``: a run replaces the row
    of its tag, and rows whose runs are no longer in the work folder (another machine's) are kept."""
    runs = [json.loads(line) for line in runs_file.read_text().splitlines() if line.strip()]
    kept = out / "recipe_search.json"
    rows = {r["tag"]: r for r in (json.loads(kept.read_text()) if kept.is_file() else [])}
    rows.update({r["tag"]: r for r in runs})
    rows = list(rows.values())
    lines = [
        "# Recipe search: transformers from scratch on simulated lensing images",
        "",
        "`python benchmarks/recipe_search.py ...` (one torch thread); training: simulated images of the run's preset "
        f"(seed {SEEDS['train']}), validation: simulated images (seed {SEEDS['validation']}); macro ROC-AUC after "
        "each epoch, best epoch shown.",
        "",
        "| run | preset, train / class | model | input | stretch | standardise | patch | lr | warm-up | batch | epochs "
        "| best val AUC (epoch, CPU-min) | last train loss | processor |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, b, last = r["settings"], r["best"], r["history"][-1]
        size = f"{s['crop'] or 64} px" + (f" of {s['resize']}" if s["resize"] else "")
        extra = (" mimetic" if s.get("mimetic") else "") + (" sincos" if s.get("sincos") else "")
        if s.get("bf16"):
            extra += ", bf16 autocast"
        if s.get("ema"):
            ema_best = max(r["history"], key=lambda h: h["val_auc_ema"])
            extra += f", weight EMA {s['ema']:g}: {ema_best['val_auc_ema']:.3f} at epoch {ema_best['epoch']}"
        if s.get("augment", "d4") != "d4":
            extra += f", augmentation {s['augment']}"
        if s.get("beta2", 0.999) != 0.999:
            extra += f", Adam beta2 {s['beta2']:g}"
        if s.get("overrides", "{}") not in ("{}", ""):
            extra += f" `{s['overrides']}`"
        lines.append(
            f"| {r['tag']} | {s['preset']}, {s['per_class']:,} | {s['model']}{extra} | {size} | {s['stretch']} | {s['standardize']} | "
            f"{s['patch'] or 'preset'} | {s['lr']:g} | {s['warmup']} | {s['batch']} | {last['epoch']} | "
            f"{b['val_auc']:.3f} ({b['epoch']}, {b['cpu_minutes']:.1f}) | {last['train_loss']:.3f} "
            f"| {r.get('device') or 'not recorded'} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe_search.md").write_text("\n".join(lines) + "\n")
    (out / "recipe_search.json").write_text(json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tag", default="run")
    p.add_argument("--preset", default="model_ii", help="simulation preset")
    p.add_argument("--per-class", type=int, default=1000)
    p.add_argument("--val-per-class", type=int, default=300)
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--model", default="vit-tiny", help="model preset")
    p.add_argument("--overrides", default="{}", help="config fields as JSON")
    p.add_argument("--patch", type=int, default=0, help="patch size (0: the preset's, sized to the input)")
    p.add_argument("--stretch", choices=("none", "asinh"), default="none")
    p.add_argument("--softening", type=float, default=0.02)
    p.add_argument("--standardize", action="store_true", help="training-set mean/std standardisation")
    p.add_argument("--resize", type=int, default=0)
    p.add_argument("--crop", type=int, default=0)
    p.add_argument("--lr", type=float, default=1.5e-4)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--beta2", type=float, default=0.999, help="Adam's second-moment decay")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--schedule", choices=("const", "cosine"), default="const")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mimetic", default="", help="a1,b1,a2,b2, e.g. 0.7,0.7,0.4,0.4")
    p.add_argument("--sincos", action="store_true")
    p.add_argument("--ema", type=float, default=0.0, help="also validate an EMA of the weights (decay)")
    p.add_argument("--augment", choices=("d4", "none"), default="d4", help="training augmentation")
    p.add_argument("--bf16", action="store_true", help="train under CPU bfloat16 autocast (evaluate in fp32)")
    p.add_argument("--report", action="store_true", help="only write results/recipe_search.*")
    args = p.parse_args(argv)
    if not args.report:
        train(args)
    report(args.work / "runs.jsonl", args.out)


if __name__ == "__main__":
    sys.exit(main())
