"""HF engine speed-ups keep results exact: split prompt encoding, encoding threads, one row per
sample, memory-fitted batches with out-of-memory halving, infer_dtype."""


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmssr_plugin.core.prompts import all_queries  # noqa: E402
from test_engine_hf import whole_prompt  # noqa: E402
from mmssr_plugin.core.taxonomy import resolve_capabilities  # noqa: E402
from mmssr_plugin.data.sample import Sample  # noqa: E402
from mmssr_plugin.engines import get_engine  # noqa: E402
from mmssr_plugin.engines.hf.batching import (  # noqa: E402
    HalvingRunner,
    ModelShape,
    memory_batch_limit,
)

CAPS = resolve_capabilities()
QUERIES = all_queries(CAPS)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    paths = []
    for k, (size, color) in enumerate([((32, 32), (200, 30, 30)), ((56, 28), (20, 180, 60)),
                                       ((40, 64), (30, 30, 220))]):
        path = folder / f"{k}.png"
        Image.new("RGB", size, color).save(path)
        paths.append(str(path))
    rows = [
        (("<image>\nWhat color is the bus?", "Red.", "is it parked next to the station", "Yes."),
         paths[:1]),  # image, multi-turn
        (("How many dogs are there?", "2"), []),  # text-only
        (("Describe the picture.", "A green square."), paths[1:2]),  # no placeholder in the text
        (("<image>\nHint: Please answer the question. Which is blue? A. left B. right", "B"),
         paths[2:3]),  # Hint
        (("Solve 2x + 1 = 5.", "x = 2", "And 3x?", "3x = 6.\n\n"), []),  # ends in newlines
        (("<image><image>\nCompare them.", "The left is red.  "), paths[:2]),  # two images
        (("Unanswered question?",), paths[1:2]),  # odd number of turns
    ]
    return [Sample(f"s:{i}:{i:012x}", "s", i, turns, tuple(images))
            for i, (turns, images) in enumerate(rows)]


@pytest.fixture(scope="module")
def engine(tiny_model):
    return get_engine("hf", model_name_or_path=str(tiny_model), infer_dtype="float32",
                      batch_size=3)


@pytest.fixture(scope="module")
def scored(engine, samples):
    return engine.score_and_style(samples, CAPS)


@pytest.mark.parametrize("queries", [QUERIES, QUERIES[:-1], QUERIES[-1:], QUERIES[3:4]])
def test_head_once_plus_query_tails_equals_every_whole_prompt(engine, samples, queries):
    vlm = engine.scorer
    assert vlm.encoder._query_tails(tuple(queries)) is not None  # the split path is the one used
    for sample in samples:
        encoded = vlm.encode(sample, queries)
        assert len(encoded.suffixes) == len(queries)
        for query, suffix in zip(queries, encoded.suffixes):
            assert encoded.prefix + suffix == whole_prompt(vlm, sample, query)[0]


def test_images_are_processed_once_per_sample(engine, samples, monkeypatch):
    vlm = engine.scorer
    plugin = type(vlm.template.mm_plugin)
    calls = []
    original = plugin._get_mm_inputs

    def counting(self, images, *args, **kwargs):
        calls.append(len(images))
        return original(self, images, *args, **kwargs)

    monkeypatch.setattr(plugin, "_get_mm_inputs", counting)
    engine.score_and_style(samples, CAPS)
    assert sorted(calls) == sorted(len(s.images) for s in samples if s.images)


def test_encoding_threads_and_unpacked_rows_give_the_same_results(tiny_model, samples, scored):
    threaded = get_engine("hf", model_name_or_path=str(tiny_model), infer_dtype="float32",
                          batch_size=2, encode_workers=2, max_branch_rows=20)
    probs, answers = threaded.score_and_style(samples, CAPS)
    np.testing.assert_allclose(probs, scored[0], atol=1e-5, rtol=0)
    assert [a.raw for a in answers] == [a.raw for a in scored[1]]
    threaded.scorer.brancher.attention = "fa2"  # no 4-D masks: one row per branch
    assert not threaded.scorer.brancher.can_pack
    np.testing.assert_allclose(threaded.score(samples, CAPS), scored[0], atol=1e-5, rtol=0)


