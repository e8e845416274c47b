"""``kill -9`` in the middle of a job never loses or corrupts work: rerunning the same command completes it, with
the same bytes as an uninterrupted run (simulation) or the right final step from the last checkpoint (training)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_VIT, lens_image, tree

from lens_hf.labels import DEEPLENSE_FOLDERS, LABELS
from lens_hf.processing.file_io import read_image
from lens_hf.training.checkpoints import checkpoint_is_complete

ROOT = Path(__file__).resolve().parents[1]


def _command() -> list[str]:
    exe = shutil.which("lens-hf")
    return [exe] if exe else [sys.executable, "-m", "lens_hf.cli"]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """``lens-hf args`` in its own process group (so one signal reaches its workers too)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*_command(), *args], stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    """SIGKILL the whole process group as soon as ``ready()`` is true (polling every 10 ms)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the job ended (status {proc.returncode}) before it could be interrupted")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the job made no progress in time")
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _archive_files(out: Path) -> list[Path]:
    return [p for folder in DEEPLENSE_FOLDERS.values() for p in (out / folder).glob("*_sim_*.npy")]


def test_kill_9_during_simulate_then_rerun_is_byte_identical(tmp_path, cli):
    per_class = 40
    out = tmp_path / "interrupted"
    args = [
        "simulate",
        "--preset",
        "model_i",
        "--per-class",
        str(per_class),
        "--seed",
        "11",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    proc = _start(args, tmp_path / "log.txt")
    _kill_when(proc, lambda: len(_archive_files(out)) >= 12)

    written = _archive_files(out)
    assert 12 <= len(written) < 3 * per_class, "killed too late to test anything"
    assert not (out / "metadata.csv").exists()
    for path in written:  # atomic writes: every file under its final name is complete, even after SIGKILL
        image, meta = read_image(path)
        assert image.shape == (150, 150) and ("axion_mass" in meta) == (path.parent.name == "axion")

    result = cli(*args[:-1], out)  # the same command again
    assert result.code == 0, result.err
    assert f"kept {len(written)} complete one(s)" in result.out

    reference = tmp_path / "reference"
    assert cli(*args[:-3], "1", "--out", reference).code == 0  # uninterrupted, one worker
    assert len(_archive_files(reference)) == 3 * per_class
    expected = tree(reference)
    assert tree(out) == expected  # same names, same bytes; no temporary files left
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def _write_data(root: Path, per_split: dict[str, int], size: int = 32) -> Path:
    rng = np.random.default_rng(5)
    for split, n in per_split.items():
        for k, label in enumerate(LABELS):
            folder = root / split / DEEPLENSE_FOLDERS[label]
            folder.mkdir(parents=True)
            for i in range(n):
                np.save(folder / f"{i}.npy", lens_image(rng, k, size))
    return root


def _checkpoints(out: Path) -> list[Path]:
    """``checkpoint-<step>`` folders (the names the Trainer resumes from), by step."""
    found = [p for p in out.glob("checkpoint-*") if re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _complete(checkpoint: Path) -> bool:
    """Weights and a parseable trainer_state.json (the Trainer writes it last) for the folder's step."""
    return (checkpoint / "model.safetensors").is_file() and checkpoint_is_complete(checkpoint)


def _half_written(source: Path, target: Path) -> None:
    """What SIGKILL during a save leaves: the weights are written, the optimizer and trainer state are not."""
    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(source / name, target / name)
    (target / "trainer_state.json").write_text('{"global_step": ')


def test_kill_9_during_training_then_resume(tmp_path, cli):
    """Kill the job once a checkpoint exists; the newest checkpoint folder may be half-written (a kill during a
    save; made certain here by adding one); `--resume_from_checkpoint last` resumes from the newest complete
    one and finishes at the right step with only complete checkpoints."""
    max_steps = 16
    data = _write_data(tmp_path / "data", {"train": 8, "val": 2, "test": 2})
    out = tmp_path / "run"
    args = [
        "train", "--recipe", "vit", "--dataset", str(data), "--output_dir", str(out),
        "--config_overrides", json.dumps(TINY_VIT), "--image_size", "32",
        "--max_steps", str(max_steps), "--per_device_train_batch_size", "4",
        "--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "3",
        "--eval_strategy", "steps", "--eval_steps", "4", "--logging_steps", "1",
        "--load_best_model_at_end", "false", "--disable_tqdm", "true", "--dataloader_num_workers", "0",
    ]  # fmt: skip
    proc = _start(args, tmp_path / "log.txt")
    _kill_when(proc, lambda: any(_complete(c) for c in _checkpoints(out)))
    assert not (out / "lens_hf_training.json").exists(), "killed too late to test anything"
    complete = [c for c in _checkpoints(out) if _complete(c)]
    newest = int(complete[-1].name.split("-")[1])
    assert newest < max_steps
    planted = out / f"checkpoint-{newest + 1}"  # odd: the resumed run never saves this step itself
    _half_written(complete[-1], planted)

    result = cli(*args, "--resume_from_checkpoint", "last")
    assert result.code == 0, result.err[-3000:]
    assert f"{planted} was not completely written" in result.err
    assert (out / f"incomplete-{planted.name}" / "model.safetensors").is_file()
    record = json.loads((out / "lens_hf_training.json").read_text())
    assert record["global_step"] == max_steps
    assert record["resumed_from"] is not None and int(record["resumed_from"].split("-")[1]) >= newest
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == max_steps
    steps = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == max_steps
    left = _checkpoints(out)
    assert left and all(_complete(c) for c in left), [sorted(p.name for p in c.iterdir()) for c in left]
    assert left[-1].name == f"checkpoint-{max_steps}"
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()


def test_resume_last_skips_half_written_checkpoints(tmp_path):
    from lens_hf.errors import LensHFError
    from lens_hf.training.checkpoints import resolve_resume

    out = tmp_path / "run"
    for step, state in ((2, '{"global_step": 2}'), (4, None), (6, '{"global_st'), (8, '{"global_step": 6}')):
        folder = out / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    (out / "incomplete-checkpoint-4").mkdir()  # left by an earlier interruption: not overwritten
    assert resolve_resume("false", str(out)) is None and resolve_resume(None, str(out)) is None
    assert resolve_resume(str(out / "checkpoint-2"), str(out)) == str(out / "checkpoint-2")
    with pytest.raises(LensHFError, match="incomplete checkpoint"):
        resolve_resume(str(out / "checkpoint-4"), str(out))
    assert resolve_resume("last", str(out)) == str(out / "checkpoint-2")
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint-2",
        "incomplete-checkpoint-4",
        "incomplete-checkpoint-6",
        "incomplete-checkpoint-8",
        "incomplete2-checkpoint-4",
    ]
    assert (out / "incomplete2-checkpoint-4" / "model.safetensors").read_bytes() == b"weights"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        resolve_resume("last", str(empty)) is None
        and resolve_resume("true", str(tmp_path / "missing")) is None
    )
