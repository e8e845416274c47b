"""Models: the SPT+LSA ViT (registered with the transformers Auto classes on import) and the preset factory."""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

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

AutoConfig.register(ViTSPTLSAConfig.model_type, ViTSPTLSAConfig, exist_ok=True)
AutoModel.register(ViTSPTLSAConfig, ViTSPTLSAModel, exist_ok=True)
AutoModelForImageClassification.register(ViTSPTLSAConfig, ViTSPTLSAForImageClassification, exist_ok=True)

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
