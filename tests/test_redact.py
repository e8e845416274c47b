"""Secrets and local paths never reach what is recorded or published."""

from __future__ import annotations

import os

from lens_hf.redact import (
    MASK,
    contains_secret,
    is_local_path,
    public_path,
    redact_argv,
    redact_record,
    redact_text,
)


def test_secret_option_values_are_masked_in_both_forms():
    argv = ["lens-hf", "train", "--hub_token", "plainvalue123", "--token=abc", "--output_dir", "runs/x"]
    out = redact_argv(argv)
    assert "plainvalue123" not in out and "--token=abc" not in out
    assert out[:4] == ["lens-hf", "train", "--hub_token", MASK]
    assert f"--token={MASK}" in out
    assert out[-2:] == ["--output_dir", "runs/x"]


HF_TOKEN_LIKE = "hf_" + "Q7vLr2XpN9sKd4TbW1mZc8YfJ3hGa6Ue0o"  # the shape of a real token: hf_ + 34 characters


def test_token_like_strings_are_masked_anywhere():
    text = f"push with {HF_TOKEN_LIKE} and ghp_" + "x" * 30 + " done"
    red = redact_text(text)
    assert HF_TOKEN_LIKE not in red and "ghp_" not in red
    assert red.count(MASK) == 2
    assert contains_secret(text) and not contains_secret(red)
    # identifiers that merely start like a token are kept (they are everywhere in code)
    for word in ("hf_hub offline", "hf_logging", "hf_quantizer", "hf_dataset_path", "sk-learn"):
        assert redact_text(word) == word and not contains_secret(word)


def test_secret_environment_values_are_masked():
    env = {"HF_TOKEN": "not-prefixed-secret", "HOME": "/root"}
    assert redact_text("value=not-prefixed-secret", env) == f"value={MASK}"
    assert contains_secret("x not-prefixed-secret y", env)
    assert not contains_secret("/root", env)


def test_absolute_paths_become_relative_or_names(tmp_path):
    inside = tmp_path / "runs" / "model"
    assert public_path(inside, cwd=tmp_path) == "runs/model"
    assert public_path("/opt/venv/bin/python", cwd=tmp_path) == "python"
    assert public_path("relative/kept", cwd=tmp_path) == "relative/kept"
    argv = [os.fspath(inside), f"--dataset={tmp_path / 'ds'}"]
    assert redact_argv(argv, cwd=tmp_path) == ["runs/model", "--dataset=ds"]


def test_local_path_strings():
    for text in ("/data/x", "/a", "~/runs", "C:\\data\\x", "D:/x"):
        assert is_local_path(text), text
    for text in ("data/x", "runs", "", "/", "//host", "a /b", "https://huggingface.co/x", "0.05"):
        assert not is_local_path(text), text


def test_records_are_made_publishable(tmp_path):
    record = {
        "command": f"/usr/bin/python {tmp_path / 'train.py'} --hub_token {HF_TOKEN_LIKE} --out {tmp_path / 'run'}",
        "training_args": {
            "hub_token": "plain-secret-value",
            "placeholder_token": "<HUB_TOKEN>",
            "max_tokens": 5,
            "tokenizer_name": "bert",
            "output_dir": str(tmp_path / "run"),
            "report_to": ["none"],
        },
        "argv": ["train.py", "--password", "pw", f"--data={tmp_path / 'ds'}"],
        "dataset": {"source": "/elsewhere/archive", "note": f"token {HF_TOKEN_LIKE} inside"},
        "numbers": [1, 2.5, None, True],
    }
    clean = redact_record(record, cwd=tmp_path)
    assert clean["command"] == "python train.py --hub_token '***' --out run"
    assert clean["training_args"] == {
        "hub_token": MASK,
        "placeholder_token": "<HUB_TOKEN>",
        "max_tokens": 5,
        "tokenizer_name": "bert",
        "output_dir": "run",
        "report_to": ["none"],
    }
    assert clean["argv"] == ["train.py", "--password", MASK, "--data=ds"]
    assert clean["dataset"] == {"source": "archive", "note": f"token {MASK} inside"}
    assert clean["numbers"] == [1, 2.5, None, True]
    assert redact_record(clean, cwd=tmp_path) == clean  # idempotent
    assert record["training_args"]["hub_token"] == "plain-secret-value"  # the input is not changed
