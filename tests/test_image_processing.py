"""LensImageProcessor: every input form gives the same pixel_values, floats are never clipped, bad input is
refused with a one-line LensFileError, and the settings survive save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lens_hf.processing import LensFileError, LensImageProcessor, normalize_image
from lens_hf.processing.image_processing_lens import d4_transform

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    """(40, 48) float32 image with values far above 8-bit range (1e3 .. ~1e6)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:40, :48]
    image = 1e3 + 1e6 * np.exp(-((x - 24) ** 2 + (y - 20) ** 2) / 60.0) + rng.normal(0, 50, (40, 48))
    return image.astype(np.float32)


def _pixels(processor: LensImageProcessor, images, **kw) -> torch.Tensor:
    out = processor(images, **kw)["pixel_values"]
    assert out.dtype == torch.float32
    return out


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_every_input_form_gives_identical_pixel_values(counts, tmp_path):
    from astropy.io import fits

    processor = LensImageProcessor(size=32)
    paths = {
        "npy": tmp_path / "a.npy",
        "npz": tmp_path / "a.npz",
        "fits": tmp_path / "a.fits",
        "tif": tmp_path / "a.tif",
    }
    np.save(paths["npy"], counts)
    np.savez(paths["npz"], image=counts)
    fits.PrimaryHDU(counts).writeto(paths["fits"])
    Image.fromarray(counts, mode="F").save(paths["tif"])

    reference = _pixels(processor, counts)
    assert reference.shape == (1, 1, 32, 32)
    forms = {
        "float64": counts.astype(np.float64),
        "(1,H,W)": counts[None],
        "(H,W,1)": counts[..., None],
        "tensor": torch.from_numpy(counts),
        "tensor (1,H,W)": torch.from_numpy(counts)[None],
        "PIL F": Image.fromarray(counts, mode="F"),
        "list": [counts],
        **{f"path {k}": p for k, p in paths.items()},
        "str path": str(paths["npy"]),
    }
    for name, form in forms.items():
        assert torch.equal(_pixels(processor, form), reference), name

    batch = np.stack([counts, counts[::-1].copy(), counts * 2])
    per_image = torch.cat([_pixels(processor, im) for im in batch])
    for name, form in {
        "(B,H,W)": batch,
        "(B,1,H,W)": batch[:, None],
        "(B,H,W,1)": batch[..., None],
        "tensor (B,1,H,W)": torch.from_numpy(batch)[:, None],
        "list of arrays": list(batch),
        "mixed list": [paths["npy"], Image.fromarray(batch[1], mode="F"), torch.from_numpy(batch[2])],
    }.items():
        assert torch.equal(_pixels(processor, form), per_image), name


def test_sixteen_bit_images_keep_their_values(tmp_path):
    image = np.random.default_rng(0).integers(0, 60000, (36, 36)).astype(np.uint16)
    image[0, 0], image[1, 1] = 0, 60000
    png = tmp_path / "a.png"
    Image.fromarray(image).save(png)
    assert Image.open(png).mode.startswith("I;16")
    processor = LensImageProcessor(normalization="none", do_resize=False)
    reference = _pixels(processor, image)
    assert reference.max().item() == 60000.0
    assert torch.equal(_pixels(processor, Image.fromarray(image)), reference)
    assert torch.equal(_pixels(processor, png), reference)


def test_float_values_are_not_clipped(counts):
    raw = _pixels(LensImageProcessor(normalization="none", do_resize=False), counts)
    assert torch.equal(raw[0, 0], torch.from_numpy(counts))
    assert raw.max().item() > 1e5
    # Through a PIL "F" image too: a stock pipeline would have clipped this to 255.
    via_pil = _pixels(
        LensImageProcessor(normalization="none", do_resize=False), Image.fromarray(counts, mode="F")
    )
    assert torch.equal(via_pil, raw)


def test_minmax_is_the_default_and_is_file_io_normalize_image(counts):
    processor = LensImageProcessor(do_resize=False)
    assert processor.normalization == "minmax"
    out = _pixels(processor, counts)[0, 0].numpy()
    assert out.min() == 0.0 and out.max() == 1.0
    # The processor calls file_io.normalize_image itself: the same numbers, bit for bit, for every method.
    for method in ("minmax", "none"):
        expected = normalize_image(counts, method, "array")
        got = _pixels(LensImageProcessor(do_resize=False, normalization=method), counts)[0, 0].numpy()
        np.testing.assert_array_equal(got, expected)
    # Idempotent: an already normalised image (as stored in the datasets) comes out unchanged.
    np.testing.assert_allclose(_pixels(processor, out)[0, 0].numpy(), out, rtol=0, atol=1e-6)


