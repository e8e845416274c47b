"""The recipes end to end on the CPU: every recipe script trains, saves a loadable model folder with its evaluation,
record and card; `lens-hf train --recipe` runs the same function as the script; two processes train as one job;
an interrupted run resumes from its last checkpoint; nothing published holds a token or an absolute path."""

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
import yaml
from transformers import AutoModelForImageClassification, HfArgumentParser, TrainerCallback

from lens_hf.cli import RECIPES as CLI_RECIPES
from lens_hf.cli import load_recipe
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
    "train_regressor": TINY_VIT,
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


def check_run(out: Path, recipe: str, split: str = "test") -> dict:
    """The folder holds a loadable model with its processor, the evaluation files of ``split``, the training
    record and the model card."""
    for name in (
        "metrics.json",
        "roc.png",
        "confusion_matrix.png",
        "lens_hf_training.json",
        "learning_curves.png",
        "trainer_state.json",
        "README.md",
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
    assert metrics["split"] == split
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["recipe"] == recipe and record["global_step"] == 4
    assert record["train_images_per_second"] > 0 and record["metrics"]["split"] == split
    card = (out / "README.md").read_text()
    assert "model-index" in card and f"on the `{split}` split" in card
    return record


@pytest.mark.slow
def test_every_recipe_end_to_end(tmp_path):
    """All five recipes run as scripts (``__main__``) one after the other in one interpreter; ``lens-hf train
    --recipe vit_spt_lsa`` with the script's arguments gives the same model; a bad option ends a script with
    one line and exit status 2."""
    data = write_folder(tmp_path / "data", {"train": 4, "val": 2, "test": 2})
    no_test = write_folder(tmp_path / "no_test", {"train": 4, "val": 2})
    teacher_dir = tmp_path / "train_cnn_teacher"
    spt_args = recipe_args("train_vit_spt_lsa", tmp_path / "train_vit_spt_lsa", "--dataset", str(data))
    runs = [
        ("script", "train_cnn_teacher", recipe_args("train_cnn_teacher", teacher_dir)),  # simulated Model I
        (
            "script",
            "finetune_deit",
            # simulated Model I, as the teacher: a teacher must have read the student's inputs
            recipe_args("finetune_deit", tmp_path / "finetune_deit", "--teacher", str(teacher_dir)),
        ),
        (
            "script",
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
        (
            "script",
            "finetune_swin",
            recipe_args("finetune_swin", tmp_path / "finetune_swin", "--dataset", str(no_test)),
        ),
        ("script", "train_vit_spt_lsa", spt_args),
        (  # the SPT+LSA ViT distilled (soft) from the CNN teacher
            "script",
            "train_vit_spt_lsa",
            recipe_args(
                "train_vit_spt_lsa",
                tmp_path / "spt_distilled",
                "--teacher",
                str(teacher_dir),
                "--distillation_type",
                "soft",
                "--distillation_temperature",
                "2",
            ),
        ),
        ("cli", "vit_spt_lsa", [*spt_args[:3], str(tmp_path / "cli_vit_spt_lsa"), *spt_args[4:]]),
        (  # fine-tuning a saved model folder
            "script",
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
        ("script", "finetune_vit", ["--output_dir", str(tmp_path / "bad"), "--model_preset", "vit-huge"]),
    ]
    driver = "\n".join(
        [
            "import runpy, sys",
            "from lens_hf.cli import main",
            f"for kind, name, args in {runs!r}:",
            "    if kind == 'cli':",
            "        sys.argv = ['lens-hf', 'train', '--recipe', name, *args]",
            "        assert main(sys.argv[1:]) == 0",
            "        continue",
            f"    sys.argv = [{str(RECIPES)!r} + '/' + name + '.py', *args]",
            "    try:",
            "        runpy.run_path(sys.argv[0], run_name='__main__')",
            "    except SystemExit as exc:",
            "        print('exit status', exc.code)",
        ]
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], env=env(), capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Only the last run fails: one line naming the problem, exit status 2, no traceback, nothing written.
    assert proc.stdout.count("exit status") == 1 and "exit status 2" in proc.stdout, proc.stderr[-4000:]
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("finetune_vit.py: error: unknown model preset 'vit-huge'; choose one of: "), last
    assert "Traceback" not in proc.stderr and not (tmp_path / "bad").exists()

    teacher = check_run(tmp_path / "train_cnn_teacher", "train_cnn_teacher")
    assert teacher["dataset"]["source"] == "simulated" and teacher["dataset"]["splits"] == {
        "train": 12,
        "validation": 6,
        "test": 6,
    }
    assert teacher["data_args"]["train_per_class"] == 4  # simulated: the simulation settings are recorded
    assert teacher["command"].startswith("python recipes/train_cnn_teacher.py --config ")

    deit = check_run(tmp_path / "finetune_deit", "finetune_deit")
    assert deit["distillation_args"] == {
        "teacher": "train_cnn_teacher",
        "distillation_alpha": 0.5,
        "distillation_type": "hard",
        "distillation_temperature": 1.0,
    }
    assert deit["model_class"] == "DeiTForImageClassificationWithTeacher"
    assert deit["dataset"]["source"] == "simulated"
    metrics = json.loads((tmp_path / "finetune_deit" / "metrics.json").read_text())
    assert {"cls_head", "dist_head"} <= set(metrics) and "roc_auc_macro" in metrics["dist_head"]
    history = json.loads((tmp_path / "finetune_deit" / "trainer_state.json").read_text())["log_history"]
    assert any("eval_cls_roc_auc_macro" in e and "eval_dist_roc_auc_macro" in e for e in history)

    vit = check_run(tmp_path / "finetune_vit", "finetune_vit")
    assert vit["input_size"] == 32 and vit["dataset"]["image_size"] == [40, 40]
    assert vit["dataset"]["source"] == "data"  # outside the working directory: its name only
    assert "train_per_class" not in vit["data_args"] and "preset" not in vit["data_args"]
    processor = json.loads((tmp_path / "finetune_vit" / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 36, "width": 36} and processor["crop_size"] == {
        "height": 32,
        "width": 32,
    }
    # Data read from files: per-file predictions, named relative to the data folder.
    rows = (tmp_path / "finetune_vit" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 7 and all(str(tmp_path) not in row for row in rows)
    assert any(row.startswith("test/cdm/") for row in rows), rows[:3]

    # No test split in the data: evaluated on validation, and every file says so.
    swin = check_run(tmp_path / "finetune_swin", "finetune_swin", split="validation")
    assert swin["dataset"]["splits"] == {"train": 12, "validation": 6}

    spt = check_run(tmp_path / "train_vit_spt_lsa", "train_vit_spt_lsa")
    assert spt["model_class"] == "ViTSPTLSAForImageClassification"
    assert spt["distillation_args"]["teacher"] is None
    distilled = check_run(tmp_path / "spt_distilled", "train_vit_spt_lsa")
    assert distilled["model_class"] == "ViTSPTLSAForImageClassification"
    assert distilled["distillation_args"] == {
        "teacher": "train_cnn_teacher",
        "distillation_alpha": 0.5,
        "distillation_type": "soft",
        "distillation_temperature": 2.0,
    }
    # `lens-hf train --recipe vit_spt_lsa` ran the same function with the same arguments: the same model.
    cli = check_run(tmp_path / "cli_vit_spt_lsa", "train_vit_spt_lsa")
    assert cli["command"].startswith("lens-hf train --recipe vit_spt_lsa --config ")
    for name in ("model.safetensors", "metrics.json", "config.json", "preprocessor_config.json"):
        assert (tmp_path / "cli_vit_spt_lsa" / name).read_bytes() == (
            tmp_path / "train_vit_spt_lsa" / name
        ).read_bytes(), name
    volatile = {"command", "training_args", "train_runtime_s", "train_images_per_second"}
    assert {k: v for k, v in cli.items() if k not in volatile} == {
        k: v for k, v in spt.items() if k not in volatile
    }

    finetuned = check_run(tmp_path / "finetuned", "train_cnn_teacher")
    assert finetuned["model_args"]["model_name_or_path"] == "train_cnn_teacher"
    assert finetuned["num_parameters"] == teacher["num_parameters"]  # the tiny teacher, not a fresh ResNet-18


def test_lens_hf_train_runs_the_main_of_the_recipe_script(cli, monkeypatch):
    """``lens-hf train --recipe NAME ARGS`` calls ``main(ARGS)`` of ``recipes/<script>.py``, the function the
    script's ``__main__`` block runs."""
    assert set(CLI_RECIPES.values()) == {p.stem for p in RECIPES.glob("*.py") if p.stem != "__init__"}
    for name, script in CLI_RECIPES.items():
        module = load_recipe(script)
        assert Path(module.__file__) == RECIPES / f"{script}.py" and module.RECIPE == script
        assert "with exit_on_user_error(sys.argv[0]):\n        main()\n" in Path(module.__file__).read_text()
        calls = []
        monkeypatch.setattr(module, "main", lambda argv, calls=calls: calls.append(argv) or {})
        result = cli("train", "--recipe", name, "--output_dir", "out", "--seed", "3")
        assert result.code == 0 and calls == [["--output_dir", "out", "--seed", "3"]], (name, result.err)


def test_recipe_scripts_read_top_to_bottom():
    """Each recipe is a self-contained example of 80-200 lines with its defaults at the top and the steps
    visible in ``main``."""
    for path in sorted(RECIPES.glob("*.py")):
        if path.stem == "__init__":
            continue
        text = path.read_text()
        assert 80 <= len(text.splitlines()) <= 200, path.name
        assert text.index("DEFAULTS = {") < text.index("def main(")
        steps = [
            "parse_args(",
            "load_splits(",
            "build_processor(",
            "build_model(",
            ".train(",
            ".predict(",
            "finish_run(",
        ]
        positions = [text.index(step) for step in steps]
        assert positions == sorted(positions), path.name


@pytest.mark.slow
def test_regressor_learns_log10_axion_mass_of_the_vortices_and_saves_its_scaling(tmp_path, capsys):
    """A tiny train_regressor run on simulated Model I: only the vortices (the class that carries an axion mass)
    are simulated, the model folder records the target's scaling, its evaluation is in dex, and a non-numeric
    target is a one-line error."""
    from lens_hf.processing.targets import TargetScaling
    from lens_hf.training import exit_on_user_error

    out = tmp_path / "regressor"
    metrics = load_recipe("train_regressor").main(recipe_args("train_regressor", out))
    assert metrics["target"] == "axion_mass" and metrics["quantity"] == "log10_axion_mass"
    assert metrics["num_samples"] == 2 and metrics["split"] == "test"  # the 2 simulated test vortices
    for name in (
        "metrics.json",
        "regression.png",
        "learning_curves.png",
        "lens_hf_training.json",
        "README.md",
    ):
        assert (out / name).is_file(), name
    assert not (out / "roc.png").exists()
    model = AutoModelForImageClassification.from_pretrained(out, trust_remote_code=True).eval()
    scaling = TargetScaling.from_config(model.config)
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["dataset"]["classes"] == ["vortex"]
    regression = record["dataset"]["regression"]
    assert regression["skipped"] == {"train": 0, "validation": 0, "test": 0}
    assert (regression["target"], regression["transform"], regression["mean"]) == (
        "axion_mass",
        "log10",
        scaling.mean,
    )
    assert -24 <= scaling.mean <= -22 and record["metrics"]["mae"] == metrics["mae"]
    assert "model-index" in (out / "README.md").read_text() and "MAE" in (out / "README.md").read_text()

    with pytest.raises(SystemExit) as exc, exit_on_user_error("train_regressor.py"):
        load_recipe("train_regressor").main(
            recipe_args("train_regressor", tmp_path / "bad", "--target", "preset")
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err
        == "train_regressor.py: error: the simulated data: column 'preset' is not numeric (Value('string')); cannot regress on it"
    )


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
    assert "world size 1" not in proc.stderr


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_train_resumes_from_last_checkpoint(tmp_path):
    from safetensors.torch import load_file

    data = write_folder(tmp_path / "data", {"train": 4, "val": 2, "test": 2})
    recipe = load_recipe("finetune_vit")

    def args(out: Path, *extra: str) -> list[str]:
        return [
            *recipe_args("finetune_vit", out, "--dataset", str(data)),
            "--disable_tqdm",
            "true",
            "--load_best_model_at_end",
            "false",
            *extra,
        ]

    recipe.main(args(tmp_path / "full"))
    recipe.main(args(tmp_path / "cut"), callbacks=[StopAt(2)])
    assert not (tmp_path / "cut" / "checkpoint-4").exists()
    result = recipe.main(args(tmp_path / "cut", "--resume_from_checkpoint", "last"))
    record = json.loads((tmp_path / "cut" / "lens_hf_training.json").read_text())
    assert record["resumed_from"] == "checkpoint-2" and record["global_step"] == 4
    full = load_file(tmp_path / "full" / "model.safetensors")
    resumed = load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key
    assert result["num_samples"] == 6 and result["split"] == "test"


def test_cpu_bf16_trains_under_bfloat16_autocast_and_evaluates_in_float32(tmp_path):
    """--cpu_bf16 true: the training forward passes compute in bfloat16 (the classifier's output dtype, seen
    by a hook), evaluation and the saved weights stay float32, and the record says so; false: all float32."""
    from safetensors.torch import load_file

    data = write_folder(tmp_path / "data", {"train": 4, "val": 2, "test": 2})
    recipe = load_recipe("finetune_vit")

    class Dtypes(TrainerCallback):
        def __init__(self) -> None:
            self.seen: dict[str, set[str]] = {}

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            def hook(module, inputs, output):  # noqa: ANN001
                self.seen.setdefault("train" if module.training else "eval", set()).add(str(output.dtype))

            model.classifier.register_forward_hook(hook)

    for flag, train_dtype, precision in (
        ("true", "torch.bfloat16", "bf16 autocast (cpu)"),
        ("false", "torch.float32", "fp32"),
    ):
        out = tmp_path / flag
        dtypes = Dtypes()
        recipe.main(
            recipe_args(
                "finetune_vit", out, "--dataset", str(data), "--disable_tqdm", "true", "--cpu_bf16", flag
            ),
            callbacks=[dtypes],
        )
        assert dtypes.seen == {"train": {train_dtype}, "eval": {"torch.float32"}}, (flag, dtypes.seen)
        record = json.loads((out / "lens_hf_training.json").read_text())
        assert record["training_precision"] == precision
        assert {str(t.dtype) for t in load_file(out / "model.safetensors").values()} == {"torch.float32"}


def test_bad_options_end_with_one_line_error_before_any_work(tmp_path, capsys):
    from lens_hf.training import exit_on_user_error

    out = tmp_path / "out"
    for recipe, argv, message in [
        ("finetune_vit", ["--model_preset", "vit-huge"], "unknown model preset 'vit-huge'"),
        ("finetune_vit", ["--augment", "rot45"], "unknown augmentation 'rot45'"),
        ("finetune_vit", ["--config_overrides", "{bad"], "--config_overrides is not valid JSON"),
        ("finetune_vit", ["--teacher", "runs/teacher"], "unrecognized arguments: --teacher runs/teacher"),
        ("finetune_deit", ["--teacher", str(tmp_path / "none")], "teacher model folder not found"),
        ("finetune_deit", ["--distillation_alpha", "1.5"], "distillation_alpha must be in [0, 1], got 1.5"),
        ("train_vit_spt_lsa", ["--distillation_type", "feature"], "unknown distillation_type 'feature'"),
        (
            "train_vit_spt_lsa",
            ["--distillation_temperature", "0"],
            "distillation_temperature must be positive",
        ),
        ("train_vit_spt_lsa", ["--teacher", str(tmp_path / "none")], "teacher model folder not found"),
        ("train_cnn_teacher", [], "--output_dir is required"),
        ("finetune_vit", ["--task", "regression"], "--task regression needs --target COLUMN"),
        ("train_regressor", ["--task", "ranking"], "unknown task 'ranking'"),
        ("train_regressor", ["--target_transform", "ln"], "unknown target_transform 'ln'"),
        ("finetune_vit", ["--save_strategy", "steps"], "invalid training arguments: --load_best_model"),
        ("finetune_vit", ["--cpu_bf16", "maybe"], "unknown cpu_bf16 'maybe' (choose from auto, true, false)"),
    ]:
        flags = ["--output_dir", str(out)] if argv else []
        with pytest.raises(SystemExit) as exc, exit_on_user_error(f"{recipe}.py"):
            load_recipe(recipe).main([*flags, *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith(f"{recipe}.py: error: ") and message in err[-1], err
    assert not out.exists()


def test_published_files_hold_no_token_and_no_absolute_path(tmp_path, monkeypatch, cli):
    """A run given ``--hub_token``: no file of the model folder (what is published; the Trainer's checkpoints,
    which hold its pickled arguments, are not) contains the token or the working directory's absolute path."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    argv = [
        "train", "--recipe", "vit_spt_lsa", "--config", str(SMOKE), "--output_dir", str(out),
        "--config_overrides", json.dumps(TINY_VIT), "--hub_token", "hf_SECRETSECRET", "--disable_tqdm", "true",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["lens-hf", *argv])  # what the record's command is made from
    result = cli(*argv)
    assert result.code == 0, result.err[-3000:]
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders and all(name.startswith("checkpoint-") for name in folders), folders
    files = sorted(p for p in out.iterdir() if p.is_file())
    names = {p.name for p in files}
    assert {
        "README.md",
        "lens_hf_training.json",
        "trainer_state.json",
        "metrics.json",
        "model.safetensors",
    } <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    for path in files:
        data = path.read_bytes()
        assert b"hf_SECRETSECRET" not in data, path.name
        assert str(tmp_path).encode() not in data and str(tmp_path.resolve()).encode() not in data, path.name
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["command"].startswith(
        "lens-hf train --recipe vit_spt_lsa --config smoke_test.yaml --output_dir run "
    )
    assert "--hub_token '***'" in record["command"] or "--hub_token ***" in record["command"]
    assert "hub_token" not in record["training_args"] and record["training_args"]["output_dir"] == "run"
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] in ("checkpoint-2", "checkpoint-4")


def recipe_parser(module) -> HfArgumentParser:
    """The recipe's own argument dataclasses (a recipe may add one, e.g. finetune_deit's DistillationArguments)."""
    from lens_hf.training import DataArguments, LensTrainingArguments, ModelArguments

    extra = [module.DistillationArguments] if hasattr(module, "DistillationArguments") else []
    return HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments, *extra))


def test_recipe_configs_parse_and_agree_with_the_recipe_defaults(tmp_path):
    from lens_hf.training import parse_args

    uses = {"smoke_test": list(CLI_RECIPES.values()), "finetune_vit_pretrained": ["finetune_vit"]}
    uses |= {
        name: ["train_vit_spt_lsa"]
        for name in ("shipped_model_i", "shipped_model_i_gpu", "model_i_record_cpu", "model_i_record_gpu")
    }
    uses |= {
        name: ["train_regressor"]
        for name in (
            "axion_mass_model_i",
            "axion_mass_model_i_gpu",
            "axion_mass_model_i_residual",
            "axion_mass_model_i_residual_lens",
            "axion_mass_model_ii",
            "axion_mass_model_iii",
        )
    }
    configs = [p for p in (RECIPES / "configs").glob("*.yaml") if not p.stem.startswith("accelerate_")]
    assert {p.stem for p in configs} == set(CLI_RECIPES.values()) | set(uses)
    for config in configs:
        for script in uses.get(config.stem, [config.stem]):
            module = load_recipe(script)
            parsed = parse_args(
                recipe_parser(module), module.DEFAULTS, ["--config", str(config), "--output_dir", "x"]
            )
            assert parsed[2].output_dir == "x", config.name
        if config.stem in CLI_RECIPES.values():  # the recipe's own YAML shows its defaults with a dataset
            values = yaml.safe_load(config.read_text())
            defaults = load_recipe(config.stem).DEFAULTS
            assert {k: values[k] for k in defaults if k in values} == {
                k: defaults[k] for k in defaults if k in values
            }
            assert "model_preset" in values and "learning_rate" in values, config.name


def test_axion_mass_gpu_config_runs_end_to_end_on_a_tiny_run(tmp_path):
    """The GPU regressor command of recipes/configs as written (fine-tuned from the shipped classifier), with only
    the sizes made tiny and the 12 loader workers cut to 2: vortices only, log10 m_a, a one-output regression
    head, test metrics."""
    config = RECIPES / "configs" / "axion_mass_model_i_gpu.yaml"
    values = yaml.safe_load(config.read_text())
    out = tmp_path / "gpu"
    argv = ["--config", str(config), "--output_dir", str(out), "--disable_tqdm", "true"]
    argv += ["--train_per_class", "8", "--eval_per_class", "4", "--test_per_class", "4"]
    argv += ["--num_train_epochs", "2", "--lr_step_epochs", "1", "--warmup_steps", "1"]
    argv += ["--per_device_train_batch_size", "4", "--dataloader_num_workers", "2"]
    metrics = load_recipe("train_regressor").main(argv)
    assert (
        metrics["num_samples"] == 4 and metrics["target"] == "axion_mass" and metrics["transform"] == "log10"
    )
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["global_step"] == 4  # 2 epochs of 8 vortices, batch 4
    assert record["data_args"]["sim_seed"] == values["sim_seed"] == 440
    assert record["model_args"]["model_name_or_path"] == "checkpoints/vit-spt-lsa-model-i"
    config_json = json.loads((out / "config.json").read_text())
    assert config_json["id2label"] == {"0": "axion_mass"} and config_json["problem_type"] == "regression"
    assert (out / "model.safetensors").stat().st_size < 25e6


@pytest.mark.parametrize("machine", ["cpu", "gpu"])
def test_model_i_record_configs_run_end_to_end_on_a_tiny_run(tmp_path, machine):
    """The record commands of recipes/configs (2-core CPU, one GPU) as written, with only the sizes made tiny
    (and the GPU config's 12 loader workers cut to 2): simulation, the inputs saved with the processor, the step
    schedule, evaluation and the card."""
    config = RECIPES / "configs" / f"model_i_record_{machine}.yaml"
    values = yaml.safe_load(config.read_text())
    out = tmp_path / machine
    argv = ["--config", str(config), "--output_dir", str(out), "--disable_tqdm", "true"]
    argv += ["--train_per_class", "8", "--eval_per_class", "2", "--test_per_class", "2"]
    argv += ["--num_train_epochs", "2", "--lr_step_epochs", "1", "--warmup_steps", "1"]
    argv += ["--per_device_train_batch_size", "8", "--max_train_minutes", "5"]
    if machine == "gpu":
        argv += ["--dataloader_num_workers", "2"]
    metrics = load_recipe("train_vit_spt_lsa").main(argv)
    assert metrics["split"] == "test" and metrics["num_samples"] == 6
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["global_step"] == 6  # 2 epochs of 24 images, batch 8
    assert record["model_args"]["model_preset"] == values["model_preset"] == "vit-spt-lsa-stem"
    assert record["data_args"]["sim_seed"] == values["sim_seed"]
    stretch, standardize = values.get("stretch", "none"), values.get("standardize", False)
    assert record["data_args"]["stretch"] == stretch and record["data_args"]["standardize"] is standardize
    assert record["training_args"]["learning_rate"] == values["learning_rate"]
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["stretch"] == stretch and processor["crop_size"] == {"height": 64, "width": 64}
    assert (processor.get("image_mean") is not None) is standardize
    assert (out / "model.safetensors").stat().st_size < 25e6 and (out / "README.md").is_file()
