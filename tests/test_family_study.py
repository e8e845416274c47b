"""The family study's scheduling, statistics and report, on a tiny configuration."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_study():
    spec = importlib.util.spec_from_file_location("family_study", ROOT / "benchmarks" / "family_study.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["family_study"] = module
    spec.loader.exec_module(module)
    return module


study = _load_study()


def _row(family: str, seed: int, auc: float, dataset: str = "model_ii", n: int = 1000) -> dict:
    return {
        "dataset": dataset,
        "family": family,
        "train_per_class": n,
        "seed": seed,
        "epochs": 3.0,
        "epochs_budget": 3,
        "cpu_minutes": 1.0 + seed,
        "roc_auc_macro": auc,
        "roc_auc_per_class": {"no_substructure": auc, "subhalo": auc - 0.01, "vortex": auc + 0.01},
        "images_per_s": 100.0,
        "test_images": 3000,
    }


def test_summary_gives_mean_and_sample_std_over_seeds():
    rows = [_row("vit", 0, 0.90), _row("vit", 1, 0.92), _row("vit", 2, 0.94), _row("resnet-18", 0, 0.95)]
    summary = {s["family"]: s for s in study.summarize(rows)}
    assert summary["vit"]["seeds"] == 3
    assert summary["vit"]["roc_auc_macro_mean"] == pytest.approx(0.92)
    assert summary["vit"]["roc_auc_macro_std"] == pytest.approx(0.02)
    assert summary["vit"]["cpu_minutes_mean"] == pytest.approx(2.0)
    assert summary["resnet-18"]["roc_auc_macro_std"] == 0.0
    assert summary["vit"]["images_per_s_mean"] == pytest.approx(100.0)
    # a resumed run has no images/s of its own: the mean is over the runs that measured it
    rows[1]["images_per_s"], rows[2]["images_per_s"] = None, 130.0
    assert study.summarize(rows)[1]["images_per_s_mean"] == pytest.approx(115.0)
    rows[0]["images_per_s"] = rows[2]["images_per_s"] = None
    assert study.summarize(rows)[1]["images_per_s_mean"] is None
    # table order follows the family table (resnet-18 first)
    assert [s["family"] for s in study.summarize(rows)] == ["resnet-18", "vit"]


def test_contrasts_are_paired_by_seed_with_a_t_interval():
    rows = [_row("vit", s, 0.90 + 0.01 * s) for s in range(3)]
    rows += [_row("vit-spt", s, 0.92 + 0.01 * s + (0.01 if s == 2 else 0.0)) for s in range(3)]
    rows.append(_row("vit-lsa", 0, 0.5))  # a single pair: no standard error
    found = {c["contrast"]: c for c in study.contrasts(rows)}
    spt = found["SPT (vit-spt - vit)"]
    assert spt["pairs"] == 3
    assert spt["difference_mean"] == pytest.approx((0.02 + 0.02 + 0.03) / 3)
    lo, hi = spt["ci95"]
    assert lo < spt["difference_mean"] < hi and lo > 0
    assert found["LSA (vit-lsa - vit)"]["difference_se"] is None


def test_report_files_and_plot(tmp_path):
    rows = [_row(f, s, 0.8 + 0.05 * i) for i, f in enumerate(study.FAMILIES) for s in range(2)]
    rows += [_row("vit", 0, 0.97, n=5000)]
    report = study.write_report(rows, ["model_i-5000/vit/seed0"], tmp_path, "fs", "python x")
    data = json.loads((tmp_path / "fs.json").read_text())
    assert data["rows"][0].keys() >= {
        "dataset",
        "family",
        "train_per_class",
        "seed",
        "epochs",
        "cpu_minutes",
        "roc_auc_macro",
        "roc_auc_per_class",
        "images_per_s",
    }
    text = (tmp_path / "fs.md").read_text()
    assert f"- trained on: not recorded ({len(rows)} runs)\n" in text
    rows[0]["device"] = "Some CPU, 2 CPUs"
    study.write_report(rows, [], tmp_path, "fs2", "python x")
    two = (tmp_path / "fs2.md").read_text()
    assert "- trained on: Some CPU, 2 CPUs (1 runs); not recorded" in two
    assert (
        f"not recorded ({len(rows) - 1} runs) (speeds compare only between runs on the same processor)" in two
    )
    assert "In plain words" not in text  # no answer written yet: the tables only
    (tmp_path / f"fs3{study.ANSWER_SUFFIX}").write_text("SPT helps on Model I; LSA does not.\n")
    study.write_report(rows, [], tmp_path, "fs3", "python x")
    three = (tmp_path / "fs3.md").read_text()
    assert json.loads((tmp_path / "fs3.json").read_text())["answer"] == "SPT helps on Model I; LSA does not."
    # the finding comes first, then the tables computed from the rows
    assert three.index("## In plain words\n\nSPT helps on Model I; LSA does not.\n") < three.index(
        "| dataset |"
    )
    assert "| model_ii | 1,000 | deit-distilled |" in text and "Runs not finished yet: 1" in text
    assert "| **0.9700** (one seed) |" in text  # one seed: no standard deviation shown
    assert text.count("(one seed)") == 1
    assert (tmp_path / "fs.png").read_bytes()[:4] == b"\x89PNG"
    assert len(report["summary"]) == len(study.FAMILIES) + 1


def test_distilled_run_waits_for_its_teacher_and_commands_name_it(tmp_path):
    cell = study.Cell("model_ii", 4, epochs=1, seeds=(0,))
    student = study.Run(cell, study.FAMILIES["deit-distilled"], 0)
    teacher = study.Run(cell, study.FAMILIES["resnet-18"], 0)
    sched = study.Scheduler(
        [student], tmp_path, study.PROFILES["quick"], "quick", jobs=2, rows_dir=tmp_path / "rows"
    )
    assert not sched._ready(student)
    teacher.folder(tmp_path).mkdir(parents=True)
    (teacher.folder(tmp_path) / study.ROW_FILE).write_text('{"epochs_budget": 2}')
    assert not sched._ready(student)  # a teacher trained on another budget is not this cell's teacher
    (teacher.folder(tmp_path) / study.ROW_FILE).write_text('{"epochs_budget": 1}')
    assert sched._ready(student)
    cmd = study.run_command(student, tmp_path / "data", tmp_path, study.PROFILES["quick"], "quick")
    assert cmd[cmd.index("--teacher") + 1] == str(teacher.folder(tmp_path))
    assert "--config_overrides" in cmd
    cmd = study.run_command(teacher, tmp_path / "data", tmp_path, study.PROFILES["quick"], "quick")
    assert "--config_overrides" not in cmd


@pytest.mark.slow
def test_quick_study_end_to_end_with_distillation(tmp_path):
    """Two real recipe runs (the ResNet teacher, then the distilled DeiT) on a tiny simulated Model II cell."""
    argv = [
        "--profile",
        "quick",
        "--families",
        "deit-distilled",
        "--work",
        str(tmp_path),
        "--out",
        str(tmp_path),
    ]
    report = study.main(argv)
    families = sorted(r["family"] for r in report["rows"])
    assert families == ["deit-distilled", "resnet-18"], report["missing"]
    for row in report["rows"]:
        assert 0.0 <= row["roc_auc_macro"] <= 1.0 and row["cpu_minutes"] > 0 and row["test_images"] == 12
    # a second call finds every run done and only rewrites the report
    again = study.main(argv)
    assert again["rows"] == report["rows"]
    kept = sorted(p.name for p in (tmp_path / "family_study_quick_runs" / "model_ii-4").iterdir())
    assert kept == ["deit-distilled-seed0.json", "resnet-18-seed0.json"]


def test_recipe_search_trains_screens_and_reports(tmp_path):
    spec = importlib.util.spec_from_file_location("recipe_search", ROOT / "benchmarks" / "recipe_search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    common = ["--per-class", "3", "--val-per-class", "3", "--epochs", "2", "--batch", "4", "--warmup", "2"]
    common += ["--work", str(tmp_path), "--out", str(tmp_path), "--overrides", '{"num_hidden_layers": 1}']
    search.main(["--tag", "plain", *common])
    # a row committed from another machine's runs (not in this work folder) stays in the table
    (plain,) = json.loads((tmp_path / "recipe_search.json").read_text())
    (tmp_path / "recipe_search.json").write_text(json.dumps([{**plain, "tag": "elsewhere"}]))
    search.main(
        ["--tag", "stretched", "--stretch", "asinh", "--standardize", "--crop", "32", "--patch", "4", *common]
    )
    search.main(["--tag", "ema", "--ema", "0.5", *common])
    rows = json.loads((tmp_path / "recipe_search.json").read_text())
    assert [r["tag"] for r in rows] == ["elsewhere", "plain", "stretched", "ema"]
    rows = rows[1:]
    assert all(len(r["history"]) == 2 and 0 <= r["best"]["val_auc"] <= 1 and r["device"] for r in rows)
    # the EMA is validated beside the trained weights, in the same run
    ema = rows[2]["history"]
    assert all(0 <= h["val_auc_ema"] <= 1 for h in ema) and "val_auc_ema" not in rows[0]["history"][0]
    assert "weight EMA 0.5: " in (tmp_path / "recipe_search.md").read_text()
    table = (tmp_path / "recipe_search.md").read_text()
    assert (
        '| stretched | model_ii, 3 | vit-tiny `{"num_hidden_layers": 1}` | 32 px | asinh | True | 4 |'
        in table
    )


def test_reading_states_each_contrast_from_its_interval():
    helps = {"ci95": [0.01, 0.05]}
    assert study.verdict(helps) == "helps"
    assert study.verdict({"ci95": [-0.05, -0.01]}) == "hurts"
    assert study.verdict({"ci95": [-0.01, 0.02]}) == "no clear difference"
    assert study.verdict({"ci95": None}) == "one seed, no interval yet"
    model_iii = {"ci95": None, "dataset": "model_iii", "train_per_class": 1000}  # one seed in the plan
    assert study.verdict(model_iii) == "one seed, as planned for this sanity-check cell (no interval)"
    rows = [_row("vit", s, 0.55) for s in range(3)] + [_row("vit-spt", s, 0.80 + 0.01 * s) for s in range(3)]
    report = {"contrasts": study.contrasts(rows), "summary": study.summarize(rows)}
    text = "\n".join(study.reading_lines(report))
    assert "SPT (vit-spt - vit): +0.260 macro AUC (3 seed(s)" in text and ": helps." in text
    assert "vit stays near chance (macro AUC 0.550)" in text


def test_cpu_time_of_a_killed_attempt_is_kept_for_the_resumed_run(tmp_path):
    import subprocess
    import time

    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", busy])
    cell = study.Cell("model_ii", 4, epochs=1, seeds=(0,))
    run = study.Run(cell, study.FAMILIES["vit"], 0)
    folder = run.folder(tmp_path)
    folder.mkdir(parents=True)
    (folder / study.CPU_EARLIER_FILE).write_text("100.0")  # an earlier attempt, recorded when it failed
    sched = study.Scheduler(
        [], tmp_path, study.PROFILES["quick"], "quick", jobs=1, rows_dir=tmp_path / "rows"
    )
    try:
        deadline = time.time() + 20
        while (study.process_cpu_seconds(proc.pid) or 0.0) < 0.45 and time.time() < deadline:
            time.sleep(0.05)
        sched.running[proc.pid] = (run, proc, time.time(), None)
        sched._poll_cpu()
    finally:
        proc.kill()
        proc.wait()
    polled = json.loads((folder / study.CPU_RUNNING_FILE).read_text())
    assert 100.45 <= polled < 110.0
    # the orchestrator was killed with the run: on restart, the polled time becomes earlier time
    study.fold_interrupted_cpu(folder)
    assert json.loads((folder / study.CPU_EARLIER_FILE).read_text()) == polled
    assert not (folder / study.CPU_RUNNING_FILE).exists()


def test_reading_says_which_families_meet_the_goal_of_their_cell():
    def summary(family, dataset, per_class, seeds, auc):
        return {
            "dataset": dataset,
            "train_per_class": per_class,
            "family": family,
            "seeds": seeds,
            "roc_auc_macro_mean": auc,
        }

    rows = [
        summary("vit", "model_ii", 1000, 3, 0.93),
        summary("deit", "model_ii", 1000, 3, 0.88),
        summary("swin", "model_ii", 1000, 2, 0.97),
        summary("vit", "model_ii", 5000, 1, 0.98),
        summary("vit", "model_iii", 1000, 1, 0.70),  # no goal for the sanity-check cell
    ]
    one_k, five_k = study.goal_lines(rows)
    assert one_k == (
        "- model_ii, 1,000 per class, goal: mean macro AUC >= 0.90 over 3 seeds: met by 1 of 2 families with all "
        "their planned seeds run (lowest mean deit 0.880); below it: deit 0.880; seeds still to run: swin (2 of 3, so far 0.970); "
        "not run yet at this budget: resnet-18, vit-p8, vit-spt, vit-lsa, vit-spt-lsa, vit-spt-lsa-p8, "
        "deit-p8, deit-distilled, deit-distilled-p8, hybrid."
    )
    assert five_k.startswith(
        "- model_ii, 5,000 per class, goal: mean macro AUC >= 0.95 over 3 seeds: no family"
    )


def test_reading_compares_with_the_published_from_scratch_numbers():
    summary = [
        {"dataset": "model_ii", "train_per_class": 1000, "family": "vit", "roc_auc_macro_mean": 0.90},
        {"dataset": "model_ii", "train_per_class": 1000, "family": "vit-spt-lsa", "roc_auc_macro_mean": 0.86},
        {"dataset": "model_ii", "train_per_class": 1000, "family": "swin", "roc_auc_macro_mean": 0.95},
    ]
    (line,) = study.published_lines(summary)
    assert "ViT 0.945 (here vit 0.900)" in line and "ViT with SPT+LSA 0.927 (here vit-spt-lsa 0.860)" in line
    assert line.endswith("SPT+LSA minus plain ViT is -0.018; here -0.040.")
    assert study.published_lines([{**summary[2], "dataset": "model_iii"}]) == []
    # Model I: no family has a published twin; the best from-scratch result and the published Swin collapse
    model_i = [{**s, "dataset": "model_i", "train_per_class": 5000} for s in summary]
    model_i.append({**model_i[0], "family": "resnet-18", "roc_auc_macro_mean": 0.97})
    (line,) = study.published_lines(model_i)
    assert "the best from scratch is CvT 0.979" in line and "the best transformer is swin 0.950" in line
    assert "the ResNet-18 0.970." in line and "A from-scratch Swin collapsed to 0.50" in line
    assert line.endswith("(here swin 0.950).")


def test_a_call_for_one_cell_reports_the_rows_of_the_whole_study(tmp_path):
    """Running (or reporting) one cell keeps the other cells' rows in the results file."""
    cells = {c.key: c for c in study.PROFILES["cpu"].cells}
    rows_dir = tmp_path / "family_study_runs"
    kept = {"model_ii-1000": ("vit", 0.91), "model_iii-1000": ("swin", 0.95)}
    for key, (family, auc) in kept.items():
        path = study.row_path(rows_dir, study.Run(cells[key], study.FAMILIES[family], 0))
        path.parent.mkdir(parents=True, exist_ok=True)
        cell = cells[key]
        row = _row(family, 0, auc, dataset=cell.dataset, n=cell.train_per_class)
        path.write_text(json.dumps({**row, "epochs_budget": cell.epochs}))
    argv = ["--report-only", "--cells", "model_ii:5000", "--seeds", "1", "--out", str(tmp_path)]
    report = study.main([*argv, "--work", str(tmp_path / "work")])
    assert sorted((r["dataset"], r["family"]) for r in report["rows"]) == [
        ("model_ii", "vit"),
        ("model_iii", "swin"),
    ]
    text = (tmp_path / "family_study.md").read_text()
    assert "| model_iii | 1,000 | swin |" in text and "model_ii-5000/vit/seed1" in text


