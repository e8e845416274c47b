"""The one per-image normalisation of lens_hf (``file_io.normalize_image``) and the loader's limits."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from lens_hf.processing import file_io
from lens_hf.processing.file_io import NORMALIZATIONS, LensFileError, normalize_image


def test_minmax_maps_to_unit_range_in_float64():
    image = np.random.default_rng(0).poisson(30.0, (40, 40)).astype(np.int64)
    out = normalize_image(image, "minmax", "x.npy")
    expected = (image - image.min()) / (image.max() - image.min())  # float64
    assert out.dtype == np.float32 and out.shape == (40, 40)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_minmax_of_the_whole_float32_range_is_finite():
    """Finite float32 pixels spanning about +-3.4e38: their difference overflows float32 (the NaN probabilities
    and NaN dataset pixels of a float32 computation); in float64 the result is exact and finite."""
    top = np.finfo(np.float32).max
    image = np.linspace(-1.0, 1.0, 64, dtype=np.float64).reshape(8, 8).astype(np.float32) * top
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite((image - image.min()) / (image.max() - image.min())).all()
    out = normalize_image(image, "minmax", "x.npy")
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.all(np.diff(out.ravel()) > 0)  # the ramp stays a ramp
    np.testing.assert_allclose(out.ravel(), np.linspace(0.0, 1.0, 64), atol=1e-6)

    tiny = np.zeros((8, 8), dtype=np.float32)
    tiny[0, 0] = np.float32(1e-45)  # a subnormal step: still two distinct values
    assert normalize_image(tiny).max() == 1.0


def test_none_keeps_pixels_as_float32():
    image = np.arange(64, dtype=np.int16).reshape(8, 8)
    out = normalize_image(image, "none", "x.npy")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image.astype(np.float32))
    assert normalize_image(np.ones((1, 8, 8)), "none").shape == (8, 8)  # (1, H, W) squeezed


@pytest.mark.parametrize(
    ("image", "method", "words"),
    [
        (np.full((8, 8), 3.0), "minmax", "constant image"),
        (np.where(np.eye(8) > 0, np.nan, 1.0), "minmax", "NaN or infinite"),
        (np.where(np.eye(8) > 0, np.inf, 1.0), "none", "NaN or infinite"),
        (np.full((8, 8), 1e300) * np.eye(8), "minmax", "beyond the float32 range"),
        (np.zeros((8, 8, 3)), "none", "colour channels"),
    ],
)
def test_unusable_images_are_refused_naming_the_source(image, method, words):
    with pytest.raises(LensFileError) as info:
        normalize_image(image, method, "lens_007.npy")
    assert str(info.value).startswith("lens_007.npy: ") and words in info.value.reason


def test_method_names_are_defined_once():
    assert NORMALIZATIONS == ("minmax", "none", "residual_model_i", "residual_lens_model_i")
    with pytest.raises(ValueError, match="choose from minmax, none, residual_model_i, residual_lens_model_i"):
        normalize_image(np.eye(8), "zscore")
    from lens_hf.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["build-dataset"]
    (action,) = [a for a in sub._actions if a.dest == "normalization"]
    assert tuple(action.choices) == NORMALIZATIONS


_READ_LARGEST = r"""
import importlib.util, json, resource, sys
spec = importlib.util.spec_from_file_location("lens_file_io", sys.argv[1])
file_io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(file_io)
import numpy as np

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

start = peak()
image, _ = file_io.read_image(sys.argv[2])
out = file_io.normalize_image(image, "minmax", sys.argv[2])
print(json.dumps({"growth": peak() - start, "shape": list(out.shape), "finite": bool(np.isfinite(out).all())}))
"""


def test_the_largest_accepted_image_is_read_within_the_memory_bound(tmp_path):
    """A float64 image of MAX_PIXELS (128 MiB on disk) is read and normalised in a fresh process within
    MEMORY_BOUND; one pixel more is refused from the header alone."""
    side = math.isqrt(file_io.MAX_PIXELS)
    assert side * side == file_io.MAX_PIXELS and 8 * file_io.MAX_PIXELS == file_io.MAX_ARRAY_BYTES
    path = tmp_path / "largest.npy"
    image = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(side, side))
    image[:, :] = np.arange(side, dtype=np.float64)
    image.flush()
    del image
    proc = subprocess.run(
        [sys.executable, "-c", _READ_LARGEST, file_io.__file__, str(path)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["shape"] == [side, side] and report["finite"]
    assert report["growth"] < file_io.MEMORY_BOUND, report
    path.unlink()

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (side, side + 1)}
    )
    path.write_bytes(header.getvalue())
    with pytest.raises(LensFileError, match="too large"):
        file_io.read_array(path)
