"""Reading LLaMA-Factory datasets into samples: formats, media, sources, uids, validation, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mmssr_plugin.data.convert import sample_from_row
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.readers import read_raw_rows
from mmssr_plugin.data.registry import load_dataset_info
from mmssr_plugin.data.resolve import resolve_dataset
from mmssr_plugin.data.sample import DatasetError, DatasetSpec, InvalidLine, Sample
from mmssr_plugin.data.validate import summarize_problems, validate_sample

LLAVA_COLUMNS = {"messages": "conversations", "images": "image"}
DEMO_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
OPENAI_TAGS = {**DEMO_TAGS, "system_tag": "system"}


def _conv(*texts: str) -> list[dict]:
    """sharegpt turns, human first."""
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(texts)]


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (200, 30, 30)).save(path)


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _write_jsonl(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


LLAVA_ROWS: list[object] = [
    {"id": "ok", "src": "my-src", "image": "coco/a.png", "conversations": _conv("<image>\nWhat is it?", "A square.")},
    {"id": "text-only", "conversations": _conv("Question: 12 x 7?", "84")},
    {"id": "bare", "image": "bare.png", "conversations": _conv("<image>\nColor?", "Red.")},
    {
        "id": "system",
        "image": ["coco/a.png"],
        "conversations": [{"from": "system", "value": "Be brief."}, *_conv("<image>\nShape?", "Square.")],
    },
    {"id": "missing", "image": "coco/missing.png", "conversations": _conv("<image>\nQ?", "A.")},
    {"id": "corrupt", "image": "coco/bad.png", "conversations": _conv("<image>\nQ?", "A.")},
    {"id": "placeholders", "image": "coco/a.png", "conversations": _conv("<image>\n<image>\nSame?", "Yes.")},
    {"id": "empty", "image": [], "conversations": []},
    {
        "id": "order",
        "conversations": _conv("Hi", "Hello") + [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}],
    },
    ["not", "a", "dict"],
    {"id": "empty-text", "image": "coco/a.png", "conversations": _conv("<image>\nQ?", "  ")},
    {
        "id": "two",
        "image": ["geo170k(qa)/9177_13.jpg", "coco/a.png"],
        "conversations": _conv("<image>\n<image>\nCompare.", "Same size."),
    },
    {"id": "unknown-role", "conversations": [{"from": "human", "value": "Q"}, {"from": "bot", "value": "A"}]},
    {"id": "odd", "conversations": _conv("Q1", "A1", "Q2")},
    {"id": "no-conv", "image": "coco/a.png"},
    {"id": "truncated", "image": "coco/truncated.png", "conversations": _conv("<image>\nQ?", "A.")},
]


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A dataset_dir with images, several entries and files of every supported kind."""
    root = tmp_path / "data"
    _png(root / "coco" / "a.png")
    _png(root / "bare.png")
    (root / "geo170k(qa)").mkdir()
    Image.new("RGB", (16, 16), (0, 0, 255)).save(root / "geo170k(qa)" / "9177_13.jpg")
    (root / "coco" / "bad.png").write_bytes(b"this is not an image")
    good = (root / "coco" / "a.png").read_bytes()
    (root / "coco" / "truncated.png").write_bytes(good[: len(good) // 2])

    _write_json(root / "llava.json", LLAVA_ROWS)
    demo_rows = [
        {
            "messages": [{"role": "user", "content": "<image>Who?"}, {"role": "assistant", "content": "A cat."}],
            "images": ["coco/a.png"],
        },
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ],
            "images": [],
        },
    ]
    _write_jsonl(root / "demo.jsonl", [json.dumps(demo_rows[0]), "", "{broken", json.dumps(demo_rows[1])])
    table = pa.Table.from_pylist(
        [
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "<image>Count?"},
                    {"role": "assistant", "content": "Two."},
                ],
                "images": ["coco/a.png"],
            },
            {"messages": [{"role": "user", "content": "Alone"}], "images": []},
        ]
    )
    pq.write_table(table, root / "chat.parquet")
    _write_jsonl(root / "shards" / "b.jsonl", [json.dumps({"conversations": _conv("B?", "b")})])
    _write_json(
        root / "shards" / "a.json", [{"conversations": _conv("A1?", "a1")}, {"conversations": _conv("A2?", "a2")}]
    )
    _write_json(
        root / "alpaca.json",
        [
            {"instruction": "Describe.", "input": "<image>", "output": "A red square.", "img": "coco/a.png"},
            {"instruction": "Only instruction", "input": "", "output": "ok"},
        ],
    )
    (root / "table.csv").write_text("a,b\n1,2\n")
    info = {
        "llava": {"file_name": "llava.json", "formatting": "sharegpt", "columns": LLAVA_COLUMNS},
        "demo": {
            "file_name": "demo.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": DEMO_TAGS,
        },
        "chat": {
            "file_name": "chat.parquet",
            "formatting": "openai",
            "columns": {"messages": "messages", "images": "images"},
            "tags": OPENAI_TAGS,
        },
        "shards": {"file_name": "shards", "formatting": "sharegpt"},
        "alpaca": {
            "file_name": "alpaca.json",
            "columns": {"prompt": "instruction", "query": "input", "response": "output", "images": "img"},
        },
        "hub": {"hf_hub_url": "someone/dataset"},
        "hub_and_file": {"ms_hub_url": "someone/dataset", "file_name": "llava.json"},
        "script": {"script_url": "my_script"},
        "nofile": {"file_name": "nope.json"},
        "csv": {"file_name": "table.csv"},
        "xml": {"file_name": "llava.json", "formatting": "xml"},
    }
    _write_json(root / "dataset_info.json", info)
    return root


