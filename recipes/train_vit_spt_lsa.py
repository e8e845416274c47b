"""Train a ViT with Shifted Patch Tokenization and Locality Self-Attention (Lee et al. 2021) from scratch,
the small-data vision transformer for lensing images.

    python recipes/train_vit_spt_lsa.py --output_dir runs/vit-spt-lsa
    accelerate launch recipes/train_vit_spt_lsa.py --output_dir runs/vit-spt-lsa
    python recipes/train_vit_spt_lsa.py --model_preset vit-spt-tiny --output_dir runs/ablation-spt

The ablations ``vit-spt-tiny`` (SPT only) and ``vit-lsa-tiny`` (LSA only) are selected with ``--model_preset``.
"""

from lens_hf.training import RECIPE_DEFAULTS, run_recipe

DEFAULTS = RECIPE_DEFAULTS["train_vit_spt_lsa"]


def main() -> None:
    run_recipe("train_vit_spt_lsa", DEFAULTS)


if __name__ == "__main__":
    main()
