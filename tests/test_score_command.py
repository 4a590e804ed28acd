"""``mmssr-cli score``: where a bare pool's images resolve, and every option explained."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import REPO
from mmssr_plugin.cli import build_parser
from mmssr_plugin.data.media_root import find_media_root

MMSSR_CLI = str(Path(sys.executable).parent / "mmssr-cli")


def test_a_pool_inside_its_dataset_folder_resolves_images_from_the_folder_above(demo_data, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [MMSSR_CLI, "score", "--pool", str(demo_data / "mmssr_demo" / "pool.json"),
               "--backend", "fake", "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (f"images of pool.json resolve against {demo_data} (36 of the first 36 relative image "
            f"paths found there)") in result.stdout
    assert "40 scored, 0 failed" in result.stdout


def test_media_root_prefers_the_pool_folder_and_falls_back_to_the_nearest_best(tmp_path):
    pool = tmp_path / "a" / "b" / "pool.json"
    (pool.parent / "img").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(pool.parent / "img" / "x.png")
    pool.write_text(json.dumps([]))
    assert find_media_root(pool, ["img/x.png", "img/y.png"]).folder == pool.parent
    assert find_media_root(pool, ["b/img/x.png"]).folder == tmp_path / "a"
    nowhere = find_media_root(pool, ["nowhere/x.png"])
    assert (nowhere.folder, nowhere.found, nowhere.checked) == (pool.parent, 0, 1)
    assert find_media_root(pool, [str(pool.parent / "img" / "x.png")]).checked == 0  # absolute


def test_every_score_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    score = sub.choices["score"]
    options = [a for a in score._actions if a.option_strings and a.dest != "help"]
    assert len(options) > 15
    assert [a.option_strings[0] for a in options if not (a.help or "").strip()] == []
