"""Train a ResNet-18 on lensing images: the CNN baseline, and the teacher ``finetune_deit.py`` distils from.

    python recipes/train_cnn_teacher.py --output_dir runs/teacher
    accelerate launch recipes/train_cnn_teacher.py --output_dir runs/teacher
    python recipes/train_cnn_teacher.py --model_name_or_path microsoft/resnet-18 --learning_rate 1e-4 \
        --output_dir runs/resnet-pretrained
"""

from lens_hf.training import run_recipe

DEFAULTS = {
    "model_preset": "resnet-18",
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "num_train_epochs": 50,
}


def main() -> None:
    run_recipe("train_cnn_teacher", DEFAULTS)


if __name__ == "__main__":
    main()
