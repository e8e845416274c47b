"""The accuracy benchmark end to end in --quick mode: two models (the distilled DeiT learns from the ResNet
trained just before it), JSON and markdown results, and --resume keeping finished models."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from lens_hf.labels import LABELS

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {
    "model",
    "preset",
    "status",
    "parameters",
    "gflops_forward_per_image",
    "gflops_train_per_image",
    "train_images_per_s",
    "train_images_seen",
    "steps",
    "epochs",
    "stopped_by",
    "accuracy",
    "roc_auc_macro",
    "roc_auc_micro",
    "roc_auc_per_class",
    "confusion_matrix",
    "num_test_images",
}


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "benchmarks" / "bench_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_accuracy_benchmark_quick(tmp_path):
    bench = load_bench()
    out, work = tmp_path / "results", tmp_path / "work"
    args = ["--quick", "--presets", "deit-tiny-distilled,resnet-18", "--minutes-per-model", "0.03"]
    args += ["--threads", "1", "--sim-workers", "1", "--out", str(out), "--work", str(work)]
    bench.main(args)

    report = json.loads((out / "accuracy_quick.json").read_text())
    assert {"date", "command", "machine", "settings", "data", "results"} <= set(report)
    assert report["command"].startswith("python benchmarks/bench_accuracy.py --quick")
    assert report["data"]["test"]["images"] == 4 * len(LABELS)
    assert report["data"]["test"]["per_class"] == {label: 4 for label in LABELS}
    rows = {r["model"]: r for r in report["results"]}
    # resnet-18 runs first: it is the teacher of the distilled DeiT
    assert [r["model"] for r in report["results"]] == ["resnet-18", "deit-tiny-distilled"]
    assert rows["deit-tiny-distilled"]["teacher"] == rows["resnet-18"]["model_dir"]
    for row in rows.values():
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert row["status"] == "ok" and row["stopped_by"] == "budget"
        assert row["steps"] >= 1 and row["train_images_per_s"] > 0
        assert row["num_test_images"] == 4 * len(LABELS)
        assert set(row["roc_auc_per_class"]) == set(LABELS)
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["roc_auc_macro"] <= 1.0
        assert row["parameters"] > 0 and row["gflops_train_per_image"] > row["gflops_forward_per_image"] > 0
        assert row["train_seconds"] < 0.03 * 60 + 30  # stopped near the budget, not by the epoch cap
    assert "cls_head" in rows["deit-tiny-distilled"] and "dist_head" in rows["deit-tiny-distilled"]

    markdown = (out / "accuracy_quick.md").read_text()
    assert report["command"] in markdown.splitlines()[2]
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 2  # header + one row per model
    assert {line.split("|")[1].strip() for line in table[1:]} == {"resnet-18", "deit-tiny-distilled"}

    # --resume keeps both finished models; changed settings are refused
    bench.main([*args, "--resume"])
    again = json.loads((out / "accuracy_quick.json").read_text())
    assert [r["wall_seconds"] for r in again["results"]] == [r["wall_seconds"] for r in report["results"]]
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*args, "--minutes-per-model", "0.1", "--resume"])
    assert exit_info.value.code == 2


def test_make_report_writes_the_report_and_compares_models(tmp_path):
    spec = importlib.util.spec_from_file_location("make_report", ROOT / "benchmarks" / "make_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    docs, work = tmp_path / "docs", tmp_path / "work"
    shipped = ROOT / "checkpoints" / "vit-spt-lsa-model-i"
    args = ["--simulate-test", "2", "--test-seed", "5", "--work", str(work), "--docs", str(docs)]
    assert report.main([*args, "--also", f"again={shipped}", "--tta", "d4"]) == 0

    text = (docs / "results.md").read_text()
    for figure in ("examples.png", "attention_maps.png", "shipped/roc.png", "shipped/confusion_matrix.png"):
        assert (docs / "figures" / figure).stat().st_size > 1000
        assert f"figures/{figure}" in text
    metrics = json.loads((docs / "figures" / "shipped" / "metrics.json").read_text())
    again = json.loads((docs / "figures" / "also-again" / "metrics.json").read_text())
    assert metrics["num_samples"] == again["num_samples"] == 6
    assert again["roc_auc_macro"] == pytest.approx(metrics["roc_auc_macro"])
    rows = [line for line in text.splitlines() if line.startswith(("| shipped |", "| again |"))]
    assert len(rows) == 2 and f"{metrics['roc_auc_macro']:.4f}" in rows[1]
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("| model | folder |")))
    assert lines[header].count("|") == lines[header + 1].count("|") == rows[0].count("|")
    assert "min of training on" in rows[0]
    assert "## What is still missing" in text and "official DeepLense archives" in text
    assert "a seed the model never saw; not versioned, `--simulate-test 2 --test-seed 5` rebuilds it)" in text
    # where the vortex errors are, by axion mass: every test vortex counted once per evaluation
    by_mass = json.loads((docs / "figures" / "shipped" / "vortex_recall_by_mass.json").read_text())
    assert set(by_mass) == {"without TTA", "--tta d4"}
    for rows in by_mass.values():
        assert sum(r["vortices"] for r in rows) == 2 and all(0 <= r["recall"] <= 1 for r in rows)
        assert all(-24 <= r["log10_axion_mass_low"] < r["log10_axion_mass_high"] <= -22 for r in rows)
    assert (docs / "figures" / "shipped" / "vortex_recall_by_mass.png").stat().st_size > 1000
    assert "| log10 m_a (eV) | vortices | recall, without TTA | recall, --tta d4 |" in text
    for found in (docs / "figures").rglob("*.json"):  # the report publishes no local path
        assert str(ROOT) not in found.read_text() and str(tmp_path) not in found.read_text(), found
    # D4 test-time augmentation beside the plain numbers, and both beside the published results
    tta = json.loads((docs / "figures" / "shipped-tta" / "metrics.json").read_text())
    assert tta["tta"] == "d4" and tta["num_samples"] == 6
    assert f"| **macro** | **{metrics['roc_auc_macro']:.4f}** | **{tta['roc_auc_macro']:.4f}** |" in text
    assert (
        f"| **lens_hf shipped** | from scratch | lens_hf simulation, 2/class, seed 5 | "
        f"**{metrics['roc_auc_macro']:.4f}** | **{tta['roc_auc_macro']:.4f}** |" in text
    )
    assert (
        "| CoAtNet-nano | ImageNet-pretrained | official DeepLense Model I, 5,000/class | 0.9955 | |" in text
    )
    # Every committed benchmark table is in the report, and a study's plain-words finding with it.
    for md in sorted((ROOT / "benchmarks" / "results").rglob("*.md")):
        if md.name.endswith("_answer.md"):  # no table: shown inside its study's table file
            assert md.read_text().strip().splitlines()[0] in text, md.name
            continue
        first_row = next(line for line in md.read_text().splitlines() if line.startswith("| "))
        assert first_row in text, md.name

    with pytest.raises(SystemExit):
        report.main([*args, "--also", "no-folder"])

    # --tables-only rewrites only the benchmark tables, from benchmarks/results/, without evaluating.
    head, bench = text.split("\n## Benchmarks\n")
    (docs / "results.md").write_text(
        head
        + "\n## Benchmarks\n\nstale\n\n## Published reference numbers\n\nkept\n\n"
        + "## What is still missing\n\n- stale item\n"
    )
    assert report.main(["--tables-only", "--docs", str(docs)]) == 0
    refreshed = (docs / "results.md").read_text()
    note = f"{report.REFRESHED}{datetime.date.today().isoformat()} (`python benchmarks/make_report.py --tables-only`)."
    assert refreshed.count(note) == 1 and refreshed.replace(note + "\n\n", "", 1).startswith(head)
    assert "stale" not in refreshed and "\nkept\n" in refreshed
    # the list of what is missing follows the committed results too
    missing = report.missing_section(ROOT / "benchmarks" / "results")
    assert refreshed.endswith("## What is still missing\n\n" + missing + "\n") and missing.startswith("- ")
    assert all(line in refreshed for line in bench.split("## Published reference numbers")[0].splitlines())
    with pytest.raises(SystemExit, match="not found"):
        report.main(["--tables-only", "--docs", str(tmp_path / "nowhere")])


def test_report_says_when_its_tables_were_refreshed():
    """The refresh line goes after the "Generated by" paragraph once, and a later refresh replaces it."""
    report = _load_benchmark("make_report")
    head = "# lens_hf results\n\nGenerated by `make_report.py` on 2026-01-01.\n\n## The shipped model\n\n"
    once = report.refreshed_note(head, "2026-02-02")
    assert once == (
        "# lens_hf results\n\nGenerated by `make_report.py` on 2026-01-01.\n\n"
        "Benchmark tables refreshed on 2026-02-02 (`python benchmarks/make_report.py --tables-only`)."
        "\n\n## The shipped model\n\n"
    )
    twice = report.refreshed_note(once, "2026-03-03")
    assert twice == once.replace("2026-02-02", "2026-03-03") and twice.count("refreshed on") == 1
    assert report.refreshed_note("# title", "2026-02-02").endswith("--tables-only`).\n\n")


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _tiny_regressor(folder):
    """A one-layer SPT+LSA axion-mass regressor on 32 px inputs, saved to ``folder``."""
    from lens_hf.models.factory import create_model
    from lens_hf.processing import LensImageProcessor, save_model_folder
    from lens_hf.processing.targets import TargetScaling

    torch.manual_seed(0)
    model = create_model(
        "vit-spt-lsa-tiny",
        image_size=32,
        task="regression",
        target=TargetScaling("axion_mass", "log10", -23.0, 0.6),
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    processor = LensImageProcessor(size={"height": 32, "width": 32})
    return save_model_folder(model, processor, folder)


def test_axion_mass_benchmark_scores_a_regressor_beside_the_published_rows(tmp_path):
    bench = _load_benchmark("axion_mass")
    folder = _tiny_regressor(tmp_path / "regressor")
    report = bench.main(
        [
            "--model",
            f"model_ii={folder}",
            "--per-class",
            "3",
            "--work",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "out"),
            "--figures",
            str(tmp_path / "fig"),
        ]
    )
    rows = report["rows"]
    assert [(r["dataset"], r["tta"], r["num_samples"], r["seed"]) for r in rows] == [
        ("model_ii", "none", 3, 9302),
        ("model_ii", "d4", 3, 9302),
    ]
    assert all(0.0 <= r["mae"] <= 2.0 and r["rmse"] >= r["mae"] for r in rows)
    text = (tmp_path / "out" / "axion_mass.md").read_text()
    assert f"| lens_hf | - | **{rows[0]['mae']:.3f}** | - |" in text
    assert "| XResNet18-hybrid | 0.274 | 0.221 | 0.126 |" in text
    assert (tmp_path / "fig" / "axion_mass_model_ii.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        bench.main(["--model", "model_iv=x", "--out", str(tmp_path / "o2")])


def test_axion_mass_switch_rule_chooses_its_threshold_on_the_other_half():
    import numpy as np

    bound = _load_benchmark("axion_mass_bound")
    truth = np.array([-23.95, -23.9, -23.85, -23.82, -22.5, -22.4, -22.2, -22.1])
    # the observer is exact on the light ones and answers -22.0 on the heavy ones; the model the other way round
    light = truth < -23.0
    profile = np.where(light, truth, -22.0)
    model = np.where(light, -22.7, truth)
    thresholds = bound.switch_thresholds(11)  # grid step 0.2 dex: midpoints -23.7, -23.5, ..., -22.3
    np.testing.assert_allclose(thresholds, np.arange(-23.7, -22.2, 0.2))
    out = bound.switch_rule(truth, profile, model, thresholds)
    assert out["thresholds"] == pytest.approx([-23.7, -23.7]) and out["mae"] == pytest.approx(0.0)
    np.testing.assert_allclose(out["answers"], truth)
    # an observer lost on the even-indexed light vortices: their half cannot choose a reason to switch, the
    # model answers them, and the odd half still gets the observer
    profile[0] = profile[2] = -22.0
    out = bound.switch_rule(truth, profile, model, thresholds)
    expected = np.where(light & (np.arange(8) % 2 == 0), -22.7, truth)
    np.testing.assert_allclose(out["answers"], expected)
    assert out["mae"] == pytest.approx(np.abs(expected - truth).mean()) and out["mae"] == pytest.approx(0.3)


def test_blind_profile_observer_finds_source_angle_and_mass_without_the_truth():
    """Started without any true value, the scan finds the source centre and the vortex angle of a noiseless
    image (up to the line's symmetry), and the profile posterior still lands on the true mass."""
    import numpy as np

    from lens_hf.data import simulate
    from lens_hf.data.presets import get_preset

    bound = _load_benchmark("axion_mass_bound")
    preset = get_preset("model_i")
    scene = bound.with_axion_mass(preset, simulate.draw_scene(preset, "vortex", 5, 0), -23.5)
    counts = scene.exposure_time * simulate.noiseless_image(preset, scene)
    found = bound.blind_start(preset, scene, counts, -23.5)
    source = [scene.kwargs_source["center_x"], scene.kwargs_source["center_y"]]
    np.testing.assert_allclose(found[:2], source, atol=0.01)
    turn = (found[2] - bound.vortex_angle(scene)) % np.pi  # the line of masses looks the same turned by pi
    assert min(turn, np.pi - turn) < 0.1  # within half the scan's step (pi / 24): refined past the scan
    # the scene handed over must not steer the fit: move its source and angle far from the image's
    decoy = bound.with_nuisance(preset, scene, -22.2, [-0.3, 0.3, bound.vortex_angle(scene) + 1.2])
    grid = np.linspace(-24.0, -23.0, 3)
    assert bound.profile_posterior_median(preset, decoy, counts, grid, start="blind") == -23.5
    with pytest.raises(ValueError, match="start"):
        bound.profile_posterior_median(preset, scene, counts, grid, start="guess")


def test_blind_report_is_its_own_and_compares_with_the_truth_started_fits(tmp_path):
    """``--start blind`` keeps its fits apart (a truth-started report is not reused for it) and compares its
    answers with the truth-started report's on the vortices both have."""
    import numpy as np

    bound = _load_benchmark("axion_mass_bound")
    truth_report = {
        "grid_points": 3,
        "max_evals": bound.MAX_EVALS,
        "per_image": [
            {"index": 0, "true": -23.1, "known_scene": -23.0, "profile": -24.0},
            {"index": 1, "true": -23.9, "known_scene": -24.0, "profile": -24.0},
        ],
    }
    (tmp_path / "axion_mass_bound_fit.json").write_text(json.dumps(truth_report))
    assert bound.previous_fits(tmp_path / "axion_mass_bound_fit.json", 3, "blind") == {}
    blind_report = {
        **truth_report,
        "start": "blind",
        "per_image": [
            {"index": 0, "true": -23.1, "known_scene": -23.0, "profile": -22.0},
            {"index": 1, "true": -23.9, "known_scene": -24.0, "profile": -24.0},
        ],
    }
    (tmp_path / "axion_mass_bound_fit_blind.json").write_text(json.dumps(blind_report))
    report = bound.main(
        ["--fit-nuisance", "--start", "blind", "--num", "2", "--grid", "3", "--out", str(tmp_path)]
    )
    assert report["start"] == "blind" and report["command"].endswith("--start blind")
    same = report["truth_start"]
    assert same["num_samples"] == 2 and same["mean_abs_difference"] == pytest.approx(1.0)
    assert same["fraction_within_one_grid_step"] == pytest.approx(0.5)  # grid step 1.0 dex
    assert same["mae_blind"] == pytest.approx(0.6) and same["mae_truth_started"] == pytest.approx(0.5)
    text = (tmp_path / "axion_mass_bound_fit_blind.md").read_text()
    assert "started without any true value" in text and "differ by 1.000 dex" in text
    assert (tmp_path / "axion_mass_bound_fit_blind.png").stat().st_size > 1000
    # with a model's answers: the switch rule on both observers' answers, each cross-fitted on its own
    rows = [{**row, "model": -23.5} for row in report["per_image"]]
    again = {"per_image": rows}
    line = bound.compare_with_truth_start(again, tmp_path / "axion_mass_bound_fit.json", 3, -24.0, -22.0)
    thresholds = bound.switch_thresholds(3)
    truth, model = np.array([-23.1, -23.9]), np.array([-23.5, -23.5])
    expected = bound.switch_rule(truth, np.array([-22.0, -24.0]), model, thresholds)["mae"]
    assert again["truth_start"]["switch_mae_blind"] == pytest.approx(expected)
    assert again["truth_start"]["switch_mae_truth_started"] == pytest.approx(
        bound.switch_rule(truth, np.array([-24.0, -24.0]), model, thresholds)["mae"]
    )
    assert f"the switch rule {expected:.3f} (blind)" in line
    # the truth-started report is left as it was
    assert json.loads((tmp_path / "axion_mass_bound_fit.json").read_text()) == truth_report
    with pytest.raises(SystemExit):
        bound.main(["--start", "blind", "--num", "1", "--out", str(tmp_path)])


def test_bootstrap_interval_of_a_mean_error():
    import numpy as np

    bound = _load_benchmark("axion_mass_bound")
    assert bound.bootstrap_ci(np.full(50, 0.3)) == pytest.approx([0.3, 0.3])
    errors = np.abs(np.random.default_rng(1).normal(0.0, 0.3, 400))
    low, high = bound.bootstrap_ci(errors)
    assert low < errors.mean() < high and high - low == pytest.approx(
        2 * 1.96 * errors.std() / np.sqrt(len(errors)), rel=0.15
    )
    assert bound.bootstrap_ci(errors) == [low, high]  # seeded: the same interval every time


def test_axion_mass_bound_recovers_the_mass_of_a_noiseless_image():
    """The ideal observer's posterior median lands on the true grid value when the counts are the expected ones."""
    import numpy as np

    from lens_hf.data import simulate
    from lens_hf.data.presets import get_preset

    bound = _load_benchmark("axion_mass_bound")
    preset = get_preset("model_i")
    grid = np.linspace(-24.0, -22.0, 5)
    scene = bound.with_axion_mass(preset, simulate.draw_scene(preset, "vortex", 5, 0), -23.5)
    assert scene.axion_mass == pytest.approx(10**-23.5)
    assert simulate.vortex_half_length(scene.axion_mass) == pytest.approx(
        abs(scene.kwargs_lens[-1]["center_x"] + 1j * scene.kwargs_lens[-1]["center_y"])
    )
    counts = scene.exposure_time * simulate.noiseless_image(preset, scene)
    assert bound.posterior_median(preset, scene, counts, grid) == -23.5
    assert bound.posterior_median(preset, bound.with_axion_mass(preset, scene, -24.0), counts, grid) == -23.5


def test_profile_observer_fits_the_source_and_still_finds_the_mass(tmp_path):
    """With the source centre and the vortex angle fitted, the noiseless image's mass is still the answer, and
    the fitted parameters reproduce a moved source."""
    import dataclasses

    import numpy as np

    from lens_hf.data import simulate
    from lens_hf.data.presets import get_preset

    bound = _load_benchmark("axion_mass_bound")
    preset = get_preset("model_i")
    scene = bound.with_axion_mass(preset, simulate.draw_scene(preset, "vortex", 5, 0), -23.5)
    angle = bound.vortex_angle(scene)
    moved = bound.with_nuisance(preset, scene, -23.5, [0.1, -0.2, angle + 0.3])
    assert moved.kwargs_source["center_x"] == 0.1 and moved.kwargs_source["center_y"] == -0.2
    assert bound.vortex_angle(moved) == pytest.approx(angle + 0.3)
    counts = scene.exposure_time * simulate.noiseless_image(preset, scene)
    grid = np.linspace(-24.0, -23.0, 3)
    # start the fits away from the truth: the observer's own start is the drawn scene
    shifted = dataclasses.replace(
        scene, kwargs_source={**scene.kwargs_source, "center_x": scene.kwargs_source["center_x"] + 0.01}
    )
    assert bound.profile_posterior_median(preset, shifted, counts, grid) == -23.5
    with pytest.raises(SystemExit):
        bound.main(["--fit-nuisance", "--num", "0", "--out", str(tmp_path)])
    # a longer run reuses the fits of a shorter one on the same grid, and refits on another grid
    report_path = tmp_path / "axion_mass_bound_fit.json"
    report_path.write_text(
        json.dumps(
            {
                "grid_points": 3,
                "max_evals": bound.MAX_EVALS,
                "per_image": [{"index": 0, "true": -23.1, "known_scene": -23.0, "profile": -24.0}],
            }
        )
    )
    report = bound.main(["--fit-nuisance", "--num", "1", "--grid", "3", "--out", str(tmp_path)])
    assert report["per_image"] == [{"index": 0, "true": -23.1, "known_scene": -23.0, "profile": -24.0}]
    assert report["mae"] == pytest.approx(0.9) and report["known_scene_mae"] == pytest.approx(0.1)
    assert "**MAE 0.900 dex**" in (tmp_path / "axion_mass_bound_fit.md").read_text()
    assert bound.previous_fits(report_path, 5) == {}
    # a regression model scored on the same vortices: its column, and the best of it and the fitted observer
    folder = _tiny_regressor(tmp_path / "regressor")
    report = bound.main(
        ["--fit-nuisance", "--num", "1", "--grid", "3", "--out", str(tmp_path), "--model", str(folder)]
    )
    answer = float(bound.model_answers(folder, 1)[0])
    assert report["model"]["mae"] == pytest.approx(abs(answer + 23.1))
    assert report["best_of_both_mae"] == pytest.approx(min(0.9, abs(answer + 23.1)))
    assert report["per_image"][0]["model"] == pytest.approx(answer)
    # one vortex: the switch takes the observer's -24.0 (below the first threshold)
    assert (
        report["switch"]["mae"] == pytest.approx(0.9)
        and len(report["switch"]["thresholds_cross_fitted"]) == 2
    )
    assert report["switch"]["mae_ci95"] == pytest.approx([0.9, 0.9])  # one vortex: nothing to resample
    assert "(bootstrap 95 % interval [0.900, 0.900])" in (tmp_path / "axion_mass_bound_fit.md").read_text()
    assert str(tmp_path) not in json.dumps(report) and report["model"]["path"] == "regressor"
    assert "regressor (model): MAE (dex)" in (tmp_path / "axion_mass_bound_fit.md").read_text()
    assert (tmp_path / "axion_mass_bound_fit.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        bound.main(["--num", "1", "--model", str(folder), "--out", str(tmp_path)])


def test_axion_mass_signal_scores_the_change_a_mass_step_makes(tmp_path):
    """No step, no signal; a step gives a positive one, and summing 2x2 pixels never adds signal."""
    from lens_hf.data import simulate
    from lens_hf.data.presets import get_preset

    sig = _load_benchmark("axion_mass_signal")
    preset = get_preset("model_i")
    scene = sig.bound.with_axion_mass(preset, simulate.draw_scene(preset, "vortex", 5, 0), -23.5)
    assert sig.signal(preset, scene, 0.0)["snr_native"] == 0.0
    moved = sig.signal(preset, scene, 0.2)
    assert moved["log10_axion_mass"] == pytest.approx(-23.5)
    assert 0.0 < moved["snr_binned_2x2"] <= moved["snr_native"] and 0.0 < moved["max_change_of_peak"] < 1.0
    report = sig.main(["--low", "-24", "--high", "-22", "--num", "3", "--out", str(tmp_path)])
    assert report["num_samples"] == 3 and len(report["rows"]) == 3
    assert "| 0 |" in (tmp_path / "axion_mass_signal.md").read_text()
    with pytest.raises(SystemExit, match="no vortex"):
        sig.main(["--low", "-30", "--high", "-29", "--num", "2", "--out", str(tmp_path)])


def test_inference_speed_benchmark_writes_the_cards_speed_table(model_dir, tmp_path):
    """bench_inference times the tiny model without and with D4 TTA and its --card record renders in the card."""
    import shutil

    from huggingface_hub import ModelCard

    from lens_hf.cards import SPEED_FILE, render_model_card

    spec = importlib.util.spec_from_file_location(
        "bench_inference", ROOT / "benchmarks" / "bench_inference.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    record = bench.main(
        ["--model", str(model), "--num-images", "10", "--batch-size", "4", "--threads", "1", "--reps", "1"]
        + ["--out", str(tmp_path / "results"), "--card"]
    )
    assert [r["tta"] for r in record["results"]] == ["none", "d4"]
    assert record["num_images"] == 10 and record["batch_size"] == 4 and record["machine"]["threads"] == 1
    none, d4 = record["results"]
    for row in record["results"]:
        assert row["forward_images_per_s"] > 0 and row["predict_images_per_s"] > 0
    assert d4["forward_images_per_s"] < none["forward_images_per_s"]  # 8 views cost more than one
    assert json.loads((model / SPEED_FILE).read_text()) == record
    assert str(tmp_path) not in (model / SPEED_FILE).read_text()  # no local path in the published record
    assert "| d4 |" in (tmp_path / "results" / "inference_speed.md").read_text()
    body = ModelCard(render_model_card(model)).text
    assert "### CPU inference speed" in body and "| with `--tta d4` |" in body


def _observer_cache(work: Path, seed: int, truth, centres, model_answers, width: float = 0.3) -> None:
    """What axion_mass_observer.py caches for ``len(truth)`` vortices of ``seed``: Gaussian likelihood grids of
    ``width`` dex at ``centres`` (three angles), and the regression model's answers as its predictions.csv."""
    import numpy as np

    from lens_hf.processing.vortex_likelihood import GRID

    num = len(truth)
    names = [f"axion_sim_{i}.npy" for i in range(num)]
    ll = np.stack([np.repeat((-0.5 * ((GRID - c) / width) ** 2)[:, None], 3, axis=1) for c in centres])
    np.savez(work / f"observer-seed{seed}-{num}.npz", names=np.array(names), truth=truth, ll=ll)
    out = work / f"model_i-seed{seed}-{num}-model"
    out.mkdir(parents=True)
    rows = [f"axion/{n},vortex,1.0,-23.0,{a:.6f}" for n, a in zip(names, model_answers)]
    (out / "predictions.csv").write_text("\n".join(["file,label,x,y,log10_axion_mass", *rows]) + "\n")


def test_observer_prior_posterior_median_and_a_better_model_is_chosen_as_prior(tmp_path, capsys):
    """The prior comparison of axion_mass_observer_prior.py: the posterior median of a tempered Gaussian likelihood
    times a Gaussian prior is the precision-weighted mean; on cached vortices where the model is far better than
    the likelihood, validation chooses a narrow prior, which also wins on the test vortices."""
    import numpy as np

    from lens_hf.processing.vortex_likelihood import GRID

    prior = _load_benchmark("axion_mass_observer_prior")
    ll = np.repeat((-0.5 * ((GRID + 23.0) / 0.2) ** 2)[:, None], 3, axis=1)
    assert prior.median(ll, 1.0, 0.0, 0.0, "laplace") == pytest.approx(-23.0, abs=0.006)
    # tempered by 2: variance 0.08; the prior's 0.04 at -23.3: (-23 / 0.08 - 23.3 / 0.04) / (1/0.08 + 1/0.04)
    assert prior.median(ll, 2.0, -23.3, 0.2, "gaussian") == pytest.approx(-23.2, abs=0.006)

    rng = np.random.default_rng(0)
    for seed, num in ((prior.VAL_SEED, 120), (prior.TEST_SEED, 200)):
        truth = rng.uniform(-23.9, -22.1, num)
        centres = truth + rng.normal(0.0, 0.3, num)  # a poor likelihood ...
        model = truth + rng.normal(0.0, 0.03, num)  # ... a good model
        _observer_cache(tmp_path, seed, truth, centres, model)
    prior.main(
        ["--model", str(tmp_path / "unused"), "--work", str(tmp_path), "--num", "200", "--val-num", "120"]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| prior | temperature | width (dex) | validation MAE (120) | test MAE (200) |"
    settings = [line.strip("|").split("|") for line in lines[2:7]]
    averages = [float(line.strip("|").split("|")[-1]) for line in lines[7:]]
    assert len(settings) == 5 and len(averages) == 3
    best_kind, _, best_width, best_val, best_test = (cell.strip() for cell in settings[0])
    assert best_kind in ("laplace", "gaussian") and float(best_width) <= 0.15
    assert [float(row[3]) for row in settings] == sorted(float(row[3]) for row in settings)
    # the averages lean on the good model as the weight on the likelihood falls
    assert averages[0] < averages[1] < averages[2]
    assert float(best_test) < averages[0]

    # a model that answers at random: only the likelihood alone or the widest priors (which barely change it)
    # come first on validation, never a narrow prior centred on the model
    work = tmp_path / "random"
    work.mkdir()
    for seed, num in ((prior.VAL_SEED, 120), (prior.TEST_SEED, 200)):
        truth = rng.uniform(-23.9, -22.1, num)
        centres = truth + rng.normal(0.0, 0.1, num)  # a good likelihood, a model answering at random
        _observer_cache(work, seed, truth, centres, rng.uniform(-24.0, -22.0, num), width=0.1)
    prior.main(["--model", str(tmp_path / "unused"), "--work", str(work), "--num", "200", "--val-num", "120"])
    widths = [float(line.split("|")[3]) for line in capsys.readouterr().out.splitlines()[2:7]]
    assert len(widths) == 5 and all(w == 0 or w >= 0.4 for w in widths) and 0 in widths, widths
