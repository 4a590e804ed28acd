"""Recognising and reading a LLaVA-NeXT ``llava_qwen`` checkpoint (the released mmSSR models).

What the folder says about itself (``config.json``) is checked here, with one clear line for any
configuration the authors' scoring path would not run as we do: another projector, another vision
tower family, a patch-merge type without the ``image_newline`` vector. Fields the scoring path does
not read (``image_aspect_ratio`` such as ``anyres_max_9``, ``image_grid_pinpoints``,
``mm_vision_select_layer``) are accepted and ignored. No torch import at module level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# llava_qwen: the released saves; llava: lmms-lab's uploads; mmssr_llava_qwen: converted here.
LLAVA_MODEL_TYPES = ("llava_qwen", "llava", "mmssr_llava_qwen")
MODEL_LAYOUTS = ("auto", "llamafactory", "llava_qwen")
TOWER_PREFIX = "model.vision_tower.vision_tower.vision_model."

# siglip-so400m-patch14-384: what LLaVA-NeXT builds from the tower's name (not in config.json).
SO400M_HEADS = 16
SO400M_IMAGE_SIZE = 384
SO400M_LAYER_NORM_EPS = 1e-6
SO400M_ACTIVATION = "gelu_pytorch_tanh"


class UnsupportedCheckpoint(ValueError):
    """A checkpoint this loader does not run the authors' way."""


def read_config(folder: str | Path) -> dict[str, Any] | None:
    """``config.json`` of a local model folder; None for hub ids and folders without one."""
    path = Path(folder).expanduser() / "config.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def is_llava_qwen(config: dict[str, Any] | None) -> bool:
    """True for a LLaVA-NeXT save (``model_type`` llava_qwen or llava with ``mm_vision_tower``).

    transformers' own ``llava`` checkpoints (``text_config``/``vision_config``) do not count.
    """
    return bool(config) and config.get("model_type") in LLAVA_MODEL_TYPES and (
        "mm_vision_tower" in config)


def resolve_layout(model_layout: str, model_name_or_path: str) -> str:
    """``llava_qwen`` or ``llamafactory`` for a model; ``auto`` reads its ``config.json``."""
    if model_layout not in MODEL_LAYOUTS:
        raise ValueError(f"model_layout must be one of {MODEL_LAYOUTS}, got {model_layout!r}")
    if model_layout != "auto":
        return model_layout
    return "llava_qwen" if is_llava_qwen(read_config(model_name_or_path)) else "llamafactory"


@dataclass(frozen=True)
class LlavaQwenSpec:
    """The parts of a ``llava_qwen`` config the scoring path uses.

    Attributes:
        folder: the checkpoint folder.
        config: ``config.json`` as read.
        text_config: the Qwen2 fields (everything but the LLaVA ``mm_*`` extras).
    """

    folder: Path
    config: dict[str, Any]
    text_config: dict[str, Any]


def load_spec(folder: str | Path) -> LlavaQwenSpec:
    """Read and check a ``llava_qwen`` checkpoint's ``config.json``."""
    folder = Path(folder).expanduser()
    config = read_config(folder)
    if config is None:
        raise UnsupportedCheckpoint(
            f"{folder} has no config.json: a llava_qwen checkpoint must be a local folder "
            "(download it first)")
    if not is_llava_qwen(config):
        raise UnsupportedCheckpoint(
            f"{folder} is not a LLaVA-NeXT llava_qwen checkpoint (model_type "
            f"{config.get('model_type')!r}, mm_vision_tower {config.get('mm_vision_tower')!r})")
    projector = config.get("mm_projector_type", "linear")
    if projector != "mlp2x_gelu":
        raise UnsupportedCheckpoint(
            f"{folder}: mm_projector_type {projector!r} is not supported (only mlp2x_gelu)")
    tower = str(config.get("mm_vision_tower") or "")
    if "siglip" not in tower.lower():
        raise UnsupportedCheckpoint(
            f"{folder}: vision tower {tower!r} is not supported (only SigLIP so400m)")
    merge = str(config.get("mm_patch_merge_type", "flat"))
    if "unpad" not in merge:
        raise UnsupportedCheckpoint(
            f"{folder}: mm_patch_merge_type {merge!r} is not supported (only *unpad, which "
            "appends image_newline)")
    text = {k: v for k, v in config.items()
            if not k.startswith(("mm_", "image_", "tokenizer_", "vision_"))
            and k not in ("architectures", "model_type", "use_mm_proj", "auto_map",
                          "text_vocab_size")}
    return LlavaQwenSpec(folder=folder, config=config, text_config=text)


