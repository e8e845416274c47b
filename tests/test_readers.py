"""Folder layouts, labels, metadata and bad files in lens_hf.data.readers."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from lens_hf.data.readers import Record, load_images, scan_folder
from lens_hf.errors import LensHFError
from lens_hf.labels import ALIASES
from lens_hf.processing.file_io import LensFileError


def _counts(rng: np.random.Generator, shape=(150, 150)) -> np.ndarray:
    return rng.poisson(20.0, size=shape).astype(np.int64)


def _save_axion(path: Path, image: np.ndarray, mass: float) -> None:
    arr = np.empty(2, dtype=object)
    arr[0] = image
    arr[1] = mass
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr, allow_pickle=True)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def _minmax(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    return ((a - a.min()) / (a.max() - a.min())).astype(np.float32)


class _Touch:
    """Unpickling this object opens (creates) ``marker`` for writing."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_npy(path: Path, marker: Path) -> None:
    arr = np.empty(2, dtype=object)
    arr[0] = _Touch(marker)
    arr[1] = 1.0e-23
    np.save(path, arr, allow_pickle=True)


# --------------------------------------------------------------------------------------------------- layouts
def test_model_i_archive_layout_labels_order_and_axion_mass(tmp_path):
    rng = np.random.default_rng(0)
    masses = {}
    for i in (2, 0, 1):
        _save(tmp_path / "no_sub" / f"no_sub_sim_{i}.npy", _counts(rng))
        _save(tmp_path / "cdm" / f"cdm_sim_{i}.npy", _counts(rng))
        masses[f"axion_sim_{i}.npy"] = 10.0 ** (-24 + i)
        _save_axion(tmp_path / "axion" / f"axion_sim_{i}.npy", _counts(rng), masses[f"axion_sim_{i}.npy"])
    (tmp_path / "cdm" / "notes.txt").write_text("not an image")
    (tmp_path / "cdm" / ".hidden.npy").write_bytes(b"junk")

    records = scan_folder(tmp_path)
    assert [(r.label, Path(r.path).name) for r in records] == [
        ("no_substructure", "no_sub_sim_0.npy"),
        ("no_substructure", "no_sub_sim_1.npy"),
        ("no_substructure", "no_sub_sim_2.npy"),
        ("subhalo", "cdm_sim_0.npy"),
        ("subhalo", "cdm_sim_1.npy"),
        ("subhalo", "cdm_sim_2.npy"),
        ("vortex", "axion_sim_0.npy"),
        ("vortex", "axion_sim_1.npy"),
        ("vortex", "axion_sim_2.npy"),
    ]
    assert all(r.split is None for r in records)
    assert scan_folder(tmp_path) == records  # deterministic

    images, kept, skipped = load_images(records, progress=False)
    assert skipped == [] and len(images) == len(kept) == 9
    for image, rec in zip(images, kept):
        assert image.dtype == np.float32 and image.shape == (150, 150)
        assert image.min() == 0.0 and image.max() == 1.0
        if rec.label == "vortex":
            assert rec.meta["axion_mass"] == masses[Path(rec.path).name]
        else:
            assert "axion_mass" not in rec.meta
    raw = np.load(records[0].path)
    np.testing.assert_array_equal(images[0], _minmax(raw))


def test_ml4sci_common_test_layout_squeezes_channel(tmp_path):
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for folder in ("no", "sphere", "vort"):
            for n in range(2):
                _save(tmp_path / split / folder / f"{n}.npy", rng.random((1, 150, 150)))
    records = scan_folder(tmp_path)
    assert len(records) == 12
    assert [r.split for r in records] == ["train"] * 6 + ["validation"] * 6
    assert [r.label for r in records[:6]] == ["no_substructure"] * 2 + ["subhalo"] * 2 + ["vortex"] * 2
    images, kept, _ = load_images(records, normalize="none", progress=False)
    assert {im.shape for im in images} == {(150, 150)}
    np.testing.assert_array_equal(images[0], np.load(kept[0].path)[0].astype(np.float32))


