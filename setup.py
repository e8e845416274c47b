"""The one build step setup.cfg cannot express: the card templates of the top-level ``hub_cards/`` folder (their
one source) ship inside the package as ``lens_hf/hub_cards/``, in wheels and in editable installs alike.
Everything else about the package is declared in setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["lens_hf", "lens_hf.*"]), "lens_hf.hub_cards"],
    package_dir={"lens_hf.hub_cards": "hub_cards"},
    package_data={"lens_hf": ["reference_results.json"], "lens_hf.hub_cards": ["*.md"]},
)