def tokens_per_image(config: dict[str, Any]) -> int:
    """Embeddings per image of a converted checkpoint (``vision_config``): patches + newline."""
    vision = config.get("vision_config")
    if not vision:
        raise UnsupportedCheckpoint(
            "the checkpoint has no vision_config: convert the released llava_qwen checkpoint "
            "first (docs/released_models.md)")
    return (vision["image_size"] // vision["patch_size"]) ** 2 + 1


def weight_files(folder: Path) -> dict[str, Path]:
    """Tensor name -> safetensors file holding it (single file or sharded with an index)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / "model.safetensors"
    if not single.is_file():
        raise UnsupportedCheckpoint(f"{folder} has no model.safetensors(.index.json)")
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as handle:
        return {name: single for name in handle.keys()}


def tensor_shapes(folder: Path, prefix: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the tensors whose names start with ``prefix`` (prefix removed), read from the
    safetensors headers without loading the tensors."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for name, file in weight_files(folder).items():
        if name.startswith(prefix):
            with safe_open(str(file), framework="pt") as handle:
                shapes[name[len(prefix):]] = tuple(handle.get_slice(name).get_shape())
    if not shapes:
        raise UnsupportedCheckpoint(f"{folder} holds no tensor named {prefix}*")
    return shapes


def model_config(spec: LlavaQwenSpec) -> Any:
    """The ``MmssrLlavaQwenConfig`` of a checkpoint: its Qwen2 fields and its vision tower's
    (from ``vision_config`` once converted, else from the stored tower's shapes). Imports torch."""
    from mmssr_plugin.engines.hf.llava_qwen_modeling import MmssrLlavaQwenConfig

    vision = spec.config.get("vision_config")
    if not vision:
        vision = vision_config(tensor_shapes(spec.folder, TOWER_PREFIX)).to_dict()
    return MmssrLlavaQwenConfig(vision_config=vision,
                                mm_hidden_size=spec.config.get("mm_hidden_size"),
                                **spec.text_config)


def vision_config(tower: dict[str, Any]) -> Any:
    """A ``SiglipVisionConfig`` with so400m's hyper-parameters and the stored tower's sizes
    (``tower``: tensor name -> shape, or -> tensor)."""
    from transformers import SiglipVisionConfig

    tower = {name: tuple(getattr(value, "shape", value)) for name, value in tower.items()}
    patch = tower["embeddings.patch_embedding.weight"]
    layers = {int(m.group(1)) for key in tower
              if (m := re.match(r"encoder\.layers\.(\d+)\.", key))}
    if "head.probe" in tower or any(key.startswith("head.") for key in tower):
        raise UnsupportedCheckpoint("the stored vision tower has a pooling head; expected none")
    hidden = patch[0]
    if hidden % SO400M_HEADS:
        raise UnsupportedCheckpoint(
            f"vision width {hidden} is not divisible by so400m's {SO400M_HEADS} heads")
    positions = tower["embeddings.position_embedding.weight"][0]
    if positions != (SO400M_IMAGE_SIZE // patch[-1]) ** 2:
        raise UnsupportedCheckpoint(
            f"the stored vision tower has {positions} positions; a {SO400M_IMAGE_SIZE} px tower "
            f"with patch {patch[-1]} has {(SO400M_IMAGE_SIZE // patch[-1]) ** 2}")
    return SiglipVisionConfig(
        hidden_size=hidden,
        intermediate_size=tower["encoder.layers.0.mlp.fc1.weight"][0],
        num_hidden_layers=len(layers),
        num_attention_heads=SO400M_HEADS,
        num_channels=patch[1],
        image_size=SO400M_IMAGE_SIZE,
        patch_size=patch[-1],
        hidden_act=SO400M_ACTIVATION,
        layer_norm_eps=SO400M_LAYER_NORM_EPS,
        vision_use_head=False,
    )
