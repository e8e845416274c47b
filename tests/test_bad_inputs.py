"""Every command that reads user files refuses bad input with one line naming the file and the problem, exit
status 2, no traceback and no partial output; ``--skip-bad`` lists what it skipped; nothing in a file or a
model folder is ever executed."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import hostile_files
import numpy as np
import pytest
from conftest import IMAGE_PX, copy_model, lens_image, tree, write_deeplense_like

from lens_hf.processing import file_io
from lens_hf.processing.file_io import LensFileError, read_array, read_image

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ corpus
class CreatesFile:
    """Pickles to a call that creates ``marker`` when unpickled (as ``np.load(allow_pickle=True)`` would)."""

    def __init__(self, marker: Path, via: str = "open"):
        self.marker = str(marker)
        self.via = via

    def __reduce__(self):
        if self.via == "exec":
            return (exec, (f"open({self.marker!r}, 'w').close()",))
        if self.via == "system":
            return (os.system, (f"touch {self.marker}",))
        return (open, (self.marker, "w"))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype == object)
    return buffer.getvalue()


def _object_array(*items: object) -> np.ndarray:
    record = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        record[i] = item
    return record


def _huge_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * 64


def _fits_bytes(kind: str) -> bytes:
    from astropy.io import fits

    buffer = io.BytesIO()
    if kind == "table":
        column = fits.Column(name="flux", format="E", array=np.zeros(3, dtype=np.float32))
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([column])]).writeto(buffer)
    else:
        fits.PrimaryHDU(np.ones((IMAGE_PX, IMAGE_PX), dtype=np.float32)).writeto(buffer)
    return buffer.getvalue()


def _png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(IMAGE_PX * IMAGE_PX, dtype=np.uint8).reshape(IMAGE_PX, IMAGE_PX)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def bad_cases(marker: Path) -> dict[str, tuple[str, bytes, str]]:
    """case -> (file name, bytes, words the one-line reason must contain). ``marker`` is the file the hostile
    pickles would create."""
    rng = np.random.default_rng(1)
    good = lens_image(rng, 1)
    valid = _npy_bytes(good)
    nan = good.astype(np.float32)
    nan[3, 4] = np.nan
    inf = good.astype(np.float64)
    inf[0, 0] = np.inf
    fits_image = _fits_bytes("image")
    crafted = {**hostile_files.hostile(), **hostile_files.bombs()}
    return {
        "truncated_npy": ("truncated.npy", valid[: len(valid) // 2], "truncated .npy file"),
        "random_bytes_npy": ("random.npy", os.urandom(3000), "not a valid .npy file"),
        "empty_npy": ("empty.npy", b"", "not a valid .npy file"),
        "pickle_open": (
            "evil_open.npy",
            _npy_bytes(_object_array(CreatesFile(marker), 1.0)),
            "refused to unpickle",
        ),
        "pickle_exec": (
            "evil_exec.npy",
            _npy_bytes(_object_array(good, CreatesFile(marker, "exec"))),
            "refused to unpickle",
        ),
        "pickle_system": (
            "evil_system.npy",
            _npy_bytes(_object_array(CreatesFile(marker, "system"))),
            "refused to unpickle",
        ),
        "object_dict": (
            "dict.npy",
            _npy_bytes(np.array({"image": 1}, dtype=object)),
            "unexpected object array contents",
        ),
        "object_string": (
            "string.npy",
            _npy_bytes(_object_array("lens", 1.0)),
            "unexpected object array contents",
        ),
        "object_three_items": (
            "three.npy",
            _npy_bytes(_object_array(good, 1e-23, 2.0)),
            "unexpected object array contents",
        ),
        "object_nested": (
            "nested.npy",
            _npy_bytes(_object_array(_object_array(good, 1e-23), 1e-23)),
            "unexpected object array contents",
        ),
        "object_mass_string": ("mass.npy", _npy_bytes(_object_array(good, "heavy")), "expected a number"),
        "nan_pixels": ("nan.npy", _npy_bytes(nan), "NaN or infinite"),
        "inf_pixels": ("inf.npy", _npy_bytes(inf), "NaN or infinite"),
        "constant_image": ("constant.npy", _npy_bytes(np.full((IMAGE_PX, IMAGE_PX), 7.0)), "constant image"),
        "one_d": ("flat.npy", _npy_bytes(np.arange(100.0)), "expected a 2-D image"),
        "rgb": ("rgb.npy", _npy_bytes(np.zeros((IMAGE_PX, IMAGE_PX, 3))), "colour channels"),
        "huge_header": ("huge.npy", _huge_header((100_000, 100_000)), "too large"),
        "string_dtype": ("text.npy", _npy_bytes(np.array([["a", "b"], ["c", "d"]])), "unsupported dtype"),
        "fits_without_image": ("table.fits", _fits_bytes("table"), "no image data"),
        "fits_random_bytes": ("random.fits", os.urandom(2880), "not a readable FITS file"),
        "fits_truncated": ("truncated.fits", fits_image[:1000], "not a readable FITS file"),
        "png_corrupt": ("corrupt.png", _png_bytes()[:60] + os.urandom(200), "not a readable image"),
        "npz_random_bytes": ("random.npz", os.urandom(500), "not a valid .npz archive"),
        # Files that made library readers raise their own errors, and a tiny memory bomb.
        **{
            case: (name, crafted[name][0], crafted[name][1])
            for case, name in (
                ("too_many_dimensions", "ndim_100.npy"),
                ("axion_mass_overflow", "mass_overflow.npy"),
                ("npz_encrypted_member", "npz_encrypted.npz"),
                ("fits_too_many_axes", "fits_naxis_100.fits"),
                ("object_array_bomb", "object_reconstruct.npy"),
            )
        },
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """The bad files, written once into a module folder (tests copy what they need)."""
    root = tmp_path_factory.mktemp("corpus")
    marker = root / "PWNED"
    files = {}
    for case, (name, data, reason) in bad_cases(marker).items():
        path = root / "files" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files[case] = (path, reason)
    return {"root": root, "marker": marker, "files": files}


def assert_refused(result, *names: object, root: Path, before: dict) -> str:
    """Exit 2, exactly one stderr line `lens-hf: error: ...` containing every name, no traceback, and the tree
    under ``root`` exactly as ``before`` (no output, no temporary files)."""
    assert result.code == 2, (result.code, result.err)
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("lens-hf: error: "), line
    for name in names:
        assert str(name) in line, (name, line)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    assert tree(root) == before, "the failed command changed files"
    return line


def folder_with(tmp_path: Path, bad: Path, name: str | None = None) -> tuple[Path, Path]:
    """A DeepLense-layout copy with ``bad`` placed first in cdm/ (so every command reads it)."""
    data = write_deeplense_like(tmp_path / "data", per_class=4)
    target = data / "cdm" / f"0000_{name or bad.name}"
    shutil.copyfile(bad, target)
    return data, target


# ------------------------------------------------------------------------------------------------ bad files
CASES = list(bad_cases(Path("unused")))


@pytest.mark.parametrize("case", CASES)
def test_bad_file_is_refused_by_every_command(case, corpus, model_dir, tmp_path, cli):
    bad, reason = corpus["files"][case]
    # Direct call of the loader: only LensFileError escapes, naming the file.
    with pytest.raises(LensFileError) as info:
        image, _ = read_image(bad)
        if not float(image.max()) > float(image.min()):
            raise LensFileError(bad, "constant image")
    assert str(bad) in str(info.value) and "\n" not in str(info.value)

    data, target = folder_with(tmp_path, bad)
    before = tree(tmp_path)
    out = tmp_path / "out"
    runs = {
        "predict file": ("predict", target, "--model", model_dir, "--output", out / "p.csv"),
        "predict folder": ("predict", data, "--model", model_dir, "--output", out / "p.json"),
        "evaluate": ("evaluate", "--model", model_dir, "--data", data, "--out", out / "eval"),
        "build-dataset": ("build-dataset", data, "--out", out / "ds", "--splits", "0.5,0.25,0.25"),
        "show": ("show", data, "--out", out / "grid.png", "--per-class", "2"),
    }
    for what, args in runs.items():
        result = cli(*args)
        line = assert_refused(result, target, root=tmp_path, before=before)
        assert reason.lower() in line.lower() or (case == "constant_image" and "constant" in line), (
            what,
            line,
        )
    assert not corpus["marker"].exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_refused(tmp_path, model_dir, cli):
    data = write_deeplense_like(tmp_path / "data", per_class=2)
    locked = data / "cdm" / "0000_locked.npy"
    np.save(locked, lens_image(np.random.default_rng(0), 1))
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("the file stays readable for this user")
        before = tree(tmp_path)
        for args in (
            ("predict", locked, "--model", model_dir),
            ("build-dataset", data, "--out", tmp_path / "ds", "--splits", "0.5,0.25,0.25"),
        ):
            assert_refused(cli(*args), locked, "permission denied", root=tmp_path, before=before)
    finally:
        locked.chmod(0o644)


def test_special_files_are_refused_without_blocking(tmp_path, model_dir, cli):
    """A FIFO or a device named like an image would block or never end a read: refused up front."""
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    device = tmp_path / "zeros.npy"
    device.symlink_to("/dev/zero")
    before = tree(tmp_path)
    for path in (fifo, device):
        assert_refused(
            cli("predict", path, "--model", model_dir),
            path,
            "not a regular file",
            root=tmp_path,
            before=before,
        )


def test_hostile_pickles_are_live_but_never_run(corpus, tmp_path, model_dir, cli):
    """The payloads do create the marker under np.load(allow_pickle=True); lens_hf refuses them everywhere."""
    proof_marker = tmp_path / "proof"
    proof = tmp_path / "proof.npy"
    proof.write_bytes(_npy_bytes(_object_array(CreatesFile(proof_marker), 1.0)))
    np.load(proof, allow_pickle=True)
    assert proof_marker.exists(), "the test payload is not live"

    evil = [corpus["files"][c][0] for c in ("pickle_open", "pickle_exec", "pickle_system")]
    for path in evil:
        with pytest.raises(LensFileError, match="refused to unpickle"):
            read_array(path)
    data = write_deeplense_like(tmp_path / "data", per_class=2)
    for path in evil:
        shutil.copyfile(path, data / "axion" / path.name)
    result = cli("predict", data, "--model", model_dir, "--skip-bad", "--output", tmp_path / "p.csv")
    assert result.code == 0, result.err
    assert not corpus["marker"].exists()


def test_skip_bad_lists_every_skipped_file(corpus, tmp_path, model_dir, cli):
    data = write_deeplense_like(tmp_path / "data", per_class=4)
    bad = {}
    for path, reason in corpus["files"].values():
        target = data / "axion" / f"bad_{path.name}"
        shutil.copyfile(path, target)
        bad[str(target)] = reason
    n_good = 12

    result = cli("predict", data, "--model", model_dir, "--skip-bad", "--output", tmp_path / "p.csv")
    assert result.code == 0, result.err
    import csv

    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len(rows) == n_good + len(bad)
    errors = {r["file"]: r["error"] for r in rows if r["error"]}
    assert errors.keys() == bad.keys()
    for path, reason in bad.items():
        assert reason.lower() in errors[path].lower() or "constant" in errors[path]
    for r in rows:
        if not r["error"]:
            assert abs(sum(float(r[f"p_{n}"]) for n in ("no_substructure", "subhalo", "vortex")) - 1) < 1e-5
    assert all(f"skipped {p}" in result.err for p in bad)

    result = cli("predict", data, "--model", model_dir, "--skip-bad", "--output", tmp_path / "p.json")
    assert result.code == 0, result.err
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["num_skipped"] == len(bad)
    assert {r["file"] for r in doc["predictions"] if r["error"]} == bad.keys()

    result = cli("evaluate", "--model", model_dir, "--data", data, "--out", tmp_path / "eval", "--skip-bad")
    assert result.code == 0, result.err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {s["file"] for s in metrics["skipped"]} == bad.keys()
    assert metrics["num_samples"] == n_good

    result = cli("build-dataset", data, "--out", tmp_path / "ds", "--skip-bad", "--splits", "0.5,0.25,0.25")
    assert result.code == 0, result.err
    info = json.loads((tmp_path / "ds" / "lens_hf_dataset.json").read_text())
    assert {s["path"] for s in info["skipped"]} == {Path(p).relative_to(data).as_posix() for p in bad}
    assert sum(info["splits"].values()) == n_good
    assert all(f"skipped {p}" in result.err for p in bad)
    assert not corpus["marker"].exists()


def test_huge_header_allocates_nothing(corpus):
    path, _ = corpus["files"]["huge_header"]
    tracemalloc.start()
    try:
        with pytest.raises(LensFileError, match="too large"):
            read_array(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # bytes; the header claims 80 GB


# The bombs are read in a fresh Python that loads file_io.py alone (as a model folder does), so its peak resident
# memory is that of NumPy, astropy and PIL plus what reading costs. A virtual-memory cap turns a regression into a
# MemoryError (a wrong reason below) instead of a machine out of memory.
_READ_IN_CHILD = r"""
import importlib.util, json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
spec = importlib.util.spec_from_file_location("lens_file_io", sys.argv[1])
file_io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(file_io)
import astropy.io.fits, PIL.Image, PIL.PngImagePlugin, PIL.TiffImagePlugin  # before the baseline

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

