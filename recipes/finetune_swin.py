"""Train a Swin Transformer on lensing images: the stock ``swin-tiny`` preset from scratch, or fine-tune a
Swin checkpoint.

    python recipes/finetune_swin.py --output_dir runs/swin
    python recipes/finetune_swin.py --model_name_or_path microsoft/swin-tiny-patch4-window7-224 \
        --learning_rate 1e-4 --dataset model_i_ds/ --output_dir runs/swin-pretrained
    torchrun --nproc_per_node 2 recipes/finetune_swin.py --output_dir runs/swin

With only ``--output_dir`` it trains on a small Model I set simulated on the fly (train, validation and test
splits, each with its own seed). Every ``TrainingArguments`` flag and every lens_hf option is accepted, also
from ``--config FILE`` (YAML or JSON; flags override it); ``--help`` lists them. HF Swin needs its attention
window to fit the last stage's feature map: the preset picks a window that fits the image size, and a
checkpoint whose window does not fit is refused with the largest window that would.
"""

import sys

from transformers import HfArgumentParser, SwinConfig, TrainerCallback, set_seed

from lens_hf.errors import LensHFError
from lens_hf.models.factory import check_swin_config
from lens_hf.training import (
    LENS_INPUTS,
    BatchAugment,
    DataArguments,
    LensTrainer,
    LensTrainingArguments,
    ModelArguments,
    build_model,
    build_processor,
    check_args,
    exit_on_user_error,
    finish_run,
    load_splits,
    make_transforms,
    model_input_size,
    parse_args,
    resolve_resume,
    setup_logging,
)

RECIPE = "finetune_swin"

# This recipe's defaults, over lens_hf.training.TRAINING_DEFAULTS; --config FILE and the flags override them.
DEFAULTS = {
    "model_preset": "swin-tiny",
    "learning_rate": 5e-4,
    "weight_decay": 0.05,
    "num_train_epochs": 50,
}

# Per kind of data (the preset a --dataset records, or --preset): what the model sees (lens_hf.training.
# LENS_INPUTS: the central 32x32 px around the ring, asinh-stretched, standardised) and Swin's settings for it:
# 2x2 px patches (16x16 tokens, merged to 8x8 and 4x4) in 4x4 windows. Used only with the recipe's own preset.
DATASET_DEFAULTS = {
    kind: {
        **inputs,
        "config_overrides": {"patch_size": 2, "window_size": 4},
        "learning_rate": 1.5e-4,
        "warmup_steps": 100,
    }
    for kind, inputs in LENS_INPUTS.items()
}


def main(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Train, evaluate and save (``argv``: the command-line arguments, default ``sys.argv[1:]``). Returns the
    final metrics on the main process, an empty dict on the others. ``lens-hf train --recipe swin``
    runs this function."""
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments))
    model_args, data_args, training_args = parse_args(parser, DEFAULTS, argv, DATASET_DEFAULTS)
    check_args(model_args, data_args)
    setup_logging(training_args)

    # Data: --dataset (any folder lens_hf reads), or train/validation/test simulated on the fly.
    set_seed(training_args.seed)
    splits, data_info = load_splits(
        data_args, training_args.seed, progress=training_args.local_process_index == 0
    )

    # Inputs: the image processor saved with the model (resize, centre crop, per-image normalisation), the
    # dataset transforms, and the random augmentation of each training batch (D4 symmetries, random crops).
    processor = build_processor(model_args, data_args, data_info["image_size"], splits["train"])
    random_crop = data_args.center_crop is None
    train_transform, eval_transform = make_transforms(processor, random_crop=random_crop)
    augmentation = BatchAugment.for_processor(processor, data_args.augment, random_crop=random_crop)

    # Model: the stock Swin preset built from scratch, or a Swin --model_name_or_path checkpoint. HF Swin fails
    # in the forward pass when the window exceeds the last stage's feature map, so the window is checked here.
    set_seed(training_args.seed)
    model = build_model(model_args, model_input_size(processor), num_channels=processor.num_channels)
    if not isinstance(model.config, SwinConfig):
        raise LensHFError(
            f"{RECIPE} trains Swin models, got {type(model).__name__}; use the recipe of its family"
        )
    check_swin_config(model.config)

    trainer = LensTrainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"].with_transform(train_transform),
        eval_dataset=splits["validation"].with_transform(eval_transform),
        processing_class=processor,
        augmentation=augmentation,
        callbacks=callbacks,
    )

    # Train. --resume_from_checkpoint last continues from the newest complete checkpoint; with
    # load_best_model_at_end (the default) the weights of the best validation epoch are restored at the end.
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    train_result = trainer.train(resume_from_checkpoint=resume)

    # Evaluate on the held-out test split (data without one: on validation, and the metrics say so).
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
        arguments=(model_args, data_args, training_args),
        data_info=data_info,
        train_result=train_result,
        resumed_from=resume,
    )


if __name__ == "__main__":
    with exit_on_user_error(sys.argv[0]):
        main()
