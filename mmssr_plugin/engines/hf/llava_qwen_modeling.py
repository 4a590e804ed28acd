"""The released mmSSR model (LLaVA-NeXT ``llava_qwen``) as a transformers model class.

``MmssrLlavaQwenForCausalLM`` is a ``Qwen2ForCausalLM`` whose ``model`` also holds the SigLIP
vision tower (``model.vision_tower.vision_tower``, no head; ``post_layernorm`` unused), the
``mlp2x_gelu`` projector (``model.mm_projector``: Linear-GELU-Linear) and the learned
``model.image_newline`` vector: the state-dict keys of a LLaVA-NeXT save, so the released weights
load as they are. Image slots in ``input_ids`` carry :data:`IMAGE_SLOT_ID`; each image fills
``tokens_per_image`` consecutive slots (its 729 patch features, then ``image_newline``). Positions
are plain 1-D RoPE positions, one per embedding, as in LLaVA-NeXT.

Self-contained (torch and transformers only): ``mmssr-cli convert`` copies this file next to the
converted weights and names its classes in ``config.json``'s ``auto_map``, so LLaMA-Factory (and
plain transformers) load the checkpoint with ``trust_remote_code``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

MODEL_TYPE = "mmssr_llava_qwen"
# Marks an image embedding slot: beyond every vocabulary (decodes to nothing), never embedded.
IMAGE_SLOT_ID = 1 << 30


class MmssrLlavaQwenConfig(Qwen2Config):
    """Qwen2's fields, the vision tower's (``vision_config``) and LLaVA-NeXT's ``mm_*`` extras."""

    model_type = MODEL_TYPE

    def __init__(self, vision_config: dict[str, Any] | None = None,
                 mm_hidden_size: int | None = None, **kwargs: Any) -> None:
        self.vision_config = dict(vision_config or {})
        self.mm_hidden_size = mm_hidden_size
        super().__init__(**kwargs)


class _VisionTower(nn.Module):
    """Holds the SigLIP model under ``vision_tower``, as LLaVA-NeXT's wrapper does."""

    def __init__(self, config: SiglipVisionConfig) -> None:
        super().__init__()
        self.vision_tower = SiglipVisionModel(config)


class MmssrLlavaQwenForCausalLM(Qwen2ForCausalLM):
    """Vision tower + projector + ``image_newline`` + Qwen2 causal LM, one ``forward``."""

    config_class = MmssrLlavaQwenConfig
    _no_split_modules = ["Qwen2DecoderLayer", "SiglipEncoderLayer"]

    def __init__(self, config: MmssrLlavaQwenConfig) -> None:
        super().__init__(config)
        vision = SiglipVisionConfig(**config.vision_config)
        self.model.vision_tower = _VisionTower(vision)
        self.model.mm_projector = nn.Sequential(
            nn.Linear(config.mm_hidden_size or vision.hidden_size, config.hidden_size), nn.GELU(),
            nn.Linear(config.hidden_size, config.hidden_size))
        self.model.image_newline = nn.Parameter(torch.zeros(config.hidden_size))
        self.post_init()

    @property
    def tokens_per_image(self) -> int:
        """Embeddings per image: its patches and one ``image_newline``."""
        return self.model.vision_tower.vision_tower.embeddings.num_patches + 1

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[n, tokens_per_image, hidden]``: the tower's last hidden state (no post-layernorm),
        projected, then ``image_newline``."""
        tower = self.model.vision_tower.vision_tower
        dtype = self.model.mm_projector[0].weight.dtype
        hidden = tower.embeddings(pixel_values.to(dtype))
        hidden = tower.encoder(inputs_embeds=hidden).last_hidden_state
        features = self.model.mm_projector(hidden)
        newline = self.model.image_newline.to(features.dtype).expand(features.shape[0], 1, -1)
        return torch.cat([features, newline], dim=1)

    def forward(self, input_ids: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """Embed ``input_ids``, put the image embeddings into the image slots, run the LM."""
        if inputs_embeds is None:
            slots = input_ids == IMAGE_SLOT_ID
            inputs_embeds = self.get_input_embeddings()(input_ids.masked_fill(slots, 0))
            n_slots = int(slots.sum())
            if n_slots or pixel_values is not None:
                images = None if pixel_values is None else self.image_embeddings(pixel_values)
                found = 0 if images is None else images.shape[0] * images.shape[1]
                if found != n_slots:
                    raise ValueError(f"{n_slots} image slots in the prompt, {found} image embeddings")
                inputs_embeds = inputs_embeds.masked_scatter(slots[..., None],
                                                             images.to(inputs_embeds.dtype))
        return super().forward(inputs_embeds=inputs_embeds, **kwargs)
