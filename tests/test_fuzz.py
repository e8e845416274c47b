"""Fuzzing the safe loader: random bytes, mutated valid .npy/.npz/.png/.tif/.fits files and a corpus of crafted
hostile ones. Whatever the bytes, ``read_array``/``read_image`` return a valid image or raise
:class:`LensFileError` with one line naming the file and never quoting it; no other exception escapes and no
code from the file runs."""

from __future__ import annotations

import atexit
import gzip
import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import hostile_files
import numpy as np
import pytest
from hostile_files import CANARY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lens_hf.processing.file_io import MAX_PIXELS, LensFileError, read_array, read_image

# A warning would be a second line on the command line's stderr: treat it as a failure.
pytestmark = pytest.mark.filterwarnings("error")

# 200 fixed examples per test in the suite; LENS_HF_FUZZ_EXAMPLES=5000 runs a longer, random search.
_DEEP = int(os.environ.get("LENS_HF_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=_DEEP or 200,
    deadline=None,
    derandomize=not _DEEP,
    suppress_health_check=list(HealthCheck),
    database=None,
)
WORK = Path(tempfile.mkdtemp(prefix="lens_hf_fuzz_"))
atexit.register(shutil.rmtree, WORK, True)
MARKER = WORK / "PWNED"


class _CreatesMarker:
    def __reduce__(self):
        return (open, (str(MARKER), "w"))


def _npy(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    if version is None:
        np.save(buffer, array, allow_pickle=array.dtype == object)
    else:
        np.lib.format.write_array(buffer, array, version=version, allow_pickle=array.dtype == object)
    return buffer.getvalue()


def _object(*items: object) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _seeds() -> dict[str, bytes]:
    """Valid files of every supported kind (and a hostile one) for the mutators to start from."""
    from astropy.io import fits
    from PIL import Image

    rng = np.random.default_rng(0)
    counts = rng.poisson(30, (12, 12)).astype(np.int64)
    floats = rng.random((10, 12)).astype(np.float32)
    seeds = {
        "int.npy": _npy(counts),
        "float.npy": _npy(floats),
        "fortran.npy": _npy(np.asfortranarray(floats.astype(np.float64))),
        "v2.npy": _npy(floats, version=(2, 0)),
        "axion.npy": _npy(_object(counts, 1e-23)),
        "single.npy": _npy(_object(floats)),
        "hostile.npy": _npy(_object(_CreatesMarker(), 1.0)),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("image.npy", seeds["float.npy"])
        zf.writestr("axion_mass.npy", _npy(np.array(1e-23)))
        zf.writestr(f"{CANARY}.txt", CANARY)  # names and bytes that messages must never quote
    seeds["pair.npz"] = buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("arr_0.npy", seeds["int.npy"])
    seeds["deflated.npz"] = buffer.getvalue()
    for suffix, mode, data in ((".png", "L", (floats * 255).astype(np.uint8)), (".tif", "F", floats)):
        buffer = io.BytesIO()
        Image.fromarray(data, mode=mode).save(buffer, format="PNG" if suffix == ".png" else "TIFF")
        seeds[f"image{suffix}"] = buffer.getvalue()
    buffer = io.BytesIO()
    hdu = fits.PrimaryHDU(floats)
    hdu.header["AXIONM"] = 1e-23
    hdu.header["OBSERVER"] = CANARY
    hdu.writeto(buffer)
    seeds["image.fits"] = buffer.getvalue()
    seeds["image.fits.gz"] = gzip.compress(seeds["image.fits"])
    return seeds


SEEDS = _seeds()
SUFFIXES = (".npy", ".npz", ".png", ".tif", ".tiff", ".fits", ".fit", ".fits.gz")


def _check(name: str, data: bytes) -> None:
    """Write ``data`` as ``name`` and read it both ways: a clean image or one LensFileError line, nothing else."""
    path = WORK / name
    path.write_bytes(data)
    try:
        array, meta = read_array(path)
        assert isinstance(array, np.ndarray) and isinstance(meta, dict)
        assert array.size <= MAX_PIXELS
    except LensFileError as err:
        _assert_one_line(err, path)
    try:
        image, _ = read_image(path)
    except LensFileError as err:
        _assert_one_line(err, path)
    else:
        assert image.dtype == np.float32 and image.ndim == 2 and np.isfinite(image).all()
    assert not MARKER.exists(), "code from a file ran"


def _assert_one_line(err: LensFileError, path: Path) -> None:
    text = str(err)
    assert str(path) in text and "\n" not in text and err.reason, text
    assert CANARY not in text, text


def _mutate(data: bytes, edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
    """Apply (kind, position, value) edits: 0 flips bits, 1 overwrites a byte, 2 inserts one, 3 deletes one;
    then optionally truncate at ``cut``."""
    buf = bytearray(data)
    for kind, pos, value in edits:
        if not buf:
            break
        i = pos % len(buf)
        if kind == 0:
            buf[i] ^= value or 1
        elif kind == 1:
            buf[i] = value
        elif kind == 2:
            buf.insert(i, value)
        else:
            del buf[i]
    if cut is not None and buf:
        buf = buf[: cut % (len(buf) + 1)]
    return bytes(buf)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=0, max_size=6
)


@SETTINGS
@given(
    data=st.binary(max_size=3000),
    suffix=st.sampled_from(SUFFIXES),
    header=st.sampled_from(
        [b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04", b"SIMPLE  =", b"\x89PNG\r\n\x1a\n", b"II*\x00"]
    ),
)
def test_random_bytes(data, suffix, header):
    _check(f"random{suffix}", header + data)


@SETTINGS
@given(
    seed=st.sampled_from(sorted(k for k in SEEDS if k.endswith((".npy", ".npz")))),
    edits=EDITS,
    cut=st.none() | st.integers(0, 1 << 16),
)
def test_mutated_numpy_files(seed, edits, cut):
    _check(seed, _mutate(SEEDS[seed], edits, cut))


@SETTINGS
@given(
    seed=st.sampled_from(sorted(k for k in SEEDS if not k.endswith((".npy", ".npz")))),
    edits=EDITS,
    cut=st.none() | st.integers(0, 1 << 16),
)
def test_mutated_pil_and_fits_files(seed, edits, cut):
    _check(seed, _mutate(SEEDS[seed], edits, cut))


def test_seeds_are_valid_and_the_hostile_one_is_refused():
    """The mutators start from files that read cleanly (the fuzzing explores near valid input)."""
    for name, data in SEEDS.items():
        path = WORK / f"seed_{name}"
        path.write_bytes(data)
        if name == "hostile.npy":
            with pytest.raises(LensFileError, match="refused to unpickle"):
                read_array(path)
            continue
        image, meta = read_image(path)
        assert image.ndim == 2 and image.dtype == np.float32, name
        if name in ("axion.npy", "pair.npz", "image.fits", "image.fits.gz"):
            assert meta["axion_mass"] == pytest.approx(1e-23), name
    assert not MARKER.exists()


def _raw_npy(header: str, version: int = 1, payload: bytes = b"\0" * 64) -> bytes:
    text = header.encode("latin1") + b"\n"
    size = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + payload


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 5), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 4), ",  # unterminated: tokenize error
        "{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 5000 + ")" * 5000 + "}",
        "{'descr': 'V1000000000', 'fortran_order': False, 'shape': (4, 4), }",
        "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (4, 4), }",
        "{'descr': '<f8', 'fortran_order': 'yes', 'shape': (4, 4), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,) * 9, }",
        "__import__('os').system('touch PWNED')",
    ],
)
def test_crafted_npy_headers(header):
    _check("crafted.npy", _raw_npy(header, version=2 if len(header) > 60000 else 1))
    with pytest.raises(LensFileError):
        read_array(WORK / "crafted.npy")


HOSTILE = {**hostile_files.hostile(), **hostile_files.canaries()}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_raise_one_clean_lens_file_error(name, tmp_path):
    """Crafted files that made NumPy, pickle, zipfile, astropy or PIL raise their own exceptions (ValueError,
    OverflowError, RuntimeError, NotImplementedError, UnicodeError, EOFError, struct.error, zlib.error ...):
    each is one LensFileError naming the file, saying what is wrong, quoting nothing of it."""
    ((path, words),) = hostile_files.write(tmp_path, {name: HOSTILE[name]}).values()
    with pytest.raises(LensFileError) as info:
        read_image(path)
    _assert_one_line(info.value, path)
    assert words in info.value.reason, info.value.reason
    assert not MARKER.exists()


@SETTINGS
@given(
    name=st.sampled_from(sorted(HOSTILE)),
    edits=EDITS,
    cut=st.none() | st.integers(0, 1 << 16),
)
def test_mutated_hostile_files(name, edits, cut):
    data = HOSTILE[name][0]
    _check(name.replace("/", "_"), _mutate(data, edits, cut))
