"""lens_hf.training: argument parsing, D4 augmentation, step-decay schedule, trainers, checkpoint restoring."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value
from transformers import (
    DeiTConfig,
    DeiTForImageClassificationWithTeacher,
    HfArgumentParser,
    ResNetConfig,
    ResNetForImageClassification,
    TrainerCallback,
    ViTConfig,
    ViTForImageClassification,
)

from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.training import (
    BatchAugment,
    DataArguments,
    DistillationTrainer,
    LensTrainer,
    LensTrainingArguments,
    ModelArguments,
    StepDecay,
    collate,
    d4_transform,
    make_transforms,
    parse_args,
    publishable,
    random_d4,
    regression_targets,
    restore_weights,
    setup_logging,
    step_decay_scheduler,
    updates_per_epoch,
)
from lens_hf.training.run import single_process_warning

torch.set_num_threads(1)
SIZE = 16


# ------------------------------------------------------------------------------------------------ fixtures
def tiny_vit(seed: int = 0, **config_kwargs) -> ViTForImageClassification:
    """A one-layer ViT classifier (or with ``num_labels=1, problem_type="regression"``, a regressor)."""
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=SIZE,
        patch_size=8,
        num_channels=1,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        **{"num_labels": 3, **config_kwargs},
    )
    return ViTForImageClassification(config)


def tiny_deit(seed: int = 0) -> DeiTForImageClassificationWithTeacher:
    torch.manual_seed(seed)
    config = DeiTConfig(
        image_size=SIZE,
        patch_size=8,
        num_channels=1,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    return DeiTForImageClassificationWithTeacher(config)


def constant_teacher(winner: int) -> ResNetForImageClassification:
    """A tiny ResNet whose logits are a constant vector with argmax ``winner`` whatever the image."""
    config = ResNetConfig(num_channels=1, embedding_size=4, hidden_sizes=[4], depths=[1], num_labels=3)
    teacher = ResNetForImageClassification(config)
    with torch.no_grad():
        head = teacher.classifier[-1]
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
        head.bias[winner] = 5.0
    return teacher


def lens_dataset(n_per_class: int, seed: int = 0, size: int = SIZE) -> Dataset:
    """Float32 images stored as mode-F TIFF by the Image feature; class k has a bright blob at a class-specific spot."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per_class):
            img = rng.normal(0.0, 0.1, (size, size)).astype(np.float32)
            img[2 + 4 * label : 5 + 4 * label, 4:9] += 2.0
            images.append(img)
            labels.append(label)
    features = Features({"image": Image(), "label": ClassLabel(names=list(LABELS))})
    return Dataset.from_dict({"image": images, "label": labels}, features=features)


def processor(size: int = SIZE, crop: int | None = None) -> LensImageProcessor:
    return LensImageProcessor(
        size={"height": size, "width": size},
        crop_size=None if crop is None else {"height": crop, "width": crop},
        do_center_crop=crop is not None,
    )


def training_args(tmp_path, **kw) -> LensTrainingArguments:
    base = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=1e-2,
        weight_decay=0.01,
        max_steps=3,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        seed=7,
    )
    base.update(kw)
    return LensTrainingArguments(**base)


def datasets_for(size: int = SIZE, n_train: int = 4, n_eval: int = 2):
    proc = processor(size)
    train_tf, eval_tf = make_transforms(proc)
    return (
        lens_dataset(n_train, seed=1, size=size).with_transform(train_tf),
        lens_dataset(n_eval, seed=2, size=size).with_transform(eval_tf),
        proc,
    )


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------------------------ args
def parser(*extra) -> HfArgumentParser:
    return HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments, *extra))


def test_parse_args_config_file_then_flags_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "model_preset: swin-tiny\nlearning_rate: 0.002\ntrain_per_class: 12\naugment: none\n"
        "lr_schedule: hf\nlr_scheduler_type: cosine\nwarmup_steps: 0.1\n"
    )
    model_args, data_args, args = parse_args(
        parser(),
        {"model_preset": "vit-tiny", "num_train_epochs": 7},
        ["--config", str(config), "--output_dir", str(tmp_path / "out"), "--learning_rate", "0.005"],
    )
    assert model_args.model_preset == "swin-tiny"  # config beats the recipe default
    assert args.learning_rate == 0.005  # the flag beats the config
    assert args.num_train_epochs == 7  # recipe default kept
    assert data_args.train_per_class == 12 and data_args.augment == "none"
    assert args.lr_schedule == "hf" and args.lr_scheduler_type.value == "cosine" and args.warmup_steps == 0.1
    assert args.remove_unused_columns is False and args.disable_tqdm is False


@dataclass
class ExtraArguments:
    teacher: str | None = None
    distillation_alpha: float = 0.5


