"""The released mmSSR models (LLaVA-NeXT ``llava_qwen``) rebuilt from transformers blocks.

A ``SiglipVisionModel`` with so400m's hyper-parameters (sizes and depth read from the stored
weights), the ``mlp2x_gelu`` projector (Linear-GELU-Linear), the learned ``image_newline`` vector
and a ``Qwen2ForCausalLM`` fed ``inputs_embeds``: plain 1-D RoPE positions, one position per
embedding, as in LLaVA-NeXT. Image slots in ``input_ids`` carry :data:`IMAGE_SLOT_ID`; each image
fills ``tokens_per_image`` consecutive slots (its patch features, then ``image_newline``).
Imports torch: only the hf engine loads this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmssr_plugin.engines.hf.llava_qwen_checkpoint import (
    NEWLINE_KEY,
    PROJECTOR_PREFIX,
    TOWER_PREFIX,
    load_spec,
    read_tensors,
    vision_config,
)

logger = logging.getLogger(__name__)

IMAGE_SLOT_ID = -200  # LLaVA's IMAGE_TOKEN_INDEX; never a real token id


class LlavaQwenForScoring(nn.Module):
    """Vision tower + projector + ``image_newline`` + Qwen2 causal LM, with a causal-LM forward.

    Args:
        language_model: the Qwen2 causal LM (vocabulary already resized to the tokenizer).
        vision_tower: the SigLIP tower as stored (no head; ``post_layernorm`` unused).
        projector: ``Sequential(Linear, GELU, Linear)``.
        image_newline: ``[hidden]`` vector appended after each image's patch features.
    """

    def __init__(self, language_model: nn.Module, vision_tower: nn.Module, projector: nn.Module,
                 image_newline: torch.Tensor) -> None:
        super().__init__()
        self.language_model = language_model
        self.vision_tower = vision_tower
        self.projector = projector
        self.image_newline = nn.Parameter(image_newline, requires_grad=False)

    @property
    def config(self) -> Any:
        """The language model's config (what caches and positions need)."""
        return self.language_model.config

    @property
    def dtype(self) -> torch.dtype:
        return self.projector[0].weight.dtype

    @property
    def tokens_per_image(self) -> int:
        """Embeddings per image: its patches and one ``image_newline``."""
        return self.vision_tower.embeddings.num_patches + 1

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[n, tokens_per_image, hidden]``: last hidden state of the tower (no post-layernorm),
        projected, then ``image_newline``."""
        tower = self.vision_tower
        hidden = tower.embeddings(pixel_values.to(self.dtype))
        hidden = tower.encoder(inputs_embeds=hidden).last_hidden_state
        features = self.projector(hidden)
        newline = self.image_newline.to(features.dtype).expand(features.shape[0], 1, -1)
        return torch.cat([features, newline], dim=1)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None, past_key_values: Any = None,
        use_cache: bool | None = None, logits_to_keep: int = 0,
        pixel_values: torch.Tensor | None = None,
    ) -> Any:
        """Embed ``input_ids``, put image embeddings into the image slots, run the LM."""
        slots = input_ids == IMAGE_SLOT_ID
        embeds = self.language_model.get_input_embeddings()(input_ids.masked_fill(slots, 0))
        n_slots = int(slots.sum())
        if n_slots or pixel_values is not None:
            images = self.image_embeddings(pixel_values) if pixel_values is not None else None
            if images is None or images.shape[0] * images.shape[1] != n_slots:
                found = 0 if images is None else images.shape[0] * images.shape[1]
                raise ValueError(f"{n_slots} image slots in the prompt, {found} image embeddings")
            embeds = embeds.masked_scatter(slots[..., None], images.to(embeds.dtype))
        return self.language_model(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
            past_key_values=past_key_values, use_cache=use_cache, logits_to_keep=logits_to_keep,
        )


def resolve_dtype(infer_dtype: str) -> torch.dtype:
    """``auto``: bfloat16 on a GPU that has it, else float16 on GPU, float32 on CPU."""
    named = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if infer_dtype in named:
        return named[infer_dtype]
    if infer_dtype != "auto":
        raise ValueError(f"infer_dtype must be auto, float32, float16 or bfloat16: {infer_dtype!r}")
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_llava_qwen(
    folder: str | Path, infer_dtype: str = "auto", quantization_bit: int | None = None,
) -> tuple[LlavaQwenForScoring, Any, Any]:
    """Load a ``llava_qwen`` checkpoint folder for inference.

    The language model loads through ``Qwen2ForCausalLM.from_pretrained`` (bitsandbytes 4/8-bit
    when asked, like LLaMA-Factory's settings); the vision tower, projector and ``image_newline``
    stay in the compute dtype. The vocabulary is resized to ``len(tokenizer)``, as LLaVA-NeXT's
    loader does, so softmax and argmax run over the tokenizer's rows only.

    Returns:
        The model (eval mode, on the GPU when there is one), its tokenizer and generation config.
    """
    from transformers import (AutoTokenizer, BitsAndBytesConfig, GenerationConfig, Qwen2Config,
                              Qwen2ForCausalLM, SiglipVisionModel)
    from transformers.utils import logging as hf_logging

    spec = load_spec(folder)
    dtype = resolve_dtype(infer_dtype)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
        else torch.device("cpu")
    kwargs: dict[str, Any] = {}
    if quantization_bit == 8:
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    elif quantization_bit == 4:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4", bnb_4bit_quant_storage=dtype)
    elif quantization_bit is not None:
        raise ValueError(f"quantization_bit must be 4, 8 or None, got {quantization_bit}")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # llava_qwen is unknown to transformers' auto classes
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.folder)
        language = Qwen2ForCausalLM.from_pretrained(
            spec.folder, config=Qwen2Config.from_dict(spec.text_config), dtype=dtype,
            device_map={"": device}, attn_implementation="sdpa", **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    language.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    tower_weights = read_tensors(spec.folder, TOWER_PREFIX)
    tower = SiglipVisionModel(vision_config(tower_weights))
    tower.load_state_dict(tower_weights, strict=True)
    projector_weights = read_tensors(spec.folder, PROJECTOR_PREFIX)
    out_dim, in_dim = projector_weights["0.weight"].shape
    projector = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(),
                              nn.Linear(out_dim, projector_weights["2.weight"].shape[0]))
    projector.load_state_dict(projector_weights, strict=True)
    newline = read_tensors(spec.folder, NEWLINE_KEY)[""]
    model = LlavaQwenForScoring(language, tower.to(device, dtype), projector.to(device, dtype),
                                newline.to(device, dtype)).eval()
    generation = (GenerationConfig.from_pretrained(spec.folder)
                  if (spec.folder / "generation_config.json").is_file() else GenerationConfig())
    logger.info("loaded llava_qwen checkpoint %s (%s, %s)", spec.folder, dtype,
                f"bnb-{quantization_bit}bit" if quantization_bit else "unquantized")
    return model, tokenizer, generation
