"""Read lensing images from files without ever executing code from them, in bounded memory.

This is the one loader lens_hf uses for user files (.npy, .npz, .fits/.fit, .png, .tif/.tiff). DeepLense
``axion`` archives store ``[image, axion_mass_eV]`` as a NumPy *object* array, which ``np.load`` can only read
with ``allow_pickle=True``, i.e. by running whatever the pickle asks for. Here object arrays go through a
restricted unpickler that resolves only the few NumPy constructors an ndarray needs, and the result is checked
to be exactly an image (plus an optional number).

Every size a file declares is checked against the limits below *before* anything is allocated or inflated,
and every failure is a :class:`LensFileError` whose one-line message names the file and the problem (sizes, never
the file's contents). :func:`normalize_image` is the one per-image normalisation of the project.

The module travels with saved models as remote code: it imports only numpy, PIL and (optionally) astropy.
"""

from __future__ import annotations

import contextlib
import contextvars
import gzip
import io
import math
import os
import pickle
import pickletools
import re
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.multiarray import scalar as _np_scalar

SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".fits", ".fit", ".fits.gz", ".fit.gz", ".png", ".tif", ".tiff")

# ----------------------------------------------------------------------------------------------- limits
# Reading any one input stays under MEMORY_BOUND: the largest accepted image (MAX_PIXELS float64 values,
# 128 MiB) needs a few copies of itself while it is read, converted and normalised; bombs are refused early.
MEMORY_BOUND: int = 1 << 30  # bytes (1 GiB)
MAX_PIXELS: int = 4096 * 4096  # pixels of one image (a lensing cut-out is ~150 x 150)
MAX_ARRAY_BYTES: int = 8 * MAX_PIXELS  # bytes of a stored array, and of all arrays in one pickle (128 MiB)
MAX_NDIM: int = 8  # dimensions of a stored array
MAX_OBJECT_ITEMS: int = 16  # items of an object array ([image, axion_mass] has 2)
MAX_PICKLE_OPS: int = 1_000  # opcodes of an object array's pickle (NumPy writes ~100 for [image, mass])
MAX_NPY_HEADER_BYTES: int = 10_000  # .npy header text (NumPy's own limit)
MAX_ZIP_MEMBERS: int = 64  # members of an .npz archive
MAX_ZIP_DIRECTORY_BYTES: int = 1 << 20  # its central directory
MAX_FITS_HEADER_BYTES: int = 2880 * 360  # one FITS header (~1 MiB, 12,960 cards)
MAX_FITS_HDUS: int = 32  # FITS HDUs looked at to find the image
MIN_SIDE: int = 4  # px

NORMALIZATIONS: tuple[str, ...] = ("minmax", "none", "residual_model_i", "residual_lens_model_i")
# Normalisations that cannot be applied twice (the output is no longer the raw input they need): images stored in
# a dataset with one of these are passed to the processor with normalization="none".
NOT_IDEMPOTENT: tuple[str, ...] = ("residual_model_i", "residual_lens_model_i")
# Normalisations with more than one output channel, and the dataset columns that store their channels in order
# (each column a float32 (H, W) image; the first is the usual "image").
CHANNEL_COLUMNS: dict[str, tuple[str, ...]] = {"residual_lens_model_i": ("image", "smooth_lens")}


def normalization_channels(method: str) -> int:
    """Channels of the images that the normalisation ``method`` returns (1 unless :data:`CHANNEL_COLUMNS`)."""
    return len(CHANNEL_COLUMNS.get(method, ("image",)))


# Intensity stretches applied after min-max normalisation (see stretch_image).
STRETCHES: tuple[str, ...] = ("none", "asinh")
DEFAULT_ASINH_SOFTENING = 0.02


