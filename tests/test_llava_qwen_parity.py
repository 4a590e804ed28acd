"""The released-checkpoint path against an independent reference of the authors' steps.

The reference is written here from transformers building blocks, one step at a time, as the
authors' scoring script runs a LLaVA-NeXT ``llava_qwen`` checkpoint: ChatML ids by hand, the
prompt cut at ``<image>`` with a separate ``"\\n"`` token after the image, PIL bicubic 384x384 on
uint8, /255 and mean = std = 0.5, ``SiglipVisionModel`` last hidden state (no post-layernorm),
Linear-GELU-Linear, ``image_newline``, ``Qwen2ForCausalLM(inputs_embeds=...)`` and ``generate``
merged with ``generation_config.json``.
"""

import functools
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmssr_plugin.core.prompts import scorer_user_text  # noqa: E402
from mmssr_plugin.core.taxonomy import DIGITS, STYLE_QUERY, resolve_capabilities  # noqa: E402
from mmssr_plugin.data.sample import Sample  # noqa: E402
from mmssr_plugin.engines import get_engine  # noqa: E402
from mmssr_plugin.testing.tiny_llava_qwen import build_tiny_llava_qwen  # noqa: E402

CAPS = resolve_capabilities()


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return build_tiny_llava_qwen()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for k, (w, h, mode) in enumerate([(50, 30, "RGB"), (97, 131, "RGBA"), (384, 200, "L")]):
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        path = folder / f"{k}.png"
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(path)
        paths.append(str(path))
    rows = [
        (("<image>\nWhat color is the bus?", "Red."), paths[:1]),  # single image
        (("<image>\nWhat color is the bus?", "Red.", "is it parked next to the station", "Yes."),
         paths[1:2]),  # multi-turn, RGBA
        (("<image>\nHint: Please answer the question. Which is blue? A. left B. right", "B"),
         paths[2:3]),  # Hint:, grey image
        (("Solve 2x + 1 = 5 step by step.", "x = 2", "And 3x?", "3x = 6."), []),  # text only
        (("<image>\nCompare them. <image>\nWhich is larger?", "The first."), paths[:2]),
    ]
    return [Sample(f"t:{i}:{i:012x}", "t", i, turns, tuple(images))
            for i, (turns, images) in enumerate(rows)]


@pytest.fixture(scope="module")
def engine(checkpoint):
    return get_engine("hf", model_name_or_path=str(checkpoint), infer_dtype="float32",
                      batch_size=2, max_rows=8)