results, start = {}, peak()
for path in sys.argv[2:]:
    before = peak()
    try:
        file_io.read_image(path)
        outcome = "accepted"
    except file_io.LensFileError as err:
        outcome = err.reason
    except BaseException as err:
        outcome = f"escaped {type(err).__name__}"
    results[path] = [outcome, peak() - before]
print(json.dumps({"results": results, "growth": peak() - start}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
def test_bombs_stay_in_bounded_memory(tmp_path):
    """Files of a few hundred bytes to a few MB that declare or inflate to gigabytes (pickled object arrays,
    headers, zip members and directories, FITS headers, PNG/TIFF dimensions) are refused before the memory is
    taken: reading each one raises the peak resident memory by less than 64 MB (the budget bomb, which may
    legitimately hold its 8 MB arrays, by less than 256 MB), far below ``file_io.MEMORY_BOUND``."""
    files = hostile_files.write(tmp_path, hostile_files.bombs())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _READ_IN_CHILD, file_io.__file__, *[str(p) for p, _ in files.values()]],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for name, (path, words) in files.items():
        outcome, growth = report["results"][str(path)]
        assert words in outcome, (name, outcome)
        assert growth < (256 if name == "pickled_budget.npy" else 64) * 2**20, (name, growth)
    assert report["growth"] < file_io.MEMORY_BOUND / 4
    assert file_io.MEMORY_BOUND == 2**30  # the bound README.md documents


# ------------------------------------------------------------------------------------------------ folders
def test_mixed_sizes_refused_by_build_dataset_but_classified(tmp_path, model_dir, cli):
    data = write_deeplense_like(tmp_path / "data", per_class=4)
    odd = data / "cdm" / "0000_big.npy"
    np.save(odd, lens_image(np.random.default_rng(0), 1, size=IMAGE_PX + 8))
    before = tree(tmp_path)
    line = assert_refused(
        cli("build-dataset", data, "--out", tmp_path / "ds", "--splits", "0.5,0.25,0.25"),
        "different sizes",
        odd,
        root=tmp_path,
        before=before,
    )
    assert f"{IMAGE_PX}x{IMAGE_PX}" in line and f"{IMAGE_PX + 8}x{IMAGE_PX + 8}" in line
    # The model's processor resizes: prediction and evaluation take mixed sizes.
    assert cli("predict", data, "--model", model_dir, "--output", tmp_path / "p.csv").code == 0
    result = cli("evaluate", "--model", model_dir, "--data", data, "--out", tmp_path / "eval")
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_samples"] == 13


def test_empty_and_unknown_folders(tmp_path, model_dir, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    classes_only = tmp_path / "classes_only"
    for name in ("no_sub", "cdm", "axion"):
        (classes_only / name).mkdir(parents=True)
    unknown = tmp_path / "unknown"
    for name in ("galaxies", "stars"):
        (unknown / name).mkdir(parents=True)
        np.save(unknown / name / "a.npy", lens_image(np.random.default_rng(0), 0))
    loose = tmp_path / "loose"
    loose.mkdir()
    np.save(loose / "a.npy", lens_image(np.random.default_rng(0), 0))
    before = tree(tmp_path)
    out = tmp_path / "out"
    for folder, words in (
        (empty, ("no image files",)),
        (classes_only, ("no image files",)),
        (unknown, ("unknown", "'galaxies'", "'stars'")),
        (loose, ("class sub-folders",)),
    ):
        for args in (
            ("evaluate", "--model", model_dir, "--data", folder, "--out", out),
            ("build-dataset", folder, "--out", out),
            ("show", folder, "--out", out / "grid.png"),
        ):
            assert_refused(cli(*args), folder, *words, root=tmp_path, before=before)
    for folder in (empty, classes_only):
        assert_refused(
            cli("predict", folder, "--model", model_dir),
            folder,
            "no image files",
            root=tmp_path,
            before=before,
        )
    missing = tmp_path / "missing.npy"
    assert_refused(
        cli("predict", missing, "--model", model_dir), missing, "no such file", root=tmp_path, before=before
    )
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    before = tree(tmp_path)
    assert_refused(
        cli("predict", text, "--model", model_dir),
        text,
        "unsupported file type",
        root=tmp_path,
        before=before,
    )


def test_bad_output_paths_fail_before_any_work(tmp_path, model_dir, deeplense_dir, cli):
    (tmp_path / "file").write_text("x")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep")
    before = tree(tmp_path)
    for args, words in (
        (
            ("predict", deeplense_dir, "--model", model_dir, "--output", tmp_path / "p.txt"),
            (".csv or .json",),
        ),
        (
            ("evaluate", "--model", model_dir, "--data", deeplense_dir, "--out", tmp_path / "file"),
            ("not a folder",),
        ),
        (("build-dataset", deeplense_dir, "--out", tmp_path / "file"), ("not a folder",)),
        (("build-dataset", deeplense_dir, "--out", busy), ("not empty",)),
        (("show", deeplense_dir, "--out", tmp_path / "grid.jpg"), (".png",)),
        (("simulate", "--per-class", "1", "--out", tmp_path / "file"), ("not a folder",)),
        (("simulate", "--per-class", "0", "--out", tmp_path / "sim"), ("--per-class",)),
    ):
        assert_refused(cli(*args), *words, root=tmp_path, before=before)


def test_unwritable_or_overlong_outputs_fail_before_any_work(corpus, tmp_path, cli):
    """An output name too long for the file system, or a place this process cannot write, is refused at once,
    naming the output: a simulation of 10^6 images per class would take hours, and the input folder holds a
    hostile file that reading would refuse first."""
    data = write_deeplense_like(tmp_path / "data", per_class=2)
    shutil.copyfile(corpus["files"]["pickle_exec"][0], data / "cdm" / "0000_evil.npy")
    long_name = tmp_path / ("x" * 300) / "ds"
    outputs = [(long_name, "too long for the file system")]
    unwritable = Path("/sys/lens_hf_output")  # sysfs refuses new folders, even to root
    try:
        unwritable.mkdir()
        unwritable.rmdir()
    except OSError:
        outputs.append((unwritable, "cannot write there"))
    before = tree(tmp_path)
    huge = ("--per-class", "1000000", "--workers", "1")
    for out, words in outputs:
        for args in (
            ("simulate", *huge, "--out", out),
            ("simulate", *huge, "--format", "hf", "--out", out),
            ("build-dataset", data, "--out", out, "--splits", "0.5,0.5"),
        ):
            assert_refused(cli(*args), out, words, root=tmp_path, before=before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_fails_before_any_work(tmp_path, cli):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        before = tree(tmp_path)
        for args in (
            ("simulate", "--per-class", "1000000", "--workers", "1", "--out", locked / "sim"),
            ("simulate", "--per-class", "1000000", "--format", "hf", "--out", locked / "sim"),
            ("simulate", "--per-class", "1000000", "--workers", "1", "--out", locked),
        ):
            assert_refused(cli(*args), locked, "cannot write there", root=tmp_path, before=before)
    finally:
        locked.chmod(0o755)


def test_files_are_never_echoed(tmp_path, model_dir, cli):
    """A symlink named like an image pointing at a text file (say /etc/passwd), and files whose bytes library
    messages would quote: skipped or refused, and no message, CSV, JSON, dataset record or card holds their
    contents."""
    data = write_deeplense_like(tmp_path / "data", per_class=4)
    secret = tmp_path / "passwd"
    secret.write_text(f"root:x:0:0:{hostile_files.CANARY}:/root:/bin/bash\n" * 20)
    (data / "cdm" / "0000_link.npy").symlink_to(secret)
    (data / "cdm" / "0001_link.fits").symlink_to(secret)
    for name, (path, _) in hostile_files.write(tmp_path / "canaries", hostile_files.canaries()).items():
        shutil.copyfile(path, data / "axion" / f"0000_{name}")
    outputs = []
    result = cli("predict", data, "--model", model_dir, "--skip-bad", "--output", tmp_path / "p.csv")
    outputs += [result.out, result.err, (tmp_path / "p.csv").read_text()]
    result = cli("predict", data, "--model", model_dir, "--skip-bad", "--output", tmp_path / "p.json")
    outputs += [result.out, result.err, (tmp_path / "p.json").read_text()]
    result = cli("build-dataset", data, "--out", tmp_path / "ds", "--skip-bad", "--splits", "0.5,0.5")
    assert result.code == 0, result.err
    outputs += [result.out, result.err]
    outputs += [p.read_text() for p in (tmp_path / "ds").glob("*.*") if p.suffix in (".json", ".md")]
    assert result.err.count("skipped ") == 2 + len(hostile_files.canaries())
    for text in outputs:
        assert hostile_files.CANARY not in text and "root:x" not in text
    for path in (data / "cdm" / "0000_link.npy", data / "cdm" / "0001_link.fits"):
        with pytest.raises(LensFileError) as info:
            read_image(path)
        assert "signature" in info.value.reason and hostile_files.CANARY not in str(info.value)


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory) -> Path:
    """A DatasetDict folder written by ``lens-hf build-dataset`` (read-only for tests)."""
    from lens_hf.cli import main

    root = tmp_path_factory.mktemp("saved")
    data = write_deeplense_like(root / "data", per_class=4)
    assert main(["build-dataset", str(data), "--out", str(root / "ds"), "--splits", "0.5,0.25,0.25"]) == 0
    return root / "ds"


def _first_arrow(folder: Path) -> Path:
    return next((folder / "test").glob("*.arrow"))


DATASET_CASES = {
    "garbage_dataset_dict_json": lambda d: (d / "dataset_dict.json").write_text("{garbage"),
    "garbage_state_json": lambda d: (d / "test" / "state.json").write_text("[1,"),
    "random_arrow": lambda d: _first_arrow(d).write_bytes(os.urandom(600)),
    "truncated_arrow": lambda d: _first_arrow(d).write_bytes(_first_arrow(d).read_bytes()[:900]),
    "missing_arrow": lambda d: _first_arrow(d).unlink(),
}


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_corrupt_saved_dataset_is_refused(case, saved_dataset, model_dir, tmp_path, cli):
    data = tmp_path / "ds"
    shutil.copytree(saved_dataset, data)
    DATASET_CASES[case](data)
    before = tree(tmp_path)
    for args in (
        ("evaluate", "--model", model_dir, "--data", data, "--out", tmp_path / "eval"),
        ("show", data, "--out", tmp_path / "grid.png"),
    ):
        assert_refused(cli(*args), data, "not a readable dataset", root=tmp_path, before=before)


# ------------------------------------------------------------------------------------------------ models
def _truncate(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    return weights


def _random_weights(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    weights.write_bytes(os.urandom(4096))
    return weights


def _delete_weights(folder: Path) -> Path:
    (folder / "model.safetensors").unlink()
    return folder


def _pickle_only(folder: Path) -> Path:
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(_npy_bytes(_object_array(CreatesFile(folder / "PWNED"))))
    return folder


def _foreign_weights(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"decoder.weight": torch.zeros(4, 4)}, str(folder / "model.safetensors"))
    return folder


def _garbage_config(folder: Path) -> Path:
    (folder / "config.json").write_text("{ this is not json")
    return folder / "config.json"


def _list_config(folder: Path) -> Path:
    (folder / "config.json").write_text("[1, 2, 3]")
    return folder / "config.json"


def _garbage_processor(folder: Path) -> Path:
    (folder / "preprocessor_config.json").write_bytes(os.urandom(64))
    return folder / "preprocessor_config.json"


def _remote_code_only(folder: Path) -> Path:
    """A config whose model type exists only as code in the folder (which would create the marker)."""
    config = {
        "model_type": "lens_evil",
        "architectures": ["EvilForImageClassification"],
        "auto_map": {
            "AutoConfig": "configuration_evil.EvilConfig",
            "AutoModelForImageClassification": "modeling_evil.EvilForImageClassification",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("configuration_evil.py", "modeling_evil.py"):
        (folder / name).write_text(f"open({str(folder / 'PWNED')!r}, 'w').close()\n")
    return folder / "config.json"


MODEL_CASES = {
    "truncated_weights": (_truncate, "corrupt safetensors"),
    "random_weights": (_random_weights, "corrupt safetensors"),
    "deleted_weights": (_delete_weights, "model.safetensors is missing"),
    "pickle_only_weights": (_pickle_only, "safetensors only"),
    "foreign_weights": (_foreign_weights, "weights lack"),
    "garbage_config": (_garbage_config, "not a valid JSON"),
    "list_config": (_list_config, "expected a JSON object"),
    "garbage_processor_config": (_garbage_processor, "not a valid JSON"),
    "remote_code_only": (_remote_code_only, "never runs code from model folders"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_broken_model_folder_is_refused(case, model_dir, deeplense_dir, tmp_path, cli):
    folder = copy_model(model_dir, tmp_path / "model")
    break_it, words = MODEL_CASES[case]
    named = break_it(folder)
    before = tree(tmp_path)
    image = next((deeplense_dir / "cdm").iterdir())
    for args in (
        ("predict", image, "--model", folder, "--output", tmp_path / "p.csv"),
        ("evaluate", "--model", folder, "--data", deeplense_dir, "--out", tmp_path / "eval"),
    ):
        result = cli(*args)
        assert_refused(result, named, words, root=tmp_path, before=before)
        assert "[y/N]" not in result.out + result.err  # transformers' "run the custom code?" prompt
    assert not (folder / "PWNED").exists()


def test_code_in_a_model_folder_is_never_run(model_dir, deeplense_dir, tmp_path, cli):
    """A folder whose .py files would create a marker when imported still loads (lens_hf's own classes), and
    the model factory refuses a config that only the folder's code defines."""
    folder = copy_model(model_dir, tmp_path / "model")
    marker = tmp_path / "PWNED"
    code_files = sorted(folder.glob("*.py"))
    assert code_files, "save_model_folder writes the remote code files"
    for py in code_files:
        py.write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = cli("predict", deeplense_dir, "--model", folder, "--output", tmp_path / "p.csv")
    assert result.code == 0, result.err
    assert not marker.exists()

    from lens_hf.errors import LensHFError
    from lens_hf.models.factory import load_model

    evil = copy_model(model_dir, tmp_path / "evil")
    _remote_code_only(evil)
    with pytest.raises(LensHFError, match="trust_remote_code"):
        load_model(evil)
    assert not (evil / "PWNED").exists()


def test_hub_id_missing_from_offline_cache(tmp_path, monkeypatch, deeplense_dir, cli):
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = tree(tmp_path)
    for args in (
        ("predict", deeplense_dir, "--model", "no-such-org/no-such-model"),
        (
            "evaluate",
            "--model",
            "no-such-org/no-such-model",
            "--data",
            deeplense_dir,
            "--out",
            tmp_path / "eval",
        ),
    ):
        assert_refused(
            cli(*args),
            "no-such-org/no-such-model",
            "not in the Hugging Face cache",
            root=tmp_path,
            before=before,
        )


def test_missing_default_model_is_one_line(monkeypatch, deeplense_dir, tmp_path, cli):
    import lens_hf.inference

    monkeypatch.setattr(lens_hf.inference, "DEFAULT_MODEL_DIR", tmp_path / "no-checkpoint")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))  # nor in the Hugging Face cache
    assert_refused(
        cli("predict", deeplense_dir), "shipped checkpoint", "--model", root=tmp_path, before=tree(tmp_path)
    )


# ------------------------------------------------------------------------------------------------ simulate
def test_simulate_rerun_repairs_corrupt_and_hostile_files(corpus, tmp_path, cli):
    args = ("simulate", "--preset", "model_i", "--per-class", "1", "--seed", "3", "--workers", "1")
    assert cli(*args, "--out", tmp_path / "ref").code == 0
    reference = tree(tmp_path / "ref")
    shutil.copytree(tmp_path / "ref", tmp_path / "run")
    run = tmp_path / "run"
    files = sorted(p for p in run.rglob("*.npy"))
    assert len(files) == 3
    shutil.copyfile(corpus["files"]["pickle_exec"][0], files[0])  # hostile bytes under an archive name
    files[1].write_bytes(files[1].read_bytes()[:500])  # truncated by a crash
    files[2].write_bytes(os.urandom(400))
    (files[2].parent / f".{files[2].name}.999.tmp").write_bytes(b"partial")  # temp file of a killed writer
    (run / "metadata.csv").unlink()
    result = cli(*args, "--out", run)
    assert result.code == 0, result.err
    assert "3 file(s)" in result.out and "corrupt" in result.out
    assert tree(run) == reference
    assert not corpus["marker"].exists()


def test_simulate_refuses_foreign_or_inconsistent_folders(tmp_path, cli):
    args = ("simulate", "--per-class", "1", "--workers", "1")
    foreign = tmp_path / "foreign"
    (foreign / "cdm").mkdir(parents=True)
    np.save(foreign / "cdm" / "mine.npy", np.zeros((4, 4)))
    manifest = tmp_path / "manifest"
    manifest.mkdir()
    (manifest / "lens_hf_simulation.json").write_text("{broken")
    before = tree(tmp_path)
    assert_refused(
        cli(*args, "--out", foreign),
        foreign / "cdm" / "mine.npy",
        "not written by lens_hf",
        root=tmp_path,
        before=before,
    )
    assert_refused(
        cli(*args, "--out", manifest),
        manifest / "lens_hf_simulation.json",
        "manifest",
        root=tmp_path,
        before=before,
    )


# ------------------------------------------------------------------------------------------------ train
def test_train_refuses_a_bad_dataset_file(corpus, tmp_path, cli):
    pytest.importorskip("lens_hf.training.run")
    data = tmp_path / "data"
    for split in ("train", "val", "test"):
        write_deeplense_like(data / split, per_class=2)
    bad = data / "train" / "cdm" / "0000_evil.npy"
    shutil.copyfile(corpus["files"]["pickle_exec"][0], bad)
    before = tree(tmp_path)
    out = tmp_path / "run"
    result = cli(
        "train", "--dataset", data, "--output_dir", out, "--max_steps", "1", "--disable_tqdm", "true"
    )
    # Training keeps its progress bars and logs on stderr; the error is still one line, and the last.
    errors = [line for line in result.err_lines if "error" in line.lower()]
    assert result.code == 2 and len(errors) == 1, result.err
    assert (
        result.err_lines[-1]
        == errors[0]
        == f"lens-hf: error: {bad}: refused to unpickle builtins.exec "
        + ("(only NumPy arrays and numbers are allowed)")
    )
    assert "Traceback" not in result.err + result.out
    assert tree(tmp_path) == before and not out.exists()
    assert not corpus["marker"].exists()


# ------------------------------------------------------------------------------------------------ processes
def test_real_process_exit_status_and_one_line(corpus, tmp_path):
    """The installed ``lens-hf`` entry point: exit status 2, exactly one stderr line, no traceback."""
    bad, _ = corpus["files"]["pickle_exec"]
    data = tmp_path / "data"
    (data / "cdm").mkdir(parents=True)
    target = data / "cdm" / bad.name
    shutil.copyfile(bad, target)
    exe = shutil.which("lens-hf")
    base = [exe] if exe else [sys.executable, "-m", "lens_hf.cli"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*base, "show", str(data), "--out", str(tmp_path / "grid.png")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"lens-hf: error: {target}: refused to unpickle builtins.exec (only NumPy arrays and numbers are allowed)"
    ]
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"] and not corpus["marker"].exists()


def test_debug_shows_the_traceback(corpus, tmp_path):
    """``--debug`` lets the exception through, so Python prints the full traceback (exit status 1)."""
    from lens_hf.cli import main

    bad, _ = corpus["files"]["pickle_exec"]
    data = tmp_path / "data"
    (data / "cdm").mkdir(parents=True)
    shutil.copyfile(bad, data / "cdm" / bad.name)
    with pytest.raises(LensFileError, match="refused to unpickle") as info:
        main(["--debug", "show", str(data), "--out", str(tmp_path / "grid.png")])
    assert any("file_io.py" in str(entry.path) for entry in info.traceback)
    with pytest.raises(LensFileError):
        main(["show", str(data), "--out", str(tmp_path / "grid.png"), "--debug"])
    assert not (tmp_path / "grid.png").exists()


# ------------------------------------------------------------------------------------------------ source
def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _offences(rel: str, source: str) -> list[str]:
    """Calls and imports that would run code from a file, found in the syntax tree (docstrings are prose)."""
    found = []
    unpickler_ok = rel == "lens_hf/processing/file_io.py"
    for node in ast.walk(ast.parse(source)):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if _is_true(keywords.get("allow_pickle")) and not (
                rel == "lens_hf/data/simulate.py" and name.endswith("save")
            ):
                found.append(f"{where}: {name}(allow_pickle=True)")
            if _is_true(keywords.get("trust_remote_code")):
                found.append(f"{where}: {name}(trust_remote_code=True)")
            for flag in ("use_safetensors", "safe_serialization", "weights_only"):
                if isinstance(keywords.get(flag), ast.Constant) and keywords[flag].value is False:
                    found.append(f"{where}: {name}({flag}=False)")
            base, _, attr = name.rpartition(".")
            if (
                base.split(".")[-1] in PICKLERS
                and attr in ("load", "loads", "Unpickler")
                and not unpickler_ok
            ):
                found.append(f"{where}: {name}()")
            if name == "torch.load":
                found.append(f"{where}: torch.load()")
            if name in ("eval", "exec"):
                found.append(f"{where}: {name}()")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] in PICKLERS for m in modules) and not unpickler_ok:
                found.append(f"{where}: import {', '.join(modules)}")
    return found


PICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def test_source_never_unpickles_or_trusts_remote_code():
    """Scan lens_hf/ and recipes/: only file_io.py unpickles (restricted), nothing calls torch.load, eval,
    exec or trust_remote_code=True, weights are never saved/loaded without safetensors; the simulator's
    np.save(allow_pickle=True) is a write."""
    sources = sorted((ROOT / "lens_hf").rglob("*.py")) + sorted((ROOT / "recipes").rglob("*.py"))
    assert len(sources) > 20
    offences = []
    for path in sources:
        rel = path.relative_to(ROOT).as_posix()
        offences += _offences(rel, path.read_text(encoding="utf-8"))
    assert offences == []
    # The scan finds what it looks for.
    planted = "import pickle\nnp.load(f, allow_pickle=True)\ntorch.load(f)\nAutoModel.from_pretrained(p, trust_remote_code=True)\n"
    assert len(_offences("lens_hf/x.py", planted)) == 4
    # file_io.py may use pickle only through its restricted Unpickler subclass.
    file_io = (ROOT / "lens_hf" / "processing" / "file_io.py").read_text(encoding="utf-8")
    assert not re.search(r"pickle\.loads?\(", file_io)
    assert "class _RestrictedUnpickler(pickle.Unpickler)" in file_io and "def find_class" in file_io
