"""Train a DeiT (class and distillation tokens) on lensing images, distilled from a CNN teacher.

    python recipes/train_cnn_teacher.py --output_dir runs/teacher
    python recipes/finetune_deit.py --teacher runs/teacher --output_dir runs/deit
    python recipes/finetune_deit.py --model_name_or_path facebook/deit-tiny-distilled-patch16-224 \
        --teacher runs/teacher --learning_rate 1e-4 --output_dir runs/deit-pretrained
    accelerate launch --config_file recipes/configs/accelerate_multi_gpu.yaml recipes/finetune_deit.py \
        --teacher runs/teacher --dataset model_i_ds/ --output_dir runs/deit

The loss is DeiT's hard distillation, ``(1 - a) * CE(cls_logits, y) + a * CE(distillation_logits,
argmax(teacher))`` with ``a = --distillation_alpha`` (``--distillation_type soft``: ``T^2 * KL`` of the
softmaxes at ``--distillation_temperature T`` instead); the teacher is frozen. Without ``--teacher`` both heads
learn the labels. Evaluation reports the class-token head (``cls_*``), the distillation head (``dist_*``) and
their average (the model's prediction). With only ``--output_dir`` it trains on a small Model I set simulated
on the fly; every ``TrainingArguments`` flag and lens_hf option is accepted, also from ``--config FILE``.
"""

import sys

from transformers import DeiTForImageClassificationWithTeacher, HfArgumentParser, TrainerCallback, set_seed

from lens_hf.errors import LensHFError
from lens_hf.training import (
    PLAIN_VIT_DATASET_DEFAULTS,
    BatchAugment,
    DataArguments,
    DistillationArguments,
    DistillationTrainer,
    LensTrainingArguments,
    ModelArguments,
    build_model,
    build_processor,
    check_args,
    check_teacher_inputs,
    exit_on_user_error,
    finish_run,
    load_splits,
    load_teacher,
    make_transforms,
    model_input_size,
    parse_args,
    resolve_resume,
    setup_logging,
)

RECIPE = "finetune_deit"

# This recipe's defaults, over lens_hf.training.TRAINING_DEFAULTS; --config FILE and the flags override them.
DEFAULTS = {
    "model_preset": "deit-tiny",
    "learning_rate": 5e-4,
    "weight_decay": 0.05,
    "num_train_epochs": 50,
    "distillation_alpha": 0.5,
}

# Per kind of data (the preset a --dataset records, or --preset): what the model sees and this family's settings
# for it, shared with the other stock ViT-family recipe (lens_hf.training.PLAIN_VIT_DATASET_DEFAULTS: the
# central 32 px, 8x8 px patches, 4 layers, learning rate 1.5e-4 after 100 warm-up steps). Used only with the
# recipe's own model preset.
DATASET_DEFAULTS = PLAIN_VIT_DATASET_DEFAULTS


def main(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Train, evaluate and save (``argv``: the command-line arguments, default ``sys.argv[1:]``). Returns the
    final metrics on the main process, an empty dict on the others. ``lens-hf train --recipe deit``
    runs this function."""
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments, DistillationArguments))
    model_args, data_args, training_args, distill_args = parse_args(parser, DEFAULTS, argv, DATASET_DEFAULTS)
    check_args(model_args, data_args)
    teacher = load_teacher(distill_args)
    setup_logging(training_args)

    # Data: --dataset (any folder lens_hf reads), or train/validation/test simulated on the fly.
    set_seed(training_args.seed)
    splits, data_info = load_splits(
        data_args, training_args.seed, progress=training_args.local_process_index == 0
    )

    # Inputs: the image processor saved with the model (resize, centre crop, per-image normalisation), the
    # dataset transforms, and the random augmentation of each training batch (D4 symmetries, random crops).
    processor = build_processor(model_args, data_args, data_info["image_size"], splits["train"])
    if teacher is not None:  # the teacher must read what the student reads
        check_teacher_inputs(teacher, processor, distill_args.teacher)
    random_crop = data_args.center_crop is None
    train_transform, eval_transform = make_transforms(processor, random_crop=random_crop)
    augmentation = BatchAugment.for_processor(processor, data_args.augment, random_crop=random_crop)

    # Model: the student, a DeiT with class and distillation tokens (the preset, or a DeiT checkpoint loaded
    # with both heads), and the teacher: any saved classifier, frozen (safetensors weights, no remote code).
    set_seed(training_args.seed)
    student_class = DeiTForImageClassificationWithTeacher
    model = build_model(
        model_args,
        model_input_size(processor),
        architecture=student_class.__name__,
        num_channels=processor.num_channels,
    )
    if not isinstance(model, student_class):
        raise LensHFError(f"{RECIPE} trains a DeiT with a distillation token, got {type(model).__name__}")

    trainer = DistillationTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"].with_transform(train_transform),
        eval_dataset=splits["validation"].with_transform(eval_transform),
        processing_class=processor,
        augmentation=augmentation,
        callbacks=callbacks,
        teacher=teacher,
        alpha=distill_args.distillation_alpha,
        kind=distill_args.distillation_type,
        temperature=distill_args.distillation_temperature,
    )

    # Train. --resume_from_checkpoint last continues from the newest complete checkpoint; with
    # load_best_model_at_end (the default) the weights of the best validation epoch are restored at the end.
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    train_result = trainer.train(resume_from_checkpoint=resume)

    # Evaluate on the held-out test split (data without one: on validation, and the metrics say so): the
    # averaged head, and each token's head as cls_head / dist_head.
    split = "test" if "test" in splits else "validation"
    predictions = trainer.predict(splits[split].with_transform(eval_transform), metric_key_prefix=split)

    # Save the model folder, metrics.json with the ROC, confusion-matrix and learning-curve plots, the run
    # record (lens_hf_training.json) and the model card (README.md).
    return finish_run(
        trainer,
        predictions,
        split=split,
        dataset=splits[split],
        recipe=RECIPE,
        arguments=(model_args, data_args, training_args, distill_args),
        data_info=data_info,
        train_result=train_result,
        resumed_from=resume,
    )


if __name__ == "__main__":
    with exit_on_user_error(sys.argv[0]):
        main()
