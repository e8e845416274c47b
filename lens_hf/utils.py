"""Small helpers shared across lens_hf: atomic writes, folder replacement, temporaries a killed run left behind,
and output locations checked before any work.

Every temporary sits next to its target and is named ``.<target name>.<kind>-<pid>-<host>-<random>`` (kind
``tmp`` for what is being written, ``old`` for a folder being replaced). A later run that writes the same target
removes the temporaries whose process is gone (``kill -9``, power loss); those of live processes, and those of
other machines sharing the folder, are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

_STEM_MAX = 100  # characters of the target name kept in a temporary's name (the rest becomes a hash)


def _short_hash(text: str, size: int = 6) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()[:size]


def _stem(name: str) -> str:
    """The target name as it appears in its temporaries' names: long names are cut and completed by a hash,
    so a temporary's name stays within the file system's limit whenever the target's does."""
    return name if len(name) <= _STEM_MAX else f"{name[:80]}~{_short_hash(name, 12)}"


_HOST = _short_hash(socket.gethostname())
_TEMP_NAME = re.compile(r"\.(?P<stem>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]{8}")


def temporary_name(target_name: str, kind: str = "tmp") -> str:
    """A fresh name for a temporary sibling of ``target_name`` (``kind`` "tmp" or "old") owned by this process."""
    return f".{_stem(target_name)}.{kind}-{os.getpid()}-{_HOST}-{secrets.token_hex(4)}"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or sys.platform == "win32":  # Windows' os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def _stale_temporaries(target: Path) -> list[tuple[str, Path]]:
    """``(kind, path)`` of the temporaries of ``target`` whose process no longer runs on this machine."""
    stem = _stem(target.name)
    found = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if (
            match
            and match["stem"] == stem
            and match["host"] == _HOST
            and not _process_alive(int(match["pid"]))
        ):
            found.append((match["kind"], Path(entry.path)))
    return sorted(found, key=lambda item: item[1].name)


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove what killed runs left next to ``target``; returns the paths removed.

    A ``.old`` folder is the previous ``target`` set aside by :func:`replace_folder`: when a kill came between
    its two renames (``target`` missing), the newest one is moved back to ``target`` instead of being removed.
    """
    target = Path(target)
    removed = []
    stale = _stale_temporaries(target)
    olds = [path for kind, path in stale if kind == "old"]
    if olds and not os.path.lexists(target):
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        os.replace(newest, target)
        stale = [(kind, path) for kind, path in stale if path != newest]
    for _, path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def make_temporary_folder(target: str | os.PathLike) -> Path:
    """Create and return an empty temporary sibling folder of ``target`` to write into (usual permissions),
    after removing the stale temporaries of ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    folder = target.parent / temporary_name(target.name)
    folder.mkdir()
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on error removed.

    Readers never see a half-written file: the rename is atomic on POSIX file systems. Temporaries of killed
    earlier writers of ``path`` are removed first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp_path = target.parent / temporary_name(target.name)
    os.close(os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # umask applies: usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def replace_folder(tmp: str | os.PathLike, out: str | os.PathLike) -> None:
    """Move the complete folder ``tmp`` to ``out`` (a sibling): an existing ``out`` is set aside first and deleted
    only once the new one is in place, so ``out`` is always either the old or the new folder, never a mix (a
    kill between the two renames is repaired by the next :func:`remove_stale_temporaries` of ``out``)."""
    tmp, out = Path(tmp), Path(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    old = out.parent / temporary_name(out.name, "old")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_output_location(out: str | os.PathLike, *, inside: bool = False) -> None:
    """Fail now, before any work, when ``out`` (a folder to create or replace) cannot be written.

    Refuses a parent that is a file, a name longer than the file system allows, and a location where this
    process cannot create folders (read-only file system, permissions): a probe folder is created and removed
    where ``out``'s temporaries will go, and inside an existing ``out`` too when ``inside``. Nothing is left
    behind. Raises :class:`lens_hf.errors.LensHFError` naming ``out``.
    """
    from lens_hf.errors import LensHFError

    given = Path(out)
    path = given.absolute()
    existing = path.parent
    while True:
        try:
            if existing.exists() or existing == existing.parent:
                break
        except OSError:  # e.g. a component too long to even look up
            pass
        existing = existing.parent
    if not existing.is_dir():
        raise LensHFError(f"{given}: {existing} is not a folder")
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        path_max = os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    for part in path.relative_to(existing).parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise LensHFError(
                f"{given}: a name of {size} bytes is too long for the file system (at most {name_max})"
            )
    if len(os.fsencode(str(path))) + 1 >= path_max:
        raise LensHFError(f"{given}: the path is too long for the file system (at most {path_max} bytes)")
    first_missing = path.relative_to(existing).parts[0]
    probes = [existing / temporary_name(first_missing)]
    if inside and path.is_dir():
        probes.append(path / temporary_name("probe"))
    for probe in probes:
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as err:
            reason = "read-only file system" if err.errno == errno.EROFS else (err.strerror or "not writable")
            raise LensHFError(f"{given}: cannot write there ({reason})") from None
