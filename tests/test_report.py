"""Selection report: figures in report.json, a self-contained report.html, byte-stable output."""

import argparse
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmssr_plugin.commands import CommandError
from mmssr_plugin.commands import report as report_command
from mmssr_plugin.selection.ranking import ranking_matrices
from mmssr_plugin.report import build_and_write_report
from mmssr_plugin.report.html import SECTIONS
from mmssr_plugin.data.failures import failure_record, sample_failures
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.validate import summarize_problems
from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.sampler import select
from mmssr_plugin.scoring.store import ScoreStore, ShardResult, score_fingerprint
from mmssr_plugin.core.taxonomy import resolve_capabilities

CAPS = ["ocr", "spatial"]
# Argmax digit per valid sample (rows 0..11 of the pool); None: no digit answer; "fail": error.
OCR = [5, 4, 3, 2, 1, 0, 5, 4, 3, 2, None, "fail"]
SPATIAL = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, None, "fail"]
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def write_pool(root: Path) -> Path:
    """A registered sharegpt dataset of 13 rows (12 valid, 1 with a missing image) + images."""
    data = root / "data"
    rows = []
    for i in range(12):
        source = "alpha" if i < 6 else "beta"
        image = f"{source}/img{i}.png"
        (data / source).mkdir(parents=True, exist_ok=True)
        mode = "RGBA" if i == 3 else "RGB"
        color = (20 * i, 255 - 20 * i, 120, 200)[: len(mode)]
        Image.new(mode, (160 + 10 * i, 100), color).save(data / image)
        question = HOSTILE if i == 0 else f"What is shown in picture {i}?"
        rows.append({
            "conversations": [
                {"from": "human", "value": f"<image>\n{question}"},
                {"from": "gpt", "value": f"Answer {i}."},
            ],
            "images": [image],
        })
    rows.insert(5, {"conversations": [{"from": "human", "value": "<image>\nQ"},
                                      {"from": "gpt", "value": "A"}],
                    "images": ["alpha/missing.png"]})
    (data / "pool.json").write_text(json.dumps(rows))
    info = {"pool": {"file_name": "pool.json", "formatting": "sharegpt",
                     "columns": {"messages": "conversations", "images": "images"}}}
    (data / "dataset_info.json").write_text(json.dumps(info))
    return data


def score_pool(cache: Path, uids: list[str]) -> ScoreStore:
    """A score store with one-hot digit probabilities following OCR / SPATIAL."""
    store = ScoreStore(
        cache / "scores",
        score_fingerprint({"engine": "fake", "model": "m"}, resolve_capabilities(CAPS), 0.5),
    ).open()
    probs = np.zeros((len(uids), len(CAPS), 6), dtype=np.float32)
    errors = []
    for i, digits in enumerate(zip(OCR, SPATIAL)):
        errors.append("engine error: out of memory" if "fail" in digits else None)
        for c, digit in enumerate(digits):
            if isinstance(digit, int):
                probs[i, c, digit] = 0.9
                probs[i, c, (digit + 1) % 6] = 0.1
            elif digit == "fail":
                probs[i, c] = np.nan
    styles = [("yes/no",) if i % 2 == 0 else ("short description", "comparison")
              for i in range(len(uids))]
    styles[-1] = ()
    store.write_shard("only", ShardResult(
        uids=uids, probs=probs, styles=styles,
        style_raw=["yes/no, banana" if i == 2 else None for i in range(len(uids))],
        style_unmatched=[1 if i == 2 else 0 for i in range(len(uids))], errors=errors,
    ))
    return store


