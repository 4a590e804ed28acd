"""HF engine on the tiny offline Qwen2-VL: exact prefix sharing, greedy parity, LoRA, 4/8-bit."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmssr_plugin.engines import engine_identity, get_engine  # noqa: E402
from mmssr_plugin.engines.hf.engine import _single_token  # noqa: E402
from mmssr_plugin.core.prompts import scorer_user_text  # noqa: E402
from mmssr_plugin.data.sample import Sample  # noqa: E402
from mmssr_plugin.core.taxonomy import (  # noqa: E402
    DIGITS,
    STYLE_QUERY,
    SYSTEM_MESSAGE,
    resolve_capabilities,
)
from mmssr_plugin.testing import build_tiny_qwen2vl  # noqa: E402

CAPS = resolve_capabilities()


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    return build_tiny_qwen2vl()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    paths = []
    for k, color in enumerate([(200, 30, 30), (20, 180, 60), (30, 30, 220)]):
        path = folder / f"{k}.png"
        Image.new("RGB", (32, 32), color).save(path)
        paths.append(str(path))
    rows = [
        (("<image>\nWhat color is the bus?", "Red.", "is it parked next to the station", "Yes."),
         paths[:1]),
        (("How many dogs are there?", "2"), []),
        (("Describe the picture.", "A green square."), paths[1:2]),  # no placeholder in the text
        (("<image>\nHint: Please answer the question. Which is blue? A. left B. right", "B"),
         paths[2:3]),
        (("Solve 2x + 1 = 5 step by step and explain every step carefully.", "x = 2", "And 3x?",
          "Let's think step by step. 3x = 6."), []),
    ]
    return [Sample(f"t:{i}:{i:012x}", "t", i, turns, tuple(images))
            for i, (turns, images) in enumerate(rows)]


@pytest.fixture(scope="module")
def engine(tiny_model):
    # Small batches and branch chunks: padding across samples and chunking are exercised too.
    return get_engine("hf", model_name_or_path=str(tiny_model), infer_dtype="float32",
                      batch_size=3, max_rows=16)


@pytest.fixture(scope="module")
def scored(engine, samples):
    return engine.score_and_style(samples, CAPS)


def whole_prompt(vlm, sample: Sample, query: str) -> tuple[list[int], list]:
    """One whole prompt tokenised as LLaMA-Factory's chat engine does it, nothing shared:
    (ids, images)."""
    images = list(sample.images)
    text = scorer_user_text(sample.turns, query)
    if images and "<image>" not in text:
        text = "<image>" * len(images) + text
    messages = vlm.template.mm_plugin.process_messages([{"role": "user", "content": text}], images,
                                                       [], [], vlm.processor)
    ids, _ = vlm.template.encode_oneturn(
        vlm.tokenizer, messages + [{"role": "assistant", "content": ""}], SYSTEM_MESSAGE)
    return list(ids), images


def _full_prompt(vlm, sample: Sample, query: str) -> dict:
    """One whole prompt encoded the way LLaMA-Factory's chat engine does it, as model inputs."""
    ids, images = whole_prompt(vlm, sample, query)
    plugin = vlm.template.mm_plugin
    inputs = dict(plugin.get_mm_inputs(images, [], [], [len(images)], [0], [0], [ids],
                                       vlm.processor))
    input_ids = torch.tensor([ids])
    inputs.update(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                  mm_token_type_ids=(input_ids == vlm.model.config.image_token_id).long())
    return {key: value.to(vlm.model.device) for key, value in inputs.items()}


def test_prefix_sharing_matches_full_prompt_forward(engine, samples, scored):
    probs, _ = scored
    vlm = engine.scorer
    assert probs.dtype == np.float32 and probs.shape == (len(samples), len(CAPS), 6)
    reference = np.zeros_like(probs)
    with torch.no_grad():
        for i, sample in enumerate(samples):
            for c, cap in enumerate(CAPS):
                logits = vlm.model(**_full_prompt(vlm, sample, cap.query)).logits[0, -1]
                reference[i, c] = logits.float().softmax(-1)[vlm.digit_ids].cpu().numpy()
    np.testing.assert_allclose(probs, reference, atol=1e-5, rtol=0)
    # Scores alone branch from a longer prefix (the capability queries' common start).
    np.testing.assert_allclose(engine.score(samples, CAPS), reference, atol=1e-5, rtol=0)
    text_only = [1, 4]  # a batch without any image
    np.testing.assert_allclose(engine.score([samples[i] for i in text_only], CAPS),
                               reference[text_only], atol=1e-5, rtol=0)
    assert engine.skipped_fraction > 0.5


