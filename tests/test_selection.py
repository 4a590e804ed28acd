"""The sampler against a literal transcription of the spec, golden examples and properties."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.budget import resolve_budget
from mmssr_plugin.selection.result import SelectionResult
from mmssr_plugin.selection.sampler import select

NAN = math.nan
ROOT = Path(__file__).resolve().parents[1]


# --- reference: the spec's pseudocode, transcribed literally with Python lists -----------------


def reference_labels(styles: list[list[str]], sources: list[str]) -> list[list[str]]:
    """Bin labels per sample, as the spec defines them."""
    out = []
    for sample_styles, source in zip(styles, sources):
        labels = [f"{style}+{source}" for style in sample_styles] or [f"unknown+{source}"]
        out.append(list(dict.fromkeys(labels)))
    return out


def reference_pick_by_style(eligible: list[int], quota: int, labels: list[list[str]]) -> list[int]:
    bins: dict[str, list[int]] = {}
    for i in eligible:
        for label in labels[i]:
            bins.setdefault(label, []).append(i)
    ordered = sorted(bins.items(), key=lambda item: (len(item[1]), item[0]))
    per_bin = max(quota // len(ordered), 1)
    debt = 0
    picked: list[int] = []
    for _label, members in ordered:
        if len(picked) >= quota:
            break
        avail = [i for i in members if i not in picked]
        take = min(per_bin + debt, len(avail), quota - len(picked))
        debt = max(per_bin + debt - len(avail), 0)
        picked += avail[:take]
    return picked


def reference_select(scores, caps, labels, k, thr, tiebreak=None):
    """Returns (indices in pool order, per-capability counts, exhausted, rounds)."""
    n = len(scores)

    def order_key(i: int, c: int):
        tb = (0, 0.0)
        if tiebreak is not None:
            tb = (1, 0.0) if math.isnan(tiebreak[i][c]) else (0, -tiebreak[i][c])
        return (-scores[i][c], tb, i)

    selected: list[int] = []
    counts = {cap: 0 for cap in caps}
    gone_all: list[str] = []
    rounds = 0
    remaining_caps = list(range(len(caps)))
    while len(selected) < k and remaining_caps:
        rounds += 1
        per_cap = max((k - len(selected)) // len(remaining_caps), 1)
        exhausted = []
        for c in remaining_caps:
            quota = min(per_cap, k - len(selected))
            eligible = [i for i in range(n) if i not in selected and scores[i][c] > thr]
            eligible.sort(key=lambda i: order_key(i, c))
            if not eligible:
                exhausted.append(c)
                continue
            picked = reference_pick_by_style(eligible, quota, labels)
            selected += picked
            counts[caps[c]] += len(picked)
            if len(selected) >= k:
                break
        remaining_caps = [c for c in remaining_caps if c not in exhausted]
        gone_all += [caps[c] for c in exhausted]
    return sorted(selected), counts, gone_all, rounds


# --- generated cases --------------------------------------------------------------------------

SCORE_VALUES = [NAN, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 0.5, 2.5, 4.75, -1.0]
STYLE_NAMES = ["multi-choice", "yes/no", "comparison", "short description"]
SOURCES = ["coco", "geo170k(qa)", "ocr_vqa"]


@st.composite
def pools(draw):
    n = draw(st.integers(0, 60) | st.integers(15, 60))
    c = draw(st.integers(1, 4))
    dense = st.sampled_from(SCORE_VALUES) | st.floats(-1, 6, allow_nan=False)
    sparse = st.sampled_from([NAN, NAN, NAN, 0.0, 3.0])  # capabilities that run out early
    values = [draw(st.sampled_from([dense, dense, sparse])) for _ in range(c)]
    scores = [[draw(values[j]) for j in range(c)] for _ in range(n)]
    styles = [draw(st.lists(st.sampled_from(STYLE_NAMES), max_size=3)) for _ in range(n)]
    sources = [draw(st.sampled_from(SOURCES)) for _ in range(n)]
    budget = draw(st.floats(0.1, 1.0) | st.sampled_from([1.0, 0.5, 0.05]) | st.integers(1, 80))
    thr = draw(st.sampled_from([0.0, 0.0, 1.0, 2.5, -1.0, 4.0]))
    tiebreak = None
    if draw(st.booleans()):
        tb_value = st.sampled_from([NAN, 0.0, 1.0, 0.25]) | st.floats(-2, 2, allow_nan=False)
        tiebreak = [[draw(tb_value) for _ in range(c)] for _ in range(n)]
    caps = [f"cap{j}" for j in range(c)]
    return scores, caps, styles, sources, budget, thr, tiebreak


def run_select(scores, caps, styles, sources, budget, thr, tiebreak) -> SelectionResult:
    matrix = np.array(scores, dtype=np.float64).reshape(len(scores), len(caps))
    tb = None if tiebreak is None else np.array(tiebreak).reshape(matrix.shape)
    return select(matrix, caps, StyleBins.from_styles(styles, sources), budget, thr, tb)


@settings(max_examples=300, deadline=None)
@given(pools())
def test_matches_reference(pool):
    scores, caps, styles, sources, budget, thr, tiebreak = pool
    result = run_select(*pool)
    k = resolve_budget(budget, len(scores))
    labels = reference_labels(styles, sources)
    indices, counts, exhausted, rounds = reference_select(scores, caps, labels, k, thr, tiebreak)
    assert result.indices.tolist() == indices
    assert result.per_capability == counts
    assert list(result.per_capability) == caps
    assert result.exhausted == exhausted
    assert result.rounds == rounds
    assert result.budget == k


@settings(max_examples=100, deadline=None)
@given(pools())
def test_properties(pool):
    scores, caps, thr = pool[0], pool[1], pool[5]
    result = run_select(*pool)
    k = result.budget
    chosen = result.indices
    assert chosen.dtype == np.int64
    assert len(chosen) <= k
    assert len(np.unique(chosen)) == len(chosen)
    assert np.all(np.diff(chosen) > 0)  # pool order
    eligible_any = [i for i, row in enumerate(scores) if any(s > thr for s in row)]
    assert set(chosen.tolist()) <= set(eligible_any)
    assert sum(result.per_capability.values()) == len(chosen)
    if len(eligible_any) >= k:
        assert len(chosen) == k and result.shortfall == 0 and result.shortfall_reason is None
    else:
        assert chosen.tolist() == eligible_any
        assert result.shortfall == k - len(eligible_any)
        assert result.exhausted and sorted(result.exhausted) == sorted(caps)
    again = run_select(*pool)
    assert again.indices.tobytes() == chosen.tobytes()
    assert again.per_capability == result.per_capability


# --- golden, hand-worked examples -------------------------------------------------------------


def one_style(*bins_sources: str) -> StyleBins:
    """Bins from "style+source" labels, one per sample."""
    return StyleBins.from_lists([[label] for label in bins_sources])


def test_debt_carries_to_next_bin():
    # caps visited q then p, K = 8, per_cap 4. q takes 0-3 from its single bin. p's bins:
    # x+s (1 member) then b+s (6); per_bin 2: x+s gives 1 and a debt of 1, so b+s gives 3.
    # Without the debt p would give 3, and round 2 would hand the 8th sample to q (sample 4).
    scores = np.full((13, 2), NAN)
    scores[0:6, 0] = 5.0
    scores[6, 1] = 5.0
    scores[7:13, 1] = 4.0
    bins = one_style(*["a+s"] * 6, "x+s", *["b+s"] * 6)
    result = select(scores, ["q", "p"], bins, 8)
    assert result.indices.tolist() == [0, 1, 2, 3, 6, 7, 8, 9]
    assert result.per_capability == {"q": 4, "p": 4}
    assert result.rounds == 1 and result.exhausted == [] and result.shortfall == 0


def test_smallest_bin_first_then_label():
    # bins a+s (2), c+s (2), b+s (3); per_bin max(K // 3, 1) = 1: a+s (equal count, smaller
    # label) goes before c+s; the score-5 samples of the biggest bin come last.
    scores = np.array([[5.0], [5.0], [5.0], [1.0], [2.0], [3.0], [1.0]])
    bins = one_style("b+s", "b+s", "b+s", "a+s", "a+s", "c+s", "c+s")
    picks = {k: select(scores, ["p"], bins, k).indices.tolist() for k in (1, 2, 3)}
    assert picks == {1: [4], 2: [4, 5], 3: [0, 4, 5]}


def test_exhausted_capability_dropped_rest_continue():
    # p has one eligible sample. q's bins: a+s = [1, 2, 3, 6], b+s = [4, 5, 7] (score order).
    # Round 1 (per_cap 3): p takes 0; q, per_bin 1, takes 4 (b+s) and 1 (a+s).
    # Round 2 (per_cap 1): p is exhausted; q takes 5 (b+s, now the smaller bin).
    # Round 3 (q alone, per_cap 2): b+s = [7] gives 7, a+s gives 2.
    scores = np.full((8, 2), NAN)
    scores[0, 0] = 3.0
    scores[1:8, 1] = [5.0, 4.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    bins = one_style("u+s", "a+s", "a+s", "a+s", "b+s", "b+s", "a+s", "b+s")
    result = select(scores, ["p", "q"], bins, 6)
    assert result.indices.tolist() == [0, 1, 2, 4, 5, 7]
    assert result.per_capability == {"p": 1, "q": 5}
    assert result.exhausted == ["p"]
    assert result.rounds == 3


def test_shortfall_reported_with_reason():
    # threshold 2 is strict: sample 3 (score 2) is not eligible; only 0, 1, 2 are.
    scores = np.array([[3.0, NAN], [1.0, 5.0], [2.5, 2.5], [2.0, 2.0], [NAN, NAN]])
    result = select(scores, ["p", "q"], one_style(*["u+s"] * 5), 5, threshold=2)
    assert result.indices.tolist() == [0, 1, 2]
    assert result.per_capability == {"p": 2, "q": 1}
    assert result.exhausted == ["p", "q"]
    assert result.shortfall == 2
    assert result.shortfall_reason == (
        "only 3 of 5 requested samples had a score above the threshold 2 for any of the 2 "
        "capabilities; all capabilities ran out"
    )


def test_ratio_one_selects_whole_eligible_pool():
    scores = np.array([[3.0], [NAN], [0.0], [1.0], [5.0]])
    bins = StyleBins.from_styles([["yes/no"], [], ["comparison", "yes/no"], [], []], ["a"] * 5)
    result = select(scores, ["p"], bins, 1.0)
    assert result.budget == 5
    assert result.indices.tolist() == [0, 3, 4]
    assert result.shortfall == 2
    assert "only 3 of 5" in result.shortfall_reason


def test_tiebreak_orders_equal_scores():
    # order: 1 (score 5), then score-4 samples by tiebreak desc: 3 and 4 (0.9, pool order),
    # 0 (0.1), 2 (NaN last). Sample 5 has the best tiebreak but no score: never eligible.
    scores = np.array([[4.0], [5.0], [4.0], [4.0], [4.0], [NAN]])
    tiebreak = np.array([[0.1], [0.0], [NAN], [0.9], [0.9], [9.0]])
    bins = one_style(*["u+s"] * 6)
    picks = {
        k: select(scores, ["p"], bins, k, tiebreak=tiebreak).indices.tolist() for k in (2, 3, 4, 6)
    }
    assert picks == {2: [1, 3], 3: [1, 3, 4], 4: [0, 1, 3, 4], 6: [0, 1, 2, 3, 4]}
    assert select(scores, ["p"], bins, 2).indices.tolist() == [0, 1]  # no tiebreak: pool order


# integer (radix), float32-exact (packed keys) and general float sorts
@pytest.mark.parametrize("levels", [(1.0, 2.0), (1.5, 2.5), (0.1, 0.2)])
@pytest.mark.parametrize("with_tiebreak", [False, True])
def test_ties_go_by_pool_order_on_large_pool(levels, with_tiebreak):
    rng = np.random.default_rng(3)
    scores = rng.choice(levels, size=(3000, 1))
    tiebreak = np.zeros_like(scores) if with_tiebreak else None
    result = select(scores, ["p"], one_style(*["u+s"] * 3000), 700, tiebreak=tiebreak)
    assert result.indices.tolist() == np.flatnonzero(scores[:, 0] == levels[1])[:700].tolist()


@pytest.mark.parametrize("last", [0.0, 0.1])
def test_tiebreak_signed_zero_infinities_nan(last):
    # order: 4 (inf), then 0, 1, 2 (0.0 == -0.0, pool order), 3 (-inf), 5 (NaN last), then 6
    # (lower score). Sample 6's tiebreak 0.1 is no float32, which takes the general float sort.
    tiebreak = np.array([[0.0], [-0.0], [0.0], [-math.inf], [math.inf], [NAN], [last]])
    scores = np.array([[1.0]] * 6 + [[0.5]])
    bins = one_style(*["u+s"] * 7)
    picks = {
        k: select(scores, ["p"], bins, k, tiebreak=tiebreak).indices.tolist() for k in (2, 3, 5, 6)
    }
    assert picks == {2: [0, 4], 3: [0, 1, 4], 5: [0, 1, 2, 3, 4], 6: [0, 1, 2, 3, 4, 5]}


def test_sample_in_several_bins_counted_once():
    # sample 0 is in both bins; per_bin 1: bin a+s (1 member) takes 0, bin b+s then takes 1.
    bins = StyleBins.from_lists([["a+s", "b+s"], ["b+s"], ["b+s"]])
    result = select(np.array([[5.0], [4.0], [3.0]]), ["p"], bins, 2)
    assert result.indices.tolist() == [0, 1]


# --- determinism across hash seeds ------------------------------------------------------------

_DETERMINISM_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.sampler import select
rng = np.random.default_rng(7)
n = 400
scores = rng.integers(0, 6, size=(n, 3)).astype(float)
scores[rng.random(scores.shape) < 0.1] = np.nan
styles = ["multi-choice", "yes/no", "comparison", "coordinate", "short description"]
per_sample = [[styles[j] for j in rng.choice(5, size=rng.integers(0, 3), replace=False)]
              for _ in range(n)]
sources = [f"src{j}" for j in rng.integers(0, 7, size=n)]
result = select(scores, ["z", "a", "m"], StyleBins.from_styles(per_sample, sources), 0.4)
print(json.dumps([result.indices.tolist(), result.per_capability]))
"""


