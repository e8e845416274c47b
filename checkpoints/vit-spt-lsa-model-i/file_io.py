"""Read lensing images from files without ever executing code from them.

This is the one loader lens_hf uses for user files (.npy, .npz, .fits/.fit, .png, .tif/.tiff). DeepLense
``axion`` archives store ``[image, axion_mass_eV]`` as a NumPy *object* array, which ``np.load`` can only read
with ``allow_pickle=True``, i.e. by running whatever the pickle asks for. Here object arrays go through a
restricted unpickler that resolves only the few NumPy constructors an ndarray needs, and the result is checked
to be exactly an image (plus an optional number).

The module travels with saved models as remote code: it imports only numpy, PIL and (optionally) astropy.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".fits", ".fit", ".fits.gz", ".fit.gz", ".png", ".tif", ".tiff")
# 8192^2 float32 pixels = 256 MiB: far beyond any lensing cut-out, small enough to never exhaust memory.
MAX_PIXELS: int = 8192 * 8192
MIN_SIDE: int = 4


class LensFileError(ValueError):
    """A file (or in-memory array) that is not a usable lensing image; ``str()`` is one line naming it."""

    def __init__(self, source: str | os.PathLike, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name has a suffix lens_hf can read."""
    return str(path).lower().endswith(SUFFIXES)