def test_a_row_of_an_earlier_budget_is_trained_again_and_not_reported(tmp_path):
    """When a cell's budget changes, its old rows are neither skipped nor mixed into the report, and the old run
    folder is cleared instead of resumed."""
    cell = study.Cell("model_ii", 4, epochs=3, seeds=(0,))
    run = study.Run(cell, study.FAMILIES["vit"], 0)
    rows_dir = tmp_path / "rows"
    kept = study.row_path(rows_dir, run)
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps({**_row("vit", 0, 0.9), "epochs_budget": 2}))
    assert not study.on_budget(kept, cell)
    assert study.collect(rows_dir, [run], tmp_path) == ([], ["model_ii-4/vit/seed0"])
    kept.write_text(json.dumps({**_row("vit", 0, 0.9), "epochs_budget": 3}))
    assert (
        study.on_budget(kept, cell) and study.collect(rows_dir, [run], tmp_path)[0][0]["roc_auc_macro"] == 0.9
    )
    stepped = study.Cell("model_ii", 4, epochs=3, seeds=(0,), lr_step_epochs=2)
    assert not study.on_budget(kept, stepped)  # same epochs, another schedule
    # the old run's folder (its checkpoints) is removed before the run starts again
    folder = run.folder(tmp_path)
    (folder / "checkpoint-7").mkdir(parents=True)
    (folder / study.ROW_FILE).write_text(json.dumps({**_row("vit", 0, 0.9), "epochs_budget": 2}))
    sched = study.Scheduler([run], tmp_path, study.PROFILES["quick"], "quick", jobs=1, rows_dir=rows_dir)
    sched._start(run, tmp_path / "no-data")  # the recipe fails at once on the missing dataset
    _pid, (_run, proc, _t, log) = next(iter(sched.running.items()))
    proc.wait()
    log.close()
    assert not (folder / "checkpoint-7").exists() and not (folder / study.ROW_FILE).exists()