def test_same_result_under_any_hash_seed():
    outputs = set()
    for seed in ("0", "1", "98765"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", _DETERMINISM_SCRIPT, str(ROOT)],
            env=env, capture_output=True, text=True, check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    indices, counts = json.loads(outputs.pop())
    assert len(indices) == 160 and sum(counts.values()) == 160


# --- resolve_budget ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "pool", "expected"),
    [
        (0.3, 10, 3),
        (0.29, 100, 29),  # 100 * 0.29 == 28.999999999999996 in floats
        (1 / 3, 3, 1),
        (0.5, 3, 1),
        (1.0, 7, 7),
        (0.01, 10, 0),
        (0.3, 0, 0),
        (5, 3, 5),
        (np.int64(4), 10, 4),
        (np.float32(0.5), 10, 5),
    ],
)
def test_resolve_budget(budget, pool, expected):
    assert resolve_budget(budget, pool) == expected


@pytest.mark.parametrize(
    "budget", [True, False, 0, -1, 0.0, -0.1, 1.5, 2.0, NAN, math.inf, "0.3", None]
)
def test_resolve_budget_rejects(budget):
    with pytest.raises(ValueError):
        resolve_budget(budget, 10)


def test_resolve_budget_rejects_bad_pool():
    with pytest.raises(ValueError):
        resolve_budget(0.5, -1)


