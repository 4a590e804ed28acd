"""``mmssr-cli select`` end to end on hand-written files: golden selections, report, bad arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmssr_plugin.cli import main

REPO = Path(__file__).resolve().parents[1]

POOL = [
    {"idx": 10, "image_source": "coco", "conversations": [{"from": "human", "value": "Is it red?"}]},
    {"idx": 11, "image_source": "coco", "conversations": [{"from": "human", "value": "Pick one: A, B"}]},
    {"idx": 12, "image_source": "chartqa", "conversations": [{"from": "human", "value": "Título?"}]},
    {"idx": 13, "image_source": "chartqa", "conversations": [{"from": "human", "value": "Compare."}]},
    {"idx": 14, "image": "coco/14.jpg", "conversations": [{"from": "human", "value": "Hmm"}]},
    {"idx": 15, "image_source": "chartqa", "conversations": [{"from": "human", "value": "A or B?"}]},
]
SCORES = {
    "spatial": [(10, "5"), (11, "3"), (12, "4"), (13, "0"), (14, "2"), (15, "three")],
    "ocr": [(10, "1"), (11, "5"), (12, " 2\n"), (13, "4"), (15, "5"), (99, "5")],
    "style": [
        (10, "yes/no"), (11, "yes/no, multi-choice"), (12, "yes/no"), (13, "comparison"),
        (14, "short answer"), (15, "multi-choice"),
    ],
}


def write_jsonl(path: Path, rows: list[tuple[int, str]]) -> None:
    path.write_text("".join(json.dumps({"idx": i, "pred_response": r}) + "\n" for i, r in rows))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    pool = tmp_path / "pool.json"
    pool.write_text(json.dumps(POOL, indent=1, ensure_ascii=False), encoding="utf-8")
    scores = tmp_path / "scores"
    scores.mkdir()
    for name, rows in SCORES.items():
        write_jsonl(scores / f"{name}.jsonl", rows)
    return {"pool": pool, "scores": scores, "output": tmp_path / "out.json"}


def select_args(files: dict[str, Path], *extra: str, budget: str = "4") -> list[str]:
    return [
        "select", "--pool", str(files["pool"]), "--scores", str(files["scores"]), "--budget", budget,
        "--capabilities", "spatial,ocr", "--output", str(files["output"]), *extra,
    ]


def selected_idx(path: Path) -> list[int]:
    return [record["idx"] for record in json.loads(path.read_text(encoding="utf-8"))]


def table_rows(out: str) -> dict[str, list[str]]:
    """File -> [selected, lines, unparseable, missing idx, unknown idx] from the report table."""
    return {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split(" ")[0].endswith(".jsonl")}


def test_golden_selection_and_report(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(select_args(files)) == 0
    out = capsys.readouterr().out
    # Round 1, 2 per capability. spatial: bins of size 1 first by label -> 11 (multi-choice+coco),
    # 14 (unknown+coco). ocr: 13 (comparison+chartqa), 15 (multi-choice+chartqa).
    assert selected_idx(files["output"]) == [11, 13, 14, 15]
    lines = out.splitlines()
    assert f"pool: {files['pool']} (6 samples, 2 image sources)" in lines
    assert "budget: K = 4 (--budget 4), threshold 0" in lines
    assert "selected: 4 samples in 1 rounds" in lines
    assert table_rows(out) == {
        "spatial.jsonl": ["2", "6", "1", "0", "0"],
        "ocr.jsonl": ["2", "6", "0", "1", "1"],
        "style.jsonl": ["-", "6", "1", "0", "0"],
    }
    assert "style: 1 unmatched pieces; 1 lines without a recognised style; 6 style bins" in lines
    assert not any(line.startswith("shortfall") for line in lines)
    assert f"wrote: {files['output']} (4 records)" in lines
    assert lines[-1].startswith("wall time: ")


def test_output_is_verbatim(files: dict[str, Path]) -> None:
    assert main(select_args(files, budget="1.0", )) == 0
    text = files["pool"].read_text(encoding="utf-8")
    records = json.loads(text)
    written = files["output"].read_text(encoding="utf-8")
    # indent=1 pretty printing: each record's text (with its inner newlines) is copied as is.
    for record in json.loads(written):
        assert json.dumps(record, indent=1, ensure_ascii=False).replace("\n", "\n ") in text
    assert "Título" in written
    assert len(json.loads(written)) == 6 and records == json.loads(written)


def test_shortfall_is_reported(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(select_args(files, "--threshold", "2", budget="1.0")) == 0
    out = capsys.readouterr().out
    assert selected_idx(files["output"]) == [10, 11, 12, 13, 15]
    assert "budget: K = 6 (--budget 1.0), threshold 2" in out
    assert "selected: 5 samples in 2 rounds" in out
    assert "shortfall: 1 samples; only 5 of 6 requested samples had a score above the threshold 2" in out
    assert "exhausted capabilities: spatial, ocr" in out
    assert {name: row[0] for name, row in table_rows(out).items()} == {
        "spatial.jsonl": "3", "ocr.jsonl": "2", "style.jsonl": "-",
    }


def test_ratio_budget_and_capability_order(files: dict[str, Path]) -> None:
    args = select_args(files, budget="0.5")
    args[args.index("spatial,ocr")] = "ocr,spatial"
    assert main(args) == 0
    # K = 3; ocr first: quota 1 -> 13 (comparison+chartqa); spatial: quota 1 -> 11; ocr: 15.
    assert selected_idx(files["output"]) == [11, 13, 15]


def test_custom_capability_with_keyword(files: dict[str, Path]) -> None:
    write_jsonl(files["scores"] / "chart.jsonl", [(12, "5"), (13, "1")])
    args = select_args(files, "--keyword", "chart=chart understanding", budget="1")
    args[args.index("spatial,ocr")] = "chart"
    assert main(args) == 0
    # Both bins hold one sample; "comparison+chartqa" sorts first, so 13 beats the higher-scored 12.
    assert selected_idx(files["output"]) == [13]


def test_subprocess_run_and_no_torch(files: dict[str, Path]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "mmssr_plugin.cli", *select_args(files)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "selected: 4 samples in 1 rounds" in done.stdout
    assert selected_idx(files["output"]) == [11, 13, 14, 15]
    probe = (
        "import sys; from mmssr_plugin.cli import main; "
        f"assert main({select_args(files)!r}) == 0; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'pandas' not in sys.modules, 'pandas imported (pyarrow to_numpy / pa.array do that)'"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def run_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1 and err.startswith("mmssr-cli: error: "), err
    assert "Traceback" not in err
    return err[len("mmssr-cli: error: ") : -1]


@pytest.mark.parametrize(
    "budget, reason",
    [
        ("0", "argument --budget: a sample-count budget must be >= 1, got 0"),
        ("-5", "argument --budget: a sample-count budget must be >= 1, got -5"),
        ("0.0", "argument --budget: a float budget is a ratio of the pool and must lie in (0, 1], got 0.0"),
        ("-0.3", "argument --budget: a float budget is a ratio of the pool and must lie in (0, 1], got -0.3"),
        ("1.5", "argument --budget: a float budget is a ratio of the pool and must lie in (0, 1], got 1.5"),
        ("nan", "argument --budget: budget ratio is NaN"),
        ("abc", "argument --budget: not a number: 'abc'"),
    ],
)
def test_bad_budget(files: dict[str, Path], capsys: pytest.CaptureFixture[str], budget: str, reason: str) -> None:
    assert run_error(select_args(files, budget=budget), capsys).startswith(reason)
    assert not files["output"].exists()


def test_bad_arguments(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = select_args(files)
    cap = args.index("spatial,ocr")

    unknown = args.copy()
    unknown[cap] = "spatial,bogus"
    assert run_error(unknown, capsys).startswith("unknown capabilities ['bogus']; known: spatial, attribute")

    twice = args.copy()
    twice[cap] = "ocr,ocr"
    assert run_error(twice, capsys) == "capabilities listed twice: ['ocr']"

    assert run_error(select_args(files, "--threshold", "inf"), capsys) == "argument --threshold: must be a finite number, got 'inf'"
    assert run_error(select_args(files, "--keyword", "chart"), capsys) == "argument --keyword: expected ID=KEYWORD, got 'chart'"
    assert run_error(["select", "--pool", "x"], capsys) == (
        "the following arguments are required: --scores, --budget, --output"
    )
    assert run_error([], capsys) == "the following arguments are required: COMMAND"
    assert run_error(["frobnicate"], capsys).startswith("argument COMMAND: invalid choice: 'frobnicate'")

    missing_pool = args.copy()
    missing_pool[missing_pool.index(str(files["pool"]))] = str(tmp_path / "nope.json")
    assert run_error(missing_pool, capsys) == f"pool file {tmp_path / 'nope.json'} does not exist"

    missing_dir = args.copy()
    missing_dir[missing_dir.index(str(files["scores"]))] = str(tmp_path / "nowhere")
    assert run_error(missing_dir, capsys) == f"score folder {tmp_path / 'nowhere'} does not exist"

    (files["scores"] / "ocr.jsonl").unlink()
    assert run_error(args, capsys) == f"missing score files in {files['scores']}: ocr.jsonl"


def test_bad_inputs(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_jsonl(files["scores"] / "ocr.jsonl", [(10, "1"), (12, "2"), (10, "3")])
    assert run_error(select_args(files), capsys) == (
        f"{files['scores'] / 'ocr.jsonl'}: duplicate idx 10 (lines 1 and 3)"
    )
    files["pool"].write_text(json.dumps([{"idx": 1}, {"idx": 1}]))
    assert run_error(select_args(files), capsys) == f"{files['pool']}: duplicate idx 1 (records 1 and 2)"
    files["pool"].write_text('[{"idx": 1}, {"idx": 2')
    assert run_error(select_args(files), capsys).startswith(f"{files['pool']}: truncated file")
    files["pool"].write_text('{"idx": 1}')
    assert run_error(select_args(files), capsys) == f"{files['pool']}: not a JSON list (starts with '{{')"


def test_unwritable_output(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = select_args(files)
    out = args.index(str(files["output"]))
    args[out] = str(tmp_path / "no" / "such" / "out.json")
    assert run_error(args, capsys) == f"output folder {tmp_path / 'no' / 'such'} does not exist"
    args[out] = str(tmp_path)
    assert run_error(args, capsys) == f"output {tmp_path} is a directory"


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["select", "--help"]) == 0
    assert "--budget" in capsys.readouterr().out
