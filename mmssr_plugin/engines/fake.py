"""A deterministic engine without a model: for tests, dry runs and demos of the pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmssr_plugin.core.style_parsing import StyleAnswer, parse_styles
from mmssr_plugin.core.taxonomy import PROMPT_VERSION, STYLES, Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.engines.base import ScoringEngine

FAKE_ENGINE_VERSION = "1"


def _unit_values(*parts: str, count: int) -> np.ndarray:
    """``count`` numbers in [0, 1) drawn from a SHA-256 of the parts (independent of hash seeds)."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    words = np.frombuffer(digest[: 4 * count], dtype="<u4")
    return words.astype(np.float64) / 2**32


class FakeEngine(ScoringEngine):
    """Digit probabilities and styles derived from hashes of the sample id.

    Each (sample, capability) gets a peaked distribution over ``0..5`` with a digit mass between
    0.6 and 1.0; each sample gets one or two styles. The outputs depend on ``seed`` and the ids
    only, never on process state, so reruns are byte-identical.

    Args:
        seed: changes every output.
    """

    name = "fake"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def score(self, samples: Sequence[Sample], capabilities: Sequence[Capability]) -> np.ndarray:
        """Deterministic digit probabilities ``[N, C, 6]`` (float32)."""
        probs = np.empty((len(samples), len(capabilities), 6), dtype=np.float32)
        for i, sample in enumerate(samples):
            for c, cap in enumerate(capabilities):
                values = _unit_values(str(self.seed), sample.uid, cap.id, count=8)
                logits = 3.0 * values[:6]
                logits[int(values[6] * 6)] += 2.0  # one clear favourite
                weights = np.exp(logits - logits.max())
                probs[i, c] = weights / weights.sum() * (0.6 + 0.4 * values[7])
        return probs

    def styles(self, samples: Sequence[Sample]) -> list[StyleAnswer]:
        """One or two styles per sample, as a comma-separated answer parsed like a real one."""
        answers = []
        for sample in samples:
            values = _unit_values(str(self.seed), sample.uid, "style", count=3)
            picked = [STYLES[int(values[0] * len(STYLES))]]
            if values[2] < 0.3:
                picked.append(STYLES[int(values[1] * len(STYLES))])
            answers.append(parse_styles(", ".join(picked)))
        return answers

    def identity(self) -> dict[str, Any]:
        """The seed and versions: everything the fake outputs depend on."""
        return self.describe(seed=self.seed)

    @staticmethod
    def describe(seed: int = 0) -> dict[str, Any]:
        """The identity of a fake engine built with these arguments (no engine needed)."""
        return {
            "backend": "fake",
            "seed": int(seed),
            "engine_version": FAKE_ENGINE_VERSION,
            "prompt_version": PROMPT_VERSION,
        }