def test_dataset_mean_std_standardisation(counts):
    plain = _pixels(LensImageProcessor(do_resize=False), counts)
    standardised = _pixels(LensImageProcessor(do_resize=False, image_mean=0.25, image_std=0.5), counts)
    torch.testing.assert_close(standardised, (plain - 0.25) / 0.5, rtol=0, atol=1e-6)
    rgb = _pixels(
        LensImageProcessor(do_resize=False, num_channels=3, image_mean=[0.1, 0.2, 0.3], image_std=[1, 2, 4]),
        counts,
    )
    for c, (m, s) in enumerate([(0.1, 1), (0.2, 2), (0.3, 4)]):
        torch.testing.assert_close(rgb[0, c], (plain[0, 0] - m) / s, rtol=0, atol=1e-6)


def test_resize_crop_shapes_and_values(counts):
    processor = LensImageProcessor(size={"height": 24, "width": 20})
    assert _pixels(processor, [counts, counts]).shape == (2, 1, 24, 20)
    cropped = _pixels(LensImageProcessor(size=32, crop_size=16, do_center_crop=True), counts)
    full = _pixels(LensImageProcessor(size=32), counts)
    assert cropped.shape == (1, 1, 16, 16)
    assert torch.equal(cropped, full[..., 8:24, 8:24])
    # Halving a linear ramp with a symmetric filter keeps it linear at the new pixel centres (interior).
    y, x = np.mgrid[:64, :64].astype(np.float32)
    ramp = _pixels(LensImageProcessor(size=32, normalization="none"), 3 * x + 2 * y)[0, 0].numpy()
    yy, xx = np.mgrid[:32, :32] * 2 + 0.5
    np.testing.assert_allclose(ramp[2:-2, 2:-2], (3 * xx + 2 * yy)[2:-2, 2:-2], atol=1e-3)
    # Per-call overrides, without changing the processor.
    assert _pixels(processor, counts, size=8).shape == (1, 1, 8, 8)
    assert processor.size == {"height": 24, "width": 20}


def test_mixed_sizes_keep_input_order(counts):
    processor = LensImageProcessor(size=16)
    small = counts[:20, :20].copy()
    together = _pixels(processor, [counts, small, counts[::-1].copy()])
    apart = torch.cat([_pixels(processor, im) for im in (counts, small, counts[::-1].copy())])
    assert torch.equal(together, apart)
    with pytest.raises(LensFileError, match="different sizes"):
        LensImageProcessor(do_resize=False)([counts, small])


def test_channel_replication(counts):
    grey = _pixels(LensImageProcessor(size=32), counts)
    rgb = _pixels(LensImageProcessor(size=32, num_channels=3), counts)
    assert rgb.shape == (1, 3, 32, 32)
    for c in range(3):
        assert torch.equal(rgb[:, c : c + 1], grey)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((20, 20), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((20, 20, 3), dtype=np.float32), "colour channels"),
        (np.arange(20.0), "2-D"),
        (np.full((20, 20), 5.0), "constant image"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype"),
        (np.zeros((2, 2)), "too small"),
        ({"image": 1}, "unsupported input type"),
    ],
)
def test_bad_inputs_raise_one_line_errors(bad, message):
    with pytest.raises(LensFileError) as err:
        LensImageProcessor()(bad)
    assert message in _one_line(err)


def test_errors_name_the_offending_image_or_file(counts, tmp_path):
    images = [counts, counts, counts.copy()]
    images[2][3, 3] = np.inf
    with pytest.raises(LensFileError) as err:
        LensImageProcessor()(images)
    assert _one_line(err).startswith("image 2:")
    flat = [counts, np.full_like(counts, 2.0)]
    with pytest.raises(LensFileError) as err:
        LensImageProcessor()(flat)
    assert _one_line(err).startswith("image 1:")
    (tmp_path / "notes.txt").write_text("hello")
    for path, message in [
        (tmp_path / "missing.npy", "no such file"),
        (tmp_path / "notes.txt", "unsupported file type"),
    ]:
        with pytest.raises(LensFileError) as err:
            LensImageProcessor()(path)
        assert str(path) in _one_line(err) and message in str(err.value)


def test_invalid_settings_are_refused():
    for kwargs, message in [
        ({"normalization": "zscore"}, "unknown normalization"),
        ({"image_mean": 0.5}, "both image_mean and image_std"),
        ({"image_mean": 0.5, "image_std": 0.0}, "positive"),
        ({"image_mean": [0.1, 0.2], "image_std": [1, 1]}, "expected 1 or num_channels"),
        ({"num_channels": 0}, "num_channels"),
        ({"size": 16, "crop_size": 32, "do_center_crop": True}, "larger than size"),
    ]:
        with pytest.raises(ValueError, match=message):
            LensImageProcessor(**kwargs)
    with pytest.raises(ValueError, match="unknown LensImageProcessor option"):
        LensImageProcessor()(np.ones((8, 8)), do_rescale=True)


