"""Train a ViT with Shifted Patch Tokenization and Locality Self-Attention (Lee, Lee & Song 2021) from scratch:
the small-data vision transformer for lensing images, and the architecture of the shipped model.

    python recipes/train_vit_spt_lsa.py --output_dir runs/vit-spt-lsa
    python recipes/train_vit_spt_lsa.py --dataset model_i_ds/ --output_dir runs/vit-spt-lsa
    python recipes/train_vit_spt_lsa.py --model_preset vit-spt-tiny --output_dir runs/ablation-spt
    lens-hf train --recipe vit_spt_lsa --config recipes/configs/shipped_model_i.yaml --output_dir runs/model-i
    torchrun --nproc_per_node 2 recipes/train_vit_spt_lsa.py --output_dir runs/vit-spt-lsa

With only ``--output_dir`` it trains on a small Model I set simulated on the fly (train, validation and test
splits, each with its own seed). Every ``TrainingArguments`` flag and every lens_hf option (``--dataset``,
``--augment``, ``--center_crop``, ``--lr_schedule``, ``--max_train_minutes``, ...) is accepted, also from
``--config FILE`` (YAML or JSON; flags override it); ``--help`` lists them. ``--model_preset`` selects the
ablations ``vit-spt-tiny`` (SPT only) and ``vit-lsa-tiny`` (LSA only), or ``vit-spt-lsa-stem`` (the shipped
model: a convolutional stem before the tokeniser). ``--teacher DIR`` distils a classifier trained on the same
inputs (e.g. by ``train_cnn_teacher.py`` with the same data flags) into the model: hard (DeiT's) or
``--distillation_type soft`` (Hinton et al.'s, at ``--distillation_temperature``), weight ``--distillation_alpha``.
"""

import sys

from transformers import HfArgumentParser, TrainerCallback, set_seed

from lens_hf.training import (
    LENS_INPUTS,
    BatchAugment,
    DataArguments,
    DistillationArguments,
    DistillationTrainer,
    LensTrainer,
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

RECIPE = "train_vit_spt_lsa"

# This recipe's defaults, over lens_hf.training.TRAINING_DEFAULTS; --config FILE and the flags override them.
DEFAULTS = {
    "model_preset": "vit-spt-lsa-tiny",
    "learning_rate": 5e-4,
    "weight_decay": 0.05,
    "num_train_epochs": 50,
}

# Per kind of data (the preset a --dataset records, or --preset): what the model sees (lens_hf.training.
# LENS_INPUTS: the central 32x32 px around the ring, asinh-stretched, standardised) and this family's settings
# for it: 8x8 px patches (a 4x4 token grid; SPT then reads each patch with its half-patch diagonal shifts:
# 0.90 validation AUC on Model II after 5 epochs, at 2.6x the training images/s of 4 px patches, which left the
# recipe at 0.79 after a 4-minute run on a 2-core CPU without native bfloat16: benchmarks/README.md), and a learning
# rate low enough that the first epochs do not erase what warm-up found. Used only with the recipe's own model
# preset and its ABLATIONS.
# SPT's per-patch LayerNorm (Lee et al. 2021) is off: on a lensing image, mostly background, it scales every
# noise patch to unit variance and hides where the arcs are; without it SPT alone and SPT+LSA reach 0.95 macro
# AUC on Model II (1,000 per class) where with it they stay near 0.86 (benchmarks/README.md, family study).
# --config_overrides '{"patch_size": 8, "spt_layer_norm": true}' gives the paper's tokenizer back.
DATASET_DEFAULTS = {
    kind: {
        **inputs,
        "config_overrides": {"patch_size": 8, "spt_layer_norm": False},
        "learning_rate": 1.5e-4,
        "warmup_steps": 100,
    }
    for kind, inputs in LENS_INPUTS.items()
}


# The same model with one switch off: the per-dataset settings above apply to them too.
ABLATIONS = ("vit-spt-tiny", "vit-lsa-tiny")


def main(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Train, evaluate and save (``argv``: the command-line arguments, default ``sys.argv[1:]``). Returns the
    final metrics on the main process, an empty dict on the others. ``lens-hf train --recipe vit_spt_lsa``
    runs this function."""
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments, DistillationArguments))
    model_args, data_args, training_args, distill_args = parse_args(
        parser, DEFAULTS, argv, DATASET_DEFAULTS, dataset_default_presets=ABLATIONS
    )
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

    # Model: an SPT+LSA preset built from scratch, or a --model_name_or_path checkpoint to fine-tune.
    set_seed(training_args.seed)
    model = build_model(model_args, model_input_size(processor), num_channels=processor.num_channels)

    # With --teacher (a classifier trained on the same inputs, e.g. by train_cnn_teacher.py): its one head
    # learns (1 - a) * CE(labels) + a * D(teacher), D hard or soft (--distillation_type).
    trainer_kwargs = dict(
        model=model,
        args=training_args,
        train_dataset=splits["train"].with_transform(train_transform),
        eval_dataset=splits["validation"].with_transform(eval_transform),
        processing_class=processor,
        augmentation=augmentation,
        callbacks=callbacks,
    )
    if teacher is None:
        trainer = LensTrainer(**trainer_kwargs)
    else:
        trainer = DistillationTrainer(
            **trainer_kwargs,
            teacher=teacher,
            alpha=distill_args.distillation_alpha,
            kind=distill_args.distillation_type,
            temperature=distill_args.distillation_temperature,
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
        arguments=(model_args, data_args, training_args, distill_args),
        data_info=data_info,
        train_result=train_result,
        resumed_from=resume,
    )


if __name__ == "__main__":
    with exit_on_user_error(sys.argv[0]):
        main()
