"""Converting a released ``llava_qwen`` checkpoint into one LLaMA-Factory can fine-tune.

The converted folder holds the same tensors under the same names (embedding and ``lm_head`` cut to
``len(tokenizer)`` rows, as the authors' loader does at load time), the tokenizer and generation
files as they were, a ``config.json`` that names its vision tower (``vision_config``) and its model
class (``model_type: mmssr_llava_qwen``, ``auto_map`` to ``modeling_mmssr_llava_qwen.py``, a copy
of :mod:`.llava_qwen_modeling` written next to the weights) and a record of the conversion. The
scoring engine reads both folders alike; LLaMA-Factory loads the converted one with
``trust_remote_code: true`` and ``template: mmssr_llava_qwen``.

Safe to re-run: the folder is written into a temporary sibling and renamed into place, and an
existing conversion of the same source is kept; any other existing folder is refused.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from mmssr_plugin.engines.hf import llava_qwen_modeling
from mmssr_plugin.engines.hf.llava_qwen_checkpoint import (TOWER_PREFIX, UnsupportedCheckpoint,
                                                            load_spec, tensor_shapes,
                                                            vision_config, weight_files)
from mmssr_plugin.utils.files import atomic_write_json, build_folder_once
from mmssr_plugin.utils.hashing import canonical_hash

logger = logging.getLogger(__name__)

CONVERTER_VERSION = 1
RECORD_FILE = "mmssr_conversion.json"
MODELING_FILE = "modeling_mmssr_llava_qwen.py"
_VOCAB_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")
_NOT_COPIED = ("config.json", "model.safetensors.index.json")


def convert_llava_qwen(source: str | Path, target: str | Path) -> Path:
    """Write the converted checkpoint of ``source`` to ``target`` (kept if already done).

    Raises:
        UnsupportedCheckpoint: ``source`` is not a supported ``llava_qwen`` checkpoint (or is
            already converted), or ``target`` exists and is not a conversion of it.
    """
    spec = load_spec(source)
    if spec.config.get("model_type") == llava_qwen_modeling.MODEL_TYPE:
        raise UnsupportedCheckpoint(f"{spec.folder} is already a converted checkpoint")
    target = Path(target).expanduser()
    record = {"source": str(spec.folder.resolve()), "converter_version": CONVERTER_VERSION,
              "source_config": canonical_hash(spec.config)}
    if target.exists() and _record(target) != record:
        raise UnsupportedCheckpoint(
            f"{target} exists and is not a conversion of {spec.folder}: remove it or choose "
            "another folder")
    if target.exists():
        logger.info("%s is already converted from %s", target, spec.folder)
        return target
    return build_folder_once(target, lambda staging: _write(spec, staging, record),
                             lambda folder: _record(folder) == record)


def _record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _write(spec: Any, staging: Path, record: dict[str, Any]) -> None:
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # llava_qwen is unknown to transformers' auto classes
    try:
        rows = len(AutoTokenizer.from_pretrained(spec.folder))
    finally:
        hf_logging.set_verbosity(verbosity)
    files = sorted(set(weight_files(spec.folder).values()))
    for path in spec.folder.iterdir():
        if path.is_file() and path.name not in _NOT_COPIED and path not in files \
                and not path.name.endswith((".bin", ".py")):
            shutil.copy2(path, staging / path.name)
    sizes = 0
    for path in files:
        tensors = load_file(str(path))
        for name in _VOCAB_TENSORS:
            if name in tensors:
                if tensors[name].shape[0] < rows:
                    raise UnsupportedCheckpoint(
                        f"{name} has {tensors[name].shape[0]} rows for {rows} tokenizer tokens")
                tensors[name] = tensors[name][:rows].contiguous()
        sizes += sum(t.numel() * t.element_size() for t in tensors.values())
        save_file(tensors, str(staging / path.name), metadata={"format": "pt"})
        logger.info("converted %s", path.name)
    if (spec.folder / "model.safetensors.index.json").is_file():
        index = json.loads((spec.folder / "model.safetensors.index.json").read_text())
        index["metadata"] = {**index.get("metadata", {}), "total_size": sizes}
        atomic_write_json(staging / "model.safetensors.index.json", index)
    shutil.copy2(llava_qwen_modeling.__file__, staging / MODELING_FILE)
    atomic_write_json(staging / "config.json", _converted_config(spec, rows))
    atomic_write_json(staging / RECORD_FILE, record)


def _converted_config(spec: Any, rows: int) -> dict[str, Any]:
    """The source's ``config.json`` naming its vision tower and its model class."""
    module = Path(MODELING_FILE).stem
    model = llava_qwen_modeling.MmssrLlavaQwenForCausalLM.__name__
    config = llava_qwen_modeling.MmssrLlavaQwenConfig.__name__
    return {
        **spec.config,
        "model_type": llava_qwen_modeling.MODEL_TYPE,
        "architectures": [model],
        "auto_map": {"AutoConfig": f"{module}.{config}",
                     "AutoModelForCausalLM": f"{module}.{model}"},
        "vision_config": vision_config(tensor_shapes(spec.folder, TOWER_PREFIX)).to_dict(),
        "vocab_size": rows,
    }
