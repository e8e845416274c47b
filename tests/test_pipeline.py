"""Saved model folders: the lensing pipeline loads them with lens_hf imported and, through remote code, in a
Python that never imports lens_hf; predictions match the model that was saved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    DeiTConfig,
    DeiTForImageClassification,
    PreTrainedModel,
    ResNetConfig,
    ResNetForImageClassification,
    SwinConfig,
    SwinForImageClassification,
    ViTConfig,
    ViTForImageClassification,
    pipeline,
)

from lens_hf.inference import load_pipeline
from lens_hf.labels import ID2LABEL, LABEL2ID, LABELS
from lens_hf.models.vit_spt_lsa import ViTSPTLSAConfig, ViTSPTLSAForImageClassification
from lens_hf.processing import (
    LensFileError,
    LensImageClassificationPipeline,
    LensImageProcessor,
    save_model_folder,
)

torch.set_num_threads(1)
SIZE = 32


def _tiny_models() -> dict[str, PreTrainedModel]:
    """Single-channel 3-class classifiers small enough to save and load in a fraction of a second."""
    torch.manual_seed(0)
    labels = {"id2label": ID2LABEL, "label2id": LABEL2ID}
    vit = {
        "image_size": SIZE,
        "patch_size": 8,
        "num_channels": 1,
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    models = {
        "vit": ViTForImageClassification(ViTConfig(**vit, **labels)),
        "deit": DeiTForImageClassification(DeiTConfig(**vit, **labels)),
        "swin": SwinForImageClassification(
            SwinConfig(
                image_size=SIZE,
                patch_size=4,
                num_channels=1,
                embed_dim=16,
                depths=[1, 1],
                num_heads=[1, 2],
                window_size=4,
                **labels,
            )
        ),
        "resnet": ResNetForImageClassification(
            ResNetConfig(
                num_channels=1,
                embedding_size=8,
                hidden_sizes=[8, 16],
                depths=[1, 1],
                layer_type="basic",
                **labels,
            )
        ),
    }
    models["vit_spt_lsa"] = ViTSPTLSAForImageClassification(ViTSPTLSAConfig(**vit, **labels))
    for model in models.values():
        model.eval()
    return models


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """(150, 150) float32 Model I sized image with counts far above 255."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:150, :150]
    ring = np.exp(-((np.hypot(x - 75, y - 75) - 30) ** 2) / 20.0)
    return (rng.poisson(20 + 5000 * ring) + 0.25).astype(np.float32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, image):
    """Saved folders of every tiny model, the .npy input and the probabilities each model gave before saving.

    ``folders`` are written by ``save_model_folder``; ``plain`` is an SPT+LSA model saved the ordinary way
    (``Trainer.save_model`` then ``processor.save_pretrained``), and ``no_processor`` a copy of it without
    ``preprocessor_config.json`` (nothing records how its images were resized)."""
    from transformers import Trainer, TrainingArguments

    root = tmp_path_factory.mktemp("models")
    processor = LensImageProcessor(size=SIZE)
    pixel_values = processor(image)["pixel_values"]
    npy = root / "lens.npy"
    np.save(npy, image)
    np.save(root / "pixel_values.npy", pixel_values.numpy())
    folders, expected = {}, {}
    models = _tiny_models()
    for name, model in models.items():
        with torch.no_grad():
            expected[name] = model(pixel_values=pixel_values).logits.softmax(-1)[0].numpy()
        folders[name] = save_model_folder(model, processor, root / f"model_{name}")
    plain = root / "model_plain"
    args = TrainingArguments(output_dir=str(root / "trainer"), use_cpu=True, report_to=[])
    fresh = _tiny_models()[
        "vit_spt_lsa"
    ]  # the same weights, and a config that has not been saved with a record
    Trainer(model=fresh, args=args).save_model(str(plain))
    processor.save_pretrained(plain)
    no_processor = root / "model_no_processor"
    shutil.copytree(plain, no_processor)
    (no_processor / "preprocessor_config.json").unlink()
    return {
        "root": root,
        "folders": folders,
        "plain": plain,
        "no_processor": no_processor,
        "expected": expected,
        "npy": npy,
        "pixel_values": pixel_values,
    }


