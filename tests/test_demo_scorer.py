"""The quickstart's demo scorer: labels read from the bundled score files, a tiny scorer trained on
them through build-scorer-data and llamafactory-cli train, and the quickstart selection it drives."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO

from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, STYLES
from mmssr_plugin.curation.labels import read_labels
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.formats.authors.pool import read_pool
from mmssr_plugin.formats.authors.pool_scores import read_scores
from mmssr_plugin.testing.demo_labels import (
    labels_from_scores,
    write_labels_from_scores,
)

DATA_INFO = REPO / "data_info"
POOL = DATA_INFO / "mmssr_demo" / "pool.json"
SCORES = DATA_INFO / "mmssr_demo" / "scores"
QUICKSTART = REPO / "recipes" / "quickstart" / "tiny_qwen2vl_lora_mmssr.yaml"
SCORER_RECIPE = REPO / "recipes" / "quickstart" / "tiny_qwen2vl_demo_scorer.yaml"
CAPS = list(DEFAULT_CAPABILITIES)


def test_labels_carry_every_parseable_score_and_style(tmp_path):
    samples = load_samples(DATA_INFO, "mmssr_demo")
    authors = read_scores(SCORES, read_pool(POOL), CAPS).scores
    labels = labels_from_scores(DATA_INFO, "mmssr_demo", POOL, SCORES)
    assert [label.uid for label in labels] == [s.uid for s in samples]
    for row, label in enumerate(labels):
        expected = {cap: int(value) for cap, value in zip(CAPS, authors[row]) if not np.isnan(value)}
        assert label.scores == expected and set(label.capabilities) == set(expected)
        assert label.styles and set(label.styles) <= set(STYLES)
    assert 500 < sum(len(label.scores) for label in labels) < 40 * 14  # non-digit answers left out
    raw_styles = [json.loads(line)["pred_response"] for line in (SCORES / "style.jsonl").read_text().splitlines()]
    assert [", ".join(label.styles) for label in labels] == raw_styles

    written = tmp_path / "labels.jsonl"
    assert write_labels_from_scores(written, DATA_INFO, "mmssr_demo", POOL, SCORES) == 40
    assert read_labels(written) == labels


def test_labels_refuse_a_pool_file_that_is_not_the_dataset(tmp_path):
    short = tmp_path / "pool.json"
    short.write_text(json.dumps(json.loads(POOL.read_text())[:10]))
    with pytest.raises(ValueError, match="has 40 rows but the pool file .* has 10"):
        labels_from_scores(DATA_INFO, "mmssr_demo", short, SCORES)


def test_demo_scorer_recipe_uses_only_llamafactory_arguments():
    from test_scorer_loop import _lf_argument_names

    config = yaml.safe_load(SCORER_RECIPE.read_text())
    assert not set(config) - _lf_argument_names()
    assert config["finetuning_type"] == "full" and config["use_cpu"] and config["seed"] == 42
    quickstart = yaml.safe_load(QUICKSTART.read_text())["data_selection"]
    assert "ranking" not in quickstart  # the default ranking: argmax, ties broken by the expected score
    assert quickstart["model_name_or_path"] == "outputs/tiny-qwen2vl-demo-scorer"


@pytest.fixture(scope="session")
def demo_scorer() -> Path:
    """The demo scorer, built once (cached on disk like the tiny model)."""
    from mmssr_plugin.testing.demo_scorer import build_demo_scorer

    return build_demo_scorer()


@pytest.fixture(scope="module")
def quickstart_selection(demo_scorer, tmp_path_factory):
    """The quickstart recipe's data_selection block run on a copy of the demo data with the demo
    scorer: (manifest, samples, score table)."""
    from mmssr_plugin.llamafactory.stage import apply_data_selection
    from mmssr_plugin.scoring.store import ScoreStore

    data = tmp_path_factory.mktemp("quickstart") / "data"
    shutil.copytree(DATA_INFO, data, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    config = yaml.safe_load(QUICKSTART.read_text())
    block = {**config["data_selection"], "model_name_or_path": str(demo_scorer), "report": False}
    apply_data_selection({"dataset": config["dataset"], "dataset_dir": str(data), "data_selection": block},
                         log=lambda line: None)
    (manifest_path,) = (data / ".mmssr_cache" / "selections").glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    samples = load_samples(data, config["dataset"])
    store = Path(manifest["score_store"])
    table = ScoreStore(store.parent, json.loads((store / "fingerprint.json").read_text())).read(
        [s.uid for s in samples]
    )
    return manifest, samples, table


@pytest.mark.slow
def test_demo_scorer_reproduces_most_labels(quickstart_selection):
    _, _, table = quickstart_selection
    assert table.scored.all() and table.capabilities == CAPS
    labels = {label.uid: label for label in labels_from_scores(DATA_INFO, "mmssr_demo", POOL, SCORES)}
    pairs = [(row, column, labels[uid].scores[cap]) for row, uid in enumerate(table.uids)
             for column, cap in enumerate(CAPS) if cap in labels[uid].scores]
    agree = np.mean([table.digits.argmax[row, column] == label for row, column, label in pairs])
    assert agree >= 0.7, f"argmax agrees with the label on {agree:.1%} of {len(pairs)} pairs"  # measured 87%
    distinct = [len(set(table.digits.argmax[:, column].tolist())) for column in range(len(CAPS))]
    assert min(distinct) >= 2 and sum(d >= 3 for d in distinct) >= 10, distinct
    assert all(styles for styles in table.styles) and not table.style_unmatched.any()
    same_styles = np.mean([set(table.styles[row]) == set(labels[uid].styles) for row, uid in enumerate(table.uids)])
    assert same_styles >= 0.9


@pytest.mark.slow
def test_quickstart_selection_spans_bins_scores_and_capabilities(quickstart_selection):
    manifest, samples, table = quickstart_selection
    assert manifest["subset_size"] == manifest["budget"] == 12
    position = {uid: row for row, uid in enumerate(table.uids)}
    source = {s.uid: s.source for s in samples}
    picked = [position[uid] for uid in manifest["selected_uids"]]
    bins = {(style, source[table.uids[row]]) for row in picked for style in table.styles[row]}
    assert len(bins) >= 4, bins
    assert len(set(table.digits.argmax[picked].ravel().tolist())) >= 3
    # Each capability's best samples are its own: the top-scored sets differ across capabilities.
    tops = {frozenset(np.flatnonzero(column == column.max()).tolist()) for column in table.digits.argmax.T}
    assert len(tops) >= 5
    assert sum(count > 0 for count in manifest["per_capability"].values()) >= 10
