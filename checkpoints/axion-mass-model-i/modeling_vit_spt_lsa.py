"""PyTorch ViT with Shifted Patch Tokenization (SPT) and Locality Self-Attention (LSA).

Lee, Lee & Song (2021), "Vision Transformer for Small-Size Datasets", arXiv:2112.13492. `use_spt` and `use_lsa`
switch each part off, so the plain ViT and both ablations are this same class. This file travels with saved
models as remote code: it imports only torch, transformers and its configuration file.
"""

import math
import os
from collections.abc import Callable

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling, ImageClassifierOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_vit_spt_lsa import ViTSPTLSAConfig

# Attention implementations that take the boolean diagonal mask LSA needs.
LSA_ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa")
PIPELINE_TASK = "image-classification"


class ViTSPTLSAConvStem(nn.Module):
    """Optional convolutional stem: (batch, C, H, W) -> (batch, stem[-1], H / 2**k, W / 2**k) for k convolutions.

    Each stage is a 3x3 stride-2 convolution, BatchNorm and GELU; convolutions see the smooth arcs and
    point-like perturbations at full resolution before the image is cut into tokens.
    """

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = config.num_channels
        for out_channels in config.conv_stem_channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.GELU(),
            ]
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values)


class ViTSPTLSAPatchEmbeddings(nn.Module):
    """Turn `pixel_values` (batch, num_channels, H, W) into patch tokens (batch, num_patches, hidden_size).

    With `use_spt`, the image is concatenated with four copies shifted diagonally by half a patch
    (zero fill), giving 5 * num_channels channels; each patch of that stack is flattened (pixel-major,
    channel-minor, as in the reference implementation), layer-normalised (`spt_layer_norm`) and linearly projected.
    Without it, a strided convolution as in ViT.
    """

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        self.image_size = config.image_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.num_patches = (config.image_size // config.patch_size) ** 2
        self.use_spt = config.use_spt
        stem = list(config.conv_stem_channels or [])
        self.stem = ViTSPTLSAConvStem(config) if stem else None
        # Tokens always cover patch_size input pixels; after a stem that is fewer feature-map pixels.
        self.token_patch = config.patch_size // 2 ** len(stem)
        self.token_channels = stem[-1] if stem else config.num_channels
        self.shift = self.token_patch // 2
        if self.use_spt:
            patch_dim = 5 * self.token_channels * self.token_patch**2
            if config.spt_layer_norm:
                self.layernorm = nn.LayerNorm(patch_dim, eps=config.layer_norm_eps)
            else:
                self.layernorm = nn.Identity()
            self.projection = nn.Linear(patch_dim, config.hidden_size)
        else:
            self.projection = nn.Conv2d(
                self.token_channels,
                config.hidden_size,
                kernel_size=self.token_patch,
                stride=self.token_patch,
            )

    def shifted_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Stack the image with its four diagonal shifts by `patch_size // 2` px, zero-filled.

        (batch, C, H, W) -> (batch, 5 * C, H, W), channel blocks in the order: original, then content moved
        down-right, down-left, up-right, up-left (out[i, j] = x[i - dy, j - dx] for (dy, dx) = (s, s), (s, -s),
        (-s, s), (-s, -s)).
        """
        s = self.shift
        if s == 0:
            return torch.cat([pixel_values] * 5, dim=1)
        padded = nn.functional.pad(pixel_values, (s, s, s, s))  # (batch, C, H + 2s, W + 2s)
        height, width = pixel_values.shape[-2:]
        crops = [
            padded[:, :, :height, :width],  # content moved down-right
            padded[:, :, :height, 2 * s :],  # down-left
            padded[:, :, 2 * s :, :width],  # up-right
            padded[:, :, 2 * s :, 2 * s :],  # up-left
        ]
        return torch.cat([pixel_values, *crops], dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        batch_size, num_channels, height, width = pixel_values.shape
        if num_channels != self.num_channels:
            raise ValueError(
                f"pixel_values have {num_channels} channels but the model expects {self.num_channels} "
                "(config.num_channels)"
            )
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"image size {height}x{width} is not divisible by patch_size {self.patch_size}")
        if self.stem is not None:
            pixel_values = self.stem(pixel_values)  # (batch, stem[-1], H / 2**k, W / 2**k)
            num_channels, height, width = pixel_values.shape[1:]
        if not self.use_spt:
            # (batch, hidden, H/p, W/p) -> (batch, num_patches, hidden)
            return self.projection(pixel_values).flatten(2).transpose(1, 2)

        p = self.token_patch
        stacked = self.shifted_images(pixel_values)  # (batch, 5C, H, W)
        stacked = stacked.view(batch_size, 5 * num_channels, height // p, p, width // p, p)
        # (batch, 5C, H/p, p, W/p, p) -> (batch, H/p, W/p, p, p, 5C) -> (batch, num_patches, p*p*5C)
        patches = stacked.permute(0, 2, 4, 3, 5, 1).reshape(batch_size, (height // p) * (width // p), -1)
        return self.projection(self.layernorm(patches))


class ViTSPTLSAEmbeddings(nn.Module):
    """Patch tokens, a prepended CLS token and learned position embeddings: (batch, 1 + num_patches, hidden)."""

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        self.patch_embeddings = ViTSPTLSAPatchEmbeddings(config)
        num_patches = self.patch_embeddings.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_patches + 1, config.hidden_size))
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.patch_size = config.patch_size
        self.image_size = config.image_size

    def interpolate_pos_encoding(self, height: int, width: int) -> torch.Tensor:
        """Bicubically resize the patch position embeddings to a (height/p, width/p) grid; CLS entry kept."""
        class_pos_embed = self.position_embeddings[:, :1]
        patch_pos_embed = self.position_embeddings[:, 1:]
        dim = patch_pos_embed.shape[-1]
        grid = self.image_size // self.patch_size
        # (1, grid*grid, dim) -> (1, dim, grid, grid)
        patch_pos_embed = patch_pos_embed.reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
        patch_pos_embed = nn.functional.interpolate(
            patch_pos_embed,
            size=(height // self.patch_size, width // self.patch_size),
            mode="bicubic",
            align_corners=False,
        )
        # (1, dim, h, w) -> (1, h*w, dim)
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((class_pos_embed, patch_pos_embed), dim=1)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        batch_size, _, height, width = pixel_values.shape
        embeddings = self.patch_embeddings(pixel_values)  # (batch, num_patches, hidden)
        cls_tokens = self.cls_token.expand(batch_size, -1, -1)
        embeddings = torch.cat((cls_tokens, embeddings), dim=1)  # (batch, 1 + num_patches, hidden)
        if height == width == self.image_size:
            embeddings = embeddings + self.position_embeddings
        elif interpolate_pos_encoding:
            embeddings = embeddings + self.interpolate_pos_encoding(height, width)
        else:
            raise ValueError(
                f"input image size {height}x{width} does not match the model ({self.image_size}x{self.image_size}); "
                "pass interpolate_pos_encoding=True to resize the position embeddings"
            )
        return self.dropout(embeddings)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention with the same conventions as `torch.nn.functional.scaled_dot_product_attention`.

    query, key, value: (batch, heads, seq, head_dim); attention_mask: boolean (True = may attend) or additive,
    broadcastable to (batch, heads, seq, seq). Returns the output (batch, seq, heads, head_dim) and the
    attention probabilities (batch, heads, seq, seq).
    """
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # (batch, heads, seq, seq)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attn_weights = attn_weights.masked_fill(~attention_mask, torch.finfo(attn_weights.dtype).min)
        else:
            attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value)  # (batch, heads, seq, head_dim)
    attn_output = attn_output.transpose(1, 2).contiguous()  # (batch, seq, heads, head_dim)
    return attn_output, attn_weights