def test_rows_of_an_earlier_budget_are_archived_and_reported_in_a_table_of_their_own(tmp_path):
    """When the rerun on the new budget finishes, the old row moves to the cell's earlier_budgets/ instead of
    being overwritten; the report keeps it in its own table, apart from the current rows and their contrasts."""
    cell = study.Cell("model_ii", 4, epochs=30, seeds=(0, 1))
    runs = [study.Run(cell, study.FAMILIES[f], s) for f in ("vit", "deit") for s in (0, 1)]
    rows_dir, work = tmp_path / "rows", tmp_path / "work"
    for run in runs:  # every run has a row of the 20-epoch budget
        old = {**_row(run.family.name, run.seed, 0.85, n=4), "epochs_budget": 20, "lr_step_epochs": None}
        study.row_path(rows_dir, run).parent.mkdir(parents=True, exist_ok=True)
        study.row_path(rows_dir, run).write_text(json.dumps(old))
    new = {**_row("vit", 0, 0.95, n=4), "epochs_budget": 30, "lr_step_epochs": None}
    runs[0].folder(work).mkdir(parents=True)
    (runs[0].folder(work) / study.ROW_FILE).write_text(json.dumps(new))  # vit seed 0 reran on 30 epochs

    rows, missing = study.collect(rows_dir, runs, work)
    assert [r["roc_auc_macro"] for r in rows] == [0.95] and len(missing) == 3
    archived = rows_dir / cell.key / study.EARLIER_DIR / "vit-seed0-20ep.json"
    assert json.loads(archived.read_text())["roc_auc_macro"] == 0.85
    earlier = study.earlier_rows(rows_dir, runs)  # the archived row and the three still waiting for a rerun
    assert sorted((r["family"], r["seed"]) for r in earlier) == [
        ("deit", 0),
        ("deit", 1),
        ("vit", 0),
        ("vit", 1),
    ]
    assert all(r["epochs_budget"] == 20 for r in earlier)

    report = study.write_report(rows, missing, tmp_path / "out", "study", "cmd", earlier)
    assert [(s["family"], s["epochs"], s["seeds"]) for s in report["summary"]] == [("vit", 30, 1)]
    assert {(s["family"], s["epochs"], s["seeds"]) for s in report["earlier_summary"]} == {
        ("vit", 20, 2),
        ("deit", 20, 2),
    }
    text = (tmp_path / "out" / "study.md").read_text()
    current, superseded = text.split("## Earlier budgets (superseded)")
    assert "| vit | 1 | 30 |" in current and "| 20 |" not in current
    assert "| vit | 2 | 20 |" in superseded and "| deit | 2 | 20 |" in superseded
    # a row of another budget never joins the current group's mean
    both = study.summarize([new, {**_row("vit", 1, 0.85, n=4), "epochs_budget": 20, "lr_step_epochs": None}])
    assert sorted((s["epochs"], s["seeds"]) for s in both) == [(20, 1), (30, 1)]
    # nor is it paired with a row of another budget; within one budget it is
    spt_old = {**_row("vit-spt", 0, 0.80, n=4), "epochs_budget": 20, "lr_step_epochs": None}
    assert study.contrasts([new, spt_old]) == []
    (pair,) = study.contrasts([{**new, "epochs_budget": 20}, spt_old])
    assert pair["budget"] == "20ep" and pair["difference_mean"] == pytest.approx(-0.15)