@pytest.fixture()
def llava(data: Path) -> list[Sample]:
    return load_samples(data, "llava", source_column="src")


def test_valid_llava_rows(data: Path, llava: list[Sample]) -> None:
    ok, text_only, bare, system = llava[:4]
    assert ok.turns == ("<image>\nWhat is it?", "A square.")
    assert ok.images == (str(data / "coco" / "a.png"),)
    assert ok.source == "my-src"  # configured column
    assert ok.system is None and ok.ok and ok.dataset == "llava" and ok.row == 0
    assert text_only.images == () and text_only.source == "llava" and text_only.ok
    assert bare.images == (str(data / "bare.png"),) and bare.source == "llava"  # no folder: dataset name
    assert system.system == "Be brief." and system.turns == ("<image>\nShape?", "Square.") and system.ok
    assert system.source == "coco"  # first folder of the path as written
    two = llava[11]
    assert two.images == (str(data / "geo170k(qa)" / "9177_13.jpg"), str(data / "coco" / "a.png"))
    assert two.source == "geo170k(qa)" and two.ok
    assert [s.row for s in llava] == list(range(len(LLAVA_ROWS)))


def test_validation_reasons(data: Path, llava: list[Sample]) -> None:
    problems = {LLAVA_ROWS[i]["id"] if isinstance(LLAVA_ROWS[i], dict) else i: s.problems for i, s in enumerate(llava)}
    assert problems["missing"] == ("missing image: coco/missing.png",)
    assert len(problems["corrupt"]) == 1
    assert problems["corrupt"][0].startswith(f"unreadable image: {data / 'coco' / 'bad.png'} (UnidentifiedImageError: ")
    assert problems["truncated"][0].startswith(f"unreadable image: {data / 'coco' / 'truncated.png'} (")
    assert problems["placeholders"] == ("image placeholder mismatch: 2 <image> in text, 1 images",)
    assert problems["empty"] == ("empty conversation",)
    assert problems["order"] == ("wrong role order: turn 3 expected user, got assistant",)
    assert problems[9] == ("not a dict row: list",)
    assert problems["empty-text"] == ("empty turn text: turn 2",)
    assert problems["unknown-role"] == ("unknown role: turn 2 has 'bot'",)
    assert problems["odd"] == ("odd turn count: 3 turns, the last user turn has no answer",)
    assert problems["no-conv"] == ("missing column: conversations",)
    assert llava[9].turns == () and llava[9].source == "llava"
    assert summarize_problems(llava) == {
        "unreadable image": 2,
        "empty conversation": 1,
        "empty turn text": 1,
        "image placeholder mismatch": 1,
        "missing column": 1,
        "missing image": 1,
        "not a dict row": 1,
        "odd turn count": 1,
        "unknown role": 1,
        "wrong role order": 1,
    }


