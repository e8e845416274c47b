"""ViT with Shifted Patch Tokenization and Locality Self-Attention (Lee, Lee & Song 2021) as a transformers model."""

from .configuration_vit_spt_lsa import ViTSPTLSAConfig
from .modeling_vit_spt_lsa import (
    ViTSPTLSAForImageClassification,
    ViTSPTLSAModel,
    ViTSPTLSAPreTrainedModel,
)

# A saved folder then carries these two files and an `auto_map`, so it loads with `trust_remote_code=True`
# where lens_hf is not installed.
ViTSPTLSAConfig.register_for_auto_class()
ViTSPTLSAModel.register_for_auto_class("AutoModel")
ViTSPTLSAForImageClassification.register_for_auto_class("AutoModelForImageClassification")

__all__ = [
    "ViTSPTLSAConfig",
    "ViTSPTLSAForImageClassification",
    "ViTSPTLSAModel",
    "ViTSPTLSAPreTrainedModel",
]
