"""The data_selection block and the stage, without a model (random method and guards)."""

import json
import shutil
import types
from pathlib import Path

import pytest

from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError
from mmssr_plugin.llamafactory.hook import WRAPPED, patch_module
from mmssr_plugin.llamafactory.stage import apply_data_selection

DEMO = Path(__file__).resolve().parents[1] / "data_info"


@pytest.fixture()
def data_dir(tmp_path):
    target = tmp_path / "data"
    shutil.copytree(DEMO, target)
    return target


def _args(data_dir, **selection):
    block = {"method": "random", "budget": 0.25, **selection}
    return {"dataset": "mmssr_demo", "dataset_dir": str(data_dir), "data_selection": block}


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"budgt": 0.3}, "unknown data_selection keys ['budgt']; valid keys: method, budget"),
        ({"method": "best"}, "data_selection.method must be one of ['mmssr', 'random']"),
        ({"budget": 0}, "a budget count must be >= 1"),
        ({"budget": 1.5}, "a budget ratio must lie in (0, 1]"),
        ({"budget": "lots"}, "budget must be a number"),
        ({"method": "mmssr"}, "the hf backend needs model_name_or_path"),
        ({"capabilities": "ocr,bogus"}, "unknown capabilities ['bogus']"),
        ({"quantization_bit": 3, "model_name_or_path": "m"}, "quantization_bit must be 4, 8"),
        ({"batch_size": 0, "model_name_or_path": "m"}, "batch_size must be >= 1, got 0"),
        ("0.3", "data_selection must be a mapping"),
    ],
)
def test_bad_blocks_are_refused_before_any_model_loads(block, message):
    with pytest.raises(DataSelectionError) as info:
        DataSelectionConfig.from_dict(block)
    assert message in str(info.value)


def test_custom_capability_and_budget_forms():
    config = DataSelectionConfig.from_dict({
        "method": "random", "budget": 100, "capabilities": ["ocr", "medical"],
        "capability_keywords": {"medical": "medical image understanding"},
    })
    assert [c.id for c in config.selection.capability_list] == ["ocr", "medical"]
    assert config.selection.budget_tag() == "n100"
    assert DataSelectionConfig.from_dict({"method": "random", "budget": 1.0}).selection.budget_tag() == "b1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"streaming": True}, "streaming: true gives no random access"),
        ({"dataset_dir": "ONLINE"}, "dataset_dir ONLINE is a hub mode"),
        ({"dataset_dir": "REMOTE:org/repo"}, "dataset_dir REMOTE:org/repo is a hub mode"),
        ({"dataset": ""}, "data_selection needs `dataset`"),
        ({"dataset": "nope"}, "nope"),
    ],
)
def test_guards(data_dir, extra, message):
    with pytest.raises(DataSelectionError) as info:
        apply_data_selection({**_args(data_dir), **extra}, log=lambda line: None)
    assert message in str(info.value)


def test_existing_tokenized_path_is_refused(data_dir, tmp_path):
    (tmp_path / "tok").mkdir()
    with pytest.raises(DataSelectionError, match="tokenized_path .* already exists"):
        apply_data_selection({**_args(data_dir), "tokenized_path": str(tmp_path / "tok")},
                             log=lambda line: None)


def test_random_selection_registers_subset_and_is_cached(data_dir):
    lines: list[str] = []
    out = apply_data_selection(_args(data_dir, seed=7), log=lines.append)
    assert "data_selection" not in out
    name = out["dataset"]
    assert name.startswith("mmssr_demo_random_b0.25_")
    registry = json.loads((data_dir / "dataset_info.json").read_text())
    entry = registry[name]
    assert registry["mmssr_demo"]["file_name"] == "mmssr_demo/pool.json"
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "conversations", "images": "image"}
    assert entry["mmssr"]["selected"] == 10 and entry["mmssr"]["pool_size"] == 40
    rows = json.loads((data_dir / entry["file_name"]).read_text())
    pool = json.loads((data_dir / "mmssr_demo" / "pool.json").read_text())
    assert len(rows) == 10 and all(row in pool for row in rows)
    assert [r["idx"] for r in rows] == sorted(r["idx"] for r in rows)
    assert any("subset: 10 of budget 10" in line for line in lines)
    report = [line.split("report: ", 1)[1] for line in lines if "] report: " in line]
    assert report and Path(report[0]).is_file() and Path(report[0]).with_suffix(".json").is_file()

    again: list[str] = []
    assert apply_data_selection(_args(data_dir, seed=7), log=again.append)["dataset"] == name
    assert again and "reusing selection" in again[0]
    other = apply_data_selection(_args(data_dir, seed=8), log=lambda line: None)["dataset"]
    assert other != name


def test_broken_samples_are_reported_and_excluded(data_dir):
    pool_path = data_dir / "mmssr_demo" / "pool.json"
    pool = json.loads(pool_path.read_text())
    pool[0]["image"] = "mmssr_demo/images/coco/missing.png"
    pool[1]["conversations"][0]["value"] = "<image>\n<image>\nTwo placeholders, one image?"
    pool_path.write_text(json.dumps(pool))
    lines: list[str] = []
    out = apply_data_selection(_args(data_dir, budget=1.0), log=lines.append)
    text = "\n".join(lines)
    assert "2 excluded by validation" in text
    assert "excluded: 1 x missing image" in text
    assert "excluded: 1 x image placeholder mismatch" in text
    entry = json.loads((data_dir / "dataset_info.json").read_text())[out["dataset"]]
    rows = json.loads((data_dir / entry["file_name"]).read_text())
    assert len(rows) == 38 and {r["idx"] for r in rows}.isdisjoint({0, 1})

    # Each excluded sample is traceable: failures.jsonl next to the subset, named in the summary.
    (named,) = [line.split(" -> ")[1] for line in lines if "excluded or failed samples: 2 -> " in line]
    failures_path = Path(named)
    assert failures_path.parent == (data_dir / entry["file_name"]).parent
    records = [json.loads(line) for line in failures_path.read_text().splitlines()]
    assert [(r["dataset"], r["row"], r["reason"].split(":")[0]) for r in records] == [
        ("mmssr_demo", 0, "missing image"), ("mmssr_demo", 1, "image placeholder mismatch")]
    assert records[0]["image"].endswith("mmssr_demo/images/coco/missing.png")
    assert all(r["uid"].startswith("mmssr_demo:") for r in records)
    report = [line.split("report: ", 1)[1] for line in lines if "] report: " in line]
    content = json.loads(Path(report[0]).with_suffix(".json").read_text())
    assert content["failures"]["file"] == str(failures_path.resolve())
    assert content["failures"]["rows"] == records
    assert content["subsets"][0]["name"] == out["dataset"]
    assert content["selected_samples"]["total"] == 38


def test_hook_patches_once():
    def read_args(args=None):
        return args

    module = types.ModuleType("llamafactory.train.tuner")
    module.read_args = read_args
    patch_module(module)
    first = module.read_args
    patch_module(module)
    assert module.read_args is first and getattr(first, WRAPPED)
    assert module.read_args({"stage": "sft"}) == {"stage": "sft"}
