"""Saved model folders: the lensing pipeline loads them with lens_hf imported and, through remote code, in a
Python that never imports lens_hf; predictions match the model that was saved."""

from __future__ import annotations

import json
import os
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
    """Saved folders of every tiny model, the .npy input and the probabilities each model gave before saving."""
    root = tmp_path_factory.mktemp("models")
    processor = LensImageProcessor(size=SIZE)
    pixel_values = processor(image)["pixel_values"]
    npy = root / "lens.npy"
    np.save(npy, image)
    np.save(root / "pixel_values.npy", pixel_values.numpy())
    folders, expected = {}, {}
    for name, model in _tiny_models().items():
        with torch.no_grad():
            expected[name] = model(pixel_values=pixel_values).logits.softmax(-1)[0].numpy()
        folders[name] = save_model_folder(model, processor, root / f"model_{name}")
    return {"root": root, "folders": folders, "expected": expected, "npy": npy, "pixel_values": pixel_values}


def _scores(result: list[dict]) -> np.ndarray:
    """Pipeline output -> probabilities in label-id order."""
    assert sorted(r["label"] for r in result) == sorted(LABELS)
    by_label = {r["label"]: r["score"] for r in result}
    return np.array([by_label[label] for label in LABELS])


def test_spt_lsa_model_is_covered(saved):
    names = {p.name for p in saved["folders"]["vit_spt_lsa"].iterdir()}
    assert {"configuration_vit_spt_lsa.py", "modeling_vit_spt_lsa.py"} <= names


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


def test_fresh_python_without_lens_hf_loads_every_folder(saved):
    """One subprocess for all folders: the import of torch + transformers dominates its cost."""
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import torch
        from transformers import AutoModelForImageClassification, pipeline

        folders, npy, pv = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
        image, pixel_values = np.load(npy), torch.from_numpy(np.load(pv))
        out = {}
        for name, folder in folders.items():
            model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
            with torch.no_grad():
                probs = model(pixel_values=pixel_values).logits.softmax(-1)[0].tolist()
            pipe = pipeline("image-classification", model=folder, trust_remote_code=True)
            out[name] = {
                "model": type(model).__module__ + "." + type(model).__name__,
                "pipeline": type(pipe).__module__ + "." + type(pipe).__name__,
                "processor": type(pipe.image_processor).__module__ + "." + type(pipe.image_processor).__name__,
                "model_probs": probs,
                "array": pipe(image),
                "path": pipe(npy) if "custom_pipelines" in json.load(open(folder + "/config.json")) else None,
            }
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
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            script,
            json.dumps(folders),
            str(saved["npy"]),
            str(root / "pixel_values.npy"),
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
    assert out.pop("lens_hf_modules") == []
    assert set(out) == set(folders)
    for name, result in out.items():
        assert result["processor"].endswith(".image_processing_lens.LensImageProcessor"), name
        if name == "vit_spt_lsa":
            assert result["model"].startswith("transformers_modules."), result["model"]
            assert result["pipeline"].startswith("transformers_modules.") and result["pipeline"].endswith(
                ".pipeline_lens.LensImageClassificationPipeline"
            ), name
            forms = ("array", "path")
        else:
            # Stock models use the stock pipeline (with the lensing processor): arrays, not .npy paths.
            assert result["pipeline"].endswith(".ImageClassificationPipeline"), name
            assert result["path"] is None, name
            forms = ("array",)
        expected = saved["expected"][name]
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
