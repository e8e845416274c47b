"""The recipes end to end on the CPU: every recipe trains, saves a loadable model folder and its evaluation;
two processes train as one job; an interrupted run resumes from its last checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageClassification, TrainerCallback

from lens_hf.labels import LABELS
from lens_hf.processing.image_processing_lens import LensImageProcessor

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
SMOKE = RECIPES / "configs" / "smoke_test.yaml"

TINY_VIT = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "patch_size": 8,
}
TINY = {
    "finetune_vit": TINY_VIT,
    "finetune_deit": TINY_VIT,
    "train_vit_spt_lsa": TINY_VIT,
    "finetune_swin": {
        "embed_dim": 8,
        "depths": [1, 1],
        "num_heads": [1, 2],
        "window_size": 4,
        "patch_size": 4,
    },
    "train_cnn_teacher": {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1]},
}


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.update(
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")]),
    )
    return out


def write_folder(root: Path, per_split: dict[str, int], size: int = 40, seed: int = 0) -> Path:
    """A raw data folder ``<split>/<class alias>/<n>.npy`` with a class-specific bright spot per image."""
    rng = np.random.default_rng(seed)
    folders = {"no_substructure": "no_sub", "subhalo": "cdm", "vortex": "axion"}
    for split, n in per_split.items():
        for k, label in enumerate(LABELS):
            d = root / split / folders[label]
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.poisson(5.0, (size, size)).astype(np.float64)
                img[5 + 10 * k : 12 + 10 * k, 10:30] += 20.0
                np.save(d / f"{i}.npy", img)
    return root


def recipe_args(recipe: str, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(SMOKE),
        "--output_dir",
        str(out),
        "--config_overrides",
        json.dumps(TINY[recipe]),
        *extra,
    ]


def check_run(out: Path, recipe: str) -> dict:
    """The folder holds a loadable model with its processor, the evaluation files and the training record."""
    for name in (
        "metrics.json",
        "roc.png",
        "confusion_matrix.png",
        "lens_hf_training.json",
        "learning_curves.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, (recipe, name)
    model = AutoModelForImageClassification.from_pretrained(out, trust_remote_code=True)
    processor = LensImageProcessor.from_pretrained(out)
    assert model.config.num_labels == 3 and model.config.id2label[2] == "vortex"
    pixels = processor(np.random.default_rng(0).random((50, 50)), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 1, 32, 32)
    with torch.no_grad():
        assert model(pixel_values=pixels).logits.shape == (1, 3)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 6 and 0.0 <= metrics["roc_auc_macro"] <= 1.0
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["recipe"] == recipe and record["global_step"] == 4
    assert record["train_images_per_second"] > 0
    return record


@pytest.mark.slow
def test_every_recipe_end_to_end(tmp_path):
    """All five recipes, run as scripts (``__main__``) one after the other in one interpreter."""
    data = write_folder(tmp_path / "data", {"train": 4, "val": 2, "test": 2})
    teacher_dir = tmp_path / "train_cnn_teacher"
    runs = [
        (
            "train_cnn_teacher",
            recipe_args("train_cnn_teacher", teacher_dir),
        ),  # default data: simulated Model I
        (
            "finetune_deit",
            recipe_args(
                "finetune_deit",
                tmp_path / "finetune_deit",
                "--dataset",
                str(data),
                "--teacher",
                str(teacher_dir),
            ),
        ),
        (
            "finetune_vit",
            recipe_args(
                "finetune_vit",
                tmp_path / "finetune_vit",
                "--dataset",
                str(data),
                "--random_crop",
                "32",
                "--image_size",
                "36",
            ),
        ),
        ("finetune_swin", recipe_args("finetune_swin", tmp_path / "finetune_swin", "--dataset", str(data))),
        (
            "train_vit_spt_lsa",
            recipe_args("train_vit_spt_lsa", tmp_path / "train_vit_spt_lsa", "--dataset", str(data)),
        ),
        (  # fine-tuning a saved model folder
            "train_cnn_teacher",
            [
                "--config",
                str(SMOKE),
                "--output_dir",
                str(tmp_path / "finetuned"),
                "--model_name_or_path",
                str(teacher_dir),
                "--dataset",
                str(data),
            ],
        ),
    ]
    driver = "\n".join(
        [
            "import runpy, sys",
            f"for recipe, args in {runs!r}:",
            f"    sys.argv = [{str(RECIPES)!r} + '/' + recipe + '.py', *args]",
            "    runpy.run_path(sys.argv[0], run_name='__main__')",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], env=env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    teacher = check_run(tmp_path / "train_cnn_teacher", "train_cnn_teacher")
    assert teacher["dataset"]["source"] == "simulated" and teacher["dataset"]["splits"] == {
        "train": 12,
        "validation": 6,
        "test": 6,
    }

    deit = check_run(tmp_path / "finetune_deit", "finetune_deit")
    assert deit["teacher"] == str(tmp_path / "train_cnn_teacher")
    assert deit["model_class"] == "DeiTForImageClassificationWithTeacher"
    metrics = json.loads((tmp_path / "finetune_deit" / "metrics.json").read_text())
    assert {"cls_head", "dist_head"} <= set(metrics) and "roc_auc_macro" in metrics["dist_head"]
    history = json.loads((tmp_path / "finetune_deit" / "trainer_state.json").read_text())["log_history"]
    assert any("eval_cls_roc_auc_macro" in e and "eval_dist_roc_auc_macro" in e for e in history)

    vit = check_run(tmp_path / "finetune_vit", "finetune_vit")
    assert vit["input_size"] == 32 and vit["dataset"]["image_size"] == [40, 40]
    processor = json.loads((tmp_path / "finetune_vit" / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 36, "width": 36} and processor["crop_size"] == {
        "height": 32,
        "width": 32,
    }
    assert (
        tmp_path / "finetune_vit" / "predictions.csv"
    ).is_file()  # data read from files: per-file predictions

    check_run(tmp_path / "finetune_swin", "finetune_swin")
    spt = check_run(tmp_path / "train_vit_spt_lsa", "train_vit_spt_lsa")
    assert spt["model_class"] == "ViTSPTLSAForImageClassification"
    finetuned = check_run(tmp_path / "finetuned", "train_cnn_teacher")
    assert finetuned["model_args"]["model_name_or_path"] == str(teacher_dir)
    assert finetuned["num_parameters"] == teacher["num_parameters"]  # the tiny teacher, not a fresh ResNet-18


@pytest.mark.slow
def test_two_processes_train_as_one_job(tmp_path):
    out = tmp_path / "ddp"
    config = RECIPES / "configs" / "accelerate_multi_cpu.yaml"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--main_process_port",
        str(29600 + os.getpid() % 300),
        str(RECIPES / "train_cnn_teacher.py"),
        *recipe_args("train_cnn_teacher", out, "--eval_strategy", "no", "--save_strategy", "no"),
    ]
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["world_size"] == 2
    # 12 images over 2 processes with batch 4: 2 updates per epoch, 4 updates = 2 epochs.
    assert record["global_step"] == 4 and record["epochs"] == pytest.approx(2.0)
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_train_resumes_from_last_checkpoint(tmp_path):
    from safetensors.torch import load_file

    from lens_hf.training import parse_args
    from lens_hf.training.run import train

    data = write_folder(tmp_path / "data", {"train": 4, "val": 2, "test": 2})

    def args(out: Path, *extra: str):
        return parse_args(
            {"model_preset": "vit-tiny"},
            [
                *recipe_args("finetune_vit", out, "--dataset", str(data)),
                "--disable_tqdm",
                "true",
                "--load_best_model_at_end",
                "false",
                *extra,
            ],
        )

    train(*args(tmp_path / "full"))
    train(*args(tmp_path / "cut"), callbacks=[StopAt(2)])
    assert not (tmp_path / "cut" / "checkpoint-4").exists()
    result = train(*args(tmp_path / "cut", "--resume_from_checkpoint", "last"))
    record = json.loads((tmp_path / "cut" / "lens_hf_training.json").read_text())
    assert record["resumed_from"] == "checkpoint-2" and record["global_step"] == 4
    full = load_file(tmp_path / "full" / "model.safetensors")
    resumed = load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    assert result["num_samples"] == 6


def test_bad_options_end_with_one_line_error_before_any_work(tmp_path, capsys):
    from lens_hf.training import run_recipe

    for argv, message in [
        (["--model_preset", "vit-huge"], "unknown model preset 'vit-huge'"),
        (["--augment", "rot45"], "unknown augmentation 'rot45'"),
        (["--teacher", str(tmp_path / "none")], "teacher model folder not found"),
        (["--config_overrides", "{bad"], "--config_overrides is not valid JSON"),
    ]:
        with pytest.raises(SystemExit) as exc:
            run_recipe("finetune_vit", {}, ["--output_dir", str(tmp_path / "out"), *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("finetune_vit: error: ") and message in err[-1], err
    assert not (tmp_path / "out").exists()