def test_check_images_off_skips_decoding_but_not_existence(data: Path) -> None:
    samples = load_samples(data, ["llava"], check_images=False)
    assert samples[5].ok  # corrupt file exists
    assert samples[4].problems == ("missing image: coco/missing.png",)


def test_uid_is_stable_and_content_addressed(data: Path, llava: list[Sample]) -> None:
    canonical = json.dumps(LLAVA_ROWS[1], sort_keys=True, ensure_ascii=False)
    assert llava[1].uid == f"llava:1:{hashlib.sha1(canonical.encode()).hexdigest()[:12]}"
    assert llava[1].uid == "llava:1:4ca0f0d9ee8a"
    assert [s.uid for s in load_samples(data, "llava")] == [s.uid for s in llava]
    spec = resolve_dataset(data, "llava")
    moved = sample_from_row(dict(reversed(list(LLAVA_ROWS[1].items()))), 7, spec, data, None)
    assert moved.uid == "llava:7:4ca0f0d9ee8a"  # key order does not matter


def test_mllm_demo_jsonl_tags_and_bad_line(data: Path) -> None:
    first, broken, second = load_samples(data, "demo")
    assert first.turns == ("<image>Who?", "A cat.") and first.images == (str(data / "coco" / "a.png"),)
    assert first.source == "coco" and first.ok
    assert broken.row == 1 and broken.problems[0].startswith("invalid json line: ")
    assert broken.uid.startswith("demo:1:")
    # tags given without system_tag: LLaMA-Factory sets it to None, so "system" is an unknown role
    assert second.row == 2 and second.problems == ("unknown role: turn 1 has 'system'",)
    assert isinstance(list(read_raw_rows(resolve_dataset(data, "demo")))[1], InvalidLine)


def test_openai_parquet(data: Path) -> None:
    good, odd = load_samples(data, "chat")
    assert good.system == "You are terse." and good.turns == ("<image>Count?", "Two.")
    assert good.images == (str(data / "coco" / "a.png"),) and good.ok
    assert odd.problems == ("odd turn count: 1 turns, the last user turn has no answer",)


def test_openai_tool_calls_and_responses(data: Path) -> None:
    spec = resolve_dataset(data, "chat")
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "w", "arguments": "{}"}}]},
        {"role": "observation", "content": "sun"},
        {"role": "observation", "content": "warm"},
        {"role": "assistant", "content": "Sunny and warm."},
    ]
    tags = {**OPENAI_TAGS, "function_tag": "function", "observation_tag": "observation"}
    spec = DatasetSpec(spec.name, spec.file_paths, "openai", spec.columns, tags, spec.entry)
    sample = sample_from_row({"messages": messages}, 0, spec, data, None)
    assert sample.turns == (
        "Weather?",
        '[{"name": "w", "arguments": "{}"}]',
        "sun\n</tool_response>\n<tool_response>\nwarm",
        "Sunny and warm.",
    )
    assert sample.ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
row_keys = st.sampled_from(["conversations", "messages", "image", "images", "from", "value", "role", "content"])
rows = json_values | st.dictionaries(row_keys, json_values, max_size=4)


@settings(max_examples=150, deadline=None)
@given(row=rows, formatting=st.sampled_from(["sharegpt", "openai", "alpaca"]))
def test_any_row_gives_a_sample_never_an_exception(row: object, formatting: str) -> None:
    entry = {"file_name": "x.json", "formatting": formatting, "columns": LLAVA_COLUMNS}
    columns = {
        "messages": "conversations",
        "images": "image",
        "prompt": "instruction",
        "query": "input",
        "response": "output",
        "history": None,
        "system": None,
    }
    tags = {
        "role_tag": "from",
        "content_tag": "value",
        "user_tag": "human",
        "assistant_tag": "gpt",
        "observation_tag": "observation",
        "function_tag": "function_call",
        "system_tag": "system",
    }
    spec = DatasetSpec("fuzz", (), formatting, columns, tags, entry)
    sample = sample_from_row(row, 3, spec, Path("/nonexistent-media"), "image")
    assert sample.uid.startswith("fuzz:3:") and sample.row == 3
    assert all(isinstance(t, str) for t in sample.turns) and all(isinstance(i, str) for i in sample.images)
    assert sample.ok == (not sample.problems)


