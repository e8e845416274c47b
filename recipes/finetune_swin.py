"""Train a Swin Transformer on lensing images: the stock ``swin-tiny`` preset from scratch, or fine-tune a
Swin checkpoint.

    python recipes/finetune_swin.py --output_dir runs/swin
    accelerate launch recipes/finetune_swin.py --output_dir runs/swin
    python recipes/finetune_swin.py --model_name_or_path microsoft/swin-tiny-patch4-window7-224 \
        --learning_rate 1e-4 --dataset data/model_i --output_dir runs/swin-pretrained

Swin needs its window to fit the last stage's feature map: the preset picks a working window for the image
size, and a clear error names one when a checkpoint's window does not fit.
"""

from lens_hf.training import RECIPE_DEFAULTS, run_recipe

DEFAULTS = RECIPE_DEFAULTS["finetune_swin"]


def main() -> None:
    run_recipe("finetune_swin", DEFAULTS)


if __name__ == "__main__":
    main()
