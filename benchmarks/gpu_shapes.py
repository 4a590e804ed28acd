"""Random Qwen2-VL scorers of real shapes, built directly on the device (no CPU pass, no weights
on disk), for ``bench_scoring.py --shape``.

The folder holds the tiny model's tokenizer, template and processor (pixel limits widened to
Qwen2-VL's real ones) and the shape's ``config.json``; LLaMA-Factory loads tokenizer, template and
processor from it as for any scorer, and its ``load_model`` is replaced, for the benchmark only,
by a builder that initialises the model under ``torch.device(device)`` in the asked dtype. The
digit rows of the output head are biased so that digits carry most of the next-token mass with a
prompt-dependent argmax, which makes digit parity with the authors' loop meaningful.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch

from mmssr_plugin.core.taxonomy import DIGITS
from mmssr_plugin.testing import build_tiny_qwen2vl

# Real Qwen2-VL shapes (vision: depth 32, embed 1280, 16 heads, hidden = the language model's).
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2vl-7b": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                   "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                   "vision_depth": 32},
    "qwen2vl-2b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                   "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                   "vision_depth": 32},
    # A few-layer stand-in of the same code path, small enough for CPU tests.
    "test-small": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096,
                   "vision_depth": 2, "vision_embed_dim": 64, "vision_heads": 2},
}
MIN_PIXELS = 56 * 56
MAX_PIXELS = 14 * 14 * 4 * 16384
DIGIT_MARGIN = 6.0  # logit advantage of the digits over the rest, on the calibration prompt


def shape_folder(shape: str, root: Path | None = None) -> Path:
    """A folder with the tokenizer, processor and the shape's config (no weights)."""
    spec = SHAPES[shape]
    tiny = build_tiny_qwen2vl()
    target = (root or tiny.parent) / f"bench-shape-{shape}"
    target.mkdir(parents=True, exist_ok=True)
    for file in tiny.iterdir():
        if file.name not in ("model.safetensors",):
            shutil.copy2(file, target / file.name)
    processor = json.loads((target / "processor_config.json").read_text())
    for part in ("image_processor", "video_processor"):
        processor[part]["size"] = {"longest_edge": MAX_PIXELS, "shortest_edge": MIN_PIXELS}
    (target / "processor_config.json").write_text(json.dumps(processor, indent=2))
    config = json.loads((target / "config.json").read_text())
    half = spec["hidden_size"] // spec["num_attention_heads"] // 2  # rotary pairs per head
    config["text_config"].update({k: spec[k] for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "vocab_size")})
    config["text_config"]["rope_parameters"] = {  # Qwen2-VL's split: [16, 24, 24] of 64 pairs
        "rope_type": "default", "rope_theta": 1000000.0,
        "mrope_section": [half // 4, half * 3 // 8, half - half // 4 - half * 3 // 8]}
    config["text_config"].pop("layer_types", None)
    config["text_config"]["max_position_embeddings"] = 32768
    config["vision_config"].update({
        "depth": spec["vision_depth"], "embed_dim": spec.get("vision_embed_dim", 1280),
        "num_heads": spec.get("vision_heads", 16), "hidden_size": spec["hidden_size"],
        "mlp_ratio": 4})
    config["vocab_size"] = spec["vocab_size"]
    (target / "config.json").write_text(json.dumps(config, indent=2))
    return target


@torch.no_grad()
def build_on_device(folder: Path, device: str, dtype: torch.dtype, seed: int = 0) -> Any:
    """The random model of ``folder``'s config, initialised on ``device`` in ``dtype``."""
    from transformers import AutoConfig, AutoTokenizer, Qwen2VLForConditionalGeneration

    config = AutoConfig.from_pretrained(folder)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(config, dtype=dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    digit_ids = tokenizer.convert_tokens_to_ids(list(DIGITS))
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    for layer in model.model.language_model.layers:  # channel 0 stays a constant to the end
        layer.self_attn.o_proj.weight[0] = 0.0
        layer.mlp.down_proj.weight[0] = 0.0
    embed[:, 0] = 1.0
    head[:, 0] = 0.0
    probe = torch.tensor([tokenizer.encode("Question: what is it? Answer: a bus.\n")],
                         device=device)
    final = model.model(input_ids=probe).last_hidden_state[0, -1].float()
    logits = final @ head.float().T
    rest = logits.max().item()
    head[digit_ids, 0] = ((rest - logits[digit_ids].mean() + DIGIT_MARGIN)
                          / final[0]).to(dtype)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(
        ["<|im_end|>", "<|endoftext|>"])
    model.generation_config.pad_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config.do_sample = False
    return model


@contextlib.contextmanager
def models_built_on(device: str, dtype: torch.dtype) -> Iterator[None]:
    """LLaMA-Factory's ``load_model`` builds the random model on the device, while active."""
    import llamafactory.model as lf_model

    original = lf_model.load_model

    def load_model(tokenizer, model_args, *args, **kwargs):
        return build_on_device(Path(model_args.model_name_or_path), device, dtype)

    lf_model.load_model = load_model
    try:
        yield
    finally:
        lf_model.load_model = original
