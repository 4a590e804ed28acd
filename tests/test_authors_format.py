"""Reading the authors' pool and score files, and writing subsets (golden, edge cases, chunking)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmssr_plugin.core.style_parsing import parse_styles
from mmssr_plugin.formats.authors.errors import AuthorsFormatError
from mmssr_plugin.formats.authors.pool import read_pool
from mmssr_plugin.formats.authors.pool_scores import read_pool_and_scores, read_scores
from mmssr_plugin.formats.authors.records import write_selected
from mmssr_plugin.formats.authors.rules import parse_score, score_codes
from mmssr_plugin.formats.authors.score_files import load_score_files, score_file_paths
from mmssr_plugin.selection.coded_bins import style_bins_from_codes
from mmssr_plugin.selection.bins import StyleBins

# Hand-written pool: one record per line, an image_source, an image folder only, neither.
POOL_TEXT = """[
  {"idx": 10, "image_source": "coco", "image": "coco/1.jpg", "conversations": [{"from": "human", "value": "<image>\\nWhat is it?"}, {"from": "gpt", "value": "A café sign: \\"Crème brûlée\\" {not a brace}"}]},
  {"idx": 11, "image": "chartqa/train/7.png", "conversations": []},
  {"idx": 12, "conversations": [{"from": "human", "value": "日本語のテキスト, [brackets]"}]},
  {"image_source": "", "image": ["geo170k(qa)/9177_13.jpg"], "idx": -3}
]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def jsonl(path: Path, rows: list[tuple[int, object]]) -> Path:
    lines = [json.dumps({"idx": idx, "pred_response": text}) for idx, text in rows]
    return write(path, "\n".join(lines) + "\n")


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    return write(tmp_path / "llava_pool.json", POOL_TEXT)


# ---------------------------------------------------------------------------------------------
# Pool


def test_read_pool_keeps_idx_sources_and_spans(pool_file: Path) -> None:
    pool = read_pool(pool_file)
    assert pool.idx.tolist() == [10, 11, 12, -3]
    assert [pool.source_labels[c] for c in pool.source_codes] == ["coco", "chartqa", "llava_pool", "geo170k(qa)"]
    text = pool_file.read_text(encoding="utf-8")
    records = [json.loads(text[start:end]) for start, end in pool.spans.tolist()]
    assert records == json.loads(text)
    assert pool.positions(np.array([12, 99, -3, 10])).tolist() == [2, -1, 3, 0]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_chunk_boundaries_do_not_matter(pool_file: Path, chunk: int) -> None:
    reference = read_pool(pool_file)
    pool = read_pool(pool_file, chunk_chars=chunk)
    assert pool.idx.tolist() == reference.idx.tolist()
    assert pool.spans.tolist() == reference.spans.tolist()
    assert pool.source_labels == reference.source_labels


@pytest.mark.parametrize("chunk", [1, 5, 13, 4096])
def test_pretty_printed_non_ascii_pool_with_bom(tmp_path: Path, chunk: int) -> None:
    records = [
        {"idx": i, "image_source": f"src{i % 3}", "conversations": [{"value": "é°\u2028𝄞 " * i + "}]"}]}
        for i in range(40)
    ]
    path = write(tmp_path / "pool.json", "\ufeff" + json.dumps(records, indent=2, ensure_ascii=False))
    pool = read_pool(path, chunk_chars=chunk)
    assert pool.idx.tolist() == list(range(40))
    text = path.read_text(encoding="utf-8")
    assert [json.loads(text[s:e]) for s, e in pool.spans.tolist()] == records


