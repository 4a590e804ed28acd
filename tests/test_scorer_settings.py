"""The engine's knobs reach it from the YAML block and from ``mmssr-cli score``: image pixel
bounds, style tokens, branch rows, attention implementation, encoding workers."""

import pytest

from mmssr_plugin.cli import build_parser
from mmssr_plugin.commands import CommandError
from mmssr_plugin.engines import _resolve, engine_identity
from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError

KNOBS = {"image_max_pixels": 401408, "image_min_pixels": 3136, "max_style_tokens": 32,
         "max_branch_rows": 128, "flash_attn": "disabled", "encode_workers": 2}


def test_yaml_block_knobs_reach_the_engine_arguments():
    config = DataSelectionConfig.from_dict({"model_name_or_path": "m", **KNOBS})
    name, kwargs = _resolve(config.scorer, {})
    assert name == "hf"
    assert {k: kwargs[k] for k in KNOBS} == KNOBS


def test_cli_flags_are_generated_from_the_fields():
    args = build_parser().parse_args([
        "score", "--pool", "pool.json", "--model", "m", "--image-max-pixels", "401408",
        "--image-min-pixels", "3136", "--max-style-tokens", "32", "--max-branch-rows", "128",
        "--flash-attn", "disabled", "--encode-workers", "2",
    ])
    assert {k: getattr(args, k) for k in KNOBS} == KNOBS
    with pytest.raises(CommandError, match="flash-attn"):
        build_parser().parse_args(["score", "--pool", "p.json", "--flash-attn", "fast"])


@pytest.mark.parametrize("block, message", [
    ({"flash_attn": "fast"}, "flash_attn must be one of"),
    ({"max_branch_rows": 0}, "max_branch_rows must be >= 1"),
    ({"encode_workers": -1}, "encode_workers must be >= 0"),
])
def test_bad_knobs_are_refused(block, message):
    with pytest.raises(DataSelectionError) as info:
        DataSelectionConfig.from_dict({"model_name_or_path": "m", **block})
    assert message in str(info.value)


def test_pixel_bounds_change_the_identity_and_runtime_knobs_do_not():
    base = engine_identity("hf", model_name_or_path="some/hub-model")
    assert "image_max_pixels" not in base  # unset: fingerprints of earlier runs stay valid
    assert engine_identity("hf", model_name_or_path="some/hub-model",
                           image_max_pixels=401408) != base
    assert engine_identity("hf", model_name_or_path="some/hub-model", max_branch_rows=8,
                           flash_attn="disabled", encode_workers=3) == base


def test_preflight_rejects_attention_this_environment_cannot_load():
    import importlib.util

    from mmssr_plugin.llamafactory.preflight import check_scorer
    from mmssr_plugin.scoring.config import ScorerConfig

    def scorer(**changes):
        return ScorerConfig(model_name_or_path="Qwen/Qwen2-VL-2B-Instruct",
                            model_layout="llamafactory", **changes)

    check_scorer(scorer(flash_attn="disabled"))
    with pytest.raises(DataSelectionError, match=r"data_selection\.flash_attn: fa3 .*gpt-oss"):
        check_scorer(scorer(flash_attn="fa3"))
    if importlib.util.find_spec("flash_attn") is None:
        with pytest.raises(DataSelectionError, match="flash-attn package"):
            check_scorer(scorer(flash_attn="fa2"))
    with pytest.raises(ValueError, match="image_min_pixels .* must not exceed image_max_pixels"):
        scorer(image_min_pixels=4096, image_max_pixels=1024)
