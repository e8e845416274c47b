"""Configuration of the ViT with Shifted Patch Tokenization and Locality Self-Attention.

Lee, Lee & Song (2021), "Vision Transformer for Small-Size Datasets", arXiv:2112.13492.
This file travels with saved models as remote code: it imports only transformers.
"""

import sys

from transformers import PreTrainedConfig

POOLING_MODES = ("cls", "mean")


class ViTSPTLSAConfig(PreTrainedConfig):
    r"""
    Configuration of [`ViTSPTLSAModel`] and [`ViTSPTLSAForImageClassification`].

    Field names follow `transformers.ViTConfig`; the defaults give a small single-channel model for 150x150 px
    lensing images (DeepLense Model I): 15x15 patches of 10x10 px, 6 layers of width 192 with 3 heads of 64,
    about 1.9M parameters with a 3-class head.

    Args:
        image_size (`int`, defaults to 150):
            Height and width of the (square) input image in pixels. Must be divisible by `patch_size`.
        patch_size (`int`, defaults to 10):
            Height and width of each patch in pixels.
        num_channels (`int`, defaults to 1):
            Number of input channels (1 for lensing images).
        hidden_size (`int`, defaults to 192):
            Width of the token embeddings. Must be divisible by `num_attention_heads`.
        num_hidden_layers (`int`, defaults to 6):
            Number of transformer layers.
        num_attention_heads (`int`, defaults to 3):
            Number of attention heads per layer.
        intermediate_size (`int`, defaults to 384):
            Width of the MLP hidden layer (the paper uses an MLP ratio of 2 on small data sets).
        hidden_act (`str`, defaults to `"gelu"`):
            Activation of the MLP.
        hidden_dropout_prob (`float`, defaults to 0.0):
            Dropout on the embeddings and after the attention and MLP blocks.
        attention_probs_dropout_prob (`float`, defaults to 0.0):
            Dropout on the attention probabilities.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the (truncated) normal weight initialisation.
        layer_norm_eps (`float`, defaults to 1e-6):
            Epsilon of every LayerNorm.
        qkv_bias (`bool`, defaults to `True`):
            Whether the query, key and value projections have a bias.
        use_spt (`bool`, defaults to `True`):
            Shifted Patch Tokenization: the image and its four diagonal half-patch shifts are cut into patches,
            flattened, layer-normalised and projected. When `False`, a plain ViT patch projection (a strided conv).
        spt_layer_norm (`bool`, defaults to `True`):
            Layer-normalise each flattened SPT patch before its projection (as Lee et al. 2021). On lensing images,
            mostly background, this scales every noise patch up to unit variance; `False` projects the patch as it
            is (the shifts and the projection unchanged).
        use_lsa (`bool`, defaults to `True`):
            Locality Self-Attention: a learnable per-head softmax temperature and a mask that stops each token
            attending to itself. When `False`, plain scaled dot-product attention.
        conv_stem_channels (`list[int]`, *optional*):
            Channels of an optional convolutional stem (Xiao et al. 2021, "Early Convolutions Help Transformers
            See Better"): one 3x3 stride-2 convolution + BatchNorm + GELU per entry, run before tokenisation.
            The tokens then cover `patch_size` input pixels as before, i.e. `patch_size / 2**len(stem)` feature-map
            pixels, and SPT shifts the feature map by half of that. `None` (default) tokenises the pixels directly.
        pooling (`str`, defaults to `"cls"`):
            Image representation fed to the classifier: the CLS token (`"cls"`) or the mean of the patch tokens
            (`"mean"`).

    Example:

    ```python
    >>> config = ViTSPTLSAConfig(image_size=64, patch_size=8)
    >>> model = ViTSPTLSAForImageClassification(config)
    ```
    """

    model_type = "vit_spt_lsa"

    image_size: int = 150
    patch_size: int = 10
    num_channels: int = 1
    hidden_size: int = 192
    num_hidden_layers: int = 6
    num_attention_heads: int = 3
    intermediate_size: int = 384
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    use_spt: bool = True
    spt_layer_norm: bool = True
    use_lsa: bool = True
    conv_stem_channels: list[int] | None = None
    pooling: str = "cls"

    def __post_init__(self, **kwargs):
        if _pipeline_registered_locally(kwargs.get("custom_pipelines")):
            # transformers refuses a folder whose config names a custom pipeline unless trust_remote_code=True,
            # even when this process registered that very pipeline (lens_hf is imported): use the registered one.
            kwargs = {k: v for k, v in kwargs.items() if k != "custom_pipelines"}
        super().__post_init__(**kwargs)
        self.check_architecture()

    def check_architecture(self) -> None:
        """Raise `ValueError` with a one-line reason when the sizes cannot build a model."""
        sizes = ("image_size", "patch_size", "num_channels", "hidden_size", "num_hidden_layers")
        for name in (*sizes, "num_attention_heads", "intermediate_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.conv_stem_channels:
            stem = list(self.conv_stem_channels)
            if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in stem):
                raise ValueError(f"conv_stem_channels must be positive integers, got {stem!r}")
            stride = 2 ** len(stem)
            if self.patch_size % stride:
                raise ValueError(
                    f"patch_size {self.patch_size} is not divisible by the conv stem's stride {stride} "
                    f"({len(stem)} stride-2 convolutions)"
                )
            if self.image_size % self.patch_size:
                fits = self.image_size // self.patch_size * self.patch_size
                raise ValueError(
                    f"image_size {self.image_size} is not divisible by patch_size {self.patch_size} (a multiple of the "
                    f"conv stem's stride {stride}); use e.g. image_size={fits} (a centre crop)"
                )
        if self.image_size % self.patch_size != 0:
            divisors = [p for p in range(2, self.image_size + 1) if self.image_size % p == 0]
            nearest = min(divisors, key=lambda p: (abs(p - self.patch_size), -p)) if divisors else 1
            raise ValueError(
                f"image_size {self.image_size} is not divisible by patch_size {self.patch_size} "
                f"(pixels would be dropped); use e.g. patch_size={nearest}"
            )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")


def _pipeline_registered_locally(custom_pipelines: object) -> bool:
    """True when ``custom_pipelines`` names only the lensing pipeline and this process has registered it for
    ``image-classification`` (as importing lens_hf does)."""
    if not isinstance(custom_pipelines, dict) or set(custom_pipelines) != {"image-classification"}:
        return False
    if not str(custom_pipelines["image-classification"].get("impl", "")).endswith(
        ".LensImageClassificationPipeline"
    ):
        return False
    registry = sys.modules.get("transformers.pipelines")
    if registry is None:  # pipelines not imported yet: nothing can have been registered
        return False
    impl = registry.PIPELINE_REGISTRY.supported_tasks.get("image-classification", {}).get("impl")
    return getattr(impl, "__name__", "") == "LensImageClassificationPipeline"


__all__ = ["ViTSPTLSAConfig"]
