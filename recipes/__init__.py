"""The training recipes: one self-contained example script per model family, run as
``python recipes/<name>.py`` (or with ``torchrun`` / ``accelerate launch``).

Each script's ``main(argv)`` is also what ``lens-hf train --recipe NAME`` runs; installed packages carry these
files as ``lens_hf.recipes``.
"""
