"""Score store: fingerprints, atomic shards, reading back in any order."""

import json

import numpy as np
import pytest

from mmssr_plugin.scoring.digits import summarize_digits
from mmssr_plugin.scoring.store import ScoreStore, ShardResult, score_fingerprint
from mmssr_plugin.core.taxonomy import resolve_capabilities

CAPS = resolve_capabilities("ocr,spatial")


def _store(tmp_path, model="m1", keywords=None):
    caps = resolve_capabilities("ocr,spatial", keywords)
    return ScoreStore(tmp_path, score_fingerprint({"model": model}, caps, 0.5)).open()


def _result(uids, seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(6), size=(len(uids), 2)).astype(np.float32)
    return ShardResult(
        uids=list(uids),
        probs=probs,
        styles=[("yes/no",), ()] * (len(uids) // 2) + [("comparison", "yes/no")] * (len(uids) % 2),
        style_raw=["yes/no"] * len(uids),
        style_unmatched=[0] * len(uids),
        errors=[None] * len(uids),
    )


def test_fingerprint_changes_with_scorer_and_keywords(tmp_path):
    base = _store(tmp_path)
    assert _store(tmp_path).path == base.path
    assert _store(tmp_path, model="m2").path != base.path
    assert _store(tmp_path, keywords={"ocr": "reading text"}).path != base.path
    saved = json.loads((base.path / "fingerprint.json").read_text())
    assert saved["capabilities"] == [["ocr", "optical character recognition"],
                                     ["spatial", "object spatial understanding"]]


def test_plan_is_stable_and_shares_prefix_shards():
    uids = [f"d:{i}:h" for i in range(10)]
    plan = ScoreStore.plan(uids, 4)
    assert [(s.start, s.stop) for s in plan] == [(0, 4), (4, 8), (8, 10)]
    grown = ScoreStore.plan(uids + ["d:10:h"], 4)
    assert [s.id for s in grown[:2]] == [s.id for s in plan[:2]]
    assert grown[2].id != plan[2].id
    with pytest.raises(ValueError, match="shard_size"):
        ScoreStore.plan(uids, 0)


def test_write_and_read_back_in_requested_order(tmp_path):
    store = _store(tmp_path)
    first, second = _result(["a", "b", "c"], 0), _result(["d", "e"], 1)
    store.write_shard("s1", first)
    store.write_shard("s2", second)
    assert store.done() == {"s1", "s2"}
    assert not list(store.path.glob(".*tmp"))
    table = store.read(["e", "a", "zzz"])
    np.testing.assert_array_equal(table.probs[0], second.probs[1])
    np.testing.assert_array_equal(table.probs[1], first.probs[0])
    assert np.isnan(table.probs[2]).all()
    assert table.errors == [None, None, "not scored"]
    assert table.styles[1] == ("yes/no",)
    expected = summarize_digits(first.probs[:1])
    np.testing.assert_array_equal(table.digits.argmax[1], expected.argmax[0])
    assert table.scored.tolist() == [True, True, False]


def test_foreign_fingerprint_file_is_refused(tmp_path):
    store = _store(tmp_path)
    (store.path / "fingerprint.json").write_text(json.dumps({"something": "else"}))
    with pytest.raises(RuntimeError, match="holds another fingerprint"):
        _store(tmp_path)


def test_digit_summary_marks_low_mass_missing():
    probs = np.array([[[0.0, 0.1, 0.1, 0.2, 0.5, 0.1]], [[0.05, 0.05, 0.0, 0.0, 0.0, 0.1]]])
    digits = summarize_digits(probs, min_mass=0.5)
    assert digits.argmax.tolist() == [[4], [-1]]
    assert digits.expected[0, 0] == pytest.approx(3.4)
    assert np.isnan(digits.expected[1, 0])
    assert digits.mass[1, 0] == pytest.approx(0.2)


def test_a_scored_row_wins_over_a_failed_one_and_rewrites_replace_rows(tmp_path):
    store = _store(tmp_path)
    failed = _result(["a", "b"], 2)
    failed = ShardResult(failed.uids, np.full_like(failed.probs, np.nan), failed.styles,
                         failed.style_raw, failed.style_unmatched,
                         ["scoring failed: OSError: truncated", None], ["cause-1", None])
    scored = _result(["a"], 3)
    store.write_shard("z-failed", failed)  # sorts after the scored shard
    store.write_shard("a-scored", scored)
    table = store.read(["a", "b"])
    assert table.errors == [None, None]
    np.testing.assert_array_equal(table.probs[0], scored.probs[0])
    only_failed = store.read(["a", "b"], shard_ids=["z-failed"])
    assert only_failed.errors[0].startswith("scoring failed") and only_failed.causes == ["cause-1", None]

    store.rewrite_rows("z-failed", scored)
    rewritten = store.read_shard("z-failed")
    assert rewritten.uids == ["a", "b"] and rewritten.errors == [None, None]
    assert rewritten.causes == [None, None]
    np.testing.assert_array_equal(rewritten.probs[0], scored.probs[0])
    np.testing.assert_array_equal(rewritten.probs[1], failed.probs[1])
