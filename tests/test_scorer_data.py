"""mmssr-cli build-scorer-data: exact scorer prompts, merged labels, split, registry, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from test_curate import DEMO, DEMO_DIR, mmssr

from mmssr_plugin.data.registry import load_dataset_info, register_entries
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.curation.scorer_data import split_val
from mmssr_plugin.core.taxonomy import STYLES

QUERY = (
    "On a scale of 0 to 5, how do you rate the helpfulness of the VQA instance in training a "
    "Multimodal Large Language Model for {}?"
)
CONV_ROW1 = (
    "Question: <image>\nIs there a blue square in the picture? Answer: No.\n"
    "Question: he square yellow Answer: Yes."
)
STYLE_QUERY_TEXT = "Interaction style candidates: [" + ", ".join(STYLES) + "]\nStyles: "


@pytest.fixture(scope="module")
def demo():
    return {s.row: s for s in load_samples(DEMO_DIR, DEMO)}


def write_labels(path: Path, labels: list[dict]) -> Path:
    path.write_text("".join(json.dumps(label) + "\n" for label in labels))
    return path


def label(sample, scores: dict, styles=(), keywords: dict | None = None) -> dict:
    obj = {"uid": sample.uid, "dataset": sample.dataset, "row": sample.row, "scores": scores,
           "styles": list(styles), "teacher": "hand"}
    if keywords is not None:
        obj["capabilities"] = keywords
    return obj


def build(labels, out: Path, *extra) -> tuple[int, str, str]:
    return mmssr(
        "build-scorer-data", "--labels", *labels, "--dataset-dir", DEMO_DIR, "--dataset", DEMO,
        "--output-dir", out, *extra,
    )


def records(out: Path, name: str = "mmssr_scorer_train") -> list[dict]:
    return json.loads((out / f"{name}.json").read_text())


def test_golden_scorer_conversations(tmp_path, demo):
    labels = write_labels(tmp_path / "labels.jsonl", [
        label(demo[1], {"spatial": 3, "mycap": 5}, ["yes/no", "comparison"],
              {"spatial": "object spatial understanding", "mycap": "reading analog clocks"}),
    ])
    status, out, err = build([labels], tmp_path / "out", "--val-ratio", "0")
    assert status == 0, err
    image = str((DEMO_DIR / "mmssr_demo/images/chartqa/001.png").resolve())
    expected = [
        (CONV_ROW1 + "\n" + QUERY.format("object spatial understanding"), "3"),
        (CONV_ROW1 + "\n" + QUERY.format("reading analog clocks"), "5"),
        (CONV_ROW1 + "\n" + STYLE_QUERY_TEXT, "yes/no, comparison"),
    ]
    assert records(tmp_path / "out") == [
        {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
            "images": [image],
            "system": "You are a helpful assistant.",
        }
        for user, answer in expected
    ]
    assert 'capability_keywords: {"mycap": "reading analog clocks"}' in out
    assert "train: 1 samples, 3 conversations" in out and "val: 0 samples, 0 conversations -> not written" in out


def test_output_is_a_registered_llamafactory_dataset(tmp_path, demo):
    out = tmp_path / "out"
    out.mkdir()
    register_entries(out, {"keep_me": {"file_name": "other.json"}, "mmssr_scorer_train_val": {"file_name": "stale"}})
    labels = write_labels(tmp_path / "l.jsonl", [label(demo[r], {"ocr": r % 6}, ["multi-choice"]) for r in range(20)])
    assert build([labels], out, "--val-ratio", "0.25", "--seed", "3")[0] == 0
    registry = load_dataset_info(out)
    assert registry["keep_me"] == {"file_name": "other.json"}
    for name, split in (("mmssr_scorer_train", "train"), ("mmssr_scorer_train_val", "val")):
        entry = registry[name]
        assert entry["file_name"] == f"{name}.json" and entry["formatting"] == "sharegpt"
        assert entry["columns"] == {"messages": "messages", "images": "images", "system": "system"}
        assert entry["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                 "assistant_tag": "assistant"}
        assert entry["mmssr_scorer_data"]["split"] == split
        # read back the way LLaMA-Factory reads it: every row valid, one placeholder per image
        rows = load_samples(out, name, media_dir="/")
        assert rows and all(row.ok for row in rows)
        assert all(len(row.turns) == 2 and row.system == "You are a helpful assistant." for row in rows)
    train, val = records(out), records(out, "mmssr_scorer_train_val")
    assert (len(train), len(val)) == (30, 10)  # 15 + 5 samples, 2 conversations each

    def users(rows):
        return {r["messages"][0]["content"].rsplit("\n", 1)[0] for r in rows}

    assert not users(train) & users(val), "a sample's conversations are split across train and val"


def test_split_is_seeded_exact_and_never_empties_train():
    uids = [f"d:{i}:x" for i in range(30)]
    val = split_val(uids, 0.1, 1)
    assert len(val) == 3 and val == split_val(list(reversed(uids)), 0.1, 1) and val != split_val(uids, 0.1, 2)
    assert len(split_val(uids[:3], 0.01, 1)) == 1 and split_val(uids[:1], 0.5, 1) == set()
    assert len(split_val(uids[:2], 0.9, 1)) == 1 and split_val(uids, 0.0, 1) == set()


def test_label_files_merge_and_custom_capabilities_take_part(tmp_path, demo):
    builtin = write_labels(tmp_path / "a.jsonl", [label(demo[r], {"spatial": 1, "ocr": 2}, ["yes/no"]) for r in (0, 2)])
    custom = write_labels(tmp_path / "b.jsonl", [
        label(demo[r], {"mycap": 4}, ["comparison"] if r == 2 else [], {"mycap": "reading analog clocks"})
        for r in (0, 2, 3)
    ])
    status, out, err = build([builtin, custom], tmp_path / "out", "--val-ratio", "0")
    assert status == 0, err
    asked = [
        ("style" if r["messages"][0]["content"].endswith("Styles: ") else
         r["messages"][0]["content"].rsplit(" for ", 1)[1].rstrip("?"), r["messages"][1]["content"])
        for r in records(tmp_path / "out")
    ]
    full = [("object spatial understanding", "1"), ("optical character recognition", "2"),
            ("reading analog clocks", "4"), ("style", "yes/no")]
    assert asked == full + full + [("reading analog clocks", "4")]  # rows 0, 2, 3 in pool order
    assert "style conflicts: 1 label lines named other styles (first kept)" in out
    assert "mycap           reading analog clocks" in out


def test_conflicts_are_errors(tmp_path, demo):
    a = write_labels(tmp_path / "a.jsonl", [label(demo[0], {"mycap": 1}, keywords={"mycap": "clocks"})])
    b = write_labels(tmp_path / "b.jsonl", [label(demo[1], {"mycap": 1}, keywords={"mycap": "watches"})])
    status, _, err = build([a, b], tmp_path / "out")
    assert status == 2 and "capability 'mycap' has two keywords" in err and err.count("\n") == 1
    c = write_labels(tmp_path / "c.jsonl", [label(demo[0], {"ocr": 1}), label(demo[0], {"ocr": 2})])
    status, _, err = build([c], tmp_path / "out")
    assert status == 2 and "'ocr' is scored twice (1 and 2)" in err


def test_unmatched_and_unusable_samples_are_counted(tmp_path, demo):
    data = tmp_path / "data"
    shutil.copytree(DEMO_DIR, data)
    Path(data / demo[4].images[0].split("data_info/", 1)[1]).unlink()  # row 4 loses its image
    broken = Path(data / demo[5].images[0].split("data_info/", 1)[1])
    broken.write_bytes(b"not a png")  # row 5's image is unreadable
    stranger = {**label(demo[6], {"ocr": 1}), "uid": "mmssr_demo:6:000000000000"}  # the row changed
    labels = write_labels(tmp_path / "l.jsonl", [label(demo[r], {"ocr": 3}) for r in (3, 4, 5)] + [stranger])
    status, out, err = mmssr(
        "build-scorer-data", "--labels", labels, "--dataset-dir", data, "--dataset", DEMO,
        "--output-dir", tmp_path / "out", "--val-ratio", "0",
    )
    assert status == 0, err
    assert "not in dataset 'mmssr_demo': 1 labelled samples" in out and "mmssr_demo:6:000000000000" in out
    assert "unusable (sample problems): missing image: 1, unreadable image: 1" in out
    assert "train: 1 samples, 1 conversations" in out


GOOD_LINE = '{"uid": "x", "scores": {"ocr": 1}}\n'


@pytest.mark.parametrize(
    "labels_text, change, message",
    [
        (None, {}, "label file"),
        (GOOD_LINE + '{"uid": "y", "scores": {"ocr": 8}}\n', {}, "l.jsonl:2: bad score"),
        ("not json\n", {}, "l.jsonl:1: not a JSON object"),
        (GOOD_LINE, {"--val-ratio": "1"}, "must lie in [0, 1)"),
        (GOOD_LINE, {}, "none of the 1 labelled samples is usable"),
        (GOOD_LINE, {"--name": "a b"}, "must be letters, digits"),
        (GOOD_LINE, {"--dataset": "nope"}, "unknown dataset 'nope'"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, labels_text, change, message):
    path = tmp_path / "l.jsonl"
    if labels_text is not None:
        path.write_text(labels_text)
    options = {"--labels": path, "--dataset-dir": DEMO_DIR, "--dataset": DEMO, "--output-dir": tmp_path / "out"}
    options.update(change)
    status, _, err = mmssr("build-scorer-data", *(item for pair in options.items() for item in pair))
    assert status == 2 and err.startswith("mmssr-cli: error: ") and message in err and err.count("\n") == 1


def test_no_image_sample_keeps_no_images(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {"conversations": [{"from": "human", "value": "Hint: add 2 and 2"}, {"from": "gpt", "value": "4"}]},
        {"image": "a.png",
         "conversations": [{"from": "human", "value": "<image>\nColor?"}, {"from": "gpt", "value": "Red"}]},
    ]
    (data / "pool.json").write_text(json.dumps(rows))
    Image.new("RGB", (8, 8)).save(data / "a.png")
    entry = {"file_name": "pool.json", "formatting": "sharegpt",
             "columns": {"messages": "conversations", "images": "image"}}
    (data / "dataset_info.json").write_text(json.dumps({"p": entry}))
    samples = load_samples(data, "p")
    labels = write_labels(tmp_path / "l.jsonl", [label(s, {"stem": 2}) for s in samples])
    status, _, err = mmssr("build-scorer-data", "--labels", labels, "--dataset-dir", data, "--dataset", "p",
                               "--output-dir", tmp_path / "out", "--val-ratio", "0")
    assert status == 0, err
    first, second = records(tmp_path / "out")
    assert first["images"] == [] and first["messages"][0]["content"].startswith("Hint: add 2 and 2 Answer: 4\n")
    assert second["images"] == [str((data / "a.png").resolve())]
