"""Errors that reach users as one line: the CLI prints ``str(err)`` and exits non-zero."""

from __future__ import annotations

from lens_hf.processing.file_io import LensFileError


class LensHFError(Exception):
    """A problem with the user's input or request, explained in one line."""


# Everything the command line reports as a one-line error instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (LensHFError, LensFileError)

__all__ = ["LensFileError", "LensHFError", "USER_ERRORS"]