def test_a_finished_rerun_archives_the_row_of_the_earlier_budget(tmp_path):
    """The scheduler keeps a finished run's row at once: the row of the cell's earlier budget it replaces moves to
    earlier_budgets/ instead of being overwritten."""
    import subprocess

    cell = study.Cell("model_ii", 4, epochs=30, seeds=(0,))
    run = study.Run(cell, study.FAMILIES["deit"], 0)
    rows_dir = tmp_path / "rows"
    kept = study.row_path(rows_dir, run)
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps({**_row("deit", 0, 0.85, n=4), "epochs_budget": 20, "lr_step_epochs": None}))
    folder = run.folder(tmp_path)  # what the recipe leaves behind
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps({"roc_auc_macro": 0.94, "roc_auc_per_class": {"no_substructure": 0.94}, "num_samples": 12})
    )
    (folder / "lens_hf_training.json").write_text(json.dumps({"epochs": 30.0, "device_name": "cpu"}))
    sched = study.Scheduler([run], tmp_path, study.PROFILES["quick"], "quick", jobs=1, rows_dir=rows_dir)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    sched.running[proc.pid] = (run, proc, 0.0, open(tmp_path / "run.log", "w"))  # noqa: SIM115
    sched._reap()
    new = json.loads(kept.read_text())
    assert new["epochs_budget"] == 30 and new["roc_auc_macro"] == 0.94
    old = json.loads((kept.parent / study.EARLIER_DIR / "deit-seed0-20ep.json").read_text())
    assert old["epochs_budget"] == 20 and old["roc_auc_macro"] == 0.85
    assert [r["roc_auc_macro"] for r in study.earlier_rows(rows_dir, [run])] == [0.85]


