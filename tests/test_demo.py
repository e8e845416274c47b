"""The web demo without a browser: what it shows for each file (the same probabilities and one-line errors as
``lens-hf predict``), the pictures and the attention overlay, regression values, models without attention maps,
the bundled examples, ``lens-hf demo`` and ``app.py``. The page in a real browser: test_demo_browser.py."""

from __future__ import annotations

import json
import math
import os
import runpy
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODEL_INPUT_PX, TINY_VIT, write_deeplense_like

from lens_hf.demo.analysis import (
    DISPLAY_PX,
    EXAMPLES,
    LensDemo,
    field_of_view,
    render_attention,
    render_image,
    value_text,
)
from lens_hf.inference import DEFAULT_MODEL_DIR
from lens_hf.labels import DEEPLENSE_FOLDERS, LABELS
from lens_hf.processing import LensImageProcessor, save_model_folder
from lens_hf.processing.file_io import read_image
from lens_hf.processing.targets import TargetScaling

ROOT = Path(__file__).resolve().parents[1]


class _RunsCode:
    """Pickles as a call of os.system: reading it with plain pickle would create ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_bad_files(root: Path) -> dict[str, Path]:
    """One file per way a file can be bad: not an .npy, NaN pixels, a colour array, a constant image, and a
    DeepLense-style object array whose pickle would run a command."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        name: root / name for name in ("corrupt.npy", "nan.npy", "colour.npy", "flat.npy", "hostile.npy")
    }
    files["corrupt.npy"].write_bytes(b"not an array at all")
    nan = np.ones((40, 40), dtype=np.float32)
    nan[3, 4] = np.nan
    np.save(files["nan.npy"], nan)
    np.save(files["colour.npy"], np.random.default_rng(0).random((40, 40, 3)))
    np.save(files["flat.npy"], np.full((40, 40), 7.0))
    record = np.empty(2, dtype=object)
    record[0], record[1] = _RunsCode(root / "pwned"), 1e-23
    np.save(files["hostile.npy"], record, allow_pickle=True)
    return files


@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> list[Path]:
    """One simulated-looking file per class (40x40 counts; the vortex file is a DeepLense [image, m_a] array)."""
    root = write_deeplense_like(tmp_path_factory.mktemp("demo") / "data", per_class=1)
    return [next((root / DEEPLENSE_FOLDERS[label]).glob("*.npy")) for label in LABELS]


def _cli_error(cli, model: Path, path: Path) -> str:
    """The line ``lens-hf predict`` prints for a bad file, with the file named as the page names it."""
    result = cli("predict", "--model", model, path)
    assert result.code == 2 and len(result.err_lines) == 1, result.err
    return result.err_lines[0].replace(str(path), path.name)


def test_page_shows_what_predict_prints_and_bad_files_do_not_hide_good_ones(
    model_dir, good_files, tmp_path, cli
):
    bad = write_bad_files(tmp_path / "bad")
    paths = [good_files[0], bad["corrupt.npy"], good_files[1], bad["nan.npy"], bad["colour.npy"]]
    paths += [bad["flat.npy"], bad["hostile.npy"], good_files[2]]
    results = LensDemo.from_model(model_dir).analyse(paths)
    assert [r.name for r in results] == [p.name for p in paths]

    out = tmp_path / "predictions.json"
    assert cli("predict", "--model", model_dir, *good_files, "--output", out).code == 0
    rows = json.loads(out.read_text())["predictions"]
    shown = [r for r in results if r.error is None]
    assert [r.name for r in shown] == [p.name for p in good_files]
    for result, row in zip(shown, rows):
        assert result.label == row["label"]
        assert list(result.probabilities) == list(LABELS)
        for name, p in result.probabilities.items():
            assert p == pytest.approx(row[f"p_{name}"], abs=1e-6)
        assert result.summary == ", ".join(f"{name} {row[f'p_{name}']:.4f}" for name in LABELS)
        assert result.image.shape == (DISPLAY_PX, DISPLAY_PX, 3) and result.image.dtype == np.uint8
        assert result.attention.shape == result.image.shape and result.note is None

    for name, path in bad.items():
        (result,) = [r for r in results if r.name == name]
        assert result.error == _cli_error(cli, model_dir, path)
        assert result.probabilities is None and result.image is None
    assert "pwned" not in {p.name for p in (tmp_path / "bad").iterdir()}  # the pickle's command never ran
    assert "refused to unpickle posix.system" in next(r.error for r in results if r.name == "hostile.npy")


def test_examples_ship_in_the_package_and_the_default_model_gets_them_right():
    assert sorted(EXAMPLES) == sorted(LABELS)
    for label, path in EXAMPLES.items():
        assert path.is_file() and path.stat().st_size < 200_000
        image, meta = read_image(path)  # the safe reader: the vortex file is a pickled [image, m_a] array
        assert image.shape == (150, 150) and ("axion_mass" in meta) == (label == "vortex")
    assert '"lens_hf.demo": ["examples/*.npy"]' in (ROOT / "setup.py").read_text()
    demo = LensDemo.from_model(None)  # the default model, as lens-hf predict finds it
    assert demo.loaded.path == DEFAULT_MODEL_DIR
    results = demo.analyse(list(EXAMPLES.values()))
    assert [r.label for r in results] == list(EXAMPLES)
    assert all(r.attention is not None for r in results)


