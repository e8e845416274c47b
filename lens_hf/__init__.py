"""lens_hf: vision transformers that find dark matter substructure in strong gravitational lenses.

Importing lens_hf registers its model (``model_type="vit_spt_lsa"``) with ``AutoConfig``, ``AutoModel`` and
``AutoModelForImageClassification``, its image processor with ``AutoImageProcessor`` and its pipeline for the
``image-classification`` task, so saved folders load without ``trust_remote_code``.
"""

from lens_hf import processing as _processing  # noqa: I001  (registration order: processing, then models)
from lens_hf import models as _models  # noqa: F401  (registers the model classes)
from lens_hf.hub import DEFAULT_MODEL_ID
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
from lens_hf.processing import (
    LensImageClassificationPipeline,
    LensImageProcessor,
    load_pipeline,
    save_model_folder,
)

_processing.register_auto_classes()  # the processor for the SPT+LSA config, now that lens_hf.models is loaded

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
