"""Train a ResNet-18 on lensing images: the CNN baseline, and the teacher ``finetune_deit.py`` distils from.

    python recipes/train_cnn_teacher.py --output_dir runs/teacher
    accelerate launch recipes/train_cnn_teacher.py --output_dir runs/teacher
    python recipes/train_cnn_teacher.py --model_name_or_path microsoft/resnet-18 --learning_rate 1e-4 \
        --output_dir runs/resnet-pretrained
"""

from lens_hf.training import RECIPE_DEFAULTS, run_recipe

DEFAULTS = RECIPE_DEFAULTS["train_cnn_teacher"]


def main() -> None:
    run_recipe("train_cnn_teacher", DEFAULTS)


if __name__ == "__main__":
    main()
