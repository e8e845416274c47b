"""Atomic writes, folder replacement, clean-up of what killed runs left, and output locations (lens_hf.utils)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lens_hf.errors import LensHFError
from lens_hf.utils import (
    atomic_write_text,
    check_output_location,
    make_temporary_folder,
    remove_stale_temporaries,
    replace_folder,
    temporary_name,
)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process that has ended (a fresh one is not reused within a test)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def _as_if_from(name: str, pid: int) -> str:
    """``name`` (from :func:`temporary_name`) as the process ``pid`` would have named it."""
    head, _, host, token = name.rsplit("-", 3)
    return f"{head}-{pid}-{host}-{token}"


def test_stale_temporaries_of_the_target_only_are_removed(tmp_path, dead_pid):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("current")
    stale_folder = tmp_path / _as_if_from(temporary_name("out"), dead_pid)
    stale_folder.mkdir()
    (stale_folder / "half.arrow").write_bytes(b"x" * 100)
    stale_file = tmp_path / _as_if_from(temporary_name("out"), dead_pid)
    stale_file.write_text("half")
    stale_old = tmp_path / _as_if_from(temporary_name("out", "old"), dead_pid)
    stale_old.mkdir()
    kept = [
        tmp_path / temporary_name("out"),  # this process: alive
        tmp_path / _as_if_from(temporary_name("other"), dead_pid),  # another output's
        tmp_path / _as_if_from(temporary_name("out"), dead_pid).replace(".tmp-", ".xyz-"),
        tmp_path / ".out.tmp-123",  # not our naming pattern
    ]
    host_differs = _as_if_from(temporary_name("out"), dead_pid).split("-")
    host_differs[-2] = "000000" if host_differs[-2] != "000000" else "111111"
    kept.append(tmp_path / "-".join(host_differs))  # another machine's, on a shared disk
    for path in kept:
        path.mkdir()

    removed = remove_stale_temporaries(target)
    assert sorted(removed) == sorted([stale_folder, stale_file, stale_old])
    assert all(p.exists() for p in kept) and not any(p.exists() for p in removed)
    assert (target / "keep.txt").read_text() == "current"


def test_interrupted_replacement_is_undone(tmp_path, dead_pid):
    """A kill between the two renames of replace_folder leaves the previous folder set aside and no target:
    the next writer puts it back before anything else."""
    target = tmp_path / "ds"
    old = tmp_path / _as_if_from(temporary_name("ds", "old"), dead_pid)
    old.mkdir()
    (old / "data.txt").write_text("previous")
    new = tmp_path / _as_if_from(temporary_name("ds"), dead_pid)
    new.mkdir()
    folder = make_temporary_folder(target)
    assert (target / "data.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ds", folder.name])


def test_replace_folder_and_atomic_write_leave_nothing_behind(tmp_path, dead_pid):
    target = tmp_path / "model"
    for version in ("one", "two"):
        folder = make_temporary_folder(target)
        (folder / "weights").write_text(version)
        replace_folder(folder, target)
    assert (target / "weights").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]

    stale = tmp_path / _as_if_from(temporary_name("notes.md"), dead_pid)
    stale.write_text("half")
    atomic_write_text(tmp_path / "notes.md", "done")
    assert (tmp_path / "notes.md").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "notes.md"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "notes.md").stat().st_mode & 0o777 == 0o666 & ~umask


def test_long_names_keep_short_temporaries(tmp_path):
    """A target name near the file system's limit still gets temporaries that fit."""
    name = "d" * 250
    folder = make_temporary_folder(tmp_path / name)
    assert len(folder.name) < 160
    replace_folder(folder, tmp_path / name)
    assert (tmp_path / name).is_dir()


def test_check_output_location(tmp_path):
    check_output_location(tmp_path / "new" / "deeper" / "ds")  # missing parents are fine
    assert list(tmp_path.iterdir()) == []  # the probe left nothing
    (tmp_path / "file").write_text("x")
    for out, words in (
        (tmp_path / "file" / "ds", "is not a folder"),
        (tmp_path / ("n" * 300), "too long for the file system"),
        (tmp_path / ("n" * 300) / "ds", "too long for the file system"),
        (tmp_path / Path(*["p" * 200] * 25), "path is too long"),
    ):
        with pytest.raises(LensHFError) as info:
            check_output_location(out)
        assert str(info.value).startswith(f"{out}: ") and words in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_check_output_location_refuses_an_unwritable_place(tmp_path):
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        places = [locked / "ds", locked]
    else:
        places = [Path("/sys/lens_hf_ds")]  # sysfs: no new folders, even for root
        try:
            places[0].mkdir()
            places[0].rmdir()
            pytest.skip("no unwritable place for root on this machine")
        except OSError:
            pass
    try:
        for out in places:
            with pytest.raises(LensHFError, match="cannot write there"):
                check_output_location(out, inside=True)
    finally:
        if os.geteuid() != 0:
            locked.chmod(0o755)
