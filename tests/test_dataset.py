"""Building, saving and loading lensing DatasetDicts (lens_hf.data.dataset)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from hostile_files import CANARY

from lens_hf.data.dataset import (
    FEATURES,
    MARKER_FILE,
    build_from_folder,
    build_from_simulation,
    load_any,
    parse_splits,
    save_dataset,
    stratified_split,
)
from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.processing.file_io import LensFileError
from lens_hf.utils import temporary_name

ROOT = Path(__file__).resolve().parents[1]
PER_CLASS = 10


def _minmax(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    return ((a - a.min()) / (a.max() - a.min())).astype(np.float32)


@pytest.fixture(scope="module")
def model_i_folder(tmp_path_factory) -> tuple[Path, dict[str, tuple[np.ndarray, str, float | None]]]:
    """A Model I-layout archive: 10 files per class of 150x150 int64 counts; axion files hold [image, mass]."""
    root = tmp_path_factory.mktemp("model_i")
    rng = np.random.default_rng(11)
    truth = {}
    for label, folder in (("no_substructure", "no_sub"), ("subhalo", "cdm"), ("vortex", "axion")):
        (root / folder).mkdir()
        for i in range(PER_CLASS):
            image = rng.poisson(30.0, size=(150, 150)).astype(np.int64)
            path = root / folder / f"{folder}_sim_{1000 + i}.npy"
            if folder == "axion":
                mass = float(10.0 ** rng.uniform(-24, -22))
                arr = np.empty(2, dtype=object)
                arr[0], arr[1] = image, mass
                np.save(path, arr, allow_pickle=True)
            else:
                mass = None
                np.save(path, image)
            truth[f"{folder}/{path.name}"] = (_minmax(image), label, mass)  # as the path column holds it
    return root, truth


@pytest.fixture(scope="module")
def saved(model_i_folder, tmp_path_factory):
    root, _ = model_i_folder
    dd, skipped = build_from_folder(root, splits="0.8,0.1,0.1", seed=3, progress=False)
    out = tmp_path_factory.mktemp("saved") / "ds"
    save_dataset(dd, out, info={"source": str(root), "normalization": "minmax", "seed": 3})
    return dd, skipped, out


def _check_rows(ds: datasets.Dataset, truth) -> None:
    for row in ds:
        image = np.asarray(row["image"])
        expected, label, mass = truth[row["path"]]
        assert image.dtype == np.float32 and image.shape == (150, 150)
        np.testing.assert_array_equal(image, expected)
        assert LABELS[row["label"]] == label
        assert row["axion_mass"] == mass


# --------------------------------------------------------------------------------------------------- build + save
def test_model_i_folder_to_saved_dataset(model_i_folder, saved):
    _, truth = model_i_folder
    dd, skipped, out = saved
    assert skipped == []
    assert {name: len(ds) for name, ds in dd.items()} == {"train": 24, "validation": 3, "test": 3}
    reopened = datasets.load_from_disk(str(out))
    assert isinstance(reopened, datasets.DatasetDict)
    assert reopened["train"].features == FEATURES
    paths = [p for ds in reopened.values() for p in ds["path"]]
    assert sorted(paths) == sorted(truth)  # one row per file, none twice, relative to the source folder
    for ds in reopened.values():
        _check_rows(ds, truth)
    vortex_masses = [m for ds in reopened.values() for m, y in zip(ds["axion_mass"], ds["label"]) if y == 2]
    assert len(vortex_masses) == PER_CLASS and all(
        m is not None and 1e-24 <= m <= 1e-22 for m in vortex_masses
    )
    info = json.loads((out / MARKER_FILE).read_text())
    assert info["splits"] == {"train": 24, "validation": 3, "test": 3} and info["image_size"] == [150, 150]
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_parquet_shards_round_trip_bit_identical(model_i_folder, saved, tmp_path):
    _, truth = model_i_folder
    dd, _, out = saved
    shards = sorted(p.name for p in (out / "data").iterdir())
    assert shards == [f"{s}-00000-of-00001.parquet" for s in ("test", "train", "validation")]
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    from_parquet = datasets.Dataset(table)
    assert from_parquet.features == FEATURES
    _check_rows(from_parquet, truth)
    assert from_parquet["path"] == dd["train"]["path"]

    hub_style = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert {name: len(ds) for name, ds in hub_style.items()} == {"train": 24, "validation": 3, "test": 3}
    assert hub_style["test"].features == FEATURES
    _check_rows(hub_style["test"], truth)
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "path: data/train-*" in card


def test_stratified_split_counts_and_determinism(model_i_folder):
    root, _ = model_i_folder
    dd, _ = build_from_folder(root, splits="6,2,2", seed=0, progress=False)
    for ds in dd.values():
        labels = np.asarray(ds["label"])
        assert np.bincount(labels, minlength=3).tolist() == [len(ds) // 3] * 3
        assert list(labels) == sorted(labels)  # rows ordered by label, then path
    assert [len(dd[s]) for s in ("train", "validation", "test")] == [18, 6, 6]
    again, _ = build_from_folder(root, splits="6,2,2", seed=0, progress=False)
    assert again["test"]["path"] == dd["test"]["path"]
    other, _ = build_from_folder(root, splits="6,2,2", seed=1, progress=False)
    assert other["train"]["path"] != dd["train"]["path"]
    all_paths = [p for ds in dd.values() for p in ds["path"]]
    assert len(set(all_paths)) == 30

    frac = stratified_split(["vortex"] * 7 + ["subhalo"] * 13, {"train": 0.5, "test": 0.5}, seed=0)
    labels = ["vortex"] * 7 + ["subhalo"] * 13
    assert sum(labels[i] == "subhalo" for i in frac["train"]) == 7  # floor(6.5 + 0.5)
    assert sorted(frac["train"] + frac["test"]) == list(range(20))


def test_split_counts_larger_than_class(model_i_folder):
    root, _ = model_i_folder
    with pytest.raises(LensHFError, match="has 10 images but the splits ask for 12 per class"):
        build_from_folder(root, splits="10,1,1", progress=False)


def test_parse_splits():
    assert parse_splits("0.8,0.1,0.1") == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert parse_splits("800,100,100") == {"train": 800, "validation": 100, "test": 100}
    assert parse_splits("train=0.9, val=0.1") == {"train": 0.9, "validation": 0.1}
    assert parse_splits("0.9,0.0,0.1") == {"train": 0.9, "test": 0.1}
    for bad, match in [
        ("0.8,100", "mix of counts and fractions"),
        ("0.9,0.2", "sum to 1.1"),
        ("a,b", "not a number"),
        ("1,2,3,4", "at most 3"),
        ("train=1,dev=1", "unknown split name 'dev'"),
        ("0,0", "every split is empty"),
        ("1.5", "not between 0 and 1"),
    ]:
        with pytest.raises(LensHFError, match=match):
            parse_splits(bad)


def test_split_folders_are_kept_and_metadata_columns(tmp_path):
    rng = np.random.default_rng(7)
    for split, n in (("train", 3), ("val", 1)):
        for folder in ("no", "sphere", "vort"):
            (tmp_path / split / folder).mkdir(parents=True)
            for i in range(n):
                np.save(tmp_path / split / folder / f"{i}.npy", rng.random((1, 150, 150)))
    (tmp_path / "metadata.csv").write_text(
        "path,label,preset,seed,index,axion_mass,n_subhalos,subhalo_mass_total,source_x,source_y,exposure_time\n"
        "train/vort/0.npy,vortex,model_i,5,0,3.2e-23,100,3e10,0.1,-0.2,2000.0\n"
        "train/sphere/0.npy,subhalo,model_i,5,0,,25,4.5e9,0.3,0.05,\n"
    )
    dd, _ = build_from_folder(tmp_path, progress=False)
    assert {name: len(ds) for name, ds in dd.items()} == {"train": 9, "validation": 3}
    rows = {r["path"]: r for r in dd["train"]}
    vort = rows["train/vort/0.npy"]
    assert vort["axion_mass"] == 3.2e-23 and vort["n_subhalos"] == 100 and vort["preset"] == "model_i"
    assert vort["seed"] == 5 and vort["source_x"] == pytest.approx(0.1) and vort["exposure_time"] == 2000.0
    sphere = rows["train/sphere/0.npy"]
    assert (
        sphere["axion_mass"] is None
        and sphere["subhalo_mass_total"] == 4.5e9
        and sphere["exposure_time"] is None
    )
    assert rows["train/no/1.npy"]["n_subhalos"] is None
    with pytest.raises(LensHFError, match="already has split folders"):
        build_from_folder(tmp_path, splits="0.5,0.5", progress=False)


def test_skip_bad_in_build(model_i_folder, tmp_path):
    root, _ = model_i_folder
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    bad = copy / "cdm" / "cdm_sim_1003.npy"
    bad.write_bytes(bad.read_bytes()[:1000])  # truncated download
    with pytest.raises(LensFileError, match="cdm_sim_1003.npy"):
        build_from_folder(copy, progress=False)
    dd, skipped = build_from_folder(copy, skip_bad=True, progress=False)
    assert [p for p, _ in skipped] == [str(bad)]
    assert sum(len(ds) for ds in dd.values()) == 29


# --------------------------------------------------------------------------------------------------- save guards
def test_save_refuses_foreign_folder_and_replaces_own(saved, tmp_path):
    dd, _, _ = saved
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    with pytest.raises(LensHFError, match="not a lens_hf dataset"):
        save_dataset(dd, foreign, info={})
    assert (foreign / "keep.txt").read_text() == "user data"

    out = tmp_path / "out"
    save_dataset(dd, out, info={"seed": 1})
    save_dataset(datasets.DatasetDict({"train": dd["train"].select(range(2))}), out, info={"seed": 2})
    assert json.loads((out / MARKER_FILE).read_text())["seed"] == 2
    assert len(datasets.load_from_disk(str(out))["train"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "out"]


# --------------------------------------------------------------------------------------------------- load_any
def test_load_any_sources(model_i_folder, saved, tmp_path):
    root, truth = model_i_folder
    _, _, out = saved
    whole = load_any(out)
    assert isinstance(whole, datasets.DatasetDict) and set(whole) == {"train", "validation", "test"}
    assert len(load_any(out, split="val")) == 3
    with pytest.raises(LensHFError, match=r"no split 'dev' \(available: train, validation, test\)"):
        load_any(out, split="dev")

    parquet_only = tmp_path / "pq"
    shutil.copytree(out / "data", parquet_only / "data")
    from_parquet = load_any(parquet_only, split="test", cache_dir=tmp_path / "cache")
    assert len(from_parquet) == 3
    _check_rows(from_parquet, truth)

    raw = load_any(root, progress=False)
    assert list(raw) == ["test"] and len(raw["test"]) == 30
    _check_rows(raw["test"], truth)
    with pytest.raises(LensHFError, match="no such file or folder"):
        load_any(tmp_path / "nothing")


@pytest.mark.skipif(
    importlib.util.find_spec("lens_hf.data.simulate") is None, reason="simulator not available"
)
def test_build_from_simulation_matches_written_archive(tmp_path):
    from lens_hf.data.simulate import write_deeplense

    dd = build_from_simulation("model_ii", 3, seed=0, splits="2,0,1", progress=False, workers=1)
    assert {name: len(ds) for name, ds in dd.items()} == {"train": 6, "test": 3}
    for ds in dd.values():
        assert ds.features == FEATURES
        for row in ds:
            image = np.asarray(row["image"])
            assert image.dtype == np.float32 and image.shape == (64, 64)
            assert image.min() == 0.0 and image.max() == 1.0
            assert row["path"] is None and row["preset"] == "model_ii" and row["seed"] == 0
            assert (row["axion_mass"] is not None) == (row["label"] == 2)
            assert row["n_subhalos"] == {0: 0, 1: 25, 2: 0}[row["label"]]  # CDM subhalos only

    # The same images written as a DeepLense archive and read back (metadata.csv merged) give the same rows.
    write_deeplense(tmp_path / "sim", "model_ii", 3, 0, workers=1, progress=False)
    from_disk, skipped = build_from_folder(tmp_path / "sim", splits="3", progress=False)
    assert skipped == [] and len(from_disk["train"]) == 9
    in_memory = {(r["label"], r["source_x"]): r for ds in dd.values() for r in ds}
    for row in from_disk["train"]:
        twin = in_memory[(row["label"], row["source_x"])]
        np.testing.assert_array_equal(np.asarray(row["image"]), np.asarray(twin["image"]))
        for key in (
            "axion_mass",
            "n_subhalos",
            "subhalo_mass_total",
            "source_y",
            "exposure_time",
            "seed",
            "preset",
        ):
            assert row[key] == twin[key], key
        assert (tmp_path / "sim" / row["path"]).is_file()


def test_data_package_imports_no_simulator_eagerly():
    """``import lens_hf.data`` must not pull in lenstronomy: no module-level import of the simulator."""
    import lens_hf.data

    package = Path(lens_hf.data.__file__).parent
    for name in ("__init__.py", "readers.py", "dataset.py"):
        tree = ast.parse((package / name).read_text())
        for node in tree.body:
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(
                m.startswith(("lenstronomy", "lens_hf.data.simulate", "lens_hf.data.presets"))
                for m in modules
            ), name
    assert lens_hf.data.build_from_simulation is build_from_simulation


# --------------------------------------------------------------------------------------------------- leftovers
def _stale(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _filling(out: Path, pid: int) -> bool:
    """True while a temporary folder of process ``pid`` for ``out`` exists and already holds files."""
    for path in out.parent.glob(f".{out.name}.tmp-{pid}-*"):
        try:
            if any(path.iterdir()):
                return True
        except OSError:  # renamed or removed meanwhile
            continue
    return False


def test_kill_9_while_saving_then_the_next_run_cleans_up(tmp_path, cli):
    """``kill -9`` of ``lens-hf build-dataset`` while it writes its temporary folder (hundreds of MB at full
    scale) leaves that folder; the next run writing the same output removes it, and keeps what is not its own:
    another output's temporaries and those of a live process."""
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for folder in ("no_sub", "cdm", "axion"):
        (data / folder).mkdir(parents=True)
        for i in range(150):
            np.save(data / folder / f"{i:03d}.npy", rng.random((150, 150), dtype=np.float32))
    out = tmp_path / "ds"
    live = tmp_path / temporary_name("ds")  # this test process's own: alive
    live.mkdir()
    other = tmp_path / ".other.tmp-1-000000-00000000"
    other.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = ["build-dataset", str(data), "--out", str(out), "--splits", "0.5,0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lens_hf.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        # Wait for the run's own temporary folder to hold data: the save under way, not the short-lived probe
        # folder of the output check made before any work.
        while not _filling(out, proc.pid):
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "the run never started saving"
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    left = [name for name in _stale(out) if name != live.name]
    assert len(left) == 1 and f"-{proc.pid}-" in left[0] and not out.exists()

    result = cli(*args)
    assert result.code == 0, result.err
    assert _stale(out) == [live.name] and other.is_dir()
    assert {k: len(v) for k, v in datasets.load_from_disk(str(out)).items()} == {
        "train": 225,
        "validation": 225,
    }


def test_writing_refuses_non_finite_pixels():
    """The last guard before pixels are written: whatever the path that built them."""
    from lens_hf.data.dataset import _to_dataset, metadata_row

    image = np.ones((8, 8), dtype=np.float32)
    image[2, 3] = np.nan
    with pytest.raises(LensHFError, match="cdm/a.npy: refusing to write"):
        _to_dataset([image], [metadata_row("subhalo", {}, "cdm/a.npy")])


def test_extreme_float32_images_give_finite_datasets(tmp_path, cli):
    """Finite float32 images spanning about +-3e38 once wrote NaN pixels: min-max normalisation is float64."""
    top = np.finfo(np.float32).max
    for k, folder in enumerate(("no_sub", "cdm", "axion")):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(2):
            image = np.random.default_rng(k * 2 + i).uniform(-1, 1, (32, 32)).astype(np.float32) * top
            np.save(tmp_path / "data" / folder / f"{i}.npy", image)
    result = cli("build-dataset", tmp_path / "data", "--out", tmp_path / "ds", "--splits", "1,1")
    assert result.code == 0, result.err
    for ds in datasets.load_from_disk(str(tmp_path / "ds")).values():
        for row in ds:
            pixels = np.asarray(row["image"])
            assert np.isfinite(pixels).all() and pixels.min() == 0.0 and pixels.max() == 1.0


def test_dataset_record_and_card_hold_no_local_paths(tmp_path, cli, monkeypatch):
    """``lens_hf_dataset.json``, the card and the path column name files relative to the source folder; the
    recorded command has no absolute paths and no secrets."""
    data = tmp_path / "deep" / "local" / "data"
    rng = np.random.default_rng(1)
    for folder in ("no_sub", "cdm", "axion"):
        (data / folder).mkdir(parents=True)
        for i in range(2):
            np.save(data / folder / f"{i}.npy", rng.random((16, 16)))
    (data / "cdm" / "bad.npy").write_bytes(b"junk")
    monkeypatch.chdir(tmp_path / "deep")
    out = tmp_path / "elsewhere" / "ds"
    args = [
        "build-dataset",
        str(data),
        "--out",
        str(out),
        "--splits",
        "1,1",
        "--skip-bad",
        "--token",
        "hf_abcdefgh123",
    ]
    monkeypatch.setattr(sys, "argv", ["lens-hf", *args])  # what the command records
    result = cli(*args[:-2])
    assert result.code == 0, result.err
    record = json.loads((out / MARKER_FILE).read_text())
    assert record["source"] == "local/data"
    assert record["skipped"] == [{"path": "cdm/bad.npy", "error": record["skipped"][0]["error"]}]
    assert (
        record["command"] == "lens-hf build-dataset local/data --out ds --splits 1,1 --skip-bad --token ***"
    )
    texts = [(out / MARKER_FILE).read_text(), (out / "README.md").read_text()]
    for ds in datasets.load_from_disk(str(out)).values():
        assert all(p.count("/") == 1 and not p.startswith("/") for p in ds["path"])
    for name in pq.ParquetFile(next((out / "data").glob("*.parquet"))).read().column("path").to_pylist():
        assert not Path(name).is_absolute()
    for text in texts:
        assert str(tmp_path) not in text


def test_metadata_errors_never_quote_the_file(tmp_path):
    for folder in ("no_sub", "cdm"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "a.npy", np.random.default_rng(0).random((16, 16)))
    meta = tmp_path / "metadata.csv"
    meta.write_text(f"{CANARY},label\ncdm/a.npy,subhalo\n")
    with pytest.raises(LensHFError) as info:
        build_from_folder(tmp_path, splits="1", progress=False)
    assert "no 'path' column (2 column(s))" in str(info.value) and CANARY not in str(info.value)
    meta.write_text(f"path,seed\ncdm/a.npy,{CANARY}\n")
    with pytest.raises(LensHFError) as info:
        build_from_folder(tmp_path, splits="1", progress=False)
    assert "metadata seed is not a number" in str(info.value) and CANARY not in str(info.value)
    meta.write_bytes(b"path,seed\ncdm/a.npy,\xff\xfe\n")
    with pytest.raises(LensHFError, match="not UTF-8 text"):
        build_from_folder(tmp_path, splits="1", progress=False)


def test_simulate_hf_removes_what_a_killed_save_left(tmp_path, cli):
    """A killed ``simulate --format hf`` leaves its temporary folder, or (killed between the two renames of a
    replacement) the previous dataset set aside with no dataset in place: the next run cleans up first."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(proc.stdout)
    out = tmp_path / "sim"

    def left_by_dead(kind: str) -> Path:
        head, _, host, token = temporary_name(out.name, kind).rsplit("-", 3)
        path = tmp_path / f"{head}-{dead}-{host}-{token}"
        path.mkdir()
        (path / "data-00000-of-00001.arrow").write_bytes(bytes(100_000))
        return path

    half_written = left_by_dead("tmp")
    set_aside = left_by_dead("old")
    (set_aside / MARKER_FILE).write_text("{}")
    args = ("simulate", "--preset", "model_ii", "--per-class", "1", "--format", "hf", "--splits", "1")
    result = cli(*args, "--workers", "1", "--out", out)
    assert result.code == 0, result.err
    assert [p.name for p in tmp_path.iterdir()] == ["sim"]
    assert json.loads((out / MARKER_FILE).read_text())["splits"] == {"train": 3}
    assert not half_written.exists() and not set_aside.exists()


def test_stratified_split_of_a_class_does_not_depend_on_the_other_classes():
    from lens_hf.data.dataset import stratified_split

    spec = {"train": 0.8, "validation": 0.1, "test": 0.1}
    few = ["vortex"] * 50 + ["subhalo"] * 20
    more = ["vortex"] * 50 + ["subhalo"] * 40  # more subhalo images, same vortex images (indices 0-49)
    a, b = stratified_split(few, spec, seed=3), stratified_split(more, spec, seed=3)
    for name in spec:
        assert [i for i in a[name] if i < 50] == [i for i in b[name] if i < 50]
    assert sorted(sum(a.values(), [])) == list(range(70))
