"""Engine registry, the fake engine and style parsing (no model, no torch)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmssr_plugin.engines import engine_identity, get_engine, parse_styles, path_fingerprint
from mmssr_plugin.engines.fake import FakeEngine
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.core.taxonomy import resolve_capabilities

REPO = Path(__file__).resolve().parents[1]
CAPS = resolve_capabilities("ocr,spatial,stem")
SAMPLES = [Sample(f"pool:{i}:{i:012x}", "pool", i, ("q?", "a.")) for i in range(5)]


@pytest.mark.parametrize(
    "text, styles, unmatched",
    [
        ("multi-choice", ("multi-choice",), 0),
        ("yes/no, short description", ("yes/no", "short description"), 0),
        ("comparison,comparison , yes/no", ("comparison", "yes/no"), 0),  # duplicates dropped
        ("detailed description, yes/no", ("detailed description", "yes/no"), 0),  # order kept
        ("chain-of-thought (step-by-step), word/short-phrase",
         ("chain-of-thought (step-by-step)", "word/short-phrase"), 0),
        ("[Multi-Choice, Specified Style].", ("multi-choice", "specified style"), 0),
        ("coordinate, essay, 42", ("coordinate",), 2),
        ("yes/no,, ", ("yes/no",), 0),  # empty pieces are not text
        ("", (), 0),
        ("short description and comparison", (), 1),  # no comma: one unmatched piece
    ],
)
def test_style_parsing_goldens(text, styles, unmatched):
    answer = parse_styles(text)
    assert answer.styles == styles
    assert answer.unmatched == unmatched
    assert answer.raw == text


def test_fake_engine_is_deterministic_and_well_formed():
    first = get_engine("fake").score_and_style(SAMPLES, CAPS)
    second = FakeEngine().score_and_style(SAMPLES, CAPS)
    assert first[0].dtype == np.float32 and first[0].shape == (5, 3, 6)
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1] == second[1]
    mass = first[0].sum(-1)
    assert (mass >= 0.6 - 1e-6).all() and (mass <= 1.0 + 1e-6).all()
    assert len({answer.styles for answer in first[1]}) > 1
    assert all(answer.styles and not answer.unmatched for answer in first[1])
    # A sample's scores do not depend on its neighbours or on the capability order.
    alone = FakeEngine().score(SAMPLES[2:3], CAPS[::-1])
    np.testing.assert_array_equal(alone[0], first[0][2, ::-1])
    other_seed = FakeEngine(seed=1).score(SAMPLES, CAPS)
    assert not np.array_equal(other_seed, first[0])


def test_registry_accepts_a_scorer_config_and_refuses_unknown_names():
    assert isinstance(get_engine(ScorerConfig(backend="fake")), FakeEngine)
    assert engine_identity(ScorerConfig(backend="fake")) == FakeEngine().identity()
    with pytest.raises(ValueError, match="unknown scoring engine"):
        get_engine("vllm-nope")


def test_hf_identity_hashes_local_files_without_loading(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "README.md").write_text("ignored")
    config = ScorerConfig(backend="hf", model_name_or_path=str(model))
    first = engine_identity(config)
    assert first["model"]["sha256"] and first["adapter"] is None and first["styler"] == "scorer"
    (model / "README.md").write_text("still ignored")
    assert engine_identity(config) == first
    (model / "config.json").write_text('{"changed": 1}')
    assert engine_identity(config)["model"] != first["model"]
    quantized = engine_identity(ScorerConfig(backend="hf", model_name_or_path=str(model),
                                             quantization_bit=4))
    assert quantized["quantization"] == "bnb-4bit"
    assert path_fingerprint("org/hub-model") == {"name": "org/hub-model", "sha256": None}


def test_importing_engines_does_not_import_torch():
    code = ("import sys, mmssr_plugin.engines as e; e.engine_identity('fake'); "
            "e.engine_identity('hf', model_name_or_path='x'); "
            "sys.exit(int(any(m in sys.modules for m in ('torch', 'transformers'))))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