def test_parse_args_takes_a_recipes_own_dataclass(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"distillation_alpha": 0.25}))
    model_args, _, args, extra = parse_args(
        parser(ExtraArguments),
        {"model_preset": "deit-tiny"},
        ["--config", str(config), "--output_dir", str(tmp_path), "--teacher", "runs/t"],
    )
    assert model_args.model_preset == "deit-tiny" and args.output_dir == str(tmp_path)
    assert extra == ExtraArguments(teacher="runs/t", distillation_alpha=0.25)
    # Without that dataclass its names are unknown, wherever they come from.
    with pytest.raises(LensHFError, match=r"unrecognized arguments: --teacher runs/t"):
        parse_args(parser(), {}, ["--output_dir", str(tmp_path), "--teacher", "runs/t"])
    with pytest.raises(LensHFError, match=r"run.json: unknown argument name\(s\) distillation_alpha"):
        parse_args(parser(), {}, ["--config", str(config), "--output_dir", str(tmp_path)])
    with pytest.raises(LensHFError, match=r"recipe defaults: unknown argument name\(s\) teacher"):
        parse_args(parser(), {"teacher": None}, ["--output_dir", str(tmp_path)])


def test_parse_args_rejects_unknown_config_keys_and_missing_output_dir(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"learning_rat": 0.1}))
    with pytest.raises(LensHFError, match="learning_rat"):
        parse_args(parser(), {}, ["--config", str(config), "--output_dir", str(tmp_path)])
    with pytest.raises(LensHFError, match="output_dir"):
        parse_args(parser(), {}, [])
    with pytest.raises(LensHFError, match="lr_schedule"):
        parse_args(parser(), {}, ["--output_dir", str(tmp_path), "--lr_schedule", "exp"])


