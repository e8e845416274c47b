"""Secrets and local paths never reach what is recorded or published."""

from __future__ import annotations

import os

from lens_hf.redact import MASK, contains_secret, public_path, redact_argv, redact_text


def test_secret_option_values_are_masked_in_both_forms():
    argv = ["lens-hf", "train", "--hub_token", "plainvalue123", "--token=abc", "--output_dir", "runs/x"]
    out = redact_argv(argv)
    assert "plainvalue123" not in out and "--token=abc" not in out
    assert out[:4] == ["lens-hf", "train", "--hub_token", MASK]
    assert f"--token={MASK}" in out
    assert out[-2:] == ["--output_dir", "runs/x"]


def test_token_like_strings_are_masked_anywhere():
    text = "push with hf_AbCdEf123456 and ghp_" + "x" * 30 + " done"
    red = redact_text(text)
    assert "hf_AbCdEf123456" not in red and "ghp_" not in red
    assert red.count(MASK) == 2
    assert contains_secret(text) and not contains_secret(red)
    # ordinary words that merely start like a token are kept
    assert redact_text("hf_hub offline") == "hf_hub offline"


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