def make_selection(tmp_path: Path, budget: int = 4) -> tuple[dict, list, object, Path]:
    """The pool, its scores and a selection manifest as the training-time stage caches it."""
    data = write_pool(tmp_path)
    samples = load_samples(data, "pool", source_column="image_source")
    pool = [s for s in samples if s.ok]
    store = score_pool(tmp_path / "cache", [s.uid for s in pool])
    table = store.read([s.uid for s in pool])
    scores, tiebreak = ranking_matrices(table.digits, "argmax")
    bins = StyleBins.from_styles(table.styles, [s.source for s in pool])
    result = select(scores, CAPS, bins, budget, 0.0, tiebreak)
    manifest = {
        "key": "abc123def456",
        "config": {"method": "mmssr", "budget": budget, "capabilities": CAPS, "threshold": 0.0,
                   "ranking": "argmax", "source_column": "image_source"},
        "pool_size": len(pool),
        "excluded": summarize_problems(samples),
        "budget": result.budget,
        "subset_size": len(result.indices),
        "shortfall": result.shortfall,
        "shortfall_reason": result.shortfall_reason,
        "per_capability": result.per_capability,
        "exhausted": result.exhausted,
        "scorer_fingerprint": store.key,
        "score_store": str(store.path),
        "selected_uids": [pool[i].uid for i in result.indices],
        "picked_by": result.picked_by,
        "parts": [{"source": "pool", "name": "pool_sub", "path": str(tmp_path / "pool_sub.json"),
                   "rows": len(result.indices)}],
        "failures_file": str(write_failures(tmp_path / "failures.jsonl", samples, pool, table)),
        "summary_lines": [],
    }
    return manifest, samples, table, data


def write_failures(path: Path, samples: list, pool: list, table) -> Path:
    """The failures.jsonl of the selection, as the stage writes it: validation, then scoring."""
    records = [r for s in samples for r in sample_failures(s)]
    records += [failure_record(pool[i], e) for i, e in enumerate(table.errors) if e is not None]
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    return path


def make_report(tmp_path: Path, out: str = "report") -> tuple[Path, Path]:
    """Build the synthetic selection and write its report (shared with the browser test)."""
    manifest, samples, table, _ = make_selection(tmp_path)
    return build_and_write_report(tmp_path / out, manifest, samples, table)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.add(value)
            if name in ("src", "href", "srcset", "poster", "data", "action"):
                self.refs.append((tag, name, value or ""))


@pytest.fixture()
def built(tmp_path):
    manifest, samples, table, data = make_selection(tmp_path)
    html_path, json_path = build_and_write_report(tmp_path / "r1", manifest, samples, table)
    return manifest, samples, table, data, html_path, json_path