# --- StyleBins and validation -----------------------------------------------------------------


def test_style_bins_from_styles():
    bins = StyleBins.from_styles([["yes/no", "comparison", "yes/no"], []], ["coco", "ocr"])
    assert bins.labels == ("comparison+coco", "unknown+ocr", "yes/no+coco")
    assert bins.offsets.tolist() == [0, 2, 3]
    assert bins.ids.tolist() == [0, 2, 1]
    assert bins.offsets.dtype == np.int64 and bins.ids.dtype == np.int32
    assert len(bins) == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: StyleBins.from_lists([["a"], []]), "at least one bin"),
        (lambda: StyleBins.from_styles([["a"]], ["x", "y"]), "1 samples but 2 sources"),
        (lambda: StyleBins(("a", "a"), np.array([0, 1]), np.array([0])), "unique"),
        (lambda: StyleBins(("a", "b"), np.array([0, 2]), np.array([1, 1])), "twice"),
        (lambda: StyleBins(("a",), np.array([0, 1]), np.array([3])), r"\[0, 1\)"),
        (lambda: StyleBins(("a",), np.array([0, 2]), np.array([0])), "end at len"),
    ],
)
def test_style_bins_validation(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_style_bins_rejects_string_per_sample():
    with pytest.raises(TypeError):
        StyleBins.from_lists(["yes/no+coco"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": np.zeros(3)}, "2-D"),
        ({"capabilities": ["p"]}, "2 columns but 1 capabilities"),
        ({"capabilities": ["p", "p"]}, "unique"),
        ({"bins": one_style("u+s", "u+s")}, "cover 2 samples but scores has 3 rows"),
        ({"tiebreak": np.zeros((3, 1))}, "tiebreak has shape"),
        ({"threshold": NAN}, "NaN"),
        ({"budget": 1.5}, r"\(0, 1\]"),
        ({"scores": np.zeros((3, 2), dtype=bool)}, "real numbers"),
    ],
)
def test_select_validation(kwargs, message):
    args = {
        "scores": np.ones((3, 2)),
        "capabilities": ["p", "q"],
        "bins": one_style("u+s", "u+s", "u+s"),
        "budget": 2,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        select(**args)


def test_empty_pool_and_zero_budget():
    empty = select(np.zeros((0, 2)), ["p", "q"], StyleBins.from_lists([]), 0.5)
    assert empty.indices.tolist() == [] and empty.shortfall == 0 and empty.rounds == 0
    short = select(np.zeros((0, 1)), ["p"], StyleBins.from_lists([]), 3)
    assert short.shortfall == 3
    assert short.shortfall_reason == (
        "only 0 of 3 requested samples had a score above the threshold 0 for the 1 capability; "
        "all capabilities ran out"
    )


def test_no_capabilities():
    result = select(np.zeros((3, 0)), [], one_style("u+s", "u+s", "u+s"), 2)
    assert result.indices.tolist() == [] and result.per_capability == {}
    assert result.shortfall_reason == (
        "no capabilities were given, so none of the 2 requested samples could be selected"
    )


def test_bin_ids_need_not_follow_label_order():
    # the golden smallest-bin case with bin ids assigned in reverse label order: same picks
    scores = np.array([[5.0], [5.0], [5.0], [1.0], [2.0], [3.0], [1.0]])
    sorted_bins = one_style("b+s", "b+s", "b+s", "a+s", "a+s", "c+s", "c+s")
    flip = len(sorted_bins.labels) - 1
    bins = StyleBins(sorted_bins.labels[::-1], sorted_bins.offsets, flip - sorted_bins.ids)
    picks = {k: select(scores, ["p"], bins, k).indices.tolist() for k in (1, 2, 3)}
    assert picks == {1: [4], 2: [4, 5], 3: [0, 4, 5]}


def test_wide_memberships_use_csr_path():
    # more bins per sample than the padded table holds: same answer as the reference
    labels = [[f"s{j}+x" for j in range(i % 20 + 1)] for i in range(30)]
    scores = [[float(i % 6), float((i * 7) % 5)] for i in range(30)]
    result = select(np.array(scores), ["p", "q"], StyleBins.from_lists(labels), 0.5)
    expected = reference_select(scores, ["p", "q"], labels, 15, 0.0)
    assert result.indices.tolist() == expected[0]
    assert result.per_capability == expected[1]
