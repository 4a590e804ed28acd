"""mmssr-cli eval-scorer with the fake engine: held-out readers, bad input, byte-stable page and
JSON, and the records the selection stage warns and links with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_curate import DEMO, mmssr

from mmssr_plugin.data.load import load_samples
from mmssr_plugin.engines import engine_identity
from mmssr_plugin.evaluation.records import record_path
from mmssr_plugin.llamafactory.stage import apply_data_selection
from mmssr_plugin.scoring.config import ScorerConfig

FAKE = "name=fake,backend=fake"


def write_labels(path: Path, dataset_dir: Path, count: int = 12) -> list[dict]:
    """Hand-written labels (no keywords: built-in ids) for the first ``count`` demo samples."""
    labels = []
    for sample in load_samples(dataset_dir, DEMO)[:count]:
        digest = int(hashlib.sha256(sample.uid.encode()).hexdigest(), 16)
        labels.append({"uid": sample.uid, "dataset": DEMO, "row": sample.row,
                       "scores": {"spatial": digest % 6, "ocr": digest // 6 % 6},
                       "styles": ["yes/no"] if digest % 2 else ["multi-choice", "comparison"]})
    path.write_text("".join(json.dumps(label) + "\n" for label in labels))
    return labels


def evaluate(labels: Path, data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return mmssr("eval-scorer", "--labels", labels, "--dataset-dir", data, "--dataset", DEMO,
                 "--scorer", FAKE, "--output-dir", out, *extra)


def test_labels_side_by_side_byte_stable(tmp_path, demo_data):
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, demo_data)
    status, out, err = evaluate(labels, demo_data, tmp_path / "a", "--scorer", "name=twin,backend=fake")
    assert status == 0, err
    assert "held-out: 12 samples (labels); capabilities spatial, ocr; min digit mass 0.5" in out
    header = next(line for line in out.splitlines() if line.startswith("capability"))
    assert "fake: agreement" in header and "twin: agreement" in header and "twin: no digit" in header
    overall = next(line for line in out.splitlines() if line.startswith("overall "))
    assert overall.count("(n=24)") == 6 and overall.count("(0/24)") == 2
    assert "fake: precision" in out and "twin: recall" in out
    document = json.loads((tmp_path / "a" / "evaluation.json").read_text())
    assert [s["name"] for s in document["scorers"]] == ["fake", "twin"]
    assert document["held_out"]["samples"] == 12 and document["held_out"]["kind"] == "labels"
    spatial = document["scorers"][0]["capabilities"]["spatial"]
    assert spatial["samples"] == 12 and spatial["answered"] + spatial["non_digit"] == 12
    assert sum(map(sum, spatial["confusion"])) == 12
    # the same inputs give the same bytes
    assert evaluate(labels, demo_data, tmp_path / "b", "--scorer", "name=twin,backend=fake")[0] == 0
    for name in ("evaluation.json", "evaluation.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    html = (tmp_path / "a" / "evaluation.html").read_text()
    assert html.count("<caption>fake</caption>") == 3  # spatial, ocr, overall
    assert "data:image/png;base64," in html and "http" not in html


def test_capability_subset_and_records(tmp_path, demo_data):
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, demo_data)
    status, out, err = evaluate(labels, demo_data, tmp_path / "out", "--capabilities", "ocr")
    assert status == 0, err
    document = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert list(document["scorers"][0]["capabilities"]) == ["ocr"]
    # the record lands in the stage's default cache of the pool, keyed by the scorer's identity
    record = json.loads(record_path(demo_data / ".mmssr_cache",
                                    engine_identity(ScorerConfig(backend="fake"))).read_text())
    assert record["page"] == str((tmp_path / "out" / "evaluation.html").resolve())
    assert record["overall"]["samples"] == 12 and record["min_digit_mass"] == 0.5


@pytest.mark.parametrize("case, message", [
    ("missing file", "label file {tmp}/nope.jsonl does not exist"),
    ("empty file", "holds no label"),
    ("unknown capability", "capabilities ['counting'] are not scored in the labels; labelled: spatial, ocr"),
    ("no pool", "--labels needs --dataset-dir and --dataset"),
    ("bad scorer", "unknown scorer key 'modle'"),
    ("same names", "two scorers are named fake"),
    ("hf without model", "the hf backend needs model_name_or_path"),
    ("no val split", "dataset_info.json not found"),
])
def test_bad_input_is_one_line(tmp_path, demo_data, case, message):
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, demo_data)
    (tmp_path / "empty.jsonl").write_text("")
    out = tmp_path / "out"
    argv = {
        "missing file": ["--labels", tmp_path / "nope.jsonl", "--dataset-dir", demo_data, "--dataset", DEMO],
        "empty file": ["--labels", tmp_path / "empty.jsonl", "--dataset-dir", demo_data, "--dataset", DEMO],
        "unknown capability": ["--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO,
                               "--capabilities", "counting"],
        "no pool": ["--labels", labels],
        "bad scorer": ["--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO, "--scorer", "modle=x"],
        "same names": ["--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO, "--scorer", FAKE],
        "hf without model": ["--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO,
                             "--scorer", "name=base"],
        "no val split": ["--val-split", tmp_path],
    }[case]
    status, stdout, err = mmssr("eval-scorer", *argv, "--scorer", FAKE, "--output-dir", out)
    assert status == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmssr-cli: error: "), err
    assert message.format(tmp=tmp_path) in lines[0]
    assert not out.exists()


def test_val_split_holds_out_exactly_the_val_samples(tmp_path, demo_data):
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, demo_data, count=20)
    data = tmp_path / "scorer_data"
    status, _, err = mmssr("build-scorer-data", "--labels", labels, "--dataset-dir", demo_data,
                           "--dataset", DEMO, "--output-dir", data, "--val-ratio", "0.25")
    assert status == 0, err
    val = json.loads((data / "mmssr_scorer_train_val.json").read_text())
    status, out, err = mmssr("eval-scorer", "--val-split", data, "--scorer", FAKE, "--output-dir", tmp_path / "out")
    assert status == 0, err
    held_out = json.loads((tmp_path / "out" / "evaluation.json").read_text())["held_out"]
    assert held_out["kind"] == "val split" and held_out["samples"] == 5 == len(val) // 3
    assert held_out["val_records_unmatched"] == 0 and held_out["labelled_samples"] == 20
    assert f"held-out: 5 samples (val split: {data.resolve() / 'mmssr_scorer_train_val.json'})" in out
    # the scorer data built without a validation split cannot be evaluated on one
    mmssr("build-scorer-data", "--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO,
          "--output-dir", data, "--val-ratio", "0")
    status, _, err = mmssr("eval-scorer", "--val-split", data, "--scorer", FAKE, "--output-dir", tmp_path / "o2")
    assert status == 2 and "no validation split mmssr_scorer_train_val" in err


def _select(demo_data: Path, min_digit_mass: float = 0.5) -> tuple[list[str], dict]:
    lines: list[str] = []
    block = {"method": "mmssr", "backend": "fake", "budget": 0.25, "capabilities": ["spatial", "ocr"],
             "min_digit_mass": min_digit_mass}
    apply_data_selection({"dataset": DEMO, "dataset_dir": str(demo_data), "data_selection": block},
                         log=lines.append)
    path = next(line.split(": ", 1)[1] for line in lines if line.startswith("[mmssr] selection manifest: "))
    return lines, json.loads(Path(path).read_text())


def test_stage_warns_and_report_links(tmp_path, demo_data):
    labels = tmp_path / "labels.jsonl"
    write_labels(labels, demo_data)
    lines, manifest = _select(demo_data, 0.3)
    assert not [line for line in lines if "warning" in line] and manifest["scorer_evaluation"] is None

    # The fake engine's digit mass lies in [0.6, 1): against 0.9 most answers are no digit.
    status, _, err = evaluate(labels, demo_data, tmp_path / "eval", "--min-digit-mass", "0.9")
    assert status == 0, err
    page = (tmp_path / "eval" / "evaluation.html").resolve()
    lines, manifest = _select(demo_data, 0.5)
    warnings = [line for line in lines if "warning" in line]
    assert len(warnings) == 1 and lines.index(warnings[0]) < next(
        i for i, line in enumerate(lines) if line.startswith("[mmssr] scores:"))
    assert "no digit answer (digit mass below 0.9)" in warnings[0] and str(page) in warnings[0]
    assert manifest["scorer_evaluation"]["page"] == str(page)
    report = Path(manifest["report"]).read_text()
    assert f'href="{page.as_uri()}"' in report
    report_json = json.loads((Path(manifest["report"]).parent / "report.json").read_text())
    assert report_json["scorer_evaluation"]["overall"]["samples"] == 24

    # A later evaluation that finds digit answers replaces the record: no more warning.
    assert evaluate(labels, demo_data, tmp_path / "eval", "--min-digit-mass", "0.5")[0] == 0
    lines, _ = _select(demo_data, 0.4)
    assert not [line for line in lines if "warning" in line]