def test_empty_list(tmp_path: Path) -> None:
    assert len(read_pool(write(tmp_path / "p.json", " [ \n ] \n"))) == 0


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty file, expected a JSON list of records"),
        ('{"idx": 1}', "not a JSON list (starts with '{')"),
        ('"pool"', "not a JSON list (starts with '\"')"),
        ('[{"idx": 1}, 2]', "record 2 is not an object (starts with '2')"),
        ('[{"idx": 1}, {"id": "x"}]', "record 2 has no idx"),
        ('[{"idx": "1"}]', "record 1 has a non-integer idx '1'"),
        ('[{"idx": 1.0}]', "record 1 has a non-integer idx 1.0"),
        ('[{"idx": true}]', "record 1 has a non-integer idx True"),
        ('[{"idx": 1}, {"idx": 2}, {"idx": 1}]', "duplicate idx 1 (records 1 and 3)"),
        ('[{"idx": 5}, {"idx": 90000000}, {"idx": 5}]', "duplicate idx 5 (records 1 and 3)"),
        ('[{"idx": 1}, {"idx": 2, "conv', "truncated file (record 2 at character 13 is incomplete)"),
        ('[{"idx": 1}, {"idx": 2}', "truncated file (the JSON list is not closed)"),
        ('[{"idx": 1},', "truncated file (the JSON list is not closed)"),
        ('[{"idx": 1},]', "record 2 is not an object (starts with ']')"),
        ('[{"idx": 1}] {}', "extra data after the JSON list at character 13"),
        ('[{"idx": 1} {"idx": 2}]', "expected ',' or ']' after record 1 at character 12"),
        ('[{"idx": 1, "x": tru}, {"idx": 2}]', "invalid JSON in record 1 at character 17: Expecting value"),
        ('[{"idx": 1}, {"idx": 2, "x": tru}]', "invalid JSON in record 2 at character 29: Expecting value"),
        ('[{"idx": 1}, {"idx": 2, "x": "a\\q"}]', "invalid JSON in record 2 at character 31: Invalid \\escape"),
        ('[{"idx": 99999999999999999999}]', "record 1 has idx 99999999999999999999 outside int64"),
    ],
)
@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_pool_errors(tmp_path: Path, text: str, reason: str, chunk: int) -> None:
    path = write(tmp_path / "p.json", text)
    with pytest.raises(AuthorsFormatError) as caught:
        read_pool(path, chunk_chars=chunk)
    assert str(caught.value) == f"{path}: {reason}"


def test_missing_pool_file(tmp_path: Path) -> None:
    with pytest.raises(AuthorsFormatError, match="cannot read pool .*nope.json: No such file"):
        read_pool(tmp_path / "nope.json")


def test_sparse_idx_use_binary_search(tmp_path: Path) -> None:
    path = write(tmp_path / "p.json", '[{"idx": 7}, {"idx": -5000000000}, {"idx": 123456789012}]')
    pool = read_pool(path)
    assert pool.positions(np.array([123456789012, 7, 8, -5000000000])).tolist() == [2, 0, -1, 1]


# ---------------------------------------------------------------------------------------------
# Score parsing


@pytest.mark.parametrize(
    "text, score",
    [
        ("3", 3), (" 3\n", 3), ("+4", 4), ("05", 5), ("0", 0), ("-0", 0), ("0_3", 3), ("\u0663", 3),
        ("\uff15", 5), ("\t5 ", 5),
        ("6", None), ("-1", None), ("three", None), ("", None), ("3.0", None), ("4/5", None),
        ("3 4", None), ("_3", None), (None, None), ("99999999999999999999", None),
    ],
)
def test_parse_score(text: str | None, score: int | None) -> None:
    value = parse_score(text)
    assert (math.isnan(value) if score is None else value == score)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["0", "5", "6", " 2", "+1", "x", ""]), st.text(max_size=4))))
def test_vectorised_scores_match_parse_score(texts: list[str | None]) -> None:
    codes = score_codes(pa.array(texts, type=pa.string()))
    expected = [parse_score(t) for t in texts]
    assert codes.tolist() == [-1 if math.isnan(v) else int(v) for v in expected]


def test_vectorised_scores_on_a_sliced_array() -> None:
    array = pa.array(["9", "1", " 2 ", "x", "4", "5"]).slice(1, 4)
    assert score_codes(array).tolist() == [1, 2, -1, 4]


@pytest.mark.parametrize(
    "text, styles, unmatched",
    [
        ("multi-choice", ("multi-choice",), 0),
        ("yes/no, multi-choice", ("yes/no", "multi-choice"), 0),
        (" comparison ,yes/no,comparison", ("comparison", "yes/no"), 0),
        ("chain-of-thought (step-by-step), specified style", ("chain-of-thought (step-by-step)", "specified style"), 0),
        ("Multi-choice", (), 1),
        ("short answer, yes/no, open-ended", ("yes/no",), 2),
        ("word/short-phrase,,", ("word/short-phrase",), 0),
        ("", (), 0),
        (None, (), 0),
    ],
)
def test_parse_styles(text: str | None, styles: tuple[str, ...], unmatched: int) -> None:
    answer = parse_styles(text, authors_rules=True)
    assert (answer.styles, answer.unmatched) == (styles, unmatched)


# ---------------------------------------------------------------------------------------------
# Score files


@pytest.fixture
def score_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "scores"
    folder.mkdir()
    jsonl(folder / "spatial.jsonl", [(12, " 3\n"), (10, "+4"), (11, "05"), (-3, "6")])
    jsonl(folder / "ocr.jsonl", [(10, "three"), (11, ""), (12, "3.0"), (77, "5"), (78, "1")])
    jsonl(
        folder / "style.jsonl",
        [(10, "yes/no, multi-choice"), (11, "short answer"), (12, "comparison, open-ended"), (55, "yes/no")],
    )
    return folder