def test_paper_layernorm_families_add_their_switch_to_the_recipe_or_profile_overrides(tmp_path):
    """A flag replaces the recipe's per-dataset config_overrides, so the study merges the family's switch into
    them: the paper-LayerNorm rows differ from the recipe's rows in that switch only."""
    cell = study.Cell("model_ii", 4, epochs=1, seeds=(0,))

    def overrides(family, profile):
        cmd = study.run_command(
            study.Run(cell, study.FAMILIES[family], 0), tmp_path, tmp_path, study.PROFILES[profile], profile
        )
        assert cmd.count("--config_overrides") <= 1
        return json.loads(cmd[cmd.index("--config_overrides") + 1]) if "--config_overrides" in cmd else None

    # the recipes' small-data depth (4 layers) is left out: every ViT-like family runs at its preset's size
    # and they read the study's common 4 px grid, not the recipes' 8 px patches, which the -p8 rows measure
    for family in ("vit", "deit", "deit-distilled"):
        assert overrides(family, "cpu") == {"patch_size": 4}, family
    for family in ("vit-p8", "deit-p8", "deit-distilled-p8"):
        assert overrides(family, "cpu") == {"patch_size": 8}, family
    assert overrides("vit-spt-lsa-p8", "cpu") == {
        "patch_size": 8,
        "spt_layer_norm": False,
    }  # the recipe's own
    assert overrides("hybrid", "cpu") is None and overrides("swin", "cpu") is None  # the recipes' own
    assert overrides("vit-spt", "cpu") == {"patch_size": 4, "spt_layer_norm": False}
    assert overrides("vit-spt-ln", "cpu") == {"patch_size": 4, "spt_layer_norm": True}
    # the GPU profile reads 150 px with each preset's own patches, and keeps the recipe's tokenizer choice
    assert overrides("vit-spt-lsa", "gpu") == {"spt_layer_norm": False}
    assert overrides("vit-spt-lsa-ln", "gpu") == {"spt_layer_norm": True}
    assert overrides("vit", "gpu") == {} and overrides("hybrid", "gpu") == {}
    assert overrides("vit-spt-ln", "quick") == {"num_hidden_layers": 1, "spt_layer_norm": True}