def test_report_json_figures(built):
    manifest, *_, json_path = built
    report = json.loads(json_path.read_text())
    assert report["sizes"] == {"loaded": 13, "pool": 12, "excluded": 1, "budget": 4, "subset": 4,
                               "shortfall": 0, "shortfall_reason": None, "exhausted": []}
    assert report["excluded_by_reason"] == {"missing image": 1}
    assert report["scoring"] == {
        "scored": 11, "failed": 1, "failures_by_reason": {"engine error": 1},
        "non_digit": {"ocr": 1, "spatial": 1}, "style_unmatched": 1,
    }
    ocr, spatial = report["capabilities"]
    assert [ocr["id"], spatial["id"]] == CAPS
    assert ocr["labels"] == ["0", "1", "2", "3", "4", "5", "missing"]
    assert ocr["pool"] == [1, 1, 2, 2, 2, 2, 2]
    assert spatial["pool"] == [2, 2, 2, 2, 1, 1, 2]
    # Round 1, 2 per capability, smallest bins first: ocr takes rows 1 and 7 (both 4, in the
    # 2-member bins comparison+alpha / comparison+beta, before the 3-member yes/no+alpha of the
    # 5s); spatial takes row 9 (comparison+beta) and, with the debt of the used-up
    # short description+beta, row 8 (yes/no+beta).
    assert (ocr["picked"], spatial["picked"]) == (2, 2)
    assert ocr["subset"] == [0, 0, 1, 1, 2, 0, 0]
    assert spatial["subset"] == [0, 2, 1, 1, 0, 0, 0]
    assert (ocr["mean_expected_pool"], ocr["mean_expected_subset"]) == (2.88, 3.35)
    selected_rows = [int(uid.split(":")[1]) for uid in manifest["selected_uids"]]
    assert selected_rows == [1, 8, 9, 10]  # raw rows: the invalid raw row 5 shifts the rest
    bins = report["style_bins"]
    assert (bins["total"], bins["covered"], bins["rows_left_out"]) == (7, 5, 0)
    assert [(r["label"], r["pool"], r["subset"]) for r in bins["rows"]] == [
        ("comparison+alpha", 3, 1), ("short description+alpha", 3, 1), ("yes/no+alpha", 3, 0),
        ("yes/no+beta", 3, 1), ("comparison+beta", 2, 2), ("short description+beta", 2, 2),
        ("unknown+beta", 1, 0),
    ]
    assert bins["rows"][0]["style"] == "comparison" and bins["rows"][0]["source"] == "alpha"
    assert bins["matrix"] == {
        "styles": ["yes/no", "short description", "comparison", "unknown"],
        "sources": ["alpha", "beta"], "sources_left_out": 0,
        "pool": [[3, 3], [3, 2], [3, 2], [0, 1]],
        "subset": [[0, 1], [1, 2], [1, 2], [0, 0]],
    }
    assert [(r["source"], r["pool"], r["subset"]) for r in report["sources"]["rows"]] == [
        ("alpha", 6, 1), ("beta", 6, 3)]
    top = report["examples"]["ocr"]["top"]
    assert [(e["uid"].split(":")[1], e["score"], e["expected"], e["selected"]) for e in top] == [
        ("0", 5, 4.5, False), ("7", 5, 4.5, False), ("1", 4, 4.1, True), ("8", 4, 4.1, True),
        ("2", 3, 3.1, False)]
    assert top[0]["turns"] == [f"<image>\n{HOSTILE}", "Answer 0."]
    assert top[0]["image"].endswith("alpha/img0.png") and top[0]["n_images"] == 1
    bottom = report["examples"]["spatial"]["bottom"]
    assert [(e["uid"].split(":")[1], e["score"]) for e in bottom] == [
        ("0", 0), ("7", 0), ("1", 1), ("8", 1), ("2", 2)]
    assert report["scorer_fingerprint"]["engine"] == {"engine": "fake", "model": "m"}
    assert report["config"]["budget"] == 4 and report["key"] == "abc123def456"


def test_report_lists_selected_and_failed_samples(built):
    manifest, *_, html_path, json_path = built
    report = json.loads(json_path.read_text())
    assert report["subsets"] == [{"name": "pool_sub", "path": manifest["parts"][0]["path"], "rows": 4}]
    listing = report["selected_samples"]
    assert (listing["total"], listing["rows_left_out"]) == (4, 0)
    # As in test_report_json_figures: ocr picks pool rows 1 and 7 (its 4s), spatial 8 and 9.
    assert [r["uid"] for r in listing["rows"]] == manifest["selected_uids"]
    assert [(r["row"], r["capability"], r["score"]) for r in listing["rows"]] == [
        (1, "ocr", OCR[1]), (8, "ocr", OCR[7]), (9, "spatial", SPATIAL[8]), (10, "spatial", SPATIAL[9])]
    assert listing["rows"][0]["style_bins"] == ["comparison+alpha", "short description+alpha"]
    failures = report["failures"]
    assert (failures["file"], failures["total"]) == (manifest["failures_file"], 2)
    assert [(r["row"], r["image"].endswith("alpha/missing.png") if r["image"] else None,
             r["reason"].split(":")[0]) for r in failures["rows"]] == [
        (5, True, "missing image"), (12, False, "engine error")]
    text = html_path.read_text()
    assert "registered dataset <b>pool_sub</b>" in text
    assert "2 samples excluded by validation or failed at scoring" in text


