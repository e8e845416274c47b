"""The three lensing classes, their ids, and the folder names they go by in the wild."""

from __future__ import annotations

LABELS: tuple[str, ...] = ("no_substructure", "subhalo", "vortex")
LABEL2ID: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

# Folder names used by the DeepLense archives, the ML4SCI common test and users' own trees.
ALIASES: dict[str, str] = {
    "no_substructure": "no_substructure",
    "no": "no_substructure",
    "no_sub": "no_substructure",
    "nosub": "no_substructure",
    "no sub": "no_substructure",
    "subhalo": "subhalo",
    "subhalos": "subhalo",
    "sphere": "subhalo",
    "cdm": "subhalo",
    "spherical": "subhalo",
    "vortex": "vortex",
    "vort": "vortex",
    "axion": "vortex",
    "vortices": "vortex",
}

# Folder names the DeepLense Model I-III archives use for each class, in id order.
DEEPLENSE_FOLDERS: dict[str, str] = {"no_substructure": "no_sub", "subhalo": "cdm", "vortex": "axion"}


def canonical_label(name: str) -> str | None:
    """Map a class folder name (any alias, any case, '-' or '_') to its canonical label, or None if unknown."""
    key = name.strip().lower().replace("-", "_")
    return ALIASES.get(key, ALIASES.get(key.replace("_", " ")))