def test_alias_folders_any_case_nested_under_split_folders(tmp_path):
    rng = np.random.default_rng(2)
    _save(tmp_path / "Test" / "No Sub" / "a" / "x.npy", rng.random((32, 32)))
    _save(tmp_path / "Test" / "CDM" / "y.npy", rng.random((32, 32, 1)))  # (H, W, 1)
    _save(tmp_path / "Test" / "Vortices" / "z.npy", rng.random((32, 32)))
    _save(tmp_path / "Validation" / "nosub" / "w.npy", rng.random((32, 32)))
    _save(tmp_path / "Validation" / "Spherical" / "v.npy", rng.random((32, 32)))
    _save(tmp_path / "Validation" / "VORT" / "u.npy", rng.random((32, 32)))
    (tmp_path / "Test" / "logs").mkdir()  # a folder without images is not data
    records = scan_folder(tmp_path)
    assert [(r.split, r.label, Path(r.path).name) for r in records] == [
        ("validation", "no_substructure", "w.npy"),
        ("validation", "subhalo", "v.npy"),
        ("validation", "vortex", "u.npy"),
        ("test", "no_substructure", "x.npy"),
        ("test", "subhalo", "y.npy"),
        ("test", "vortex", "z.npy"),
    ]
    images, _, _ = load_images(records, progress=False)
    assert all(im.shape == (32, 32) for im in images)


def test_metadata_csv_is_merged(tmp_path):
    rng = np.random.default_rng(3)
    _save(tmp_path / "cdm" / "a.npy", _counts(rng, (16, 16)))
    _save_axion(tmp_path / "axion" / "b.npy", _counts(rng, (16, 16)), 2.5e-23)
    (tmp_path / "metadata.csv").write_text(
        "path,label,preset,seed,n_subhalos,subhalo_mass_total,axion_mass,exposure_time\n"
        "cdm/a.npy,subhalo,model_i,7,25,3.5e9,,1500.5\n"
        "axion/b.npy,vortex,model_i,7,100,3e10,2.5e-23,\n"
    )
    by_name = {Path(r.path).name: r for r in scan_folder(tmp_path)}
    assert by_name["a.npy"].meta == {
        "label": "subhalo",
        "preset": "model_i",
        "seed": 7,
        "n_subhalos": 25,
        "subhalo_mass_total": 3.5e9,
        "axion_mass": None,
        "exposure_time": 1500.5,
    }
    assert by_name["b.npy"].meta["axion_mass"] == 2.5e-23 and by_name["b.npy"].meta["exposure_time"] is None


# --------------------------------------------------------------------------------------------------- folder errors
def test_unknown_class_folder_is_named_with_accepted_aliases(tmp_path):
    _save(tmp_path / "cdm" / "a.npy", np.random.default_rng(0).random((16, 16)))
    _save(tmp_path / "lenses" / "b.npy", np.random.default_rng(1).random((16, 16)))
    _save(tmp_path / "cdm2" / "c.npy", np.random.default_rng(2).random((16, 16)))
    with pytest.raises(LensHFError) as err:
        scan_folder(tmp_path)
    msg = str(err.value)
    assert "'lenses'" in msg and "'cdm2'" in msg and "axion" in msg and "no_sub" in msg and "\n" not in msg


def test_only_unknown_folders(tmp_path):
    _save(tmp_path / "stuff" / "a.npy", np.zeros((16, 16)))
    with pytest.raises(LensHFError, match="unknown class folder name.*'stuff'"):
        scan_folder(tmp_path)
    _save(
        tmp_path / "dataset" / "train" / "no" / "a.npy", np.zeros((16, 16))
    )  # an unzipped archive one level down
    with pytest.raises(LensHFError, match=r"did you mean .*dataset\?"):
        scan_folder(tmp_path)


def test_empty_missing_and_file_roots(tmp_path):
    (tmp_path / "empty" / "cdm").mkdir(parents=True)
    with pytest.raises(LensHFError, match="no image files found"):
        scan_folder(tmp_path / "empty")
    with pytest.raises(LensHFError, match="no such folder"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "file.npy").write_bytes(b"")
    with pytest.raises(LensHFError, match="not a folder"):
        scan_folder(tmp_path / "file.npy")


def test_images_directly_in_root(tmp_path):
    _save(tmp_path / "axion.npy", np.zeros((16, 16)))
    with pytest.raises(LensHFError, match="directly in the folder without class folders"):
        scan_folder(tmp_path)