def _scores(result: list[dict]) -> np.ndarray:
    """Pipeline output -> probabilities in label-id order."""
    assert sorted(r["label"] for r in result) == sorted(LABELS)
    by_label = {r["label"]: r["score"] for r in result}
    return np.array([by_label[label] for label in LABELS])


def test_spt_lsa_model_is_covered(saved):
    names = {p.name for p in saved["folders"]["vit_spt_lsa"].iterdir()}
    assert {"configuration_vit_spt_lsa.py", "modeling_vit_spt_lsa.py"} <= names


def test_plain_save_pretrained_writes_the_pipeline(saved):
    """`Trainer.save_model` (the model's own save_pretrained) + `processor.save_pretrained`: the folder holds
    what the file-reading pipeline needs, and the model's config in memory is left as it was."""
    names = {p.name for p in saved["plain"].iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "configuration_vit_spt_lsa.py",
        "modeling_vit_spt_lsa.py",
        "pipeline_lens.py",
        "image_processing_lens.py",
        "file_io.py",
    } <= names
    config = json.loads((saved["plain"] / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "image-classification": {
            "impl": "pipeline_lens.LensImageClassificationPipeline",
            "pt": ["AutoModelForImageClassification"],
        }
    }
    assert config["auto_map"]["AutoModelForImageClassification"].startswith("modeling_vit_spt_lsa.")
    model = _tiny_models()["vit_spt_lsa"]
    model.save_pretrained(saved["root"] / "again")
    assert "custom_pipelines" not in model.config.to_dict()


def test_folder_contents(saved):
    for name, folder in saved["folders"].items():
        names = {p.name for p in folder.iterdir()}
        assert {
            "config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "image_processing_lens.py",
            "file_io.py",
        } <= names, name
        assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
        assert not any(p.name.startswith(f".{folder.name}.") for p in folder.parent.iterdir()), (
            "temporary folder left behind"
        )
        config = json.loads((folder / "config.json").read_text())
        if name == "vit_spt_lsa":
            # lens_hf's own model carries its pipeline for trust_remote_code users without lens_hf.
            assert "pipeline_lens.py" in names
            assert (
                config["custom_pipelines"]["image-classification"]["impl"]
                == "pipeline_lens.LensImageClassificationPipeline"
            )
        else:
            # Stock configs cannot drop a custom_pipelines entry where lens_hf is imported; none is written.
            assert "custom_pipelines" not in config and "pipeline_lens.py" not in names, name
        assert config["id2label"] == {str(i): label for i, label in enumerate(LABELS)}
        # The preprocessing the model was trained with, recorded next to the weights.
        assert config["lens_preprocessing"] == LensImageProcessor(size=SIZE).settings(), name


def test_fresh_python_without_lens_hf_loads_every_folder(saved):
    """One subprocess for all folders (the import of torch + transformers dominates its cost), where importing
    lens_hf is impossible: ``sys.modules["lens_hf"] = None``."""
    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["lens_hf"] = None  # any `import lens_hf...` now fails
        import numpy as np
        import torch
        from transformers import AutoModelForImageClassification, pipeline

        folders, npy, pv, refused = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        image, pixel_values = np.load(npy), torch.from_numpy(np.load(pv))
        out = {}
        for name, folder in folders.items():
            model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
            with torch.no_grad():
                probs = model(pixel_values=pixel_values).logits.softmax(-1)[0].tolist()
            pipe = pipeline("image-classification", model=folder, trust_remote_code=True)
            lensing = "custom_pipelines" in json.load(open(folder + "/config.json"))
            out[name] = {
                "model": type(model).__module__ + "." + type(model).__name__,
                "pipeline": type(pipe).__module__ + "." + type(pipe).__name__,
                "processor": type(pipe.image_processor).__module__ + "." + type(pipe.image_processor).__name__,
                "model_probs": probs,
                "array": pipe(image),
                "path": pipe(npy) if lensing else None,
                "tta": pipe(npy, tta="d4") if lensing else None,
            }
        try:
            pipeline("image-classification", model=refused, trust_remote_code=True)
            out["refused"] = None
        except Exception as err:
            out["refused"] = type(err).__name__ + ": " + str(err)
        out["lens_hf_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "lens_hf")
        print(json.dumps(out))
        """
    )
    root = saved["root"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf_home"), TRANSFORMERS_VERBOSITY="error", OMP_NUM_THREADS="1"
    )
    folders = {name: str(folder) for name, folder in saved["folders"].items()}
    folders["plain"] = str(saved["plain"])
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            script,
            json.dumps(folders),
            str(saved["npy"]),
            str(root / "pixel_values.npy"),
            str(saved["no_processor"]),
        ],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("lens_hf_modules") == ["lens_hf"]  # only the blocker
    refused = out.pop("refused")
    assert refused.startswith("LensFileError: ") and "preprocessor_config.json" in refused, refused
    assert "refusing to guess" in refused and "\n" not in refused
    assert set(out) == set(folders)
    for name, result in out.items():
        assert result["processor"].endswith(".image_processing_lens.LensImageProcessor"), name
        expected = saved["expected"]["vit_spt_lsa" if name == "plain" else name]
        if name in ("vit_spt_lsa", "plain"):
            assert result["model"].startswith("transformers_modules."), result["model"]
            assert result["pipeline"].startswith("transformers_modules.") and result["pipeline"].endswith(
                ".pipeline_lens.LensImageClassificationPipeline"
            ), name
            forms = ("array", "path")
            local = load_pipeline(folders[name])(saved["npy"], tta="d4")
            np.testing.assert_allclose(_scores(result["tta"]), _scores(local), atol=1e-6, err_msg=name)
        else:
            # Stock models use the stock pipeline (with the lensing processor): arrays, not .npy paths.
            assert result["pipeline"].endswith(".ImageClassificationPipeline"), name
            assert result["path"] is None, name
            forms = ("array",)
        np.testing.assert_allclose(result["model_probs"], expected, atol=1e-5, err_msg=name)
        for form in forms:
            scores = _scores(result[form])
            assert scores.sum() == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(scores, expected, atol=1e-5, err_msg=f"{name} {form}")


def test_with_lens_hf_imported_no_remote_code_needed(saved, image):
    from transformers import CONFIG_MAPPING

    assert "vit_spt_lsa" in CONFIG_MAPPING  # any lens_hf import runs `import lens_hf`, which registers it
    for name, folder in saved["folders"].items():
        expected = saved["expected"][name]
        model = AutoModelForImageClassification.from_pretrained(folder)
        assert type(model).__module__.split(".")[0] in ("transformers", "lens_hf"), type(model)
        with torch.no_grad():
            probs = model.eval()(pixel_values=saved["pixel_values"]).logits.softmax(-1)[0].numpy()
        np.testing.assert_allclose(probs, expected, atol=1e-5, err_msg=name)
        # Plain pipeline(), no trust_remote_code: importing lens_hf registered the lensing pipeline.
        pipe = pipeline("image-classification", model=str(folder))
        assert type(pipe) is LensImageClassificationPipeline, name
        for form in (image, saved["npy"]):
            np.testing.assert_allclose(_scores(pipe(form)), expected, atol=1e-5, err_msg=name)
        assert type(AutoImageProcessor.from_pretrained(folder)) is LensImageProcessor, name
        pipe = load_pipeline(folder)
        assert type(pipe) is LensImageClassificationPipeline
        for form in (image, saved["npy"], str(saved["npy"])):
            np.testing.assert_allclose(_scores(pipe(form)), expected, atol=1e-5, err_msg=name)


def test_pipeline_inputs_keep_floats_and_refuse_bad_arrays(saved, image, tmp_path):
    folder = saved["folders"]["vit"]
    pipe = load_pipeline(folder)
    expected = saved["expected"]["vit"]
    fits_path, tif_path = tmp_path / "lens.fits", tmp_path / "lens.tif"
    from astropy.io import fits

    fits.PrimaryHDU(image).writeto(fits_path)
    Image.fromarray(image, mode="F").save(tif_path)
    for form in (image[None], torch.from_numpy(image), Image.fromarray(image, mode="F"), fits_path, tif_path):
        np.testing.assert_allclose(_scores(pipe(form)), expected, atol=1e-5)
    batch = pipe([image, saved["npy"]])
    assert len(batch) == 2 and all(len(r) == 3 for r in batch)
    # A stock pipeline clips the float image to 8 bits; the lensing pipeline does not.
    clipped = np.clip(image, 0, 255)
    np.testing.assert_allclose(
        _scores(pipe(clipped)), _scores(pipe(Image.fromarray(clipped, mode="F"))), atol=1e-6
    )
    assert not np.allclose(_scores(pipe(clipped)), expected, atol=1e-4)
    for bad, message in [
        (np.stack([image] * 3), "colour channels"),
        (np.full((150, 150), np.nan, np.float32), "NaN"),
        (tmp_path / "none.npy", "no such file"),
    ]:
        with pytest.raises(LensFileError, match=message):
            pipe(bad)


def test_load_pipeline_from_model_object(saved, image):
    model = _tiny_models()["vit"]
    pipe = load_pipeline(model)
    assert type(pipe) is LensImageClassificationPipeline
    assert pipe.image_processor.size == {"height": SIZE, "width": SIZE}
    with torch.no_grad():
        expected = model(**pipe.image_processor(image)).logits.softmax(-1)[0].numpy()
    np.testing.assert_allclose(_scores(pipe(image)), expected, atol=1e-6)


def test_save_replaces_only_complete_folders(tmp_path, image):
    model = _tiny_models()["vit"]
    processor = LensImageProcessor(size=SIZE)
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with pytest.raises(ValueError, match="relative path"):
        save_model_folder(model, processor, out, extra_files={"../escape.txt": b"x"})
    assert (out / "stale.txt").read_text() == "old", "a failed save must leave the old folder untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "temporary folder left behind"

    result = save_model_folder(
        model, processor, out, extra_files={"README.md": b"# card\n", "eval/metrics.json": b"{}"}
    )
    assert result == out.absolute()
    assert "custom_pipelines" not in model.config.to_dict(), "the caller's config must not be changed"
    names = {p.name for p in out.iterdir()}
    assert "stale.txt" not in names and {"README.md", "eval", "model.safetensors"} <= names
    assert (out / "eval" / "metrics.json").read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with pytest.raises(ValueError, match="would overwrite"):
        save_model_folder(model, processor, out, extra_files={"config.json": b"{}"})
    reloaded = load_pipeline(out)
    with torch.no_grad():
        expected = model(**processor(image)).logits.softmax(-1)[0].numpy()
    np.testing.assert_allclose(_scores(reloaded(image)), expected, atol=1e-5)


def test_folder_files_are_loadable_code_only(saved):
    """The copied code imports nothing outside numpy, torch, transformers, PIL and itself (astropy lazily)."""
    from transformers.dynamic_module_utils import get_imports

    folder = saved["folders"].get("vit_spt_lsa", saved["folders"]["vit"])
    for name in ("image_processing_lens.py", "pipeline_lens.py", "file_io.py"):
        if name == "pipeline_lens.py" and not (folder / name).exists():
            continue
        imports = set(get_imports(folder / name)) - set(sys.stdlib_module_names)
        assert imports <= {"numpy", "torch", "transformers", "PIL"}, (name, imports)
    import lens_hf.processing.file_io as file_io

    assert (folder / "file_io.py").read_text() == Path(file_io.__file__).read_text()


# ------------------------------------------------------------------------------------------------ preprocessing
def _without_processor(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    (dest / "preprocessor_config.json").unlink()
    return dest


def test_missing_foreign_or_mismatched_processor_uses_the_record_or_is_refused(
    saved, image, tmp_path, caplog
):
    """Never a guessed resize: the folder's processor if it fits the model, else the preprocessing recorded in
    config.json (with a warning), else a one-line refusal naming preprocessor_config.json."""
    expected = saved["expected"]["vit_spt_lsa"]
    recorded = _without_processor(saved["folders"]["vit_spt_lsa"], tmp_path / "recorded")
    stock = {"image_processor_type": "ViTImageProcessor", "size": {"height": SIZE, "width": SIZE}}
    for case in ("missing", "foreign", "mismatched"):
        if case == "foreign":
            (recorded / "preprocessor_config.json").write_text(json.dumps(stock))
        if case == "mismatched":
            LensImageProcessor(size=SIZE + 16).save_pretrained(recorded)
        caplog.clear()
        with caplog.at_level("WARNING", logger="lens_hf.processing.pipeline_lens"):
            pipe = load_pipeline(recorded)
        assert "lens_preprocessing" in caplog.text, case
        np.testing.assert_allclose(_scores(pipe(image)), expected, atol=1e-5, err_msg=case)

    unrecorded = saved["no_processor"]  # saved plainly: config.json records nothing
    for case, words in (
        ("missing", "no such file"),
        ("foreign", "ViTImageProcessor"),
        ("mismatched", f"gives {SIZE + 16}x{SIZE + 16} px images but the model takes {SIZE}x{SIZE} px"),
    ):
        folder = tmp_path / f"unrecorded-{case}"
        shutil.copytree(unrecorded, folder)
        if case == "foreign":
            (folder / "preprocessor_config.json").write_text(json.dumps(stock))
        if case == "mismatched":
            LensImageProcessor(size=SIZE + 16).save_pretrained(folder)
        with pytest.raises(LensFileError) as err:
            load_pipeline(folder)
        message = str(err.value)
        assert message.startswith(str(folder / "preprocessor_config.json")) and "\n" not in message, case
        assert words in message and "refusing to guess" in message, message
    with pytest.raises(LensFileError, match="config.num_channels"):
        load_pipeline(saved["plain"], processor=LensImageProcessor(size=SIZE, num_channels=3))


def test_shipped_model_without_its_processor_gives_the_same_probabilities(tmp_path, image):
    from lens_hf.inference import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        pytest.skip("no shipped checkpoint in this checkout")
    folder = _without_processor(DEFAULT_MODEL_DIR, tmp_path / "shipped")
    with_file, without = load_pipeline(DEFAULT_MODEL_DIR), load_pipeline(folder)
    assert without.image_processor.settings() == with_file.image_processor.settings()
    assert without.image_processor.size == {"height": 96, "width": 96}  # not the model's 64 px: the record
    np.testing.assert_allclose(_scores(without(image)), _scores(with_file(image)), atol=0)


def test_non_finite_logits_fail_naming_the_image(saved, image, tmp_path):
    model = _tiny_models()["vit_spt_lsa"]
    with torch.no_grad():
        model.classifier.bias[1] = float("nan")
    folder = save_model_folder(model, LensImageProcessor(size=SIZE), tmp_path / "nan")
    pipe = load_pipeline(folder)
    for form, name in ((image, "input array"), (saved["npy"], str(saved["npy"]))):
        for tta in ("none", "d4"):
            with pytest.raises(LensFileError) as err:
                pipe(form, tta=tta)
            assert str(err.value).startswith(f"{name}: ") and "non-finite logits" in str(err.value)
    with pytest.raises(LensFileError, match="non-finite"):
        pipe([image, saved["npy"]], batch_size=2)


# ------------------------------------------------------------------------------------------------ TTA
@pytest.fixture(scope="module")
def asymmetric() -> np.ndarray:
    """(150, 150) counts: a ring plus an off-centre arc, so that rotations and flips change the image."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[:150, :150]
    ring = np.exp(-((np.hypot(x - 75, y - 75) - 30) ** 2) / 20.0)
    blob = np.exp(-((x - 110) ** 2 + (y - 60) ** 2) / 30.0)
    return (rng.poisson(20 + 5000 * ring + 8000 * blob) + 0.5).astype(np.float32)


def test_tta_is_invariant_to_rotations_and_flips(saved, asymmetric):
    pipe = load_pipeline(saved["folders"]["vit_spt_lsa"])
    reference = _scores(pipe(asymmetric, tta="d4"))
    plain = _scores(pipe(asymmetric))
    for k in range(4):
        for flip in (False, True):
            view = np.rot90(asymmetric[:, ::-1] if flip else asymmetric, k).copy()
            np.testing.assert_allclose(_scores(pipe(view, tta="d4")), reference, atol=1e-6, err_msg=(k, flip))
            if (k, flip) != (0, False):  # the test can fail: without TTA the predictions move
                assert np.abs(_scores(pipe(view)) - plain).max() > 1e-4, (k, flip)


def test_tta_is_the_mean_of_the_eight_views(saved, asymmetric, tmp_path):
    from lens_hf.processing import d4_transform

    pipe = load_pipeline(saved["folders"]["vit_spt_lsa"])
    pixel_values = pipe.image_processor(asymmetric)["pixel_values"]
    with torch.no_grad():
        views = [pipe.model(pixel_values=d4_transform(pixel_values, e)).logits.softmax(-1) for e in range(8)]
    mean = torch.stack(views).mean(0)[0].numpy()
    np.testing.assert_allclose(_scores(pipe(asymmetric, tta="d4")), mean, atol=1e-6)
    assert not np.allclose(_scores(pipe(asymmetric)), mean, atol=1e-5)
    # A pipeline parameter: at construction, at call time, batched; "none" is the plain prediction.
    path = tmp_path / "lens.npy"
    np.save(path, asymmetric)
    np.testing.assert_allclose(
        _scores(load_pipeline(saved["folders"]["vit_spt_lsa"], tta="d4")(path)), mean, atol=1e-6
    )
    batch = pipe([asymmetric, str(path)], tta="d4", batch_size=2)
    for result in batch:
        np.testing.assert_allclose(_scores(result), mean, atol=1e-6)
    np.testing.assert_allclose(_scores(pipe(asymmetric, tta="none")), _scores(pipe(asymmetric)), atol=0)
    with pytest.raises(ValueError, match="tta must be one of none, d4, d2"):
        pipe(asymmetric, tta="d8")


def test_tta_d2_is_the_mean_of_the_four_axis_keeping_views(saved, asymmetric):
    """tta="d2": the mean over identity, the mirror flips and the half turn; invariant under those, not under a
    quarter turn (which swaps the axes a grid-aligned lens is trained on)."""
    from lens_hf.processing import d4_transform

    pipe = load_pipeline(saved["folders"]["vit_spt_lsa"])
    pixel_values = pipe.image_processor(asymmetric)["pixel_values"]
    with torch.no_grad():
        views = [
            pipe.model(pixel_values=d4_transform(pixel_values, e)).logits.softmax(-1) for e in (0, 1, 4, 5)
        ]
    mean = torch.stack(views).mean(0)[0].numpy()
    reference = _scores(pipe(asymmetric, tta="d2"))
    np.testing.assert_allclose(reference, mean, atol=1e-6)
    for view in (asymmetric[:, ::-1], asymmetric[::-1, :], np.rot90(asymmetric, 2)):
        np.testing.assert_allclose(_scores(pipe(view.copy(), tta="d2")), reference, atol=1e-6)
    quarter = _scores(pipe(np.rot90(asymmetric).copy(), tta="d2"))
    assert np.abs(quarter - reference).max() > 1e-5  # the test can fail: a quarter turn is not in the group


# ------------------------------------------------------------------------------------------------ code
def test_registration_happens_in_one_place():
    """Only lens_hf/registration.py registers with transformers, and the modules of this part import at module
    level (no import inside a function keeps a cycle alive)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "lens_hf"
    names = {"register", "register_for_auto_class", "register_pipeline", "register_auto_classes"}
    callers = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name in names:
                    callers.setdefault(path.relative_to(root).as_posix(), set()).add(name)
    assert callers == {
        "__init__.py": {"register_auto_classes"},
        "registration.py": {"register", "register_for_auto_class", "register_pipeline"},
        "processing/pipeline_lens.py": {"register_pipeline"},  # PIPELINE_REGISTRY.register_pipeline, once
    }, callers
    modules = (
        "__init__.py",
        "registration.py",
        "inference.py",
        "models/__init__.py",
        "models/vit_spt_lsa/__init__.py",
        "models/vit_spt_lsa/modeling_vit_spt_lsa.py",
        "processing/__init__.py",
        "processing/checks.py",
        "processing/image_processing_lens.py",
        "processing/pipeline_lens.py",
        "processing/saving.py",
    )
    for rel in modules:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
                assert not inner, f"{rel}: import inside {node.name}()"


def test_shipped_checkpoint_carries_the_current_code():
    """The remote-code copies in checkpoints/ are the package's modules, byte for byte."""
    import lens_hf.models.vit_spt_lsa.configuration_vit_spt_lsa as configuration
    import lens_hf.models.vit_spt_lsa.modeling_vit_spt_lsa as modeling
    import lens_hf.processing.file_io as file_io
    import lens_hf.processing.image_processing_lens as image_processing
    import lens_hf.processing.pipeline_lens as pipeline_module
    import lens_hf.processing.targets as targets
    from lens_hf.inference import DEFAULT_MODEL_DIR

    folders = [f for f in DEFAULT_MODEL_DIR.parent.glob("*") if (f / "config.json").is_file()]
    if not folders:
        pytest.skip("no shipped checkpoint in this checkout")
    modules = (configuration, modeling, file_io, image_processing, pipeline_module, targets)
    for folder in folders:  # the classifier and the axion-mass regressor
        copies = sorted(p.name for p in folder.glob("*.py"))
        assert copies == sorted(Path(m.__file__).name for m in modules), folder.name
        for module in modules:
            source = Path(module.__file__)
            assert (folder / source.name).read_bytes() == source.read_bytes(), (folder.name, source.name)


def test_regression_model_answers_its_target_in_physical_units(tmp_path):
    """A regression model through the image-classification pipeline: one ``{"label": target, "score": value}``
    with the value in physical units (eV), exactly invariant under D4 with tta="d4"; the same in a Python that
    never imports lens_hf (remote code, ``targets.py`` travels with the folder)."""
    from lens_hf.models.factory import create_model
    from lens_hf.processing.targets import TargetScaling

    scaling = TargetScaling("axion_mass", "log10", -23.0, 0.5)
    torch.manual_seed(0)
    model = create_model(
        "vit-spt-lsa-tiny",
        image_size=SIZE,
        task="regression",
        target=scaling,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    ).eval()
    processor = LensImageProcessor(size={"height": SIZE, "width": SIZE})
    folder = save_model_folder(model, processor, tmp_path / "regressor")
    assert (folder / "targets.py").is_file()
    image = np.random.default_rng(0).gamma(2.0, 1.0, (40, 40)).astype(np.float32)
    np.save(tmp_path / "lens.npy", image)

    pipe = load_pipeline(folder)
    result = pipe(image)
    with torch.no_grad():
        output = model(pixel_values=processor(image, return_tensors="pt")["pixel_values"]).logits
    assert result == [{"label": "axion_mass", "score": pytest.approx(10 ** (-23.0 + 0.5 * float(output)))}]
    turned = pipe(np.rot90(image).copy(), tta="d4")[0]["score"]
    assert turned == pytest.approx(pipe(image, tta="d4")[0]["score"], rel=1e-5)

    script = textwrap.dedent(
        """
        import json, sys
        sys.modules["lens_hf"] = None
        from transformers import pipeline
        pipe = pipeline("image-classification", model=sys.argv[1], trust_remote_code=True)
        print(json.dumps(pipe(sys.argv[2])))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script, str(folder), str(tmp_path / "lens.npy")],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fresh[0]["label"] == "axion_mass" and fresh[0]["score"] == pytest.approx(
        result[0]["score"], rel=1e-5
    )