def test_recipe_budget_runs_a_recipe_as_a_user_and_reports_its_validation_and_test_auc(tmp_path):
    spec = importlib.util.spec_from_file_location("recipe_budget", ROOT / "benchmarks" / "recipe_budget.py")
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    argv = ["--recipes", "train_vit_spt_lsa", "--minutes", "0.5", "--train-per-class", "6"]
    argv += ["--work", str(tmp_path / "work"), "--out", str(tmp_path), "--"]
    argv += ["--eval_per_class", "4", "--test_per_class", "5", "--num_train_epochs", "1"]
    argv += ["--config_overrides", '{"num_hidden_layers": 1}', "--per_device_train_batch_size", "6"]
    assert budget.main(argv) == 0
    (row,) = json.loads((tmp_path / "recipe_budget.json").read_text())
    assert row["recipe"] == "train_vit_spt_lsa" and row["model_preset"] == "vit-spt-lsa-tiny"
    assert row["validation_images"] == 12 and row["test_images"] == 15 and row["epochs_done"] == 1
    assert 0.0 <= row["validation_roc_auc_macro"] <= 1.0 and 0.0 <= row["test_roc_auc_macro"] <= 1.0
    assert row["cpu_minutes"] > 0 and str(tmp_path) not in row["command"]
    from lens_hf.training.args import cpu_has_native_bf16

    assert row["training_precision"] == ("bf16 autocast (cpu)" if cpu_has_native_bf16() else "fp32")
    table = (tmp_path / "recipe_budget.md").read_text()
    assert "`train_vit_spt_lsa`" in table and "(1; 12 images)" in table
    assert row["config_overrides"] == {"num_hidden_layers": 1}  # the flag replaced the recipe's own
    assert "| vit-spt-lsa-tiny (num_hidden_layers 1) |" in table
    # the goal depends on the processor: each row names the one it ran on
    assert row["device"] and f"| {row['device']}, {row['training_precision']} |" in table
    # a recipe that fails is a one-line error naming it, not a traceback
    with pytest.raises(SystemExit, match="train_vit_spt_lsa: exit"):
        budget.main([*argv[:-2], "--per_device_train_batch_size", "-3"])