def test_save_load_round_trip(counts, tmp_path):
    from transformers import AutoImageProcessor

    processor = LensImageProcessor(
        size=40,
        crop_size=32,
        do_center_crop=True,
        normalization="minmax",
        image_mean=0.3,
        image_std=0.2,
        num_channels=3,
    )
    processor.save_pretrained(tmp_path)
    saved = (tmp_path / "preprocessor_config.json").read_text()
    assert '"image_processor_type": "LensImageProcessor"' in saved
    assert '"AutoImageProcessor": "image_processing_lens.LensImageProcessor"' in saved
    assert {p.name for p in tmp_path.iterdir()} >= {"image_processing_lens.py", "file_io.py"}

    loaded = LensImageProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert torch.equal(_pixels(loaded, counts), _pixels(processor, counts))
    assert loaded.size == {"height": 40, "width": 40} and loaded.image_std == [0.2]

    overridden = LensImageProcessor.from_pretrained(tmp_path, num_channels=1, image_mean=None, image_std=None)
    assert overridden.num_channels == 1

    # `import lens_hf` (run by any lens_hf import) registered the class: the saved name resolves to it.
    auto = AutoImageProcessor.from_pretrained(tmp_path)
    assert type(auto) is LensImageProcessor
    assert auto.to_dict() == processor.to_dict()


def test_list_of_float_arrays_is_fast():
    # The training path: 256 Model I sized images resized to 64 px (~0.25 s on one core; slack for a shared machine).
    import time

    rng = np.random.default_rng(1)
    images = [rng.random((150, 150), dtype=np.float32) for _ in range(256)]
    processor = LensImageProcessor(size=64)
    processor(images[:4])
    start = time.perf_counter()
    out = processor(images)["pixel_values"]
    elapsed = time.perf_counter() - start
    assert out.shape == (256, 1, 64, 64)
    assert elapsed < 1.5, f"{elapsed:.2f} s"


def test_settings_rebuild_the_processor_and_give_its_output_size():
    processor = LensImageProcessor(size=96, crop_size=64, do_center_crop=True, image_mean=0.2, image_std=0.5)
    settings = processor.settings()
    assert set(settings) == set(LensImageProcessor._CONFIG_KEYS)
    assert LensImageProcessor(**settings).to_dict() == processor.to_dict()
    assert processor.output_size == (64, 64)
    assert LensImageProcessor(size=(30, 40)).output_size == (30, 40)
    assert LensImageProcessor(do_resize=False).output_size is None


def test_d4_transform_is_the_dihedral_group():
    x = torch.arange(16.0).view(4, 4)
    views = [d4_transform(x, e) for e in range(8)]
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8  # all distinct
    assert torch.equal(views[0], x) and torch.equal(views[1], x.flip(-1)) and torch.equal(views[2], x.rot90())
    for e in range(8):  # closed under composition: a view of a view is a view
        for f in range(8):
            assert any(torch.equal(d4_transform(views[e], f), v) for v in views)
    with pytest.raises(ValueError, match="0..7"):
        d4_transform(x, 8)


def test_asinh_stretch_matches_astropy_and_is_saved_with_the_processor(tmp_path):
    from astropy.visualization import AsinhStretch

    from lens_hf.processing.file_io import stretch_image

    x = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    ours = stretch_image(x, "asinh", 0.02)
    np.testing.assert_allclose(ours, AsinhStretch(a=0.02)(x), rtol=1e-5, atol=1e-6)
    assert ours.dtype == np.float32 and ours.min() == 0.0 and ours.max() == pytest.approx(1.0)
    assert stretch_image(x, "none") is x

    image = np.zeros((32, 32), dtype=np.float32)
    image[10:20, 10:20] = np.linspace(1.0, 100.0, 100).reshape(10, 10)
    plain = LensImageProcessor(size=32)(image)["pixel_values"]
    processor = LensImageProcessor(size=32, stretch="asinh", asinh_softening=0.05)
    stretched = processor(image)["pixel_values"]
    # faint pixels are lifted, the peak and the zero background stay where they were
    assert stretched.max() == pytest.approx(1.0) and stretched.min() == 0.0
    assert float(stretched[0, 0, 10, 10]) > 3 * float(plain[0, 0, 10, 10])
    processor.save_pretrained(tmp_path)
    again = LensImageProcessor.from_pretrained(tmp_path)
    assert again.stretch == "asinh" and again.asinh_softening == 0.05
    assert torch.equal(again(image)["pixel_values"], stretched)
    with pytest.raises(ValueError, match="needs normalization='minmax'"):
        LensImageProcessor(size=32, normalization="none", stretch="asinh")
    with pytest.raises(ValueError, match="unknown stretch"):
        LensImageProcessor(size=32, stretch="log")