class LensFileError(ValueError):
    """A file (or in-memory array) that is not a usable lensing image; ``str()`` is one line naming it."""

    def __init__(self, source: str | os.PathLike, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class _Refused(Exception):
    """A limit or rule broken deep inside a reader; becomes a LensFileError naming the file."""


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has a suffix lens_hf can read."""
    return str(path).lower().endswith(SUFFIXES)


def _describe(err: BaseException) -> str:
    """What went wrong, in words that never quote the file (library messages may echo its bytes)."""
    for kinds, text in (
        ((EOFError,), "unexpected end of data"),
        ((MemoryError,), "too large to read"),
        ((RecursionError,), "too deeply nested"),
        ((OverflowError,), "a number out of range"),
        ((UnicodeError,), "undecodable text"),
        ((struct.error, zipfile.BadZipFile), "broken binary structure"),
        ((pickle.UnpicklingError,), "broken pickle data"),
        ((zlib.error,), "corrupt compressed data"),
    ):
        if isinstance(err, kinds):
            return text
    if isinstance(err, OSError):
        return err.strerror or "broken or truncated data"
    if type(err).__name__ == "DecompressionBombError":  # PIL's own pixel limit, checked when a file is opened
        return "too large to decode"
    return type(err).__name__


def _dtype_name(dtype: np.dtype) -> str:
    """A dtype for a message: its short code, or just "structured" (field names come from the file)."""
    return "structured" if dtype.names is not None or dtype.subdtype is not None else str(dtype)


def _too_large(what: str, shape: tuple[int, ...], dtype: np.dtype, max_pixels: int) -> str | None:
    """Why an array of ``shape`` x ``dtype`` may not be allocated, or None when it may."""
    if len(shape) > MAX_NDIM:
        return f"{what} has {len(shape)} dimensions (at most {MAX_NDIM})"
    if any(n < 0 for n in shape):
        return f"{what} has a negative dimension in shape {tuple(shape)}"
    count = math.prod(shape)
    if count > max_pixels or count * dtype.itemsize > MAX_ARRAY_BYTES:
        return (
            f"{what} of shape {tuple(shape)} is too large "
            f"({count} values of {dtype.itemsize} bytes; at most {max_pixels} values, {MAX_ARRAY_BYTES} bytes)"
        )
    return None


# --------------------------------------------------------------------------------------------------- pickles
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w{0,39}")


def _global_name(module: str, name: str) -> str:
    """A refused global for a message: named when it is a standard-library or NumPy name (``builtins.exec``),
    otherwise only described (the names come from the file)."""
    known = set(getattr(sys, "stdlib_module_names", ())) | {"numpy"}
    parts = module.split(".")
    if parts[0] in known and all(_IDENTIFIER.fullmatch(p) for p in (*parts, name)):
        return f"{module}.{name}"
    return "a global of an unknown module"


class _PickleBudget:
    """Bytes an unpickling may still allocate for arrays (all arrays of one file together)."""

    def __init__(self) -> None:
        self.left = MAX_ARRAY_BYTES + 4096

    def take(self, shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
        """Check a pickled array's declared shape and dtype before NumPy allocates it."""
        if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
            shape = (int(shape),)
        if not isinstance(shape, (tuple, list)) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape
        ):
            raise _Refused("object array: malformed array shape")
        shape = tuple(int(n) for n in shape)
        if not isinstance(dtype, np.dtype):
            if not isinstance(dtype, (str, bytes)) or len(dtype) > 8:
                raise _Refused("object array: malformed array dtype")
            dtype = np.dtype(dtype)
        if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "biufO":
            raise _Refused(f"object array: unsupported dtype {_dtype_name(dtype)} (expected numbers)")
        limit = MAX_OBJECT_ITEMS if dtype.kind == "O" else MAX_PIXELS
        reason = _too_large("object array: an array", shape, dtype, limit)
        if reason:
            raise _Refused(reason)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.left:
            raise _Refused(f"object array: its arrays hold more than {MAX_ARRAY_BYTES} bytes")
        self.left -= nbytes
        return shape, dtype


# The budget of the unpickling in progress (a context variable: threads never share one).
_BUDGET: contextvars.ContextVar[_PickleBudget | None] = contextvars.ContextVar(
    "lens_hf_pickle_budget", default=None
)