def test_gpu_profile_commands_train_each_kind_of_family_at_full_resolution(tmp_path):
    """The GPU profile's runs (Model I at the full 150 px, each preset's own patches; the hybrid at 144 px) on a
    tiny Model I set, one epoch each with the batch sizes shrunk: every recipe accepts the profile's flags and
    builds its model at that size, before a GPU session is spent on them."""
    from safetensors.torch import load_file

    from lens_hf.cli import load_recipe

    cell = study.Cell("model_i", 2, epochs=1, seeds=(0,), validation_per_class=1, test_per_class=2)
    data = study.prepare_data(cell, tmp_path)
    small = {"--per_device_train_batch_size": "2", "--per_device_eval_batch_size": "4"}
    small |= {"--dataloader_num_workers": "0", "--max_train_minutes": "5"}
    for name in ("resnet-18", "vit-spt-lsa", "deit-distilled", "swin", "hybrid"):  # (vit: the deit flags)
        run = study.Run(cell, study.FAMILIES[name], 0)
        cmd = study.run_command(run, data, tmp_path, study.PROFILES["gpu"], "gpu")[2:]
        for flag, value in small.items():
            cmd[cmd.index(flag) + 1] = value
        load_recipe(run.family.recipe).main(cmd)
        folder = run.folder(tmp_path)
        record = json.loads((folder / "lens_hf_training.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        assert record["input_size"] == (144 if name == "hybrid" else 150), name
        assert json.loads((folder / "metrics.json").read_text())["num_samples"] == 6
        if name == "vit-spt-lsa":  # the preset's 10 px patches, the recipe's tokenizer (no patch LayerNorm)
            assert config["patch_size"] == 10 and config["spt_layer_norm"] is False
        assert load_file(folder / "model.safetensors")


def test_a_cell_with_a_shorter_budget_scales_the_step_of_the_schedule_for_every_family(tmp_path):
    cells = {c.key: c for c in study.PROFILES["cpu"].cells}
    for key, step in (("model_ii-1000", None), ("model_ii-5000", "9"), ("model_i-5000", "9")):
        for family in ("resnet-18", "vit", "deit-distilled", "swin"):
            run = study.Run(cells[key], study.FAMILIES[family], 0)
            cmd = study.run_command(run, tmp_path, tmp_path, study.PROFILES["cpu"], "cpu")
            given = cmd[cmd.index("--lr_step_epochs") + 1] if "--lr_step_epochs" in cmd else None
            assert given == step, (key, family, cmd)
    report = study.summarize(
        [{**_row("vit", s, 0.9), "lr_step_epochs": 9, "epochs_budget": 12} for s in range(2)]
    )
    assert "| 12 (lr / 10 after 9) |" in study.render_markdown(
        {"date": "d", "command": "c", "machine": "m", "summary": report, "contrasts": [], "missing": []}
    )


def test_a_resumed_run_keeps_no_images_per_second(tmp_path):
    cell = study.Cell("model_ii", 4, epochs=1, seeds=(0,))
    run = study.Run(cell, study.FAMILIES["vit"], 0)
    metrics = {"roc_auc_macro": 0.9, "roc_auc_per_class": {"no_substructure": 0.9}, "num_samples": 12}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    record = {"epochs": 1.0, "train_images_per_second": 50.0, "resumed_from": None}
    (tmp_path / "lens_hf_training.json").write_text(json.dumps(record))
    assert study._row(run, tmp_path, 60.0, 60.0)["images_per_s"] == 50.0
    record.update(train_images_per_second=1.0, resumed_from="checkpoint-9")
    (tmp_path / "lens_hf_training.json").write_text(json.dumps(record))
    row = study._row(run, tmp_path, 60.0, 60.0)
    assert row["images_per_s"] is None and row["cpu_minutes"] == 1.0


def test_gpu_profile_leaves_out_the_8_px_rows_that_would_repeat_their_4_px_twins(tmp_path):
    """At 150 px the GPU profile gives every family its preset's own patches, so a -p8 family would train the
    same model as its twin: its plan and report leave them out; the CPU profile's Model I cell keeps them, and
    a -p8 family asked for by name still runs."""
    p8 = {f.name for f in study.FAMILIES.values() if f.recipe_config == study.PATCH8}
    assert p8 == {"vit-p8", "vit-spt-p8", "vit-lsa-p8", "deit-p8", "vit-spt-lsa-p8", "deit-distilled-p8"}
    assert set(study.PROFILES["gpu"].exclude) == p8
    cpu_cell = next(c for c in study.PROFILES["cpu"].cells if c.key == "model_i-5000")
    cpu = study.plan(
        [cpu_cell], list(study.FAMILIES.values()), None, named=False, profile=study.PROFILES["cpu"]
    )
    assert p8 <= {r.family.name for r in cpu}
    study.main(["--profile", "gpu", "--report-only", "--out", str(tmp_path)])
    reported = (tmp_path / "family_study_gpu.md").read_text()
    assert "vit-spt-lsa/seed0" in reported and not any(f"{name}/seed0" in reported for name in p8)


def test_model_i_plans_every_vit_family_on_8_px_patches_and_the_4_px_grid_as_a_one_seed_ablation():
    """CPU profile, Model I: each family of the question (plain ViT, SPT, LSA, SPT+LSA, DeiT with and without
    distillation, Swin, hybrid, ResNet-18) with 3 seeds, the ViT-like ones on 8 px patches; the 4 px plain and
    SPT+LSA ViT with one seed; the other 4 px families not at all. Named families still run every seed."""
    profile = study.PROFILES["cpu"]
    cell = next(c for c in profile.cells if c.key == "model_i-5000")
    runs = study.plan([cell], list(study.FAMILIES.values()), None, named=False, profile=profile)
    seeds: dict[str, list[int]] = {}
    for r in runs:
        seeds.setdefault(r.family.name, []).append(r.seed)
    three = {
        "resnet-18", "vit-p8", "vit-spt-p8", "vit-lsa-p8", "vit-spt-lsa-p8",
        "deit-p8", "deit-distilled-p8", "swin", "hybrid",
    }  # fmt: skip
    assert {f for f, s in seeds.items() if s == [0, 1, 2]} == three
    assert {f for f, s in seeds.items() if s == [0]} == {"vit", "vit-spt-lsa"}
    assert set(seeds) == three | {"vit", "vit-spt-lsa"}
    # the other cells keep every 4 px family with every seed; the new -p8 rows are Model I's only
    ii = next(c for c in profile.cells if c.key == "model_ii-5000")
    ii_runs = study.plan([ii], list(study.FAMILIES.values()), None, named=False, profile=profile)
    assert {r.family.name for r in ii_runs if r.seed == 2} >= {"vit", "vit-spt", "vit-lsa", "deit-distilled"}
    assert not any(r.family.name.endswith("-p8") for r in ii_runs)
    named = study.plan([cell], [study.FAMILIES["vit-lsa"]], None, named=True, profile=profile)
    assert [r.seed for r in named] == [0, 1, 2]
    # the report's goal line counts the ablation rows against their one planned seed
    rows = [_row(f, s, 0.9, dataset="model_i", n=5000) for f in three for s in range(3)]
    rows += [_row("vit", 0, 0.91, dataset="model_i", n=5000)]
    line = next(x for x in study.goal_lines(study.summarize(rows)) if x.startswith("- model_i, 5,000"))
    assert "met by 10 of 10 families" in line and "still to run" not in line, line
    assert "vit, vit-spt-lsa: 1 planned seed(s), an ablation" in line
    assert line.endswith("not run yet at this budget: vit-spt-lsa."), line


def test_the_answer_table_gives_each_switch_per_cell_with_its_interval_and_verdict(tmp_path):
    rows = [_row("vit", s, 0.90 + 0.01 * s) for s in range(3)]
    rows += [_row("vit-spt", s, 0.93 + 0.01 * s + 0.002 * s * s) for s in range(3)]
    rows += [_row("vit-lsa", s, 0.90 + 0.01 * s + (0.01 if s == 1 else -0.01)) for s in range(3)]
    rows += [_row("vit", 0, 0.96, n=5000), _row("vit-spt", 0, 0.97, n=5000)]
    contrasts = study.contrasts(rows)
    table = study.answer_table(contrasts)
    assert table[0] == "| switch | Model II, 1,000 / class | Model II, 5,000 / class |"
    spt = next(line for line in table if line.startswith("| SPT (vit-spt - vit) |"))
    cells = [c.strip() for c in spt.strip("|").split("|")][1:]
    assert cells[0].startswith("+0.033 [") and cells[0].endswith("3 seeds: helps")
    assert cells[1] == "+0.010 (1 seed)"
    lsa = next(line for line in table if line.startswith("| LSA (vit-lsa - vit) |"))
    assert lsa.endswith("3 seeds: no clear difference |  |")  # not measured at 5,000
    assert not any("Swin" in line for line in table)  # a switch measured nowhere has no line
    study.write_report(rows, [], tmp_path, "t", "cmd", [])
    assert "## The answer: does it help?\n" in (tmp_path / "t.md").read_text()
    assert spt in (tmp_path / "t.md").read_text()


def test_the_hybrid_reads_model_i_as_the_shipped_model_does_and_the_gpu_profile_overrides_it(tmp_path):
    """The stem needs a side divisible by 16: on the CPU profile's Model I cell the hybrid reads the shipped
    model's central 5" at 64 px (resize to 96, crop 64); at 150 px the GPU profile's own flags come last and win."""
    cell = study.Cell("model_i", 2, epochs=1, seeds=(0,), validation_per_class=1, test_per_class=2)
    data = study.prepare_data(cell, tmp_path)
    run = study.Run(cell, study.FAMILIES["hybrid"], 0)
    cpu = study.run_command(run, data, tmp_path, study.PROFILES["cpu"], "cpu")
    assert cpu[cpu.index("--image_size") + 1] == "96" and cpu[cpu.index("--center_crop") + 1] == "64"
    gpu = study.run_command(run, data, tmp_path, study.PROFILES["gpu"], "gpu")

    def last(flag: str) -> str:
        return gpu[len(gpu) - 1 - gpu[::-1].index(flag) + 1]

    assert last("--image_size") == "150" and last("--center_crop") == "144"
    model_ii = study.Run(study.Cell("model_ii", 2, epochs=1, seeds=(0,)), study.FAMILIES["hybrid"], 0)
    assert "--center_crop" not in study.run_command(model_ii, data, tmp_path, study.PROFILES["cpu"], "cpu")
    # the recipe accepts the CPU flags on Model I and trains at 64 px
    from lens_hf.cli import load_recipe

    small = ["--config_overrides", '{"num_hidden_layers": 1}', "--per_device_train_batch_size", "2"]
    load_recipe("train_vit_spt_lsa").main([*cpu[2:], *small, "--per_device_eval_batch_size", "4"])
    record = json.loads((run.folder(tmp_path) / "lens_hf_training.json").read_text())
    assert record["input_size"] == 64