def test_report_html_is_self_contained_and_escaped(built):
    *_, html_path, _ = built
    text = html_path.read_text()
    parser = _References()
    parser.feed(text)
    assert {sid for sid, _ in SECTIONS} <= parser.ids
    assert parser.refs, "no image at all"
    outside = [ref for ref in parser.refs if not ref[2].startswith(("data:", "#"))]
    # Only links to the selection's own files leave the page: the subset and the failures file.
    base = html_path.parent.parent
    assert outside == [("a", "href", (base / name).as_uri())
                       for name in ("pool_sub.json", "failures.jsonl")]
    imgs = [ref for ref in parser.refs if ref[0] == "img"]
    assert len(imgs) == 4 + 2 * 2 * 5  # 4 plots + top-5 and bottom-5 examples of 2 capabilities
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "url(" not in text and "@import" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quotes&quot;" in text


def test_two_builds_are_byte_identical(built, tmp_path):
    manifest, samples, table, _, html_path, json_path = built
    again_html, again_json = build_and_write_report(tmp_path / "r2", manifest, samples, table)
    assert again_json.read_bytes() == json_path.read_bytes()
    assert again_html.read_bytes() == html_path.read_bytes()


def test_random_method_report(tmp_path):
    data = write_pool(tmp_path)
    samples = load_samples(data, "pool")
    pool = [s for s in samples if s.ok]
    manifest = {"key": "r", "config": {"method": "random", "budget": 20, "seed": 1},
                "pool_size": 12, "budget": 20, "per_capability": {}, "score_store": None,
                "shortfall_reason": "the pool has only 12 valid samples",
                "selected_uids": [s.uid for s in pool], "parts": []}
    html_path, json_path = build_and_write_report(tmp_path / "r", manifest, samples)
    report = json.loads(json_path.read_text())
    assert report["sizes"]["shortfall"] == 8 and report["scoring"] is None
    assert report["capabilities"] == [] and report["style_bins"] is None
    assert report["sources"]["rows"][0]["subset"] == 6
    text = html_path.read_text()
    assert "Shortfall of 8 samples: the pool has only 12 valid samples" in text
    assert "random method" in text


def test_changed_pool_is_refused(built, tmp_path):
    manifest, samples, table, *_ = built
    with pytest.raises(ValueError, match="datasets changed"):
        build_and_write_report(tmp_path / "x", {**manifest, "pool_size": 99}, samples, table)


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    report_command.add_arguments(parser)
    return report_command.run(parser.parse_args(list(argv)))


def test_cli_rebuilds_the_report_from_a_manifest(built, tmp_path, capsys):
    manifest, _, _, data, html_path, _ = built
    path = tmp_path / "cache" / "selections" / "abc123def456.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest))
    assert _cli("--manifest", str(path), "--dataset-dir", str(data)) == 0
    out = path.parent / "abc123def456-report"
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    assert (out / "report.html").read_bytes() == html_path.read_bytes()

    with pytest.raises(CommandError, match=r"selection manifest .*nope.json not found"):
        _cli("--manifest", str(tmp_path / "nope.json"), "--dataset-dir", str(data))
    moved = {**manifest, "score_store": str(tmp_path / "gone" / "k")}
    path.write_text(json.dumps(moved))
    with pytest.raises(CommandError, match=r"score store .*gone/k not found"):
        _cli("--manifest", str(path), "--dataset-dir", str(data))


def test_cli_dispatch_gives_one_error_line(tmp_path, monkeypatch, capsys):
    from mmssr_plugin import cli

    if "report" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "report"))
    missing = tmp_path / "none.json"
    assert cli.main(["report", "--manifest", str(missing), "--dataset-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"mmssr-cli: error: selection manifest {missing} not found\n"


def test_import_is_light():
    code = ("import sys, mmssr_plugin.report, mmssr_plugin.commands.report; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