class _PickledArray(np.ndarray):
    """ndarray class handed to pickles: its ``__setstate__`` checks the declared shape and dtype first."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _PickledArray:
        raise _Refused("object array: refused a direct ndarray call")

    def __setstate__(self, state: Any) -> None:
        budget = _BUDGET.get()
        if not isinstance(state, tuple) or len(state) not in (4, 5) or budget is None:
            raise _Refused("object array: malformed array state")
        budget.take(state[-4], state[-3])
        super().__setstate__(state)


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    budget = _BUDGET.get()
    if subtype is not _PickledArray or budget is None:
        raise _Refused("object array: malformed array reconstruction")
    shape, dtype = budget.take(shape, dtype)
    return _np_reconstruct(subtype, shape, dtype)


def _scalar(dtype: Any, *args: Any) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.names is not None:
        raise _Refused("object array: unsupported scalar (expected a number)")
    if dtype.itemsize > 16 or (args and not (isinstance(args[0], bytes) and len(args[0]) == dtype.itemsize)):
        raise _Refused("object array: malformed scalar")
    return _np_scalar(dtype, *args)


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    # Always a fresh dtype: the pickle's BUILD step then never alters NumPy's shared builtin dtypes.
    if not isinstance(spec, str) or len(spec) > 8:
        raise _Refused("object array: malformed dtype")
    return np.dtype(spec, bool(align), True)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _reconstruct for module in _NUMPY_MODULES},
    **{(module, "scalar"): _scalar for module in _NUMPY_MODULES},
    ("numpy", "ndarray"): _PickledArray,
    ("numpy", "dtype"): _dtype,
    ("builtins", "float"): float,
    ("builtins", "int"): int,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only NumPy array reconstruction, dtypes, NumPy scalars and Python numbers."""

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise _Refused(
                f"refused to unpickle {_global_name(module, name)} (only NumPy arrays and numbers are allowed)"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("refused to unpickle a persistent id")


def _unpickle(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`_RestrictedUnpickler`: opcodes counted and every length checked against
    the data first (pickletools), arrays allocated only within the byte budget."""
    ops = 0
    for _ in pickletools.genops(io.BytesIO(data)):  # raises ValueError on lengths beyond the data
        ops += 1
        if ops > MAX_PICKLE_OPS:
            raise _Refused(f"object array: pickle has more than {MAX_PICKLE_OPS} operations")
    token = _BUDGET.set(_PickleBudget())
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    finally:
        _BUDGET.reset(token)


def _unpack_object_array(obj: Any, source: str) -> tuple[np.ndarray, dict[str, float]]:
    """Accept ``[image]`` or ``[image, number]`` (DeepLense axion files); anything else is refused."""
    if not isinstance(obj, np.ndarray):
        raise LensFileError(source, f"object array holds a {type(obj).__name__}, expected an image array")
    obj = obj.view(np.ndarray)
    if obj.dtype != object:
        return obj, {}
    items = list(obj.ravel())
    if len(items) not in (1, 2) or not isinstance(items[0], np.ndarray) or items[0].dtype == object:
        raise LensFileError(
            source, "unexpected object array contents (expected [image] or [image, axion_mass])"
        )
    meta: dict[str, float] = {}
    if len(items) == 2:
        mass = items[1]
        if isinstance(mass, np.ndarray) and mass.size == 1 and mass.dtype.kind in "iuf":
            mass = mass.ravel()[0]
        if isinstance(mass, bool) or not isinstance(mass, (int, float, np.integer, np.floating)):
            raise LensFileError(
                source,
                f"unexpected object array contents: second item is {type(mass).__name__}, expected a number",
            )
        meta["axion_mass"] = _finite_mass(mass, source)
    return items[0].view(np.ndarray), meta


def _finite_mass(value: Any, source: str) -> float:
    try:
        mass = float(value)
    except OverflowError:
        mass = math.inf
    if not math.isfinite(mass):
        raise LensFileError(source, "axion mass is not a finite float64 number")
    return mass


# ------------------------------------------------------------------------------------------------------ .npy
class _Capped(io.RawIOBase):
    """A read-only stream that refuses to deliver more than ``cap`` bytes of ``inner`` (a zip member whose
    declared size may lie is inflated at most this far)."""

    def __init__(self, inner: BinaryIO, cap: int):
        self.inner, self.left = inner, cap

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.inner.read(min(len(view), self.left + 1))
        if len(data) > self.left:
            raise _Refused("the data inflates beyond its declared size")
        self.left -= len(data)
        view[: len(data)] = data
        return len(data)


def _read_exact(f: BinaryIO, n: int) -> bytearray | None:
    """``n`` bytes of ``f`` (a buffer allocated once, filled in chunks), or None when the stream ends first."""
    buffer = bytearray(n)
    view, got = memoryview(buffer), 0
    while got < n:
        chunk = f.read(min(n - got, 1 << 24))
        if not chunk:
            return None
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    return buffer


def _read_npy_header(f: BinaryIO, source: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header_bytes)``; the header length is checked before it is read."""
    prefix = f.read(8)
    if len(prefix) < 8 or prefix[:6] != b"\x93NUMPY":
        raise LensFileError(source, "not a valid .npy file (no .npy signature)")
    version = (prefix[6], prefix[7])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise LensFileError(source, f"unsupported .npy format version {version[0]}.{version[1]}")
    size_field = f.read(2 if version == (1, 0) else 4)
    if len(size_field) < (2 if version == (1, 0) else 4):
        raise LensFileError(source, "truncated .npy file (in the header)")
    length = int.from_bytes(size_field, "little")
    if length > MAX_NPY_HEADER_BYTES:
        raise LensFileError(
            source, f"not a valid .npy file (header of {length} bytes; at most {MAX_NPY_HEADER_BYTES})"
        )
    text = f.read(length)
    if len(text) < length:
        raise LensFileError(source, "truncated .npy file (in the header)")
    header = io.BytesIO(prefix + size_field + text)
    header.seek(8)
    fmt = np.lib.format
    try:
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(header)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(header)
        else:  # utf-8 header: NumPy has no public reader for it (the private name moved in NumPy 2)
            impl = getattr(fmt, "_read_array_header", None) or np.lib._format_impl._read_array_header
            shape, fortran, dtype = impl(header, version)
    except Exception as err:  # untrusted header text: any parse failure (incl. tokenize/recursion errors)
        raise LensFileError(source, f"not a valid .npy file (unreadable header: {_describe(err)})") from None
    return tuple(shape), bool(fortran), dtype, 8 + len(size_field) + length


def _read_npy(f: BinaryIO, source: str, size: int, max_pixels: int) -> tuple[np.ndarray, dict]:
    """One .npy from stream ``f`` holding ``size`` bytes -> ``(array, metadata)``."""
    shape, fortran, dtype, used = _read_npy_header(f, source)
    remaining = size - used
    if dtype.hasobject:
        reason = _too_large("object array", shape, np.dtype(object), MAX_OBJECT_ITEMS)
        if reason:
            raise LensFileError(source, reason)
        if remaining > MAX_ARRAY_BYTES + (1 << 20):
            raise LensFileError(source, f"object array of {remaining} bytes is too large")
        data = f.read(remaining)
        try:
            obj = _unpickle(data)
        except _Refused as err:
            raise LensFileError(source, str(err)) from None
        except Exception as err:  # truncated or garbled pickle stream: any error here is a broken file
            raise LensFileError(source, f"corrupt object array ({_describe(err)})") from None
        return _unpack_object_array(obj, source)
    if dtype.kind not in "biuf" or dtype.names is not None or dtype.subdtype is not None:
        raise LensFileError(source, f"unsupported dtype {_dtype_name(dtype)} (expected integers or floats)")
    reason = _too_large("array", shape, dtype, max_pixels)
    if reason:
        raise LensFileError(source, reason)
    expected = math.prod(shape) * dtype.itemsize
    if remaining < expected:
        raise LensFileError(source, f"truncated .npy file ({max(remaining, 0)} of {expected} data bytes)")
    data = _read_exact(f, expected)
    if data is None:
        raise LensFileError(source, f"truncated .npy file (fewer than {expected} data bytes)")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return array.reshape(shape, order="F" if fortran else "C"), {}


def _load_npy(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    with open(path, "rb") as f:
        return _read_npy(f, str(path), os.fstat(f.fileno()).st_size, max_pixels)


# ------------------------------------------------------------------------------------------------------ .npz
def _check_zip_directory(f: BinaryIO, path: Path) -> None:
    """Read the end-of-central-directory record and refuse a directory too large to list, before zipfile
    builds one object per entry."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - 22 - 0xFFFF))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise LensFileError(path, "not a valid .npz archive (no zip directory)")
    _, _, _, _, entries, directory_bytes, _, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
    if at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        raise LensFileError(path, "unsupported .npz archive (zip64 directory)")
    if entries > MAX_ZIP_MEMBERS or directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
        raise LensFileError(
            path,
            f"the .npz archive lists {entries} members in {directory_bytes} bytes (at most {MAX_ZIP_MEMBERS})",
        )


def _open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, cap: int) -> io.BufferedReader:
    """A stream over one member, after its declared size, compression and encryption are checked."""
    if info.flag_bits & 0x1:
        raise LensFileError(source, "the .npz member is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise LensFileError(source, "unsupported .npz compression (NumPy writes stored or deflated members)")
    if info.file_size > cap:
        raise LensFileError(source, f"the .npz member declares {info.file_size} bytes (at most {cap})")
    return io.BufferedReader(_Capped(zf.open(info), info.file_size))


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, cap: int, max_pixels: int
) -> tuple[np.ndarray, dict]:
    with _open_member(zf, info, source, cap) as stream:
        array, meta = _read_npy(stream, source, info.file_size, max_pixels)
        if stream.read(1):  # also makes zipfile check the CRC of what was inflated
            raise LensFileError(source, "the .npz member holds data after its array")
    return array, meta


def _load_npz(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    try:
        with open(path, "rb") as f:
            _check_zip_directory(f, path)
            f.seek(0)
            with zipfile.ZipFile(f) as zf:
                members = {Path(i.filename).stem: i for i in zf.infolist() if i.filename.endswith(".npy")}
                if not members:
                    raise LensFileError(path, "the .npz archive holds no arrays")
                if "image" in members:
                    key = "image"
                elif len(members) == 1:
                    key = next(iter(members))
                else:
                    raise LensFileError(
                        path, f"the .npz archive holds {len(members)} arrays and none is named 'image'"
                    )
                cap = MAX_ARRAY_BYTES + MAX_NPY_HEADER_BYTES + (1 << 20)
                image, meta = _read_member(zf, members[key], str(path), cap, max_pixels)
                if "axion_mass" in members and "axion_mass" not in meta:
                    source = f"{path}[axion_mass]"
                    mass, _ = _read_member(zf, members["axion_mass"], source, 4096, 1)
                    if mass.size != 1 or mass.dtype.kind not in "iuf":
                        raise LensFileError(source, "axion mass is not a single number")
                    meta["axion_mass"] = _finite_mass(mass.ravel()[0], source)
                return image, meta
    except LensFileError:
        raise
    except _Refused as err:
        raise LensFileError(path, f"corrupt .npz archive ({err})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error) as err:
        raise LensFileError(path, f"not a valid .npz archive ({_describe(err)})") from None
    except (
        RuntimeError,
        NotImplementedError,
    ):  # zipfile: encrypted or unsupported member in the local header
        raise LensFileError(path, "unsupported .npz archive (encrypted or unknown compression)") from None
    except PermissionError:
        raise
    except Exception as err:  # zlib.error, UnicodeDecodeError of a member name, OSError, ...
        raise LensFileError(path, f"corrupt .npz archive ({_describe(err)})") from None


# ----------------------------------------------------------------------------------------------------- FITS
def _fits_image_index(stream: BinaryIO, source: Path, fits: Any) -> int:
    """Walk the HDU headers (2880-byte blocks) to the first image HDU and check its declared size.

    Refuses headers longer than MAX_FITS_HEADER_BYTES, images beyond the size limits and files without an image
    in the first MAX_FITS_HDUS HDUs, before astropy parses anything (``fits`` is ``astropy.io.fits``). Returns
    the index of the image HDU.
    """
    for index in range(MAX_FITS_HDUS):
        blocks: list[bytes] = []
        while True:
            block = stream.read(2880)
            if index == 0 and not blocks and not block.startswith(b"SIMPLE  ="):
                raise LensFileError(source, "not a readable FITS file (no FITS signature)")
            if len(block) < 2880:
                if index == 0 or blocks:
                    raise LensFileError(source, "not a readable FITS file (truncated header)")
                raise LensFileError(source, "FITS file has no image data")
            blocks.append(block)
            if any(block[i : i + 8] == b"END     " for i in range(0, 2880, 80)):
                break
            if len(blocks) * 2880 >= MAX_FITS_HEADER_BYTES:
                raise LensFileError(source, f"FITS header longer than {MAX_FITS_HEADER_BYTES} bytes")
        header = fits.Header.fromstring(b"".join(blocks).decode("ascii", "replace"))
        zimage = header.get("XTENSION") == "BINTABLE" and header.get("ZIMAGE") is True
        prefix = "Z" if zimage else ""
        naxis = header.get(f"{prefix}NAXIS", 0)
        bitpix = header.get(f"{prefix}BITPIX", 8)
        if (
            not isinstance(naxis, int)
            or not isinstance(bitpix, int)
            or bitpix not in (8, 16, 32, 64, -32, -64)
        ):
            raise LensFileError(source, "not a readable FITS file (bad NAXIS or BITPIX)")
        if naxis > MAX_NDIM:
            raise LensFileError(source, f"FITS image has {naxis} dimensions (at most {MAX_NDIM})")
        shape = tuple(header.get(f"{prefix}NAXIS{i}", 0) for i in range(naxis, 0, -1))
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise LensFileError(source, "not a readable FITS file (bad NAXISn)")
        is_image = zimage or header.get("XTENSION", "IMAGE").strip() == "IMAGE"
        if is_image and naxis >= 2 and not header.get("GROUPS"):
            reason = _too_large(
                "FITS image",
                shape,
                np.dtype(f"f{abs(bitpix) // 8}" if bitpix < 0 else f"i{bitpix // 8}"),
                MAX_PIXELS,
            )
            if reason:
                raise LensFileError(source, reason)
            return index
        # Skip this HDU's data: |BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn), padded to 2880.
        sizes = [header.get(f"NAXIS{i}", 0) for i in range(1, header.get("NAXIS", 0) + 1)]
        gcount, pcount = header.get("GCOUNT", 1), header.get("PCOUNT", 0)
        if not all(isinstance(n, int) and n >= 0 for n in (*sizes, gcount, pcount)):
            raise LensFileError(source, "not a readable FITS file (bad data size)")
        nbytes = abs(header.get("BITPIX", 8)) // 8 * gcount * (pcount + math.prod(sizes)) if sizes else 0
        stream.seek(-(-nbytes // 2880) * 2880, os.SEEK_CUR)
    raise LensFileError(source, f"FITS file has no image in its first {MAX_FITS_HDUS} HDUs")


def _load_fits(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    try:
        from astropy.io import fits
    except ImportError:
        raise LensFileError(path, "reading FITS files needs astropy (pip install astropy)") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as handle:
                gzipped = handle.read(2) == b"\x1f\x8b"
                handle.seek(0)
                with gzip.GzipFile(fileobj=handle) if gzipped else contextlib.nullcontext(handle) as stream:
                    index = _fits_image_index(stream, path, fits)
                handle.seek(0)
                # Our own handle: astropy leaves its file open when a broken header makes fits.open raise.
                with fits.open(handle, memmap=False) as hdul:
                    hdu = hdul[index]
                    shape = tuple(getattr(hdu, "shape", None) or ())
                    if not hdu.is_image or len(shape) < 2 or hdu.data is None:
                        raise LensFileError(path, "FITS file has no image data")
                    if math.prod(shape) > max_pixels:
                        raise LensFileError(path, f"image of shape {shape} is too large")
                    meta = {}
                    for key in ("AXIONM", "AXION_M"):
                        if key in hdu.header:
                            value = hdu.header[key]
                            if isinstance(value, bool) or not isinstance(value, (int, float)):
                                raise LensFileError(path, f"FITS keyword {key} is not a number")
                            meta["axion_mass"] = _finite_mass(value, path)
                    return np.array(hdu.data), meta
    except (LensFileError, PermissionError):
        raise
    except Exception as err:  # astropy/gzip: OSError, ValueError, TypeError, IndexError... on broken files
        raise LensFileError(path, f"not a readable FITS file ({_describe(err)})") from None


# -------------------------------------------------------------------------------------------------- PNG/TIFF
_PIL_FORMATS = {".png": ["PNG"], ".tif": ["TIFF"], ".tiff": ["TIFF"]}


def _load_pil(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns about broken tags of files it then reads or refuses
            # Only the format the name promises: PIL would otherwise open any format it knows (EPS, PSD, ...).
            with Image.open(path, formats=_PIL_FORMATS[path.suffix.lower()]) as img:
                if img.width * img.height > max_pixels:  # checked before the pixels are decoded
                    raise LensFileError(path, f"image of {img.width}x{img.height} pixels is too large")
                return pil_to_array(img), {}
    except (LensFileError, PermissionError):
        raise
    except Exception as err:  # UnidentifiedImageError, OSError, SyntaxError, struct.error, DecompressionBomb
        unknown = type(err).__name__ == "UnidentifiedImageError"
        kind = f"not a {_PIL_FORMATS[path.suffix.lower()][0]} file" if unknown else _describe(err)
        raise LensFileError(path, f"not a readable image ({kind})") from None


def pil_to_array(img: Any) -> np.ndarray:
    """PIL image of any mode -> 2-D array. Float (F) and 16/32-bit integer modes keep their values exactly;
    colour modes become grey (one channel when all are equal, else the luminance)."""
    if img.mode in ("F", "I", "L", "1") or img.mode.startswith("I;16"):
        return np.array(img)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ----------------------------------------------------------------------------------------------------- API
_READERS = {".npy": _load_npy, ".npz": _load_npz, ".png": _load_pil, ".tif": _load_pil, ".tiff": _load_pil}


def read_array(
    path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, dict[str, float]]:
    """Read the raw array stored in ``path`` and its metadata (``{"axion_mass": eV}`` for DeepLense axion files).

    No code from the file is ever executed, and no declared size beyond the module's limits is allocated.
    Raises :class:`LensFileError` (one line naming the file; never its contents) for unreadable, truncated,
    oversized, hostile or unsupported files; no other exception escapes.
    """
    p = Path(path)
    try:
        if not p.exists():
            raise LensFileError(p, "no such file")
        if p.is_dir():
            raise LensFileError(p, "is a folder, expected a file")
        if not p.is_file():  # a FIFO or device would block or never end
            raise LensFileError(p, "not a regular file")
        if p.name.lower().endswith((".fits", ".fit", ".fits.gz", ".fit.gz")):
            return _load_fits(p, max_pixels)
        reader = _READERS.get(p.suffix.lower())
        if reader is None:
            raise LensFileError(p, f"unsupported file type (supported: {', '.join(SUFFIXES)})")
        return reader(p, max_pixels)
    except LensFileError:
        raise
    except PermissionError:
        raise LensFileError(p, "permission denied") from None
    except Exception as err:  # the last guard: no reader error escapes without naming the file
        raise LensFileError(p, f"cannot read ({_describe(err)})") from None


def as_image_2d(array: Any, source: str = "array", *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Validate an image and return it as a 2-D float32 array of shape (H, W).

    Squeezes (1, H, W) and (H, W, 1); refuses other shapes, multi-channel images, non-numeric dtypes,
    NaN/inf pixels (and values beyond the float32 range), images smaller than 4 px a side and ones larger than
    ``max_pixels``.
    """
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    if arr.dtype == object or arr.dtype.kind not in "biuf" or arr.dtype.names is not None:
        raise LensFileError(
            source, f"unsupported dtype {_dtype_name(arr.dtype)} (expected integers or floats)"
        )
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])
    if arr.ndim != 2:
        if arr.ndim == 3 and (arr.shape[0] in (3, 4) or arr.shape[-1] in (3, 4)):
            raise LensFileError(
                source,
                f"array of shape {arr.shape} has colour channels; lensing images are single-channel (H, W)",
            )
        raise LensFileError(source, f"expected a 2-D image (H, W), got an array of shape {arr.shape}")
    if min(arr.shape) < MIN_SIDE:
        raise LensFileError(
            source, f"image of shape {arr.shape} is too small (at least {MIN_SIDE} px a side)"
        )
    if arr.size > max_pixels:
        raise LensFileError(
            source, f"image of shape {arr.shape} is too large ({arr.size} pixels > {max_pixels})"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf and are refused below
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        beyond = (
            " (values beyond the float32 range)" if arr.dtype.kind == "f" and np.isfinite(arr).all() else ""
        )
        raise LensFileError(source, f"image contains {bad} NaN or infinite pixel(s){beyond}")
    return out


def read_image(
    path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, dict[str, float]]:
    """Read one lensing image file -> ``(image, metadata)`` with ``image`` a finite float32 (H, W) array."""
    array, meta = read_array(path, max_pixels=max_pixels)
    return as_image_2d(array, str(path), max_pixels=max_pixels), meta


def stretch_image(
    image: np.ndarray, method: str = "none", softening: float = DEFAULT_ASINH_SOFTENING
) -> np.ndarray:
    """Intensity stretch of a min-max normalised image (values in [0, 1]) -> float32 (H, W) in [0, 1].

    ``asinh``: ``asinh(x / a) / asinh(1 / a)`` with softening ``a`` (the definition of
    ``astropy.visualization.AsinhStretch``): linear below ``a``, logarithmic above, so the faint outer parts of
    arcs, where substructure bends them, span as many grey levels as the bright knots. ``none`` returns the image.
    Written in NumPy because this module travels with model folders (no astropy there); a test checks it
    against astropy.
    """
    if method not in STRETCHES:
        raise ValueError(f"unknown stretch {method!r} (choose from {', '.join(STRETCHES)})")
    if method == "none":
        return image
    if not softening > 0:
        raise ValueError(f"the asinh softening must be positive, got {softening}")
    values = np.arcsinh(np.asarray(image, dtype=np.float64) / softening) / np.arcsinh(1.0 / softening)
    return values.astype(np.float32)


def normalize_image(image: Any, method: str = "minmax", source: str = "array") -> np.ndarray:
    """The per-image normalisation of lens_hf: a 2-D image -> finite float32 (H, W), or (C, H, W) for the
    multi-channel methods of :data:`CHANNEL_COLUMNS`.

    ``minmax`` maps the pixel range to [0, 1], computed in float64 so that even images spanning the whole
    float32 range (about +-3.4e38) give finite values; a constant image is refused (it holds nothing to
    classify). ``none`` returns the pixels as float32. Input that :func:`as_image_2d` refuses (NaN/inf pixels,
    values beyond float32, wrong shapes) raises :class:`LensFileError` naming ``source``; an unknown ``method``
    raises ValueError (choose from :data:`NORMALIZATIONS`).

    ``residual_model_i`` fits the smooth lens of a DeepLense Model I image (its raw photon counts) and returns
    the whitened residual (``lens_hf.processing.smooth_lens``, 50-150 ms per image; it needs lens_hf installed,
    and refuses anything but raw 150x150 counts with :class:`LensFileError`); ``residual_lens_model_i`` returns
    that residual and the fitted smooth lens in the same noise units, (2, H, W).
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r} (choose from {', '.join(NORMALIZATIONS)})")
    image32 = as_image_2d(image, source, max_pixels=sys.maxsize)  # sizes are the reader's business
    if method == "none":
        return image32
    if method in NOT_IDEMPOTENT:
        try:
            from lens_hf.processing.smooth_lens import smooth_lens_residual
        except ImportError:
            raise LensFileError(
                source, f"normalization {method!r} needs lens_hf: pip install lens_hf"
            ) from None
        try:
            return smooth_lens_residual(image32, method)
        except ValueError as err:
            raise LensFileError(source, str(err)) from None
    values = image32.astype(np.float64)
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        raise LensFileError(source, "constant image (all pixels equal): cannot min-max normalise")
    values -= lo  # in float64 the difference of any two float32 values is finite
    values /= hi - lo
    return values.astype(np.float32)
