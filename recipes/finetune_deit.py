"""Train a DeiT (class and distillation tokens) on lensing images, distilled from a CNN teacher.

    python recipes/train_cnn_teacher.py --output_dir runs/teacher
    python recipes/finetune_deit.py --teacher runs/teacher --output_dir runs/deit
    accelerate launch recipes/finetune_deit.py --teacher runs/teacher --output_dir runs/deit
    python recipes/finetune_deit.py --model_name_or_path facebook/deit-tiny-distilled-patch16-224 \
        --teacher runs/teacher --learning_rate 1e-4 --output_dir runs/deit-pretrained

The loss is DeiT's hard distillation, ``(1 - a) * CE(cls_logits, y) + a * CE(distillation_logits,
argmax(teacher))`` with ``a = --distillation_alpha``; the teacher is frozen. Without ``--teacher`` both heads
learn the labels. Evaluation reports the class-token head (``cls_*``), the distillation head (``dist_*``)
and their average (the model's prediction).
"""

from lens_hf.training import RECIPE_DEFAULTS, run_recipe

DEFAULTS = RECIPE_DEFAULTS["finetune_deit"]


def main() -> None:
    run_recipe("finetune_deit", DEFAULTS)


if __name__ == "__main__":
    main()
