"""Resuming from Trainer checkpoints: find the newest complete ``checkpoint-<step>`` folder and set aside the
half-written one a job killed while saving leaves behind."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path

from lens_hf.errors import LensHFError

logger = logging.getLogger(__name__)

_TRUE = {"true", "last", "1", "yes"}
_FALSE = {"false", "none", "0", "no", ""}


def checkpoint_is_complete(folder: Path) -> bool:
    """True when a Trainer checkpoint folder was fully written. The Trainer writes ``trainer_state.json``
    after the weights, optimizer, scheduler and RNG states (whatever the backend), so it must exist, parse
    and name the folder's step."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(state, dict) and str(state.get("global_step")) == folder.name.rpartition("-")[2]


def resolve_resume(value: str | bool | None, output_dir: str | os.PathLike) -> str | None:
    """The checkpoint to pass to ``trainer.train(resume_from_checkpoint=...)``.

    ``True``/``"last"`` -> the newest *complete* ``checkpoint-<step>`` in ``output_dir`` (None when there is
    none yet); a folder path is checked and returned; ``None``/``False``/``"no"`` -> None.

    A job killed while saving leaves a newer, half-written checkpoint; it is renamed to
    ``incomplete-checkpoint-<step>`` (kept for inspection; the Trainer neither resumes from nor rotates it) and
    training resumes from the newest complete one.
    """
    if value is None or value is False:
        return None
    text = str(value).strip()
    if text.lower() in _FALSE:
        return None
    if text.lower() not in _TRUE:
        if not os.path.isdir(text):
            raise LensHFError(f"{text}: checkpoint folder to resume from not found")
        if not checkpoint_is_complete(Path(text)):
            raise LensHFError(
                f"{text}: incomplete checkpoint (no valid trainer_state.json); cannot resume from it"
            )
        return text
    out = Path(output_dir)
    found = (
        [p for p in out.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
        if out.is_dir()
        else []
    )
    for folder in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        if checkpoint_is_complete(folder):
            return str(folder)
        if int(os.environ.get("RANK", "0")) != 0:
            continue  # every process skips it; only the main one moves it aside
        aside = folder.with_name(f"incomplete-{folder.name}")
        n = 1
        while aside.exists():
            n += 1
            aside = folder.with_name(f"incomplete{n}-{folder.name}")
        os.replace(folder, aside)
        print(
            f"{folder} was not completely written (interrupted while saving); moved to {aside.name}",
            file=sys.stderr,
        )
    logger.warning("no checkpoint in %s to resume from: training from the start", output_dir)
    return None


__all__ = ["checkpoint_is_complete", "resolve_resume"]
