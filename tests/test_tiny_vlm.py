"""The offline tiny Qwen2-VL: tokenizer, LLaMA-Factory loading, determinism, concurrent builds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmssr_plugin.core.prompts import scorer_user_text
from mmssr_plugin.core.taxonomy import DIGITS, SYSTEM_MESSAGE, resolve_capabilities
from mmssr_plugin.testing import build_tiny_qwen2vl
from mmssr_plugin.testing.tiny_vlm import SPECIAL_TOKENS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    return build_tiny_qwen2vl()


def test_tokenizer_has_single_digit_and_special_tokens(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for token in DIGITS + SPECIAL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_llamafactory_loads_and_runs_it(tiny_model, tmp_path):
    import torch
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import get_infer_args
    from llamafactory.model import load_model, load_tokenizer
    from PIL import Image

    model_args, data_args, finetuning_args, _ = get_infer_args(
        {"model_name_or_path": str(tiny_model), "template": "qwen2_vl", "infer_dtype": "float32"}
    )
    loaded = load_tokenizer(model_args)
    tokenizer, processor = loaded["tokenizer"], loaded["processor"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    model = load_model(tokenizer, model_args, finetuning_args, is_trainable=False)

    image = Image.new("RGB", (32, 32), (200, 30, 30))
    text = scorer_user_text(["<image>\nWhat color is it?", "Red."], resolve_capabilities()[0].query)
    messages = template.mm_plugin.process_messages([{"role": "user", "content": text}], [image],
                                                   [], [], processor)
    ids, _ = template.encode_oneturn(tokenizer, messages + [{"role": "assistant", "content": ""}],
                                     SYSTEM_MESSAGE)
    mm = template.mm_plugin.get_mm_inputs([image], [], [], [1], [0], [0], [ids], processor)
    assert mm["image_grid_thw"].tolist() == [[1, 4, 4]]  # 32x32 -> 56x56 px -> 4 LLM tokens
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        logits = model(input_ids=input_ids,
                       mm_token_type_ids=(input_ids == model.config.image_token_id).long(),
                       **mm).logits[0, -1]
    digit_ids = [tokenizer.convert_tokens_to_ids(d) for d in DIGITS]
    digits = logits.softmax(-1)[digit_ids]
    assert 0.5 < float(digits.sum()) <= 1.0  # digits carry most of the mass ...
    assert float(digits.max()) > 2 * float(digits.min())  # ... and are not uniform


def test_cached_build_is_reused(tiny_model):
    stamp = (tiny_model / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_qwen2vl(tiny_model) == tiny_model
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == stamp


def test_concurrent_builds_are_atomic_and_deterministic(tiny_model, tmp_path):
    target = tmp_path / "model"
    code = ("import sys; from mmssr_plugin.testing import build_tiny_qwen2vl; "
            "print(build_tiny_qwen2vl(sys.argv[1], seed=0))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert out.strip().endswith(str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left
    names = sorted(p.name for p in tiny_model.iterdir())
    assert sorted(p.name for p in target.iterdir()) == names
    for name in names:  # same seed, other processes: byte-identical files
        assert (target / name).read_bytes() == (tiny_model / name).read_bytes(), name