def test_split_and_class_folders_mixed(tmp_path):
    _save(tmp_path / "train" / "cdm" / "a.npy", np.zeros((16, 16)))
    _save(tmp_path / "cdm" / "b.npy", np.zeros((16, 16)))
    with pytest.raises(LensHFError, match="mixes split folders"):
        scan_folder(tmp_path)


def test_aliases_cover_the_reference_names():
    for name in (
        "no",
        "no_sub",
        "nosub",
        "no sub",
        "sphere",
        "cdm",
        "spherical",
        "vort",
        "axion",
        "vortices",
    ):
        assert name in ALIASES


# --------------------------------------------------------------------------------------------------- bad files
def test_hostile_pickle_is_refused_and_not_executed(tmp_path):
    # The payload really is hostile: an unrestricted unpickler runs it.
    proof = tmp_path / "proof_marker"
    buf = io.BytesIO()
    _hostile_npy(buf, proof)
    buf.seek(0)
    np.lib.format.read_magic(buf)
    np.lib.format.read_array_header_1_0(buf)
    loaded = pickle.load(buf)
    loaded[0].close()
    assert proof.exists()

    marker = tmp_path / "marker"
    rng = np.random.default_rng(0)
    _save(tmp_path / "data" / "axion" / "good.npy", rng.random((16, 16)))
    _hostile_npy(tmp_path / "data" / "axion" / "evil.npy", marker)
    records = scan_folder(tmp_path / "data")
    with pytest.raises(LensFileError, match=r"evil\.npy.*refused"):
        load_images(records, progress=False)
    images, kept, skipped = load_images(records, skip_bad=True, progress=False)
    assert [Path(r.path).name for r in kept] == ["good.npy"] and len(images) == 1
    assert [Path(p).name for p, _ in skipped] == ["evil.npy"] and "refused" in skipped[0][1]
    assert not marker.exists()


def test_skip_bad_reports_each_skipped_file(tmp_path):
    rng = np.random.default_rng(4)
    _save(tmp_path / "no" / "good.npy", rng.random((16, 16)))
    (tmp_path / "no" / "truncated.npy").write_bytes(np.lib.format.magic(1, 0) + b"garbage")
    _save(tmp_path / "no" / "const.npy", np.ones((16, 16)))
    _save(tmp_path / "no" / "rgb.npy", rng.random((16, 16, 3)))
    records = scan_folder(tmp_path)
    images, kept, skipped = load_images(records, skip_bad=True, progress=False)
    assert [Path(r.path).name for r in kept] == ["good.npy"]
    reasons = {Path(p).name: reason for p, reason in skipped}
    assert set(reasons) == {"truncated.npy", "const.npy", "rgb.npy"}
    assert "constant" in reasons["const.npy"] and "colour" in reasons["rgb.npy"]


def test_constant_and_nan_images_raise(tmp_path):
    _save(tmp_path / "a" / "cdm" / "const.npy", np.full((16, 16), 3.0))
    with pytest.raises(LensFileError, match=r"const\.npy: constant image"):
        load_images(scan_folder(tmp_path / "a"), progress=False)
    nan = np.random.default_rng(0).random((16, 16))
    nan[3, 4] = np.nan
    _save(tmp_path / "b" / "cdm" / "nan.npy", nan)
    with pytest.raises(LensFileError, match=r"nan\.npy: image contains 1 NaN"):
        load_images(scan_folder(tmp_path / "b"), progress=False)


def test_mixed_sizes_name_sizes_and_examples(tmp_path):
    rng = np.random.default_rng(5)
    _save(tmp_path / "cdm" / "big.npy", rng.random((150, 150)))
    _save(tmp_path / "cdm" / "big2.npy", rng.random((150, 150)))
    _save(tmp_path / "axion" / "small.npy", rng.random((64, 64)))
    with pytest.raises(LensHFError) as err:
        load_images(scan_folder(tmp_path), progress=False)
    msg = str(err.value)
    assert "150x150" in msg and "64x64" in msg and "big.npy" in msg and "small.npy" in msg


def test_all_files_bad(tmp_path):
    recs = [Record(path=str(tmp_path / f"missing{i}.npy"), label="subhalo") for i in range(2)]
    with pytest.raises(LensHFError, match="none of the 2 image files"):
        load_images(recs, skip_bad=True, progress=False)