def test_single_process_warning_when_a_launcher_asked_for_more(caplog):
    # What `accelerate launch --num_processes 2 --cpu` (accelerate 1.15) gives its one process.
    accelerate_cpu = {"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    message = single_process_warning(1, accelerate_cpu)
    assert "started only this one" in message and "torchrun --nproc_per_node N" in message
    assert "LOCAL_WORLD_SIZE=2" in single_process_warning(1, {"LOCAL_WORLD_SIZE": "2"})
    assert "ACCELERATE_NUM_PROCESSES=4" in single_process_warning(1, {"ACCELERATE_NUM_PROCESSES": "4"})
    # torchrun --nproc_per_node 2 (world size 2), a plain run, accelerate with one process: no warning.
    torchrun = {**accelerate_cpu, "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "0"}
    assert single_process_warning(2, torchrun) is None
    assert single_process_warning(1, {}) is None
    assert single_process_warning(1, {"ACCELERATE_USE_CPU": "True"}) is None


def test_setup_logging_warns_about_a_single_process(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with caplog.at_level(logging.WARNING, logger="lens_hf"):
        setup_logging(training_args(tmp_path))
    assert any("trains in a single process" in r.getMessage() for r in caplog.records)


def test_publishable_drops_tokens_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    token = "hf_" + "Q7vLr2XpN9sKd4TbW1mZc8YfJ3hGa6Ue0o"  # the shape of a real token
    args = training_args(tmp_path / "out", hub_token=token).to_dict()
    record = publishable(
        {
            "training_args": args,
            "raw": {"hub_token": "plain-secret-value", "api_key": "k" * 12, "max_tokens": 5},
            "note": f"pushed with {token}",
            "data": str(tmp_path / "d"),
            "command": f"lens-hf train --hub_token plain-secret-value --output_dir {tmp_path / 'out'}",
        }
    )
    text = json.dumps(record)
    assert token not in text and "plain-secret" not in text and str(tmp_path) not in text
    assert "hub_token" not in record["training_args"] and record["raw"] == {"max_tokens": 5}
    assert record["training_args"]["output_dir"] == "out" and record["data"] == "d"
    assert record["note"] == "pushed with ***"
    assert record["command"] == "lens-hf train --hub_token '***' --output_dir out"
    assert publishable({"path": "/elsewhere/data/set", "n": 3, "x": None}) == {
        "path": "set",
        "n": 3,
        "x": None,
    }


# ------------------------------------------------------------------------------------------------ D4
def test_d4_gives_exactly_the_eight_symmetries():
    x = torch.arange(25.0).reshape(1, 5, 5)
    images = [d4_transform(x, e) for e in range(8)]
    keys = {tuple(im.flatten().tolist()) for im in images}
    assert len(keys) == 8  # all distinct
    # The group generated by a quarter turn and a mirror flip has exactly these 8 elements.
    expected = set()
    for k in range(4):
        for flip in (False, True):
            y = torch.rot90(x, k, dims=(-2, -1))
            expected.add(tuple((y.flip(-1) if flip else y).flatten().tolist()))
    assert keys == expected
    # Closure: any element applied to any element's output stays in the set.
    for im in images:
        for e in range(8):
            assert tuple(d4_transform(im, e).flatten().tolist()) in keys
    assert torch.equal(d4_transform(x, 0), x)
    with pytest.raises(ValueError):
        d4_transform(x, 8)


def test_random_d4_draws_every_symmetry():
    x = torch.arange(16.0).reshape(1, 4, 4)
    g = torch.Generator().manual_seed(0)
    seen = {tuple(random_d4(x, g).flatten().tolist()) for _ in range(300)}
    assert len(seen) == 8


def test_d2_augmentation_draws_the_four_symmetries_that_keep_the_axes():
    """--augment d2: every image gets identity, a mirror flip or the half turn, never a quarter turn, and all
    four are drawn."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(400, 1, 1, 1)
    torch.manual_seed(0)
    out = BatchAugment("d2")(x)
    allowed = {
        tuple(v.flatten().tolist()): name
        for v, name in (
            (x[0], "identity"),
            (x[0].flip(-1), "mirror columns"),
            (x[0].flip(-2), "mirror rows"),
            (torch.rot90(x[0], 2, dims=(-2, -1)), "half turn"),
        )
    }
    seen = [allowed.get(tuple(im.flatten().tolist())) for im in out]
    assert None not in seen  # no quarter turn, no transpose
    assert set(seen) == set(allowed.values())


def test_transforms_then_batch_augmentation():
    ds = lens_dataset(2, size=20)
    proc = processor(20)
    train_tf, eval_tf = make_transforms(proc)
    rows = ds[:6]
    ev = eval_tf(rows)
    assert ev["pixel_values"].shape == (6, 1, 20, 20) and ev["pixel_values"].dtype == torch.float32
    assert ev["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(train_tf(rows)["pixel_values"], ev["pixel_values"])  # the transforms are deterministic
    augment = BatchAugment.for_processor(proc, "d4")
    torch.manual_seed(3)
    tr = augment(ev["pixel_values"])
    for i in range(6):
        assert any(torch.equal(tr[i], d4_transform(ev["pixel_values"][i], e)) for e in range(8))
    assert BatchAugment.for_processor(proc, "none") is None

    # Random crop in training, centre crop (the saved processor's) in evaluation.
    cropped = processor(20, crop=12)
    train_tf, eval_tf = make_transforms(cropped)
    full = proc(ds[:6]["image"], return_tensors="pt")["pixel_values"]
    ev = eval_tf(rows)["pixel_values"]
    assert ev.shape == (6, 1, 12, 12) and torch.equal(ev, full[..., 4:16, 4:16])
    assert torch.equal(train_tf(rows)["pixel_values"], full)
    tr = BatchAugment.for_processor(cropped, "none")(full)
    assert tr.shape == (6, 1, 12, 12)
    for i in range(6):
        windows = [full[i, :, t : t + 12, s : s + 12] for t in range(9) for s in range(9)]
        assert any(torch.equal(tr[i], w) for w in windows)
    with pytest.raises(LensHFError):
        BatchAugment("rot45")

    # Centre crop in training as well (no random translation): both transforms give the same centre window.
    train_tf, eval_tf = make_transforms(cropped, random_crop=False)
    assert torch.equal(train_tf(rows)["pixel_values"], ev)
    assert BatchAugment.for_processor(cropped, "none", random_crop=False) is None
    assert BatchAugment.for_processor(cropped, "d4", random_crop=False).crop is None


# ------------------------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize("steps_per_epoch", [1, 3, 7])
def test_step_decay_divides_by_ten_exactly_at_epochs_20_and_40(steps_per_epoch):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1e-3)
    sched = step_decay_scheduler(opt, steps_per_epoch)
    lrs = []
    for _ in range(45 * steps_per_epoch):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    epoch_lr = {e: {lrs[u] for u in range(e * steps_per_epoch, (e + 1) * steps_per_epoch)} for e in range(45)}
    assert all(len(v) == 1 for v in epoch_lr.values())  # constant within an epoch
    lr = {e: next(iter(v)) for e, v in epoch_lr.items()}
    assert lr[0] == lr[19] == pytest.approx(1e-3, rel=1e-12)
    assert lr[20] == lr[39] == pytest.approx(1e-4, rel=1e-12)
    assert lr[40] == lr[44] == pytest.approx(1e-5, rel=1e-12)


def test_updates_per_epoch_counts_world_size_accumulation_and_drop_last():
    assert updates_per_epoch(100, 8) == 13
    assert updates_per_epoch(100, 8, world_size=2) == 7  # ceil(100 / 16) batches per process
    assert updates_per_epoch(100, 8, world_size=2, gradient_accumulation_steps=3) == 3
    assert updates_per_epoch(100, 8, drop_last=True) == 12
    assert StepDecay(5, 20, 0.1, warmup_steps=4)(0) == pytest.approx(0.25)
    with pytest.raises(LensHFError):
        updates_per_epoch(0, 8)


class LrRecorder(TrainerCallback):
    """Records the learning rate each optimizer update actually uses."""

    def __init__(self):
        self.lrs: list[float] = []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])


def test_trainer_step_decay_is_epoch_based_with_gradient_accumulation(tmp_path):
    # 12 images, batch 4 -> 3 batches; accumulation 2 -> 2 updates per epoch; decay every 2 epochs.
    train_ds, _, proc = datasets_for(n_train=4)
    recorder = LrRecorder()
    trainer = LensTrainer(
        model=tiny_vit(),
        args=training_args(tmp_path, max_steps=9, gradient_accumulation_steps=2, lr_step_epochs=2),
        train_dataset=train_ds,
        processing_class=proc,
        callbacks=[recorder],
    )
    trainer.train()
    assert trainer.updates_per_epoch() == 2
    expected = [1e-2 * 0.1 ** ((u // 2) // 2) for u in range(9)]
    assert recorder.lrs == pytest.approx(expected, rel=1e-9)


def test_hf_schedule_still_selectable(tmp_path):
    train_ds, _, proc = datasets_for(n_train=4)
    recorder = LrRecorder()
    args = training_args(tmp_path, max_steps=6, lr_schedule="hf", lr_scheduler_type="linear", warmup_steps=2)
    LensTrainer(
        model=tiny_vit(), args=args, train_dataset=train_ds, processing_class=proc, callbacks=[recorder]
    ).train()
    assert recorder.lrs[0] == 0.0 and recorder.lrs[2] == pytest.approx(1e-2)
    assert recorder.lrs[3] > recorder.lrs[4] > recorder.lrs[5] > 0


class SlowSteps(TrainerCallback):
    """Makes every optimizer step take at least ``seconds`` of wall clock."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_begin(self, args, state, control, **kwargs):
        time.sleep(self.seconds)


def test_max_train_minutes_stops_training_and_says_so(tmp_path):
    train_ds, _, proc = datasets_for(n_train=4)
    # 0.2 s steps against a 1 s limit: about 5 of the 1000 steps run.
    args = training_args(tmp_path, max_steps=1000, max_train_minutes=1.0 / 60)
    trainer = LensTrainer(
        model=tiny_vit(), args=args, train_dataset=train_ds, processing_class=proc, callbacks=[SlowSteps(0.2)]
    )
    started = time.perf_counter()
    trainer.train()
    assert trainer.time_limit.stopped
    assert 3 <= trainer.state.global_step <= 8
    assert time.perf_counter() - started < 30

    # Without the limit being reached, the run goes to its end and says it was not stopped.
    args = training_args(tmp_path / "b", max_steps=3, max_train_minutes=10.0)
    trainer = LensTrainer(model=tiny_vit(), args=args, train_dataset=train_ds, processing_class=proc)
    trainer.train()
    assert trainer.state.global_step == 3 and not trainer.time_limit.stopped
    assert (
        LensTrainer(model=tiny_vit(), args=training_args(tmp_path / "c"), train_dataset=train_ds).time_limit
        is None
    )
    with pytest.raises(LensHFError, match="max_train_minutes must be positive"):
        training_args(tmp_path, max_train_minutes=0)


# ------------------------------------------------------------------------------------------------ optimizer / metrics
def test_weight_decay_only_on_matrices(tmp_path):
    train_ds, _, proc = datasets_for()
    trainer = LensTrainer(
        model=tiny_vit(), args=training_args(tmp_path), train_dataset=train_ds, processing_class=proc
    )
    opt = trainer.create_optimizer()
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["lr"] == 1e-2
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    decayed = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.01 for p in g["params"]}
    plain = {names[id(p)] for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    matrices = {n for n, p in trainer.model.named_parameters() if p.ndim >= 2}
    assert decayed == matrices - {"vit.embeddings.cls_token", "vit.embeddings.position_embeddings"}
    assert plain == set(names.values()) - decayed  # every parameter exactly once
    assert any(n.endswith("layernorm.weight") or "norm" in n for n in plain)


def test_evaluate_reports_lens_metrics(tmp_path):
    train_ds, eval_ds, proc = datasets_for()
    trainer = LensTrainer(
        model=tiny_vit(),
        args=training_args(tmp_path),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=proc,
    )
    metrics = trainer.evaluate()
    for key in (
        "eval_loss",
        "eval_accuracy",
        "eval_roc_auc_macro",
        "eval_roc_auc_micro",
        "eval_roc_auc_vortex",
    ):
        assert key in metrics
    # The loss is the mean cross-entropy of the model's logits.
    batch = trainer.data_collator([eval_ds[i] for i in range(len(eval_ds))])
    with torch.no_grad():
        logits = trainer.model(pixel_values=batch["pixel_values"]).logits
    assert metrics["eval_loss"] == pytest.approx(F.cross_entropy(logits, batch["labels"]).item(), rel=1e-5)


# ------------------------------------------------------------------------------------------------ distillation
def test_distillation_loss_uses_teacher_argmax(tmp_path):
    train_ds, _, proc = datasets_for()
    student, teacher, alpha = tiny_deit(), constant_teacher(winner=2), 0.3
    trainer = DistillationTrainer(
        model=student,
        args=training_args(tmp_path),
        train_dataset=train_ds,
        processing_class=proc,
        teacher=teacher,
        alpha=alpha,
    )
    batch = trainer.data_collator([train_ds[i] for i in range(4)])  # class 0 images: labels 0, teacher says 2
    assert batch["labels"].tolist() == [0, 0, 0, 0]
    loss, out = trainer.compute_loss(student, batch, return_outputs=True)
    y = batch["labels"]
    t = torch.full_like(y, 2)
    expected = (1 - alpha) * F.cross_entropy(out.cls_logits, y) + alpha * F.cross_entropy(
        out.distillation_logits, t
    )
    with_labels = (1 - alpha) * F.cross_entropy(out.cls_logits, y) + alpha * F.cross_entropy(
        out.distillation_logits, y
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert abs(loss.item() - with_labels.item()) > 1e-4


def test_teacher_is_frozen_and_unchanged_by_training(tmp_path):
    train_ds, _, proc = datasets_for()
    student, teacher = tiny_deit(), constant_teacher(winner=1)
    with torch.no_grad():
        for p in teacher.parameters():
            p.add_(0.01 * torch.randn_like(p))  # not a trivial teacher: every weight matters
    teacher_before, student_before = weights(teacher), weights(student)
    trainer = DistillationTrainer(
        model=student,
        args=training_args(tmp_path, max_steps=2),
        train_dataset=train_ds,
        processing_class=proc,
        teacher=teacher,
    )
    trainer.train()
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert not teacher.training
    assert_same_weights(weights(teacher), teacher_before)
    assert any(not torch.equal(student_before[k], v) for k, v in weights(student).items())


def test_distillation_evaluation_reports_both_heads_and_average(tmp_path):
    train_ds, eval_ds, proc = datasets_for()
    trainer = DistillationTrainer(
        model=tiny_deit(),
        args=training_args(tmp_path),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=proc,
        teacher=constant_teacher(0),
    )
    metrics = trainer.evaluate()
    for key in (
        "eval_roc_auc_macro",
        "eval_cls_roc_auc_macro",
        "eval_dist_roc_auc_macro",
        "eval_dist_accuracy",
    ):
        assert key in metrics
    pred = trainer.predict(eval_ds)
    avg, cls, dist = pred.predictions
    np.testing.assert_allclose(avg, (cls + dist) / 2, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ checkpoints
class StopAt(TrainerCallback):
    """Stops training after ``step`` updates, as an interruption would (the checkpoint of that step is saved)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_restores_checkpoint_weights_and_matches_uninterrupted_run(tmp_path):
    def run(out, callbacks=(), resume=None):
        train_ds, _, proc = datasets_for(n_train=4)  # 12 images, batch 4: 3 updates per epoch
        args = training_args(out, max_steps=6, save_strategy="steps", save_steps=2, lr_step_epochs=1)
        trainer = LensTrainer(
            model=tiny_vit(),
            args=args,
            train_dataset=train_ds,
            processing_class=proc,
            callbacks=list(callbacks),
            augmentation=BatchAugment("d4"),
        )
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full")
    assert full.state.global_step == 6
    run(tmp_path / "cut", callbacks=[StopAt(2)])  # interrupted in the middle of the first epoch
    ckpt = tmp_path / "cut" / "checkpoint-2"
    assert ckpt.is_dir() and not (tmp_path / "cut" / "checkpoint-4").exists()

    # Restoring really loads every tensor (the encoder of stock ViT included).
    fresh = tiny_vit(seed=123)
    restore_weights(fresh, ckpt)
    saved = weights(type(fresh).from_pretrained(ckpt))
    assert_same_weights(weights(fresh), saved)
    assert not torch.equal(
        weights(tiny_vit(seed=123))["vit.layers.0.attention.q_proj.weight"],
        saved["vit.layers.0.attention.q_proj.weight"],
    )

    resumed = run(tmp_path / "cut", resume=str(ckpt))
    assert resumed.state.global_step == 6
    assert_same_weights(weights(resumed.model), weights(full.model))


def test_load_best_model_at_end_restores_the_best_checkpoint(tmp_path):
    calls = []

    def first_is_best(eval_pred):
        calls.append(1)
        return {"score": -float(len(calls))}  # best at the first evaluation (checkpoint-1)

    train_ds, eval_ds, proc = datasets_for()
    args = training_args(
        tmp_path,
        max_steps=3,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        load_best_model_at_end=True,
        metric_for_best_model="score",
        greater_is_better=True,
    )
    trainer = LensTrainer(
        model=tiny_vit(),
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=proc,
        compute_metrics=first_is_best,
    )
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-1")
    best = weights(ViTForImageClassification.from_pretrained(tmp_path / "checkpoint-1"))
    last = weights(ViTForImageClassification.from_pretrained(tmp_path / "checkpoint-3"))
    assert_same_weights(weights(trainer.model), best)
    assert not torch.equal(
        best["vit.layers.0.attention.q_proj.weight"], last["vit.layers.0.attention.q_proj.weight"]
    )


# ------------------------------------------------------------------------------------------------ regression
def regression_splits(n_per_class: int = 4) -> DatasetDict:
    """Splits with an axion mass (eV) on the vortex rows only, a numeric column for every row and a string one."""

    def split(seed: int) -> Dataset:
        ds = lens_dataset(n_per_class, seed=seed)
        rng = np.random.default_rng(seed)
        masses = [float(10 ** rng.uniform(-24, -22)) if label == 2 else None for label in ds["label"]]
        ds = ds.add_column("axion_mass", masses, feature=Value("float64"))
        ds = ds.add_column("source_x", rng.normal(0, 0.1, len(ds)).tolist(), feature=Value("float32"))
        return ds.add_column("preset", ["model_i"] * len(ds), feature=Value("string"))

    return DatasetDict({"train": split(1), "validation": split(2), "test": split(3)})


def test_regression_targets_keep_rows_with_a_value_and_standardise_them(caplog):
    splits = regression_splits(4)
    with caplog.at_level(logging.INFO, logger="lens_hf"):
        kept, scaling, info = regression_targets(splits, DataArguments(target="axion_mass"))
    assert info["skipped"] == {"train": 8, "validation": 8, "test": 8}
    assert "train split: skipped 8 of 12 rows without a finite log10 axion_mass" in caplog.text
    assert {name: len(ds) for name, ds in kept.items()} == {"train": 4, "validation": 4, "test": 4}
    assert set(kept["train"]["label"]) == {2}
    masses = np.array(kept["train"]["axion_mass"])
    assert (scaling.target, scaling.transform) == ("axion_mass", "log10")
    assert scaling.mean == pytest.approx(np.log10(masses).mean())
    np.testing.assert_allclose(kept["train"]["regression_target"], scaling.scale(masses), rtol=1e-6)
    assert info["mean"] == scaling.mean and info["transform"] == "log10"
    # The dataset transforms give float labels from the standardised column.
    _, eval_tf = make_transforms(processor())
    batch = collate([kept["test"].with_transform(eval_tf)[i] for i in range(2)])
    assert batch["labels"].dtype == torch.float32
    np.testing.assert_allclose(batch["labels"].numpy(), kept["test"]["regression_target"][:2], rtol=1e-6)
    # Another column, another default transform.
    _, other, _ = regression_targets(splits, DataArguments(target="source_x"))
    assert other.transform == "none"


def test_regression_target_must_be_a_numeric_column():
    splits = regression_splits(1)
    with pytest.raises(LensHFError, match="column 'preset' is not numeric"):
        regression_targets(splits, DataArguments(target="preset"))
    with pytest.raises(LensHFError, match="no column 'redshift'.*numeric columns: axion_mass, source_x"):
        regression_targets(splits, DataArguments(target="redshift"))
    no_vortex = splits.filter(lambda row: row["label"] != 2)
    with pytest.raises(LensHFError, match="train split has no row with a finite log10 axion_mass"):
        regression_targets(no_vortex, DataArguments(target="axion_mass"))


def trained_regressor(tmp_path, **args_kw):
    """A tiny axion-mass regressor trained 2 steps: (trainer, kept splits, scaling, validation metrics, a
    validation batch of 4, the model's standardised outputs on it)."""
    kept, scaling, _ = regression_targets(regression_splits(4), DataArguments(target="axion_mass"))
    train_tf, eval_tf = make_transforms(processor())
    model = tiny_vit(num_labels=1, problem_type="regression", lens_regression=scaling.to_dict())
    trainer = LensTrainer(
        model=model,
        args=training_args(tmp_path, max_steps=2, **args_kw),
        train_dataset=kept["train"].with_transform(train_tf),
        eval_dataset=kept["validation"].with_transform(eval_tf),
        processing_class=processor(),
    )
    trainer.train()
    metrics = trainer.evaluate()
    batch = trainer.data_collator([trainer.eval_dataset[i] for i in range(4)])
    with torch.no_grad():
        out = trainer.model(pixel_values=batch["pixel_values"]).logits.squeeze(-1)
    return trainer, kept, scaling, metrics, batch, out


def test_regression_trainer_loss_is_the_mse_and_metrics_are_in_dex(tmp_path):
    trainer, kept, scaling, metrics, batch, out = trained_regressor(tmp_path)
    assert metrics["eval_loss"] == pytest.approx(F.mse_loss(out, batch["labels"]).item(), rel=1e-5)
    errors = scaling.unscale(out.numpy()) - np.log10(kept["validation"]["axion_mass"])
    assert metrics["eval_mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-4)
    assert metrics["eval_bias"] == pytest.approx(errors.mean(), rel=1e-4, abs=1e-6)
    with pytest.raises(LensHFError, match="distillation trains classifiers"):
        DistillationTrainer(model=trainer.model, args=training_args(tmp_path))


@pytest.mark.parametrize(
    ("kind", "reference"),
    [("l1", F.l1_loss), ("huber", lambda a, b: F.smooth_l1_loss(a, b, beta=1.0))],
)
def test_regression_loss_option_is_the_loss_the_trainer_reports(kind, reference, tmp_path):
    _, _, _, metrics, batch, out = trained_regressor(tmp_path, regression_loss=kind)
    assert metrics["eval_loss"] == pytest.approx(reference(out, batch["labels"]).item(), rel=1e-5)
    assert metrics["eval_loss"] != pytest.approx(F.mse_loss(out, batch["labels"]).item(), rel=1e-3)


def test_unknown_regression_loss_is_a_clear_error(tmp_path):
    with pytest.raises(LensHFError, match="unknown regression_loss 'l3'.*mse, l1, huber"):
        training_args(tmp_path, regression_loss="l3")


def test_one_head_student_distils_hard_or_soft_from_the_teacher(tmp_path):
    train_ds, eval_ds, proc = datasets_for()
    batch = None
    losses = {}
    for kind, temperature in (("hard", 1.0), ("soft", 2.0)):
        student, teacher, alpha = tiny_vit(), constant_teacher(winner=2), 0.3
        trainer = DistillationTrainer(
            model=student,
            args=training_args(tmp_path),
            train_dataset=train_ds,
            processing_class=proc,
            teacher=teacher,
            alpha=alpha,
            kind=kind,
            temperature=temperature,
        )
        batch = trainer.data_collator([train_ds[i] for i in range(4)])  # labels 0, the teacher says 2
        loss, out = trainer.compute_loss(student, batch, return_outputs=True)
        y, s = batch["labels"], out.logits
        with torch.no_grad():
            t = teacher(pixel_values=batch["pixel_values"]).logits
        if kind == "hard":
            d = F.cross_entropy(s, torch.full_like(y, 2))
        else:  # T^2 KL(p_teacher || p_student) at temperature T, averaged over the batch
            p_t = (t / temperature).softmax(-1)
            d = temperature**2 * (p_t * (p_t.log() - (s / temperature).log_softmax(-1))).sum(-1).mean()
        expected = (1 - alpha) * F.cross_entropy(s, y) + alpha * d
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        losses[kind] = loss.item()
    assert losses["hard"] != pytest.approx(losses["soft"], rel=1e-3)
    # Without a teacher a one-head student learns the labels only; its evaluation is the plain one.
    trainer = DistillationTrainer(
        model=tiny_vit(), args=training_args(tmp_path), eval_dataset=eval_ds, processing_class=proc
    )
    loss, out = trainer.compute_loss(trainer.model, batch, return_outputs=True)
    assert loss.item() == pytest.approx(F.cross_entropy(out.logits, batch["labels"]).item(), rel=1e-6)
    metrics = trainer.evaluate()
    assert "eval_roc_auc_macro" in metrics and not any(k.startswith("eval_cls_") for k in metrics)


def test_teacher_must_be_a_saved_classifier_of_the_three_classes(tmp_path):
    from lens_hf.training import DistillationArguments, load_teacher

    assert load_teacher(DistillationArguments()) is None
    classifier, regressor = tmp_path / "classifier", tmp_path / "regressor"
    tiny_vit().save_pretrained(classifier)
    tiny_vit(num_labels=1, problem_type="regression").save_pretrained(regressor)
    teacher = load_teacher(DistillationArguments(teacher=str(classifier)))
    assert teacher.config.num_labels == 3
    with pytest.raises(LensHFError, match="the teacher must be a classifier of 3 classes .it has 1 output."):
        load_teacher(DistillationArguments(teacher=str(regressor)))
    with pytest.raises(LensHFError, match="teacher model folder not found"):
        load_teacher(DistillationArguments(teacher=str(tmp_path / "missing")))
    for bad, message in (
        ({"distillation_alpha": -0.1}, "distillation_alpha must be in"),
        ({"distillation_type": "feature"}, "unknown distillation_type 'feature' .choose from hard, soft."),
        ({"distillation_temperature": 0.0}, "distillation_temperature must be positive"),
    ):
        with pytest.raises(LensHFError, match=message):
            load_teacher(DistillationArguments(teacher=str(classifier), **bad))


def test_teacher_must_read_the_students_inputs(tmp_path):
    """A teacher trained on other inputs than the student's (channels, normalisation, stretch, field of view) is
    refused with one line naming it; another image size with the same field of view is fine (it is resized)."""
    from lens_hf.processing import save_model_folder
    from lens_hf.training import DistillationArguments, check_teacher_inputs, load_teacher

    def processor(size: int, crop: int | None, **kwargs) -> LensImageProcessor:
        return LensImageProcessor(
            size={"height": size, "width": size},
            crop_size=None if crop is None else {"height": crop, "width": crop},
            do_center_crop=crop is not None,
            **kwargs,
        )

    folder = save_model_folder(tiny_vit(), processor(40, SIZE), tmp_path / "teacher")
    teacher = load_teacher(DistillationArguments(teacher=str(folder)))
    check_teacher_inputs(teacher, processor(40, SIZE), "teacher")  # the same inputs
    check_teacher_inputs(teacher, processor(80, 2 * SIZE), "teacher")  # twice the pixels, the same field
    for student, message in (
        (
            processor(40, SIZE, normalization="residual_lens_model_i", num_channels=2),
            "teacher: the teacher reads 1-channel images but the student's inputs "
            ".--normalization residual_lens_model_i. have 2",
        ),
        (
            processor(40, SIZE, normalization="none"),
            "trained with normalization 'minmax', the student's .* 'none'",
        ),
        (
            processor(40, SIZE, stretch="asinh"),
            "trained with stretch 'none', the student's inputs use 'asinh'",
        ),
        (
            processor(SIZE, None),
            "the teacher sees 40% of each image's side .its centre crop., the student 100%",
        ),
    ):
        with pytest.raises(LensHFError, match=message):
            check_teacher_inputs(teacher, student, "teacher")
    # A classifier saved without the record: only its channels can be checked.
    tiny_vit().save_pretrained(tmp_path / "plain")
    plain = load_teacher(DistillationArguments(teacher=str(tmp_path / "plain")))
    check_teacher_inputs(plain, processor(SIZE, None, normalization="none"), "plain")
    with pytest.raises(LensHFError, match="plain: the teacher reads 1-channel images"):
        check_teacher_inputs(
            plain, processor(40, SIZE, normalization="residual_lens_model_i", num_channels=2), "plain"
        )


def _train_slowly(args: LensTrainingArguments) -> tuple[LensTrainer, LrRecorder]:
    """Train the tiny ViT with 0.2 s optimizer steps, recording the learning rate of each update."""
    train_ds, _, proc = datasets_for(n_train=4)
    recorder = LrRecorder()
    trainer = LensTrainer(
        model=tiny_vit(),
        args=args,
        train_dataset=train_ds,
        processing_class=proc,
        callbacks=[SlowSteps(0.2), recorder],
    )
    trainer.train()
    return trainer, recorder


def test_time_budget_brings_the_step_decay_forward(tmp_path):
    # 0.2 s steps against a 2 s budget: the decay comes after about half of it (~5 updates, under 2 epochs of 3
    # updates), long before epoch 20, and the run stops at the budget.
    trainer, recorder = _train_slowly(
        training_args(
            tmp_path, max_steps=1000, max_train_minutes=2.0 / 60, lr_step_time_fraction=0.5, lr_step_epochs=20
        )
    )
    limit = trainer.time_limit
    assert limit.stopped and limit.decayed_at_epoch is not None
    assert limit.decayed_at_epoch < 5
    high = [lr for lr in recorder.lrs if lr == pytest.approx(1e-2)]
    low = [lr for lr in recorder.lrs if lr == pytest.approx(1e-3)]
    assert len(high) + len(low) == len(recorder.lrs) and 2 <= len(high) <= 8 and low
    assert recorder.lrs.index(low[0]) == len(high)  # one decay, never undone

    # Turned off (0): the rate stays where the epoch schedule has it.
    trainer, recorder = _train_slowly(
        training_args(tmp_path / "b", max_steps=8, max_train_minutes=1.0 / 60, lr_step_time_fraction=0)
    )
    assert trainer.time_limit.decayed_at_epoch is None
    assert all(lr == pytest.approx(1e-2) for lr in recorder.lrs)
    with pytest.raises(LensHFError, match="lr_step_time_fraction must be in"):
        training_args(tmp_path, lr_step_time_fraction=1.5)


def test_a_resumed_run_reports_the_decay_at_the_epoch_the_clock_placed_it():
    """The decay's epoch travels with the scheduler's checkpoint: after a resume, the time limit reports the
    epoch at which the decay happened, and neither applies it again nor moves it to the resumed epoch."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from lens_hf.training.schedule import bring_decay_forward, decay_brought_forward_at, step_decay_scheduler
    from lens_hf.training.trainer import TimeLimit

    def scheduler():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return step_decay_scheduler(opt, steps_per_epoch=2, step_epochs=20, gamma=0.1)

    first = scheduler()
    assert bring_decay_forward(first, 1.5) and decay_brought_forward_at(first) == 1.5
    assert bring_decay_forward(first, 2.0) and decay_brought_forward_at(first) == 1.5  # one decay, one epoch
    resumed = scheduler()
    assert decay_brought_forward_at(resumed) is None
    resumed.load_state_dict(first.state_dict())
    assert resumed.lr_lambdas[0](8) == pytest.approx(0.1) and decay_brought_forward_at(resumed) == 1.5

    limit = TimeLimit(3600.0, decay_fraction=0.5)
    limit.on_train_begin(None, None, None)
    limit.start -= 2000.0  # past the fraction: a fresh run would bring the decay forward now, at epoch 4
    args, state = SimpleNamespace(lr_step_epochs=20), SimpleNamespace(epoch=4.0)
    limit.on_step_end(args, state, TrainerControl(), lr_scheduler=resumed)
    assert limit.decayed_at_epoch == 1.5 and resumed.lr_lambdas[0].time_decay_epoch == 1.5
    fresh = scheduler()
    limit = TimeLimit(3600.0, decay_fraction=0.5)
    limit.on_train_begin(None, None, None)
    limit.start -= 2000.0
    limit.on_step_end(args, state, TrainerControl(), lr_scheduler=fresh)
    assert limit.decayed_at_epoch == 4.0 and fresh.get_last_lr() == [pytest.approx(0.1)]


def test_a_decay_brought_forward_is_not_applied_twice():
    from lens_hf.training.schedule import StepDecay

    decay = StepDecay(steps_per_epoch=2, step_epochs=3, gamma=0.1)
    decay.time_decays = 1
    assert decay(0) == pytest.approx(0.1)  # brought forward
    assert decay(7) == pytest.approx(0.1)  # epoch 3: the schedule's own first decay, the same one
    assert decay(13) == pytest.approx(0.01)  # epoch 6: the second
