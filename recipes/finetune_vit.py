"""Train a ViT on lensing images: the stock ``vit-tiny`` preset from scratch, or fine-tune any ViT checkpoint.

    python recipes/finetune_vit.py --output_dir runs/vit
    accelerate launch recipes/finetune_vit.py --config recipes/configs/finetune_vit.yaml --output_dir runs/vit
    python recipes/finetune_vit.py --model_name_or_path google/vit-base-patch16-224 --learning_rate 1e-4 \
        --dataset data/model_i --output_dir runs/vit-base

With only ``--output_dir`` it trains on a small Model I set simulated on the fly. Every Trainer flag
(``--num_train_epochs``, ``--per_device_train_batch_size``, ``--resume_from_checkpoint last``, ...) and every
lens_hf option (``--dataset``, ``--augment``, ``--random_crop``, ``--lr_schedule``, ...) is accepted;
``--help`` lists them.
"""

from lens_hf.training import RECIPE_DEFAULTS, run_recipe

DEFAULTS = RECIPE_DEFAULTS["finetune_vit"]


def main() -> None:
    run_recipe("finetune_vit", DEFAULTS)


if __name__ == "__main__":
    main()