def test_field_of_view_is_the_region_the_processor_crops():
    shipped = LensImageProcessor.from_pretrained(DEFAULT_MODEL_DIR)  # 150 px -> 96 px -> central 64 px
    assert field_of_view(shipped, (150, 150)) == (25.0, 25.0, 100.0, 100.0)
    whole = LensImageProcessor(size=32)
    assert field_of_view(whole, (40, 40)) == (0.0, 0.0, 40.0, 40.0)
    # The crop is what the processor keeps: a marked pixel inside the view survives, one outside does not.
    image = np.zeros((150, 150), dtype=np.float32)
    processor = LensImageProcessor(size=96, crop_size=64, do_center_crop=True)
    top, left, height, width = field_of_view(processor, image.shape)
    image[int(top) + 2, int(left) + 2] = 1.0
    image[int(top) - 3, int(left) - 3] = 1.0
    pixels = processor(image.copy(), normalization="none")["pixel_values"][0, 0]
    assert float(pixels[:3, :3].max()) > 0.05 and float(pixels[0, 0]) < float(pixels[1, 1])


def test_attention_is_drawn_over_the_view_where_it_peaks():
    rng = np.random.default_rng(0)
    image = rng.poisson(50.0, size=(150, 150)).astype(np.float32)
    weights = np.zeros((4, 4), dtype=np.float32)
    weights[0, 3] = 1.0  # the top-right patch
    view = (25.0, 25.0, 100.0, 100.0)
    picture = render_attention(image, weights, view).astype(int)
    plain = render_attention(image, np.zeros((4, 4), dtype=np.float32), view).astype(int)
    assert picture.shape == (DISPLAY_PX, DISPLAY_PX, 3)
    scale = DISPLAY_PX / 150
    lo, hi = round(25 * scale), round(125 * scale)
    changed = np.abs(picture - plain).sum(axis=-1) > 0
    assert not changed[:lo].any() and not changed[hi:].any()  # nothing drawn outside the view
    assert not changed[:, :lo].any() and not changed[:, hi:].any()
    rows, cols = np.nonzero(changed)
    quarter = (hi - lo) / 4
    assert rows.max() < lo + 2 * quarter and cols.min() > lo + 2 * quarter  # the top-right of the view
    assert (plain[lo, lo : hi - 1] == 255).all() and (plain[lo : hi - 1, lo] == 255).all()  # outlined
    assert (plain[lo + 5, lo + 5] == plain[lo + 5, lo + 5, 0]).all()  # grey under a zero map
    coloured = render_image(image)
    assert coloured.shape == (DISPLAY_PX, DISPLAY_PX, 3) and not (coloured[..., 0] == coloured[..., 2]).all()


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory) -> Path:
    """A saved (random) tiny SPT+LSA regressor of log10 axion_mass."""
    from lens_hf.models.factory import create_model

    torch.manual_seed(0)
    scaling = TargetScaling("axion_mass", "log10", -23.0, 0.6)
    model = create_model(
        "vit-spt-lsa-tiny", image_size=MODEL_INPUT_PX, task="regression", target=scaling, **TINY_VIT
    )
    processor = LensImageProcessor(size={"height": MODEL_INPUT_PX, "width": MODEL_INPUT_PX})
    return save_model_folder(model, processor, tmp_path_factory.mktemp("models") / "tiny-regressor")


def test_regression_model_shows_its_value_in_physical_units(regressor_dir, good_files, cli):
    demo = LensDemo.from_model(regressor_dir)
    assert "predicts `axion_mass` in eV" in demo.describe()
    results = demo.analyse(good_files)
    table = cli("predict", "--model", regressor_dir, *good_files)
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split("\t") == ["log10_axion_mass", "axion_mass", "file"]
    for result, line in zip(results, lines[1:]):
        log10_value, value, _ = line.split("\t")
        assert result.probabilities is None and result.label is None and result.attention is not None
        assert result.value == f"axion_mass = {value} eV (log10_axion_mass = {log10_value})"
        assert result.summary == result.value
    assert value_text(TargetScaling("exposure_time", "none", 2000.0, 500.0), 2345.678) == (
        "exposure_time = 2346 s"
    )


def test_model_without_attention_says_so_and_still_classifies(tmp_path, good_files):
    from lens_hf.models.factory import create_model

    model = create_model("swin-tiny", image_size=MODEL_INPUT_PX)
    folder = save_model_folder(model, LensImageProcessor(size=MODEL_INPUT_PX), tmp_path / "swin")
    (result,) = LensDemo.from_model(folder).analyse(good_files[:1])
    assert result.error is None and result.label in LABELS and result.attention is None
    assert result.note.startswith("No attention map: SwinForImageClassification has no attention")
    assert math.isclose(sum(result.probabilities.values()), 1.0, rel_tol=1e-5)


def test_demo_command_refuses_bad_options_and_models_in_one_line(tmp_path, cli):
    help_text = cli("demo", "--help")
    assert help_text.code == 0 and "--share" in help_text.out and "--port" in help_text.out
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = cli("demo", "--model", tmp_path / "missing", "--port", free)
    assert result.code == 2 and len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("lens-hf: error: ") and str(tmp_path / "missing") in result.err
    result = cli("demo", "--port", "70000")
    assert result.code == 2 and result.err_lines == ["lens-hf: error: --port must be in 1..65535, got 70000"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("demo", "--model", tmp_path / "missing", "--port", port)  # refused before the model
    assert result.code == 2 and result.err_lines == [
        f"lens-hf: error: 127.0.0.1:{port}: cannot serve the demo there (Address already in use); "
        "choose another --host or --port"
    ]


def test_app_py_builds_the_page_with_the_default_model():
    import gradio

    from lens_hf.demo.page import escape_markdown

    namespace = runpy.run_path(str(ROOT / "app.py"))  # as a Space imports it: builds, does not launch
    blocks = namespace["demo"]
    assert isinstance(blocks, gradio.Blocks) and blocks.title.startswith("lens_hf")
    assert not blocks.analytics_enabled and not blocks.is_running
    assert escape_markdown("a_b*<c>.npy") == "a\\_b\\*\\<c\\>\\.npy"
