"""Models: the SPT+LSA ViT and the preset factory (the Auto classes learn the SPT+LSA ViT from
:func:`lens_hf.registration.register_auto_classes`, run by ``import lens_hf``)."""

from .factory import (
    MODEL_PRESETS,
    ModelPreset,
    count_parameters,
    create_model,
    list_presets,
    load_for_finetuning,
    load_model,
    param_groups,
)
from .vit_spt_lsa import (
    ViTSPTLSAConfig,
    ViTSPTLSAForImageClassification,
    ViTSPTLSAModel,
    ViTSPTLSAPreTrainedModel,
)

__all__ = [
    "MODEL_PRESETS",
    "ModelPreset",
    "ViTSPTLSAConfig",
    "ViTSPTLSAForImageClassification",
    "ViTSPTLSAModel",
    "ViTSPTLSAPreTrainedModel",
    "count_parameters",
    "create_model",
    "list_presets",
    "load_for_finetuning",
    "load_model",
    "param_groups",
]