class ViTSPTLSASelfAttention(nn.Module):
    """Multi-head self-attention; with `use_lsa`, Locality Self-Attention.

    LSA divides the scores of head h by a learnable temperature tau_h, stored as `log_temperature`
    (log tau_h, shape (heads,)) so tau stays positive; it starts at log sqrt(head_dim), i.e. the usual
    1/sqrt(head_dim) scale. The queries are multiplied by 1/tau_h and the attention function is called with
    `scaling=1.0`, so the eager and SDPA implementations compute the same thing. The diagonal mask (built once
    per forward in the encoder) stops each token, CLS included, from attending to itself.
    """

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        self.config = config
        self.num_attention_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.use_lsa = config.use_lsa
        inner = config.num_attention_heads * self.head_dim
        self.q_proj = nn.Linear(config.hidden_size, inner, bias=config.qkv_bias)
        self.k_proj = nn.Linear(config.hidden_size, inner, bias=config.qkv_bias)
        self.v_proj = nn.Linear(config.hidden_size, inner, bias=config.qkv_bias)
        self.o_proj = nn.Linear(inner, config.hidden_size)
        if self.use_lsa:
            initial = torch.full((config.num_attention_heads,), 0.5 * math.log(self.head_dim))
            self.log_temperature = nn.Parameter(initial)
        else:
            self.log_temperature = None

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]  # (batch, seq)
        hidden_shape = (*input_shape, -1, self.head_dim)
        # (batch, seq, hidden) -> (batch, heads, seq, head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        implementation = self.config._attn_implementation or "eager"
        if self.use_lsa:
            if implementation not in LSA_ATTENTION_IMPLEMENTATIONS:
                raise ValueError(
                    f"attn_implementation={implementation!r} cannot take the diagonal mask of Locality "
                    f"Self-Attention (use_lsa=True); use one of {LSA_ATTENTION_IMPLEMENTATIONS}"
                )
            inverse_temperature = torch.exp(-self.log_temperature).to(query.dtype)
            query = query * inverse_temperature.view(1, -1, 1, 1)
            scaling = 1.0
        else:
            scaling = self.head_dim**-0.5

        # SDPA does not return the probabilities, so attention maps are computed with the same math eagerly.
        attention_interface: Callable = eager_attention_forward
        if not output_attentions:
            attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
                implementation, eager_attention_forward
            )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=scaling,
            is_causal=False,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()  # (batch, seq, hidden)
        return self.o_proj(attn_output), attn_weights


