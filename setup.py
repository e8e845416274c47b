"""The build steps setup.cfg cannot express: two top-level folders, each the one source of its files, ship inside
the package, in wheels and in editable installs alike: the card templates of ``hub_cards/`` as
``lens_hf/hub_cards/``, and the recipe scripts of ``recipes/`` (with their configs) as ``lens_hf.recipes``, which
``lens-hf train --recipe NAME`` imports outside a source checkout. The web demo's simulated examples
(``lens_hf/demo/examples/*.npy``) are package data. Everything else about the package is declared
in setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["lens_hf", "lens_hf.*"]), "lens_hf.hub_cards", "lens_hf.recipes"],
    package_dir={"lens_hf.hub_cards": "hub_cards", "lens_hf.recipes": "recipes"},
    package_data={
        "lens_hf": ["reference_results.json"],
        "lens_hf.demo": ["examples/*.npy"],
        "lens_hf.hub_cards": ["*.md"],
        "lens_hf.recipes": ["configs/*.yaml", "configs/*.json"],
    },
)