def test_digit_argmax_is_the_greedy_first_token(engine, samples, scored):
    probs, _ = scored
    vlm = engine.scorer
    digit_answers = 0
    for i, sample in enumerate(samples):
        for c in (0, 5, 13):
            out = vlm.model.generate(**_full_prompt(vlm, sample, CAPS[c].query), max_new_tokens=1,
                                     do_sample=False)
            first = int(out[0, -1])
            if first in vlm.digit_ids:  # greedy answered a digit: it must be our argmax digit
                digit_answers += 1
                assert vlm.digit_ids[int(probs[i, c].argmax())] == first
            else:  # greedy answered something else: that token beats every digit
                assert probs[i, c].max() < 0.5
    assert digit_answers >= len(samples) * 3 // 2  # the check compared real digit answers


def test_style_answer_is_greedy_generation(engine, samples, scored):
    _, answers = scored
    vlm = engine.scorer
    for sample, answer in zip(samples, answers):
        inputs = _full_prompt(vlm, sample, STYLE_QUERY)
        out = vlm.model.generate(**inputs, max_new_tokens=engine.max_style_tokens,
                                 do_sample=False, eos_token_id=vlm.stop_ids,
                                 pad_token_id=vlm.tokenizer.pad_token_id)
        new = out[0, inputs["input_ids"].shape[1]:]
        assert answer.raw == vlm.tokenizer.decode(new, skip_special_tokens=True)


def test_generation_stops_per_branch(engine, samples, scored, monkeypatch):
    vlm = engine.scorer
    # A digit that first appears at different steps in the samples' answers: as a stop token it
    # ends the branches of one batch at different steps.
    stop_digit = next(d for d in DIGITS if len({a.raw.find(d) for a in scored[1]} - {-1}) > 1)
    stop = vlm.tokenizer.convert_tokens_to_ids(stop_digit)
    monkeypatch.setattr(vlm, "stop_ids", [stop])
    answers = engine.styles(samples)
    for sample, answer in zip(samples, answers):
        inputs = _full_prompt(vlm, sample, STYLE_QUERY)
        out = vlm.model.generate(**inputs, max_new_tokens=engine.max_style_tokens,
                                 do_sample=False, eos_token_id=[stop],
                                 pad_token_id=vlm.tokenizer.pad_token_id)
        new = out[0, inputs["input_ids"].shape[1]:].tolist()
        new = new[: new.index(stop)] if stop in new else new
        assert answer.raw == vlm.tokenizer.decode(new, skip_special_tokens=True)
    assert len({len(answer.raw) for answer in answers}) > 1


@pytest.mark.parametrize("bits, tolerance", [(8, 0.05), (4, 1.0)])
def test_bitsandbytes_engines_load_and_score(tiny_model, samples, scored, bits, tolerance):
    quantized = get_engine("hf", model_name_or_path=str(tiny_model), quantization_bit=bits)
    probs = quantized.score(samples[:2], CAPS[:3])
    assert probs.shape == (2, 3, 6) and np.isfinite(probs).all()
    assert ((probs.sum(-1) > 0) & (probs.sum(-1) <= 1 + 1e-5)).all()
    assert np.abs(probs - scored[0][:2, :3]).max() < tolerance
    assert quantized.identity()["quantization"] == f"bnb-{bits}bit"


@pytest.fixture(scope="module")
def lora_adapter(tiny_model, tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False)
    path = tmp_path_factory.mktemp("lora")
    get_peft_model(model, config).save_pretrained(path)
    return path


def test_lora_adapter_changes_scores_and_identity(tiny_model, samples, scored, lora_adapter):
    tuned = get_engine("hf", model_name_or_path=str(tiny_model), infer_dtype="float32",
                       adapter_name_or_path=str(lora_adapter))
    probs = tuned.score(samples[:2], CAPS[:3])
    assert np.abs(probs - scored[0][:2, :3]).max() > 1e-3
    identity = tuned.identity()
    assert identity["adapter"]["sha256"]
    assert identity == engine_identity("hf", model_name_or_path=str(tiny_model),
                                       infer_dtype="float32",
                                       adapter_name_or_path=str(lora_adapter))


def test_separate_styler(tiny_model, samples, scored, lora_adapter):
    engine = get_engine("hf", model_name_or_path=str(tiny_model), infer_dtype="float32",
                        styler_adapter_name_or_path=str(lora_adapter))
    assert engine.styler is not engine.scorer
    probs, answers = engine.score_and_style(samples[:2], CAPS[:3])
    np.testing.assert_allclose(probs, scored[0][:2, :3], atol=1e-5, rtol=0)
    assert len(answers) == 2
    assert engine.identity()["styler"]["adapter"]["sha256"]


def test_a_digit_split_into_several_tokens_is_refused():
    class Splitting:
        def encode(self, text, add_special_tokens=False):
            return [7, 8]

    with pytest.raises(ValueError, match="single token"):
        _single_token(Splitting(), "3")