def bin_labels(bins, sample: int) -> list[str]:
    return [bins.labels[b] for b in bins.ids[bins.offsets[sample] : bins.offsets[sample + 1]]]


def style_bins(pool, scores):
    return style_bins_from_codes(scores.styles.codes, scores.styles.answers, pool.source_codes, pool.source_labels)


def test_read_scores_golden(pool_file: Path, score_dir: Path) -> None:
    pool = read_pool(pool_file)
    scores = read_scores(score_dir, pool, ["spatial", "ocr"])
    nan = float("nan")
    np.testing.assert_array_equal(scores.scores, np.array([[4, nan], [5, nan], [3, nan], [nan, nan]], np.float32))
    assert scores.scores.dtype == np.float32
    counts = [(f.name, f.path.name, f.lines, f.unparseable, f.missing, f.unknown, f.unmatched) for f in scores.files]
    assert counts == [
        ("spatial", "spatial.jsonl", 4, 1, 0, 0, 0),
        ("ocr", "ocr.jsonl", 5, 3, 1, 2, 0),
        ("style", "style.jsonl", 4, 1, 1, 1, 2),
    ]
    bins = style_bins(pool, scores)
    assert [bin_labels(bins, i) for i in range(4)] == [
        ["multi-choice+coco", "yes/no+coco"],
        ["unknown+chartqa"],
        ["comparison+llava_pool"],
        ["unknown+geo170k(qa)"],
    ]


def test_coded_bins_equal_bins_built_per_sample(pool_file: Path, score_dir: Path) -> None:
    pool = read_pool(pool_file)
    scores = read_scores(score_dir, pool, ["spatial"])
    sources = [pool.source_labels[code] for code in pool.source_codes.tolist()]
    expected = StyleBins.from_styles(scores.styles.per_sample(), sources)
    bins = style_bins(pool, scores)
    assert bins.labels == expected.labels
    assert (bins.offsets.tolist(), bins.ids.tolist()) == (expected.offsets.tolist(), expected.ids.tolist())


def test_null_and_absent_responses(pool_file: Path, tmp_path: Path) -> None:
    write(tmp_path / "spatial.jsonl", '{"idx": 10, "pred_response": null}\n{"idx": 11}\n{"idx": 12, "pred_response": "2"}\n')
    write(tmp_path / "style.jsonl", '{"idx": 10, "pred_response": null}\n{"idx": 11, "pred_response": "yes/no"}\n')
    pool = read_pool(pool_file)
    scores = read_scores(tmp_path, pool, ["spatial"])
    assert scores.scores[:, 0].tolist()[:3] == [pytest.approx(math.nan, nan_ok=True)] * 2 + [2.0]
    assert [(f.unparseable, f.missing) for f in scores.files] == [(2, 1), (1, 2)]
    assert [bin_labels(style_bins(pool, scores), i) for i in range(2)] == [["unknown+coco"], ["yes/no+chartqa"]]


def test_overlapped_read_equals_sequential(pool_file: Path, score_dir: Path) -> None:
    pool, scores = read_pool_and_scores(pool_file, score_dir, ["ocr", "spatial"])
    reference_pool = read_pool(pool_file)
    reference = read_scores(score_dir, reference_pool, ["ocr", "spatial"])
    np.testing.assert_array_equal(scores.scores, reference.scores)
    assert scores.files == reference.files
    bins, reference_bins = style_bins(pool, scores), style_bins(reference_pool, reference)
    assert bins.labels == reference_bins.labels
    assert bins.ids.tolist() == reference_bins.ids.tolist()
    assert pool.idx.tolist() == [10, 11, 12, -3]


def test_files_with_equal_idx_share_one_array(tmp_path: Path) -> None:
    for name in ("a", "b", "style"):
        jsonl(tmp_path / f"{name}.jsonl", [(1, "1"), (2, "2")])
    jsonl(tmp_path / "c.jsonl", [(2, "1"), (1, "2")])
    loaded = load_score_files(score_file_paths(tmp_path, ["a", "b", "c"]))
    assert loaded[0].idx is loaded[1].idx
    assert loaded[2].idx is not loaded[1].idx
    assert loaded[3].idx is not loaded[2].idx


