"""Keep secrets and local paths out of what is recorded and published (run records, cards, pushed files).

- Values of secret-like options (``--hub_token X``, ``--token=X``, ``--password``, ``--api_key`` ...) and of
  secret-like keys in records (``"hub_token": ...``) are replaced by ``***``.
- Token-like strings anywhere (Hugging Face ``hf_...``, GitHub ``ghp_...``, ``sk-...`` keys, AWS key ids) are
  replaced by ``***``.
- Absolute paths become relative to the working directory when they lie under it, and their last component
  otherwise (``/home/me/.venv/bin/python`` -> ``python``).

:func:`redact_record` applies all of it to a JSON-like record (a training or dataset record, metrics).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

MASK = "***"

# Option names whose value is a secret, whatever it looks like.
_SECRET_OPTION = re.compile(
    r"^--?[\w.-]*(token|password|passwd|secret|api[_-]?key|auth)[\w.-]*$", re.IGNORECASE
)

# Record keys whose value is a secret ("hub_token", "password", "api_key"; not "max_tokens" or "tokenizer").
_SECRET_KEY = re.compile(
    r"(^|[_.-])(token|password|passwd|secret|api[_-]?key|credentials?)($|[_.-])", re.IGNORECASE
)
# Record keys that hold a command line as one string.
_COMMAND_KEYS = frozenset({"command", "cmd", "command_line"})

# Strings that are credentials on their own. The lengths are those of real tokens (a Hugging Face token is
# "hf_" + 34 characters), so identifiers such as hf_logging or hf_quantizer in code never match.
TOKEN_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])("
    r"hf_[A-Za-z0-9]{30,}"  # Hugging Face user/org access tokens
    r"|api_org_[A-Za-z0-9]{30,}"  # Hugging Face legacy org tokens
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|sk-[A-Za-z0-9_-]{20,}"  # OpenAI-style secret keys
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|xox[baprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r")"
)

# Environment variables whose values are secrets (their values are masked wherever they appear).
_SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|APIKEY|CREDENTIAL)", re.IGNORECASE)


def secret_env_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values (at least 6 characters) of environment variables named like secrets (``HF_TOKEN`` ...)."""
    env = os.environ if environ is None else environ
    return sorted({v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= 6}, key=len, reverse=True)


def contains_secret(text: str, environ: dict[str, str] | None = None) -> bool:
    """True when ``text`` holds a token-like string or the value of a secret environment variable."""
    if TOKEN_PATTERN.search(text):
        return True
    return any(value in text for value in secret_env_values(environ))


def redact_text(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` with token-like strings and secret environment values replaced by ``***``."""
    for value in secret_env_values(environ):
        text = text.replace(value, MASK)
    return TOKEN_PATTERN.sub(MASK, text)


def public_path(value: str | os.PathLike, cwd: str | os.PathLike | None = None) -> str:
    """A path fit to publish: relative to ``cwd`` (default: the working directory) when under it, else its
    last component. Relative paths and non-paths are returned unchanged."""
    text = os.fspath(value)
    if not os.path.isabs(text):
        return text
    base = Path(os.getcwd() if cwd is None else cwd).resolve()
    try:
        path = Path(text).resolve()
    except (OSError, RuntimeError):
        path = Path(text)
    try:
        rel = path.relative_to(base)
        return rel.as_posix() or "."
    except ValueError:
        return PurePosixPath(text).name or text


def _redact_arg(arg: str, cwd: str | os.PathLike | None) -> str:
    if "=" in arg and arg.startswith("-"):
        name, value = arg.split("=", 1)
        if _SECRET_OPTION.match(name):
            return f"{name}={MASK}"
        return f"{name}={_redact_arg(value, cwd)}"
    if os.path.isabs(arg):
        return public_path(arg, cwd)
    return arg


def redact_argv(
    argv: Sequence[str], cwd: str | os.PathLike | None = None, environ: dict[str, str] | None = None
) -> list[str]:
    """A command line fit to record and publish: secret option values masked, token-like strings masked,
    absolute paths made relative (see :func:`public_path`)."""
    out: list[str] = []
    mask_next = False
    for raw in argv:
        arg = str(raw)
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if arg.startswith("-") and "=" not in arg and _SECRET_OPTION.match(arg):
            out.append(arg)
            mask_next = True
            continue
        out.append(redact_text(_redact_arg(arg, cwd), environ))
    return out


def redact_paths_in(values: Iterable[str | None], cwd: str | os.PathLike | None = None) -> list[str | None]:
    """:func:`public_path` over a column of paths (None kept)."""
    return [None if v is None else public_path(v, cwd) for v in values]


def is_local_path(text: str) -> bool:
    """True for a string that is one absolute local path (``/data/x``, ``~/x``, ``C:\\x``), no spaces inside."""
    if not text or any(c.isspace() for c in text):
        return False
    return bool(re.match(r"^(/[^/]|~/|[A-Za-z]:[\\/])", text))


def _redact_string(text: str, cwd: str | os.PathLike | None, environ: dict[str, str] | None) -> str:
    text = redact_text(text, environ)
    return public_path(os.path.expanduser(text), cwd) if is_local_path(text) else text


def redact_record(
    record: Any, cwd: str | os.PathLike | None = None, environ: dict[str, str] | None = None
) -> Any:
    """A copy of a JSON-like ``record`` fit to publish: values of secret-named keys (``hub_token`` ...) masked
    (``<PLACEHOLDER>`` values kept), command lines (lists of strings, or strings under ``command``) through
    :func:`redact_argv`, token-like strings masked and absolute paths made public (:func:`public_path`)."""
    if isinstance(record, Mapping):
        out = {}
        for key, value in record.items():
            name = str(key)
            if (
                _SECRET_KEY.search(name)
                and isinstance(value, str)
                and value
                and not re.fullmatch(r"<\w+>", value)
            ):
                out[key] = MASK
            elif name in _COMMAND_KEYS and isinstance(value, str):
                try:
                    out[key] = shlex.join(redact_argv(shlex.split(value), cwd, environ))
                except ValueError:  # unbalanced quotes: not a parseable command line
                    out[key] = _redact_string(value, cwd, environ)
            else:
                out[key] = redact_record(value, cwd, environ)
        return out
    if isinstance(record, list | tuple):
        if record and all(isinstance(v, str) for v in record):
            return redact_argv(record, cwd, environ)
        return [redact_record(v, cwd, environ) for v in record]
    if isinstance(record, str):
        return _redact_string(record, cwd, environ)
    return record


__all__ = [
    "MASK",
    "TOKEN_PATTERN",
    "contains_secret",
    "is_local_path",
    "public_path",
    "redact_argv",
    "redact_paths_in",
    "redact_record",
    "redact_text",
    "secret_env_values",
]
