"""Regress a simulated parameter from a lensing image: by default the axion mass m_a (eV) of the vortex images,
learnt as log10(m_a), with the SPT+LSA ViT built from scratch (or any other preset: ``vit-tiny``, ``deit-tiny``,
``swin-tiny``, ``resnet-18``; or a ``--model_name_or_path`` checkpoint to fine-tune).

    python recipes/train_regressor.py --output_dir runs/axion-mass
    python recipes/train_regressor.py --dataset model_i_ds/ --output_dir runs/axion-mass
    python recipes/train_regressor.py --target subhalo_mass_total --output_dir runs/subhalo-mass
    lens-hf train --recipe regressor --config recipes/configs/train_regressor.yaml --output_dir runs/axion-mass

The target is any numeric metadata column of the data (``--target``); only the rows with a finite value are used
(for ``axion_mass``: the vortex images) and the number skipped is logged. The model learns the target through
``--target_transform`` (log10 for the masses by default), standardised with the mean and standard deviation of
the transformed training targets; both are saved in the model config (``config.lens_regression``), so the
pipeline, ``lens-hf predict`` and ``lens-hf evaluate`` give predictions in physical units. The loss is the mean
squared error of the standardised target (``--regression_loss l1`` or ``huber`` for the robust losses); the best
checkpoint is the one of lowest validation RMSE. The model
folder holds ``metrics.json`` (MAE, RMSE, R2, bias, fractions within 0.1 and 0.3, MAE in 5 bins of the true
value; in dex for log10) and ``regression.png`` (predicted vs true, residuals vs true).
"""

import sys

from transformers import HfArgumentParser, TrainerCallback, set_seed

from lens_hf.data.simulate import TARGET_CLASSES
from lens_hf.labels import LABELS
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
    regression_targets,
    resolve_resume,
    setup_logging,
)

RECIPE = "train_regressor"

# This recipe's defaults, over lens_hf.training.TRAINING_DEFAULTS; --config FILE and the flags override them.
DEFAULTS = {
    "task": "regression",
    "target": "axion_mass",
    "model_preset": "vit-spt-lsa-tiny",
    "learning_rate": 5e-4,
    "weight_decay": 0.05,
    "num_train_epochs": 50,
    "metric_for_best_model": "rmse",
    "greater_is_better": False,
}

# Per kind of data: the inputs of the classifier recipes (central 32x32 px, asinh, standardised) and 4x4 px
# patches, with which the shipped regressors were trained (benchmarks/README.md, axion mass). Used only with the
# recipe's own model preset.
DATASET_DEFAULTS = {
    kind: {**inputs, "config_overrides": {"patch_size": 4}, "learning_rate": 1.5e-4, "warmup_steps": 100}
    for kind, inputs in LENS_INPUTS.items()
}


def main(argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> dict:
    """Train, evaluate and save (``argv``: the command-line arguments, default ``sys.argv[1:]``). Returns the
    final metrics on the main process, an empty dict on the others. ``lens-hf train --recipe regressor``
    runs this function."""
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments))
    model_args, data_args, training_args = parse_args(parser, DEFAULTS, argv, DATASET_DEFAULTS)
    check_args(model_args, data_args)
    setup_logging(training_args)

    # Data: --dataset (any folder lens_hf reads), or train/validation/test simulated on the fly; then only the
    # rows with a finite --target, standardised (its scaling is recorded in the run record and the model).
    set_seed(training_args.seed)
    simulated_classes = TARGET_CLASSES.get(data_args.target, LABELS)  # simulate only what carries the target
    splits, data_info = load_splits(
        data_args,
        training_args.seed,
        progress=training_args.local_process_index == 0,
        labels=simulated_classes,
    )
    splits, scaling, data_info["regression"] = regression_targets(splits, data_args)

    # Inputs: the image processor saved with the model, the dataset transforms (labels: the standardised
    # target), and the random augmentation of each training batch (D4 symmetries leave the target unchanged).
    processor = build_processor(model_args, data_args, data_info["image_size"], splits["train"])
    random_crop = data_args.center_crop is None
    train_transform, eval_transform = make_transforms(processor, random_crop=random_crop)
    augmentation = BatchAugment.for_processor(processor, data_args.augment, random_crop=random_crop)

    # Model: one output, problem_type "regression", the target's scaling in config.lens_regression.
    set_seed(training_args.seed)
    model = build_model(
        model_args, model_input_size(processor), target=scaling, num_channels=processor.num_channels
    )

    trainer = LensTrainer(  # MSE loss and regression metrics for a regression model
        model=model,
        args=training_args,
        train_dataset=splits["train"].with_transform(train_transform),
        eval_dataset=splits["validation"].with_transform(eval_transform),
        processing_class=processor,
        augmentation=augmentation,
        callbacks=callbacks,
    )

    # Train; --resume_from_checkpoint last continues from the newest complete checkpoint.
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    train_result = trainer.train(resume_from_checkpoint=resume)

    # Evaluate on the held-out test split (data without one: on validation, and the metrics say so).
    split = "test" if "test" in splits else "validation"
    predictions = trainer.predict(splits[split].with_transform(eval_transform), metric_key_prefix=split)

    # Save the model folder, metrics.json with regression.png and the learning curves, the run record and the
    # model card.
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