def test_eager_attention_takes_the_additive_tree_mask(tiny_model, samples, scored):
    eager = get_engine("hf", model_name_or_path=str(tiny_model), infer_dtype="float32",
                       batch_size=4, flash_attn="disabled")
    assert eager.scorer.brancher.attention == "eager" and eager.scorer.brancher.can_pack
    np.testing.assert_allclose(eager.score(samples, CAPS), scored[0], atol=1e-5, rtol=0)


def test_out_of_memory_halves_the_batch_and_retries(engine, samples, scored):
    runner = engine.scorer.runner
    sizes = []

    def fail_above_two(size: int) -> None:
        sizes.append(size)
        if size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    runner.fault_hook = fail_above_two
    try:
        probs, answers = engine.score_and_style(samples, CAPS)
        assert sizes[0] == 3 and max(sizes[1:]) <= 1 + 1 and runner.halving.cap == 1
        np.testing.assert_allclose(probs, scored[0], atol=1e-5, rtol=0)
        assert [a.raw for a in answers] == [a.raw for a in scored[1]]

        def always(size: int) -> None:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")

        runner.fault_hook = always  # one sample that does not fit: the error is raised
        with pytest.raises(torch.OutOfMemoryError):
            engine.score(samples[:1], CAPS)
    finally:
        runner.fault_hook = None
        runner.halving.cap = 2**31


def test_halving_runner_and_memory_limit_units():
    seen = []

    def run(part):
        if len(part) > 3:
            raise torch.OutOfMemoryError("injected")
        seen.append(list(part))

    runner = HalvingRunner(cap=100)
    runner.run(list(range(10)), run)
    assert [i for part in seen for i in part] == list(range(10)) and runner.cap == 2
    with pytest.raises(ValueError):
        runner.run([1, 2], lambda part: (_ for _ in ()).throw(ValueError("not memory")))
    assert memory_batch_limit(64, None, 10) == 64
    assert memory_batch_limit(64, 10_000, 1_000) == 7  # 70% of the free memory
    assert memory_batch_limit(64, 10, 1_000) == 1


def test_model_shape_of_the_7b_scorer():
    from transformers import Qwen2VLConfig

    config = Qwen2VLConfig(text_config={"hidden_size": 3584, "num_hidden_layers": 28,
                                        "num_attention_heads": 28, "num_key_value_heads": 4,
                                        "intermediate_size": 18944})
    shape = ModelShape.of(config, 2)
    assert shape.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2  # 57 KiB per token in bf16


def test_infer_dtype_takes_effect_on_a_float32_checkpoint(tiny_model, samples, scored, tmp_path):
    from transformers import Qwen2VLForConditionalGeneration

    import shutil

    folder = tmp_path / "fp32"
    shutil.copytree(tiny_model, folder)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32)
    model.save_pretrained(folder)
    assert '"float32"' in (folder / "config.json").read_text()
    auto = get_engine("hf", model_name_or_path=str(folder))
    assert auto.scorer.model.dtype == torch.float32  # auto: the checkpoint's dtype
    bf16 = get_engine("hf", model_name_or_path=str(folder), infer_dtype="bfloat16")
    assert bf16.scorer.model.dtype == torch.bfloat16
    assert bf16.scorer.brancher.dtype == torch.bfloat16
    probs = bf16.score(samples[:3], CAPS[:4])
    assert probs.dtype == np.float32 and np.isfinite(probs).all()
    assert np.abs(probs - scored[0][:3, :4]).max() < 0.05  # bf16 noise, not another model
    assert np.abs(probs - scored[0][:3, :4]).max() > 0  # and really computed in bf16