@pytest.mark.parametrize(
    "rows, reason",
    [
        ([(10, "1"), (11, "2"), (10, "3")], "duplicate idx 10 (lines 1 and 3)"),
        ([(10, "1"), (500, "2"), (500, "3")], "duplicate idx 500 (lines 2 and 3)"),
    ],
)
def test_duplicate_idx_in_a_score_file(pool_file: Path, tmp_path: Path, rows, reason: str) -> None:
    jsonl(tmp_path / "spatial.jsonl", rows)
    jsonl(tmp_path / "style.jsonl", [(10, "yes/no")])
    with pytest.raises(AuthorsFormatError) as caught:
        read_scores(tmp_path, read_pool(pool_file), ["spatial"])
    assert str(caught.value) == f"{tmp_path / 'spatial.jsonl'}: {reason}"


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"pred_response": "1"}\n', "line 1 has no integer idx (1 such lines)"),
        ('{"idx": 1, "pred_response": "1"}\n{"idx": "x", "pred_response": "2"}\n', "not JSON lines of {idx, pred_response}"),
        ('{"idx": 1, "pred_response": "1"}\nnot json\n', "not JSON lines of {idx, pred_response}"),
    ],
)
def test_malformed_score_file(pool_file: Path, tmp_path: Path, text: str, reason: str) -> None:
    write(tmp_path / "spatial.jsonl", text)
    jsonl(tmp_path / "style.jsonl", [])
    with pytest.raises(AuthorsFormatError) as caught:
        read_scores(tmp_path, read_pool(pool_file), ["spatial"])
    assert str(caught.value).startswith(f"{tmp_path / 'spatial.jsonl'}: {reason}")
    assert "\n" not in str(caught.value)


def test_empty_score_files_are_refused_by_name(pool_file: Path, tmp_path: Path) -> None:
    write(tmp_path / "spatial.jsonl", "")
    write(tmp_path / "style.jsonl", '{"idx": 1, "pred_response": "yes/no"}\n')
    pool = read_pool(pool_file)
    with pytest.raises(AuthorsFormatError, match=f"^{tmp_path / 'spatial.jsonl'} is empty: expected one JSON line"):
        read_scores(tmp_path, pool, ["spatial"])
    jsonl(tmp_path / "spatial.jsonl", [(1, "3")])
    write(tmp_path / "style.jsonl", "\n")
    with pytest.raises(AuthorsFormatError, match=f"^{tmp_path / 'style.jsonl'} holds no line"):
        read_scores(tmp_path, pool, ["spatial"])


def test_missing_score_files_are_all_named(tmp_path: Path) -> None:
    jsonl(tmp_path / "ocr.jsonl", [])
    with pytest.raises(AuthorsFormatError) as caught:
        score_file_paths(tmp_path, ["spatial", "ocr", "scene"])
    assert str(caught.value) == f"missing score files in {tmp_path}: spatial.jsonl, scene.jsonl, style.jsonl"
    with pytest.raises(AuthorsFormatError, match="score folder .* does not exist"):
        score_file_paths(tmp_path / "nope", ["ocr"])
    with pytest.raises(AuthorsFormatError, match="a capability cannot be called 'style'"):
        score_file_paths(tmp_path, ["ocr", "style"])


# ---------------------------------------------------------------------------------------------
# Output


@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_write_selected_copies_records_verbatim(pool_file: Path, tmp_path: Path, chunk: int) -> None:
    pool = read_pool(pool_file)
    out = tmp_path / "out.json"
    assert write_selected(pool, np.array([0, 2, 3]), out, chunk_chars=chunk) == 3
    lines = POOL_TEXT.splitlines()
    assert out.read_text(encoding="utf-8") == "[\n" + ",\n".join(
        line.strip().rstrip(",") for line in (lines[1], lines[3], lines[4])
    ) + "\n]\n"
    assert [r["idx"] for r in json.loads(out.read_text(encoding="utf-8"))] == [10, 12, -3]


def test_write_nothing_and_bad_positions(pool_file: Path, tmp_path: Path) -> None:
    pool = read_pool(pool_file)
    out = tmp_path / "out.json"
    write_selected(pool, np.array([], dtype=np.int64), out)
    assert json.loads(out.read_text()) == []
    for bad in ([2, 1], [1, 1], [4], [-1]):
        with pytest.raises(AuthorsFormatError, match="ascending, unique pool positions"):
            write_selected(pool, np.array(bad), out)
    pool.path.write_text("[]")  # shorter than when it was read
    with pytest.raises(AuthorsFormatError, match="the pool file changed since it was read"):
        write_selected(pool, np.array([1]), out)
    with pytest.raises(AuthorsFormatError, match="cannot write .*missing/out.json"):
        write_selected(pool, np.array([0]), tmp_path / "missing" / "out.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llava_pool.json", "out.json"]
