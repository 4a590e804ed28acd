"""``mmssr-cli select`` writes report.html + report.json next to the subset (authors' files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli_select import POOL, SCORES, select_args, selected_idx, write_jsonl

from mmssr_plugin.formats.authors.errors import AuthorsFormatError
from mmssr_plugin.formats.authors.pool import read_pool
from mmssr_plugin.formats.authors.records import read_records
from mmssr_plugin.cli import main


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """The pool and score files of ``test_cli_select``, the pool in a folder of its own."""
    folder = tmp_path / "data"
    folder.mkdir()
    pool = folder / "pool.json"
    pool.write_text(json.dumps(POOL, indent=1, ensure_ascii=False), encoding="utf-8")
    scores = tmp_path / "scores"
    scores.mkdir()
    for name, rows in SCORES.items():
        write_jsonl(scores / f"{name}.jsonl", rows)
    return {"pool": pool, "scores": scores, "output": tmp_path / "out.json"}


def examples(report: dict, cap: str, end: str) -> list[tuple[str, int, bool]]:
    return [(e["uid"], e["score"], e["selected"]) for e in report["examples"][cap][end]]


def test_golden_report(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(select_args(files)) == 0
    folder = files["output"].parent / "out_report"
    lines = capsys.readouterr().out.splitlines()
    assert f"report: {folder / 'report.html'}" in lines
    assert re.fullmatch(r"wall time: .*, report \d+\.\d s\)", lines[-1])
    assert selected_idx(files["output"]) == [11, 13, 14, 15]
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))

    assert report["sizes"] == {"loaded": 6, "pool": 6, "excluded": 0, "budget": 4, "subset": 4,
                               "shortfall": 0, "shortfall_reason": None, "exhausted": []}
    assert report["excluded_by_reason"] == {}
    assert report["config"] == {
        "method": "mmssr", "budget": 4, "capabilities": ["spatial", "ocr"], "threshold": 0.0,
        "ranking": "argmax", "keywords": {}, "pool": str(files["pool"]), "scores": str(files["scores"]),
    }
    spatial, ocr = report["capabilities"]
    # spatial: 10->5, 11->3, 12->4, 13->0, 14->2, 15 "three" (missing); picked 11, 13, 14, 15.
    assert (spatial["id"], spatial["picked"]) == ("spatial", 2)
    assert spatial["pool"] == [1, 0, 1, 1, 1, 1, 1]
    assert spatial["subset"] == [1, 0, 1, 1, 0, 0, 1]
    # ocr: 10->1, 11->5, 12->" 2\n" = 2, 13->4, 14 no line (missing), 15->5.
    assert (ocr["id"], ocr["picked"]) == ("ocr", 2)
    assert ocr["pool"] == [0, 1, 1, 0, 1, 2, 1]
    assert ocr["subset"] == [0, 0, 0, 0, 1, 2, 1]
    assert ocr["mean_expected_pool"] is None and ocr["mean_expected_subset"] is None
    assert report["scoring"] == {
        "scored": 6, "failed": 0, "failures_by_reason": {}, "non_digit": {"spatial": 1, "ocr": 0},
        "style_unmatched_pieces": 1, "style_unparseable": 1, "expected_available": False,
        "score_files": [
            {"file": "spatial.jsonl", "lines": 6, "unparseable": 1, "missing": 0, "unknown": 0},
            {"file": "ocr.jsonl", "lines": 6, "unparseable": 0, "missing": 1, "unknown": 1},
            {"file": "style.jsonl", "lines": 6, "unparseable": 1, "missing": 0, "unknown": 0},
        ],
    }
    assert [(r["source"], r["pool"], r["subset"]) for r in report["sources"]["rows"]] == [
        ("chartqa", 3, 2), ("coco", 3, 2)]
    bins = report["style_bins"]
    assert (bins["total"], bins["covered"]) == (6, 5)
    assert [(r["label"], r["pool"], r["subset"]) for r in bins["rows"]] == [
        ("yes/no+coco", 2, 1), ("comparison+chartqa", 1, 1), ("multi-choice+chartqa", 1, 1),
        ("multi-choice+coco", 1, 1), ("unknown+coco", 1, 1), ("yes/no+chartqa", 1, 0)]
    # Ranked by digit, ties in pool order; no expected score.
    assert examples(report, "ocr", "top") == [
        ("idx 11", 5, True), ("idx 15", 5, True), ("idx 13", 4, True), ("idx 12", 2, False),
        ("idx 10", 1, False)]
    assert examples(report, "spatial", "bottom") == [
        ("idx 13", 0, True), ("idx 14", 2, True), ("idx 11", 3, True), ("idx 12", 4, False),
        ("idx 10", 5, False)]
    hmm = report["examples"]["spatial"]["bottom"][1]
    assert (hmm["dataset"], hmm["row"], hmm["source"], hmm["turns"]) == ("pool.json", 4, "coco", ["Hmm"])
    assert hmm["image"] == str(files["pool"].parent / "coco" / "14.jpg") and hmm["expected"] is None
    assert report["examples"]["ocr"]["top"][3]["turns"] == ["Título?"]

    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "6 samples have a usable score for at least one capability, 0 have none. Style answers: " \
           "1 lines without a recognised style, 1 unmatched pieces." in html
    assert "<h3>Score files</h3>" in html and "<td>ocr.jsonl</td>" in html
    assert "Mean scores are n/a" in html and "expected n/a" in html
    assert "image unavailable" in html  # coco/14.jpg does not exist: shown as missing


def test_report_is_byte_stable(files: dict[str, Path], tmp_path: Path) -> None:
    assert main(select_args(files, "--report-dir", str(tmp_path / "a"))) == 0
    assert main(select_args(files, "--report-dir", str(tmp_path / "b"))) == 0
    for name in ("report.html", "report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_no_report(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(select_args(files, "--no-report")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("report:") for line in lines)
    assert "report" not in lines[-1]  # wall time without a report step
    assert selected_idx(files["output"]) == [11, 13, 14, 15]
    assert sorted(p.name for p in files["output"].parent.iterdir()) == ["data", "out.json", "scores"]


def test_report_dir_and_media_dir_thumbnails(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    media = tmp_path / "media"
    (media / "coco").mkdir(parents=True)
    Image.new("RGB", (64, 40), (200, 30, 30)).save(media / "coco" / "14.jpg")
    target = tmp_path / "reports" / "run1"
    assert main(select_args(files, "--report-dir", str(target), "--media-dir", str(media))) == 0
    assert f"report: {target / 'report.html'}" in capsys.readouterr().out
    assert not (tmp_path / "out_report").exists()
    html = (target / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/jpeg;base64,') == 2  # idx 14: spatial bottom and ocr bottom
    assert "image unavailable" not in html


def test_report_dir_that_is_a_file_fails_before_reading(files: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(select_args(files, "--report-dir", str(blocker))) == 2
    assert capsys.readouterr().err == f"mmssr-cli: error: report folder {blocker} is not a directory\n"
    assert not files["output"].exists()


def test_examples_keep_human_and_gpt_turns(tmp_path: Path) -> None:
    records = [
        {"idx": 1, "image": ["a/1.png", "/abs/2.png"], "conversations": [
            {"from": "system", "value": "Be brief."}, {"from": "human", "value": "<image>\nWhat?"},
            {"from": "gpt", "value": "A cat."}]},
        {"idx": 2, "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
    ]
    files = {"pool": tmp_path / "pool.json", "scores": tmp_path / "scores", "output": tmp_path / "o.json"}
    files["pool"].write_text(json.dumps(records))
    files["scores"].mkdir()
    for name, rows in {"spatial": [(1, "5"), (2, "1")], "ocr": [(1, "2"), (2, "4")],
                       "style": [(1, "yes/no"), (2, "yes/no")]}.items():
        write_jsonl(files["scores"] / f"{name}.jsonl", rows)
    assert main(select_args(files, budget="1.0")) == 0
    report = json.loads((tmp_path / "o_report" / "report.json").read_text())
    first = report["examples"]["spatial"]["top"][0]
    assert first["turns"] == ["<image>\nWhat?", "A cat."]
    assert (first["image"], first["n_images"]) == (str(tmp_path / "a" / "1.png"), 2)
    assert report["examples"]["spatial"]["top"][1]["image"] is None


def test_read_records_by_span(files: dict[str, Path]) -> None:
    pool = read_pool(files["pool"], chunk_chars=7)
    got = read_records(pool, np.array([2, 5]), chunk_chars=7)
    assert got == [POOL[2], POOL[5]]
    with pytest.raises(AuthorsFormatError, match="ascending"):
        read_records(pool, np.array([5, 2]))
    files["pool"].write_text(json.dumps(POOL[::-1], indent=1, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(AuthorsFormatError, match="changed since it was read"):
        read_records(pool, np.array([0]))
