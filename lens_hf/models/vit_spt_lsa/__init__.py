"""ViT with Shifted Patch Tokenization and Locality Self-Attention (Lee, Lee & Song 2021) as a transformers model.

Registered with the Auto classes (and for remote code) by :func:`lens_hf.registration.register_auto_classes`.
"""

from .configuration_vit_spt_lsa import ViTSPTLSAConfig
from .modeling_vit_spt_lsa import (
    ViTSPTLSAForImageClassification,
    ViTSPTLSAModel,
    ViTSPTLSAPreTrainedModel,
)

__all__ = [
    "ViTSPTLSAConfig",
    "ViTSPTLSAForImageClassification",
    "ViTSPTLSAModel",
    "ViTSPTLSAPreTrainedModel",
]