def test_folder_sorted_and_several_datasets(data: Path) -> None:
    spec = resolve_dataset(data, "shards")
    assert [p.name for p in spec.file_paths] == ["a.json", "b.jsonl"]
    samples = load_samples(data, "shards, chat,shards")  # LF's comma list; repeats read once
    assert [(s.dataset, s.row) for s in samples] == [
        ("shards", 0),
        ("shards", 1),
        ("shards", 2),
        ("chat", 0),
        ("chat", 1),
    ]
    assert [s.turns[0] for s in samples[:3]] == ["A1?", "A2?", "B?"]
    assert spec.columns["messages"] == "conversations" and spec.tags["role_tag"] == "from"


def test_alpaca(data: Path) -> None:
    first, second = load_samples(data, "alpaca")
    assert first.turns == ("Describe.\n<image>", "A red square.") and first.source == "coco" and first.ok
    assert second.turns == ("Only instruction", "ok") and second.images == () and second.ok


def test_media_dir_differs_from_dataset_dir(tmp_path: Path) -> None:
    root, media = tmp_path / "data", tmp_path / "media"
    _png(media / "coco" / "a.png")
    _write_json(
        root / "dataset_info.json", {"p": {"file_name": "p.json", "formatting": "sharegpt", "columns": LLAVA_COLUMNS}}
    )
    _write_json(root / "p.json", [LLAVA_ROWS[0]])
    (sample,) = load_samples(root, "p", media_dir=media)
    assert sample.images == (str(media / "coco" / "a.png"),) and sample.ok
    (unresolved,) = load_samples(root, "p")  # default media_dir is dataset_dir: not found there
    assert unresolved.images == ("coco/a.png",) and unresolved.problems == ("missing image: coco/a.png",)


def test_validate_sample() -> None:
    sample = Sample(uid="u", dataset="d", row=0, turns=("<image>x", ""), images=("nowhere.png",))
    assert validate_sample(sample) == ("empty turn text: turn 2", "missing image: nowhere.png")


@pytest.mark.parametrize("dataset_dir", ["ONLINE", "REMOTE:someone/repo"])
def test_hub_only_dataset_dir(dataset_dir: str) -> None:
    with pytest.raises(
        DatasetError, match=r"hub-only dataset_dir .* has no local registry; mmSSR selection needs local files"
    ):
        load_dataset_info(dataset_dir)


def test_registry_errors(data: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not found: dataset_dir must hold"):
        load_dataset_info(tmp_path / "nowhere")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "dataset_info.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"cannot read .*dataset_info.json"):
        load_dataset_info(tmp_path / "badjson")
    with pytest.raises(
        DatasetError, match=r"unknown dataset 'nope' .*; known: llava, demo, chat, shards, alpaca, hub,"
    ):
        resolve_dataset(data, "nope")
    with pytest.raises(
        DatasetError, match=r"'hub' is hub-only: LLaMA-Factory loads it via hf_hub_url='someone/dataset'"
    ):
        load_samples(data, "hub")
    with pytest.raises(DatasetError, match=r"via ms_hub_url=.*prefers it over file_name"):
        resolve_dataset(data, "hub_and_file")
    with pytest.raises(DatasetError, match=r"via script_url"):
        resolve_dataset(data, "script")
    with pytest.raises(DatasetError, match=r"file .*nope.json not found"):
        resolve_dataset(data, "nofile")
    with pytest.raises(DatasetError, match=r"unsupported file .*table.csv .*supported: json, jsonl, parquet"):
        resolve_dataset(data, "csv")
    with pytest.raises(DatasetError, match=r"unsupported formatting 'xml'"):
        resolve_dataset(data, "xml")
    with pytest.raises(DatasetError, match="no dataset name given"):
        load_samples(data, " , ")