class Reference:
    """The authors' forward, step by step, from transformers blocks."""

    def __init__(self, folder: Path) -> None:
        from safetensors.torch import load_file
        from transformers import (AutoTokenizer, Qwen2Config, Qwen2ForCausalLM,
                                  SiglipVisionConfig, SiglipVisionModel)

        config = json.loads((folder / "config.json").read_text())
        self.generation = json.loads((folder / "generation_config.json").read_text())
        assert config["model_type"] == "llava_qwen" and config["mm_projector_type"] == "mlp2x_gelu"
        self.tok = AutoTokenizer.from_pretrained(folder)
        weights = load_file(str(folder / "model.safetensors"))
        text = Qwen2Config(**{k: config[k] for k in (
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "rms_norm_eps", "rope_theta", "vocab_size",
            "max_position_embeddings", "tie_word_embeddings")})
        self.lm = Qwen2ForCausalLM(text).eval()
        self.lm.load_state_dict({k: v for k, v in weights.items() if not k.startswith(
            ("model.vision_tower.", "model.mm_projector.", "model.image_newline"))})
        self.lm.resize_token_embeddings(len(self.tok))  # LLaVA-NeXT's loader does this
        prefix = "model.vision_tower.vision_tower.vision_model."
        tower = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        depth = 1 + max(int(k.split(".")[2]) for k in tower if k.startswith("encoder.layers."))
        self.tower = SiglipVisionModel(SiglipVisionConfig(
            hidden_size=config["mm_hidden_size"],
            intermediate_size=tower["encoder.layers.0.mlp.fc1.weight"].shape[0],
            num_hidden_layers=depth, num_attention_heads=16, image_size=384, patch_size=14,
            layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh", vision_use_head=False)).eval()
        self.tower.load_state_dict(tower)
        hidden = config["hidden_size"]
        self.projector = torch.nn.Sequential(
            torch.nn.Linear(config["mm_hidden_size"], hidden), torch.nn.GELU(),
            torch.nn.Linear(hidden, hidden))
        self.projector.load_state_dict({k[len("model.mm_projector."):]: v for k, v in
                                        weights.items() if k.startswith("model.mm_projector.")})
        self.newline = weights["model.image_newline"]

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False).input_ids

    @functools.lru_cache(maxsize=None)
    def image(self, path: str) -> torch.Tensor:
        from PIL import Image

        image = Image.open(path).convert("RGB").resize((384, 384), Image.BICUBIC)
        pixels = torch.tensor(np.array(image), dtype=torch.float32) / 255.0
        pixels = ((pixels - 0.5) / 0.5).permute(2, 0, 1)[None]
        features = self.tower(pixels, output_hidden_states=True).hidden_states[-1][0]
        return torch.cat([self.projector(features), self.newline[None]], dim=0)  # [730, H]

    def embeds(self, sample: Sample, query: str) -> torch.Tensor:
        im_start, im_end = self.tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
        user = scorer_user_text(sample.turns, query)
        before, *afters = user.split("<image>")
        assert len(afters) == len(sample.images)
        embed = self.lm.get_input_embeddings()
        pieces = [embed(torch.tensor(
            [im_start] + self.ids("system\nYou are a helpful assistant.") + [im_end]
            + self.ids("\n") + [im_start] + self.ids("user\n" + before)))]
        for path, after in zip(sample.images, afters):
            pieces.append(self.image(path))
            pieces.append(embed(torch.tensor(self.ids("\n") + self.ids(after))))
        pieces.append(embed(torch.tensor(
            [im_end] + self.ids("\n") + [im_start] + self.ids("assistant\n"))))
        return torch.cat(pieces)[None]

    @torch.no_grad()
    def digit_probs(self, sample: Sample, query: str) -> np.ndarray:
        logits = self.lm(inputs_embeds=self.embeds(sample, query)).logits[0, -1]
        digits = [self.ids(d)[0] for d in DIGITS]
        return logits.softmax(-1)[digits].numpy()

    @torch.no_grad()
    def generate(self, sample: Sample, query: str, max_new_tokens: int, **overrides) -> str:
        settings = {k: v for k, v in self.generation.items()
                    if k in ("repetition_penalty", "eos_token_id", "pad_token_id")}
        settings.update(overrides)
        out = self.lm.generate(inputs_embeds=self.embeds(sample, query), do_sample=False,
                               max_new_tokens=max_new_tokens, **settings)
        return self.tok.decode(out[0], skip_special_tokens=True)


@pytest.fixture(scope="module")
def reference(checkpoint) -> Reference:
    return Reference(checkpoint)


def test_digit_probabilities_equal_the_reference(engine, samples, reference):
    probs = engine.score(samples, CAPS)
    assert probs.shape == (len(samples), len(CAPS), 6)
    for i, sample in enumerate(samples):
        for c, cap in enumerate(CAPS):
            np.testing.assert_allclose(probs[i, c], reference.digit_probs(sample, cap.query),
                                       atol=1e-5, rtol=0)
    assert (probs.sum(-1) > 0.3).all()  # digits carry real mass: the comparison means something
    assert len({tuple(p.argmax(-1)) for p in probs}) > 1


def test_style_text_equals_the_reference_generate(engine, samples, reference):
    answers = engine.styles(samples)
    without_penalty = []
    for sample, answer in zip(samples, answers):
        assert answer.raw == reference.generate(sample, STYLE_QUERY, engine.max_style_tokens)
        without_penalty.append(reference.generate(sample, STYLE_QUERY, engine.max_style_tokens,
                                                  repetition_penalty=1.0))
    assert reference.generation["repetition_penalty"] == 1.05
    assert [a.raw for a in answers] != without_penalty  # the penalty is exercised


def test_shared_prefix_scoring_and_styling_matches_separate_calls(engine, samples):
    probs, answers = engine.score_and_style(samples, CAPS[:4])
    np.testing.assert_allclose(probs, engine.score(samples, CAPS[:4]), atol=1e-5, rtol=0)
    assert [a.raw for a in answers] == [a.raw for a in engine.styles(samples)]
    assert engine.skipped_fraction > 0.5


def test_prompt_layout_has_two_separate_newlines_after_the_image(engine, samples, reference):
    vlm = engine.scorer
    encoded = vlm.encode(samples[0], [CAPS[0].query, STYLE_QUERY])
    prefix = encoded.prefix
    from mmssr_plugin.engines.hf.llava_qwen_modeling import IMAGE_SLOT_ID

    start = prefix.index(IMAGE_SLOT_ID)
    assert prefix[start : start + 730] == [IMAGE_SLOT_ID] * 730
    assert prefix[start + 730] != IMAGE_SLOT_ID
    newline = reference.ids("\n")
    assert len(newline) == 1 and prefix[start + 730 : start + 732] == newline * 2
    assert reference.ids("\n\n") != newline * 2  # a merged token exists; we must not use it
    assert prefix[:1] == reference.tok.convert_tokens_to_ids(["<|im_start|>"])
