"""The quickstart's demo scorer: the tiny Qwen2-VL fine-tuned on the demo pool's bundled labels.

Built with the plugin's own custom-scorer loop, offline and on CPU: the authors'-format score
files of the demo pool become a label file (:mod:`mmssr_plugin.testing.demo_labels`), then
``mmssr-cli build-scorer-data`` turns it into scorer data and ``llamafactory-cli train`` runs the
recipe ``recipes/quickstart/tiny_qwen2vl_demo_scorer.yaml`` on it (full fine-tuning, fixed seeds). The
result is cached like the tiny model: the folder name carries a version and a hash of everything
that goes into the build, so a changed label, recipe or library never reuses a stale scorer.

A toy: it has seen 40 samples and reproduces their labels; it says nothing about real data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from mmssr_plugin.testing.tiny_vlm import (
    DEFAULT_CACHE_ROOT_ENV,
    build_tiny_qwen2vl,
    tiny_vlm_dir,
)
from mmssr_plugin.utils.files import exclusive_lock

logger = logging.getLogger(__name__)

# Bump when the way the scorer is built changes in a way the hashed inputs do not show.
DEMO_SCORER_VERSION = "v1"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DATASET = "mmssr_demo"
SCORER_RECIPE = Path("recipes/quickstart/tiny_qwen2vl_demo_scorer.yaml")
# Repository files the scorer is built from (relative to the repository root).
_INPUTS = (
    Path("data_info/dataset_info.json"),
    Path("data_info/mmssr_demo/pool.json"),
    Path("data_info/mmssr_demo/scores"),
    SCORER_RECIPE,
)
_PACKAGES = ("llamafactory", "transformers", "torch", "peft", "accelerate", "tokenizers")


class DemoScorerError(RuntimeError):
    """The demo scorer cannot be built (missing repository files, a failed build step)."""


def demo_scorer_dir(repo_root: str | Path = REPO_ROOT) -> Path:
    """The cache folder of the demo scorer built from ``repo_root``'s files."""
    root = os.environ.get(DEFAULT_CACHE_ROOT_ENV) or Path.home() / ".cache" / "mmssr-plugin"
    return Path(root) / f"tiny-qwen2vl-demo-scorer-{DEMO_SCORER_VERSION}-{_build_key(Path(repo_root))}"


def _build_key(repo_root: Path) -> str:
    """Hash of the build's inputs: repository files, this package's builders, the base model, versions."""
    digest = hashlib.sha256(tiny_vlm_dir().name.encode())
    here = Path(__file__).resolve().parent
    for path in (here / "demo_scorer.py", here / "demo_labels.py", *(repo_root / p for p in _INPUTS)):
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.is_file():
                raise DemoScorerError(f"{file} is missing: the demo scorer is built from a checkout of the repository")
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    for package in _PACKAGES:
        digest.update(f"{package}=={version(package)}".encode())
    return digest.hexdigest()[:10]


def build_demo_scorer(repo_root: str | Path = REPO_ROOT, target: str | Path | None = None) -> Path:
    """Build (or reuse) the demo scorer; returns its model folder.

    The build runs in a temporary sibling folder that is renamed into place when complete (its
    logs stay inside, in ``.build.log``); concurrent callers wait on a lock and reuse the result.

    Args:
        repo_root: the repository checkout holding ``data_info/`` and ``recipes/``.
        target: the model folder (default :func:`demo_scorer_dir`).

    Raises:
        DemoScorerError: a repository file is missing or a build step fails (with its log's tail).
    """
    repo_root = Path(repo_root).resolve()
    target = Path(target) if target is not None else demo_scorer_dir(repo_root)
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f".{target.name}.lock"):
        if _complete(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            _train(repo_root, staging)
            (staging / "model").chmod(0o755)
            shutil.move(str(staging / "build.log"), staging / "model" / ".build.log")  # hidden: not fingerprinted
            os.rename(staging / "model", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def _train(repo_root: Path, work: Path) -> None:
    """Labels -> scorer data -> full fine-tuning of the tiny model, inside ``work``."""
    from mmssr_plugin.testing.demo_labels import write_labels_from_scores

    base = build_tiny_qwen2vl()
    data_info = repo_root / "data_info"
    labels = work / "labels.jsonl"
    count = write_labels_from_scores(
        labels, data_info, DEMO_DATASET, data_info / "mmssr_demo" / "pool.json", data_info / "mmssr_demo" / "scores"
    )
    logger.info("demo scorer: building it once from %d labelled samples (about 1.5 minutes of one CPU core)", count)
    bin_dir = Path(sys.executable).parent
    steps = (
        [str(bin_dir / "mmssr-cli"), "build-scorer-data", "--labels", str(labels), "--dataset-dir", str(data_info),
         "--dataset", DEMO_DATASET, "--output-dir", str(work / "data"), "--val-ratio", "0"],
        [str(bin_dir / "llamafactory-cli"), "train", str(repo_root / SCORER_RECIPE), f"model_name_or_path={base}",
         f"dataset_dir={work / 'data'}", f"output_dir={work / 'model'}"],
    )
    # One thread unless told otherwise: as fast as two for 64-wide matrices, and the same floating-point
    # sums (so the same scorer) on every machine.
    env = {"OMP_NUM_THREADS": "1", **os.environ, "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": "",
           "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))}
    with open(work / "build.log", "w", encoding="utf-8") as log:
        for command in steps:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            done = subprocess.run(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                tail = (work / "build.log").read_text(encoding="utf-8", errors="replace")[-3000:]
                raise DemoScorerError(f"demo scorer build step failed ({command[1]}, exit {done.returncode}):\n{tail}")
    if not _complete(work / "model"):
        raise DemoScorerError(f"the scorer training wrote no model to {work / 'model'}")


def main(argv: list[str] | None = None) -> int:
    """``python -m mmssr_plugin.testing.demo_scorer``: build (or reuse) the demo scorer and print its folder."""
    import argparse

    from mmssr_plugin.utils.logs import show_logs

    # Under ``python -m`` this file runs as __main__: use the package module, whose logger is shown.
    from mmssr_plugin.testing import demo_scorer

    argparse.ArgumentParser(description="Build the quickstart's demo scorer (tiny, CPU, offline).").parse_args(argv)
    show_logs("[mmssr] ")
    try:
        folder = demo_scorer.build_demo_scorer()
    except demo_scorer.DemoScorerError as err:
        print(f"demo scorer: {err}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
