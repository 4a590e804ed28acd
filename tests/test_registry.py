"""dataset_info.json updates: other entries preserved, concurrent writers never lose entries."""

import json
import multiprocessing

import pytest

from mmssr_plugin.data.registry import load_dataset_info, register_entries


def _writer(args):
    dataset_dir, worker, count = args
    for k in range(count):
        register_entries(dataset_dir, {f"w{worker}_{k}": {"file_name": f"{worker}_{k}.json"}})


def test_register_preserves_other_entries(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "a.json"}}))
    register_entries(tmp_path, {"subset": {"file_name": "b.json", "mmssr": {"budget": 0.3}}})
    assert load_dataset_info(tmp_path) == {
        "mine": {"file_name": "a.json"},
        "subset": {"file_name": "b.json", "mmssr": {"budget": 0.3}},
    }


def test_concurrent_writers_lose_nothing(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"keep": {"file_name": "k.json"}}))
    workers, per_worker = 6, 25
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_writer, [(str(tmp_path), w, per_worker) for w in range(workers)])
    registry = load_dataset_info(tmp_path)
    assert len(registry) == 1 + workers * per_worker
    assert registry["keep"] == {"file_name": "k.json"}
    assert registry["w5_24"] == {"file_name": "5_24.json"}
    assert not list(tmp_path.glob(".dataset_info.json.*.tmp"))


def test_bad_registry_is_a_clear_error(tmp_path):
    (tmp_path / "dataset_info.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_dataset_info(tmp_path)
