"""Scorer evaluation figures against hand-computed values: a scripted engine with known answers."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pytest

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.engines import ScoringEngine, StyleAnswer, parse_styles
from mmssr_plugin.evaluation.held_out import HeldOut
from mmssr_plugin.evaluation.metrics import average_ranks, score_metrics, spearman, style_metrics
from mmssr_plugin.evaluation.runner import evaluate_engine

CAPS = [Capability("alpha", "alpha things"), Capability("beta", "beta things")]
NO = -1  # the teacher did not score this pair


def one_hot(digit: int, mass: float = 1.0) -> list[float]:
    return [mass if k == digit else 0.0 for k in range(6)]


# Per sample: teacher scores (alpha, beta), scorer probabilities (alpha, beta), teacher styles,
# styler answer.
ROWS = [
    ((0, 1), ([0.9, 0, 0, 0, 0, 0], one_hot(2)), ("yes/no",), "yes/no"),
    ((2, 1), ([0, 0.2, 0.6, 0.2, 0, 0], one_hot(2)), ("multi-choice", "comparison"), "comparison"),
    ((4, 2), ([0, 0, 0, 0.5, 0.3, 0], one_hot(3)), (), "yes/no"),
    ((5, NO), ([0.1, 0.1, 0.1, 0, 0, 0], one_hot(4)), ("yes/no",), "something else"),
    ((3, 3), ([0, 0, 0, 0, 0.25, 0.5], one_hot(3)), ("comparison",), "Comparison, [coordinate."),
]


class ScriptedEngine(ScoringEngine):
    """Answers every sample with the probabilities and style text scripted for its uid."""

    name = "scripted"

    def __init__(self, probs: dict[str, list], styles: dict[str, str]) -> None:
        self.probs, self.style_text = probs, styles
        self.calls = 0

    def score(self, samples: Sequence[Sample], capabilities: Sequence[Capability]) -> np.ndarray:
        self.calls += 1
        return np.array([self.probs[s.uid] for s in samples], dtype=np.float32)

    def styles(self, samples: Sequence[Sample]) -> list[StyleAnswer]:
        return [parse_styles(self.style_text[s.uid]) for s in samples]

    def identity(self) -> dict[str, Any]:
        return {"backend": "scripted"}


@pytest.fixture()
def result() -> dict[str, Any]:
    samples = [Sample(f"d:{i}:x", "d", i, ("q", "a")) for i in range(len(ROWS))]
    held_out = HeldOut(samples, CAPS, np.array([row[0] for row in ROWS]), [row[2] for row in ROWS])
    engine = ScriptedEngine({s.uid: row[1] for s, row in zip(samples, ROWS)},
                            {s.uid: row[3] for s, row in zip(samples, ROWS)})
    return evaluate_engine("scripted", engine, held_out, min_digit_mass=0.5)


def test_figures_of_one_capability(result):
    alpha = result["capabilities"]["alpha"]
    # Sample 3 has digit mass 0.3 < 0.5: no digit. Answered argmax 0, 2, 3, 5 vs teacher 0, 2, 4, 3.
    assert (alpha["samples"], alpha["answered"], alpha["non_digit"]) == (5, 4, 1)
    assert alpha["non_digit_share"] == 0.2
    assert alpha["agreement"] == 0.5
    assert alpha["mae"] == 0.75  # (0 + 0 + 1 + 2) / 4
    # expected 0, 2, 3.375, 4.667 rank 1 2 3 4; teacher 0 2 4 3 rank 1 2 4 3: 1 - 6*2/(4*15)
    assert alpha["spearman"] == pytest.approx(0.8) and alpha["spearman_undefined"] is None
    assert alpha["mean_digit_mass"] == pytest.approx(0.75, abs=1e-6)
    assert alpha["confusion"] == [
        [1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
    ]
    means = {p["teacher"]: (p["samples"], p["mean_expected"]) for p in alpha["calibration"]}
    assert means[0] == (1, 0.0) and means[2] == (1, 2.0) and means[1] == (0, None) and means[5] == (0, None)
    assert means[4] == (1, pytest.approx(3.375)) and means[3] == (1, pytest.approx(3.5 / 0.75, abs=1e-6))


def test_ties_and_unscored_pairs(result):
    beta = result["capabilities"]["beta"]
    # Sample 3 is not scored by the teacher. Expected 2 2 3 3 vs teacher 1 1 2 3 (ties on both).
    assert (beta["samples"], beta["answered"], beta["non_digit"]) == (4, 4, 0)
    assert beta["agreement"] == 0.25 and beta["mae"] == 0.75
    # average ranks 1.5 1.5 3.5 3.5 and 1.5 1.5 3 4: centred dot 4, norms^2 4 and 4.5
    assert beta["spearman"] == pytest.approx(4 / math.sqrt(18), abs=1e-6)
    assert sum(map(sum, beta["confusion"])) == 4


def test_overall_pools_every_pair(result):
    overall = result["overall"]
    assert (overall["samples"], overall["answered"], overall["non_digit"]) == (9, 8, 1)
    assert overall["agreement"] == 0.375 and overall["mae"] == 0.75
    # expected 0 2 3.375 4.667 2 2 3 3 -> ranks 1 3 7 8 3 3 5.5 5.5;
    # teacher 0 2 4 3 1 1 2 3 -> ranks 1 4.5 8 6.5 2.5 2.5 4.5 6.5; centred dot 36
    assert overall["spearman"] == pytest.approx(36 / math.sqrt(39.5 * 40.5), abs=1e-6)


def test_style_precision_and_recall(result):
    styles = result["styles"]
    # Sample 2 has no teacher styles and is left out; sample 3's answer names no known style.
    assert (styles["samples"], styles["no_style_answer"]) == (4, 1)
    per = styles["per_style"]
    assert per["yes/no"] == {"teacher": 2, "predicted": 1, "correct": 1, "precision": 1.0, "recall": 0.5}
    assert per["comparison"] == {"teacher": 2, "predicted": 2, "correct": 2, "precision": 1.0, "recall": 1.0}
    assert per["multi-choice"] == {"teacher": 1, "predicted": 0, "correct": 0, "precision": None, "recall": 0.0}
    assert per["coordinate"] == {"teacher": 0, "predicted": 1, "correct": 0, "precision": 0.0, "recall": None}
    assert styles["overall"] == {"teacher": 5, "predicted": 4, "correct": 3, "precision": 0.75, "recall": 0.6}


def test_identity_is_recorded(result):
    assert result["name"] == "scripted" and result["identity"] == {"backend": "scripted"}
    assert len(result["identity_key"]) == 16


def test_constant_predictions_have_no_spearman():
    teacher = np.array([0, 3, 5, 1])
    probs = np.tile([0, 0, 0.5, 0.5, 0, 0], (4, 1))
    figures = score_metrics(teacher, probs, 0.5)
    assert figures["spearman"] is None and figures["spearman_undefined"] == "constant scorer"
    assert figures["agreement"] == 0.0 and figures["mae"] == 1.75  # argmax 2 (first of the tie)
    assert figures["calibration"][5] == {"teacher": 5, "samples": 1, "mean_expected": 2.5}


def test_spearman_edge_cases():
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([4, 4, 4])) == (None, "constant teacher")
    assert spearman(np.array([1.0]), np.array([2])) == (None, "fewer than 2 samples")
    assert spearman(np.array([3.0, 2.0, 1.0]), np.array([0, 1, 2])) == (-1.0, None)
    assert average_ranks(np.array([5.0, 1.0, 5.0, 5.0, 0.0])).tolist() == [4.0, 2.0, 4.0, 4.0, 1.0]
    with pytest.raises(ValueError, match="one length"):
        spearman(np.array([1.0, 2.0]), np.array([1, 2, 3]))


def test_no_answer_at_all():
    figures = score_metrics(np.array([2, 4]), np.zeros((2, 6)), 0.5)
    assert (figures["answered"], figures["non_digit_share"]) == (0, 1.0)
    assert figures["agreement"] is None and figures["mae"] is None and figures["spearman"] is None
    assert figures["spearman_undefined"] == "fewer than 2 samples"
    assert figures["confusion"][2][6] == 1 and figures["confusion"][4][6] == 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="0..5"):
        score_metrics(np.array([6]), np.zeros((1, 6)), 0.5)
    with pytest.raises(ValueError, match="shape"):
        score_metrics(np.array([1, 2]), np.zeros((1, 6)), 0.5)
    with pytest.raises(ValueError, match="teacher style lists"):
        style_metrics([("yes/no",)], [])