# --------------------------------------------------------------------------------------------------- pickles
# (module, name) pairs an object-dtype .npy needs: ndarray reconstruction, dtypes and NumPy scalars.
_ALLOWED_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "float"),
    ("builtins", "int"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refused to unpickle {module}.{name} (only NumPy arrays and numbers are allowed)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy.core -> numpy._core rename warning of NumPy 2
            return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused to unpickle a persistent id")


def _unpack_object_array(obj: Any, source: str) -> tuple[np.ndarray, dict[str, float]]:
    """Accept ``[image]`` or ``[image, number]`` (DeepLense axion files); anything else is refused."""
    if not isinstance(obj, np.ndarray):
        raise LensFileError(source, f"object array holds a {type(obj).__name__}, expected an image array")
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
            mass = mass.item()
        if isinstance(mass, bool) or not isinstance(mass, (int, float, np.integer, np.floating)):
            raise LensFileError(
                source,
                f"unexpected object array contents: second item is {type(mass).__name__}, expected a number",
            )
        if not math.isfinite(float(mass)):
            raise LensFileError(source, "axion mass is not finite")
        meta["axion_mass"] = float(mass)
    return items[0], meta


def _read_npy_stream(
    f: io.BufferedIOBase, source: str, nbytes: int, max_pixels: int
) -> tuple[np.ndarray, dict]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        elif version == (3, 0):
            # (3, 0): utf-8 header; NumPy has no public reader for it (private name moved in NumPy 2).
            impl = (
                getattr(np.lib.format, "_read_array_header", None) or np.lib._format_impl._read_array_header
            )
            shape, fortran, dtype = impl(f, version)
        else:
            raise LensFileError(source, f"unsupported .npy format version {version}")
    except LensFileError:
        raise
    except Exception as err:  # untrusted header text: any parse failure (incl. tokenize/recursion errors)
        raise LensFileError(source, f"not a valid .npy file ({_short(err)})") from None
    if any(n < 0 for n in shape):
        raise LensFileError(source, f"not a valid .npy file (negative dimension in shape {tuple(shape)})")
    count = math.prod(shape)
    if dtype.hasobject:
        try:
            obj = _RestrictedUnpickler(f).load()
        except pickle.UnpicklingError as err:
            raise LensFileError(source, _short(err)) from None
        except Exception as err:  # truncated or garbled pickle stream: any error here is a broken file
            raise LensFileError(source, f"corrupt object array ({_short(err)})") from None
        image, meta = _unpack_object_array(obj, source)
        return image, meta
    if count > max_pixels:
        raise LensFileError(
            source, f"array of shape {tuple(shape)} is too large ({count} values > {max_pixels})"
        )
    if dtype.kind not in "biuf":
        raise LensFileError(source, f"unsupported dtype {dtype} (expected integers or floats)")
    expected = count * dtype.itemsize
    remaining = nbytes - f.tell()
    if remaining < expected:
        raise LensFileError(source, f"truncated .npy file ({remaining} of {expected} data bytes)")
    data = np.frombuffer(f.read(expected), dtype=dtype, count=count)
    array = data.reshape(shape, order="F" if fortran else "C")
    return array, {}


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def _load_npy(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    with open(path, "rb") as f:
        return _read_npy_stream(f, str(path), os.fstat(f.fileno()).st_size, max_pixels)


def _load_npz(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {Path(i.filename).stem: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if not members:
                raise LensFileError(path, "the .npz archive holds no arrays")
            if "image" in members:
                key = "image"
            elif len(members) == 1:
                key = next(iter(members))
            else:
                raise LensFileError(
                    path,
                    f"the .npz archive holds several arrays ({', '.join(sorted(members))}); name the image 'image'",
                )
            info = members[key]
            if info.file_size > 16 * max_pixels + 4096:  # refuse zip bombs before inflating them
                raise LensFileError(path, f"array '{key}' is too large ({info.file_size} bytes)")
            image, meta = _read_npy_stream(
                io.BytesIO(zf.read(info)), f"{path}[{key}]", info.file_size, max_pixels
            )
            if "axion_mass" in members and "axion_mass" not in meta:
                mass, _ = _read_npy_stream(
                    io.BytesIO(zf.read(members["axion_mass"])),
                    f"{path}[axion_mass]",
                    members["axion_mass"].file_size,
                    16,
                )
                if mass.size == 1 and mass.dtype.kind in "iuf" and math.isfinite(float(mass.ravel()[0])):
                    meta["axion_mass"] = float(mass.ravel()[0])
            return image, meta
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, NotImplementedError) as err:
        raise LensFileError(path, f"not a valid .npz archive ({_short(err)})") from None
    except (OSError, ValueError) as err:
        if isinstance(err, LensFileError):
            raise
        raise LensFileError(path, f"corrupt .npz archive ({_short(err)})") from None


def _load_fits(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    try:
        from astropy.io import fits
    except ImportError:
        raise LensFileError(path, "reading FITS files needs astropy (pip install astropy)") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Our own handle: astropy leaves its file open when a broken header makes fits.open raise.
            with open(path, "rb") as handle, fits.open(handle, memmap=False) as hdul:
                for hdu in hdul:
                    shape = getattr(hdu, "shape", None) or ()
                    if not hdu.is_image or len(shape) < 2:
                        continue
                    if math.prod(shape) > max_pixels:
                        raise LensFileError(path, f"image of shape {tuple(shape)} is too large")
                    data = hdu.data
                    if data is not None:
                        meta = {}
                        for key, name in (("AXIONM", "axion_mass"), ("AXION_M", "axion_mass")):
                            if key in hdu.header:
                                meta[name] = float(hdu.header[key])
                        return np.array(data), meta
    except LensFileError:
        raise
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, IndexError... on broken files
        raise LensFileError(path, f"not a readable FITS file ({_short(err)})") from None
    raise LensFileError(path, "FITS file has no image data")


def _load_pil(path: Path, max_pixels: int) -> tuple[np.ndarray, dict]:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns about broken tags of files it then reads or refuses
            with Image.open(path) as img:
                if img.width * img.height > max_pixels:
                    raise LensFileError(path, f"image of {img.width}x{img.height} pixels is too large")
                return pil_to_array(img), {}
    except LensFileError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise LensFileError(path, f"not a readable image ({_short(err)})") from None


def pil_to_array(img: Any) -> np.ndarray:
    """PIL image of any mode -> 2-D array. Float (F) and 16/32-bit integer modes keep their values exactly;
    colour modes become grey (one channel when all are equal, else the luminance)."""
    if img.mode in ("F", "I", "L", "1") or img.mode.startswith("I;16"):
        return np.array(img)
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


_READERS = {".npy": _load_npy, ".npz": _load_npz, ".png": _load_pil, ".tif": _load_pil, ".tiff": _load_pil}


def read_array(
    path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, dict[str, float]]:
    """Read the raw array stored in ``path`` and its metadata (``{"axion_mass": eV}`` for DeepLense axion files).

    No code from the file is ever executed. Raises :class:`LensFileError` (one line, naming the file) for
    unreadable, truncated, hostile or unsupported files.
    """
    p = Path(path)
    name = p.name.lower()
    if not p.exists():
        raise LensFileError(p, "no such file")
    if p.is_dir():
        raise LensFileError(p, "is a folder, expected a file")
    if not p.is_file():  # a FIFO or device would block or never end
        raise LensFileError(p, "not a regular file")
    try:
        if name.endswith((".fits", ".fit", ".fits.gz", ".fit.gz")):
            return _load_fits(p, max_pixels)
        reader = _READERS.get(p.suffix.lower())
        if reader is None:
            raise LensFileError(p, f"unsupported file type (supported: {', '.join(SUFFIXES)})")
        return reader(p, max_pixels)
    except PermissionError:
        raise LensFileError(p, "permission denied") from None
    except OSError as err:
        raise LensFileError(p, f"cannot read ({err.strerror or _short(err)})") from None


def as_image_2d(array: Any, source: str = "array", *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Validate an image and return it as a 2-D float32 array of shape (H, W).

    Squeezes (1, H, W) and (H, W, 1); refuses other shapes, multi-channel images, non-numeric dtypes,
    NaN/inf pixels, images smaller than 4 px a side and ones larger than ``max_pixels``.
    """
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise LensFileError(source, f"unsupported dtype {arr.dtype} (expected integers or floats)")
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


NORMALIZATIONS: tuple[str, ...] = ("minmax", "none")


def normalize_image(image: np.ndarray, method: str = "minmax", source: str = "array") -> np.ndarray:
    """Per-image normalisation of a 2-D float image. ``minmax`` maps to [0, 1] (a constant image is refused:
    it holds nothing to classify and would divide by zero); ``none`` returns the image unchanged."""
    if method == "none":
        return image
    if method != "minmax":
        raise ValueError(f"unknown normalisation {method!r} (choose from {', '.join(NORMALIZATIONS)})")
    lo, hi = float(image.min()), float(image.max())
    if not hi > lo:
        raise LensFileError(source, "constant image (all pixels equal): cannot min-max normalise")
    return ((image - lo) / (hi - lo)).astype(np.float32)