class ViTSPTLSAMLP(nn.Module):
    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class ViTSPTLSALayer(GradientCheckpointingLayer):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = ViTSPTLSASelfAttention(config)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ViTSPTLSAMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attention_output, attn_weights = self.attention(
            self.layernorm_before(hidden_states), attention_mask, output_attentions
        )
        hidden_states = hidden_states + self.dropout(attention_output)
        hidden_states = hidden_states + self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states, attn_weights


class ViTSPTLSAEncoder(nn.Module):
    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__()
        self.use_lsa = config.use_lsa
        self.layer = nn.ModuleList([ViTSPTLSALayer(config) for _ in range(config.num_hidden_layers)])

    def forward(
        self,
        hidden_states: torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        attention_mask = None
        if self.use_lsa:
            seq_len = hidden_states.shape[1]
            # (1, 1, seq, seq), True = may attend: every token but itself.
            attention_mask = ~torch.eye(seq_len, dtype=torch.bool, device=hidden_states.device)[None, None]
        all_hidden_states = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layer:
            hidden_states, attn_weights = layer(hidden_states, attention_mask, output_attentions)
            if output_hidden_states:
                all_hidden_states = all_hidden_states + (hidden_states,)
            if output_attentions:
                all_attentions = all_attentions + (attn_weights,)
        return BaseModelOutput(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states, attentions=all_attentions
        )


class ViTSPTLSAPreTrainedModel(PreTrainedModel):
    config_class = ViTSPTLSAConfig
    config: ViTSPTLSAConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["ViTSPTLSAEmbeddings", "ViTSPTLSALayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False

    def _flash_attn_can_dispatch(self, flash_attn_version: int, is_init_check: bool = False) -> bool:
        if self.config.use_lsa:
            raise ValueError(
                "Flash attention cannot take the diagonal mask of Locality Self-Attention (use_lsa=True); "
                f"use attn_implementation in {LSA_ATTENTION_IMPLEMENTATIONS}"
            )
        return super()._flash_attn_can_dispatch(flash_attn_version, is_init_check)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, plus the `image-classification` pipeline when this process registered
        a custom one for it (importing lens_hf registers its file-reading pipeline).

        As `Pipeline.save_pretrained` does, the pipeline's module (and the modules it imports relatively) is copied
        into the folder and named in config.json (`custom_pipelines`), so a plain `model.save_pretrained(folder)`
        (e.g. `Trainer.save_model`) gives a folder that `pipeline("image-classification", model=folder,
        trust_remote_code=True)` loads as that pipeline where lens_hf is not installed. Without such a pipeline,
        config.json names none (a name without its code would make the folder unloadable). The model's own config
        is left as it was.
        """
        pipeline_class = registered_pipeline_class()
        missing = object()
        previous = self.config.__dict__.get("custom_pipelines", missing)
        if pipeline_class is None:
            self.config.__dict__.pop("custom_pipelines", None)
        else:
            info = dict(pipeline_class._registered_impl[PIPELINE_TASK])
            info["impl"] = f"{pipeline_class.__module__.split('.')[-1]}.{pipeline_class.__name__}"
            info["pt"] = tuple(model_class.__name__ for model_class in info["pt"])
            self.config.custom_pipelines = {PIPELINE_TASK: info}
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if previous is missing:
                self.config.__dict__.pop("custom_pipelines", None)
            else:
                self.config.custom_pipelines = previous
        if pipeline_class is not None and kwargs.get("is_main_process", True):
            custom_object_save(pipeline_class, save_directory)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, ViTSPTLSAEmbeddings):
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=std)
            init.trunc_normal_(module.cls_token, mean=0.0, std=std)
        elif isinstance(module, ViTSPTLSASelfAttention) and module.log_temperature is not None:
            init.constant_(module.log_temperature, 0.5 * math.log(module.head_dim))


class ViTSPTLSAModel(ViTSPTLSAPreTrainedModel):
    """The bare encoder: last hidden state (batch, 1 + num_patches, hidden) and the pooled (batch, hidden)."""

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__(config)
        self.embeddings = ViTSPTLSAEmbeddings(config)
        self.encoder = ViTSPTLSAEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> ViTSPTLSAPatchEmbeddings:
        return self.embeddings.patch_embeddings

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutputWithPooling | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch, num_channels, H, W)`):
            Images; H and W equal `config.image_size` unless `interpolate_pos_encoding`.
        output_attentions (`bool`, *optional*):
            Return the attention probabilities of every layer, each (batch, heads, seq, seq); computed with the
            eager path whatever the attention implementation.
        output_hidden_states (`bool`, *optional*):
            Return the embeddings and the output of every layer, each (batch, seq, hidden).
        interpolate_pos_encoding (`bool`, *optional*):
            Resize the position embeddings to a different (patch-divisible) image size.
        """
        output_attentions = bool(
            self.config.output_attentions if output_attentions is None else output_attentions
        )
        output_hidden_states = bool(
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        expected_dtype = self.embeddings.patch_embeddings.projection.weight.dtype
        pixel_values = pixel_values.to(expected_dtype)

        embedding_output = self.embeddings(
            pixel_values, interpolate_pos_encoding=bool(interpolate_pos_encoding)
        )
        encoder_outputs = self.encoder(
            embedding_output, output_attentions=output_attentions, output_hidden_states=output_hidden_states
        )
        sequence_output = self.layernorm(encoder_outputs.last_hidden_state)  # (batch, seq, hidden)
        if self.config.pooling == "mean":
            pooled_output = sequence_output[:, 1:].mean(dim=1)  # (batch, hidden)
        else:
            pooled_output = sequence_output[:, 0]  # (batch, hidden)
        output = BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=pooled_output,
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


class ViTSPTLSAForImageClassification(ViTSPTLSAPreTrainedModel):
    """The encoder with a linear classifier on the pooled token (CLS or patch mean): logits (batch, num_labels)."""

    def __init__(self, config: ViTSPTLSAConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.vit = ViTSPTLSAModel(config)
        self.classifier = (
            nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        )
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        interpolate_pos_encoding: bool | None = None,
        return_dict: bool | None = None,
    ) -> ImageClassifierOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch, num_channels, H, W)`):
            Images.
        labels (`torch.LongTensor` of shape `(batch,)`, *optional*):
            Class ids in `[0, num_labels)`; when given, the cross-entropy loss is returned as `loss`.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.vit(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            interpolate_pos_encoding=interpolate_pos_encoding,
            return_dict=True,
        )
        logits = self.classifier(outputs.pooler_output)  # (batch, num_labels)
        loss = None
        if labels is not None:
            loss = self.loss_function(labels, logits, self.config)
        output = ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return output if return_dict else output.to_tuple()


def registered_pipeline_class() -> type | None:
    """The pipeline class registered for `image-classification` in this process when it is custom code (registered
    with `PIPELINE_REGISTRY.register_pipeline`, not one of transformers' own), else None."""
    impl = PIPELINE_REGISTRY.supported_tasks.get(PIPELINE_TASK, {}).get("impl")
    registered = getattr(impl, "_registered_impl", {}).get(PIPELINE_TASK, {})
    if impl is None or registered.get("impl") is not impl or impl.__module__.startswith("transformers."):
        return None
    return impl


__all__ = [
    "ViTSPTLSAForImageClassification",
    "ViTSPTLSAModel",
    "ViTSPTLSAPreTrainedModel",
    "registered_pipeline_class",
]
