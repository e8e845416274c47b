"""lens_hf: vision transformers that find dark matter substructure in strong gravitational lenses.

Importing lens_hf registers its model (``model_type="vit_spt_lsa"``) with ``AutoConfig``, ``AutoModel`` and
``AutoModelForImageClassification``, its image processor with ``AutoImageProcessor`` and its pipeline for the
``image-classification`` task (:func:`lens_hf.registration.register_auto_classes`), so saved folders load
without ``trust_remote_code``.
"""

from lens_hf.hub import DEFAULT_MODEL_ID
from lens_hf.inference import load_pipeline
from lens_hf.labels import ID2LABEL, LABEL2ID, LABELS
from lens_hf.models import (
    ViTSPTLSAConfig,
    ViTSPTLSAForImageClassification,
    ViTSPTLSAModel,
    create_model,
    list_presets,
    load_for_finetuning,
    load_model,
)
from lens_hf.processing import LensImageClassificationPipeline, LensImageProcessor, save_model_folder
from lens_hf.registration import register_auto_classes

register_auto_classes()

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL_ID",
    "ID2LABEL",
    "LABEL2ID",
    "LABELS",
    "LensImageClassificationPipeline",
    "LensImageProcessor",
    "ViTSPTLSAConfig",
    "ViTSPTLSAForImageClassification",
    "ViTSPTLSAModel",
    "create_model",
    "list_presets",
    "load_for_finetuning",
    "load_model",
    "load_pipeline",
    "save_model_folder",
]
