"""Benchmark ``mmssr-cli select`` on a synthetic pool in the authors' format.

Generates (once, cached in the given folder) a LLaVA-style pool of ``--n`` samples (default
2.6M, the LLaVA-OneVision single-image pool), 14 ``<capability>.jsonl`` score files and
``style.jsonl``, then runs ``mmssr-cli select`` at budget 0.3 on all 14 capabilities as a child
process and reports its wall time and peak RSS next to the authors' 354 s / 5.9 GB.

    .venv/bin/python benchmarks/bench_select.py /tmp/mmssr_bench            # full size
    .venv/bin/python benchmarks/bench_select.py /tmp/mmssr_small --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, STYLES  # noqa: E402

AUTHORS_SECONDS = 354.0  # 5 min 54 s, their selection from score files, 2-core machine
AUTHORS_RSS_GB = 5.9
TARGET_SECONDS = 35.0
TARGET_RSS_GB = 1.5
SEED = 20250317
WORKERS = 8  # score lines are written in the strided order of 8 inference workers

SOURCES = (
    "coco", "chartqa", "geo170k(qa)", "textvqa", "scienceqa", "ai2d", "docvqa", "infographic_vqa",
    "vqarad", "clevr", "visual7w", "vizwiz", "iconqa", "tabmwp", "st_vqa", "ocrvqa", "sharegpt4v",
    "allava_instruct", "mathv360k", "llavar",
)
QUESTIONS = (
    "What color is the bus?", "How many people are in the picture?", "What is written on the sign?",
    "Is the cat sitting on the sofa?", "Describe the image in detail.",
    "Which object is to the left of the lamp?", "What is the title of this chart?",
    "What is the value of x in the triangle?", "Where was this photo most likely taken?",
    "What is the man holding in his right hand?", "Compare the two bars for 2019 and 2020.",
    "Hint: Please answer the question and provide the correct option letter.\nQuestion: Which "
    "material is this spoon made of?\nOptions:\nA. plastic\nB. rubber",
    "What does the café menu say about the crème brûlée?", "Estimate the temperature in °C.",
    "Provide the bounding box coordinate of the region this sentence describes: a red kite.",
    "Answer the question using a single word or phrase. What sport is being played?",
)
ANSWERS = (
    "Red.", "Three.", "Yes.", "No.", "B", "The sign says \"STOP\".", "It reads 22°C on the display.",
    "[0.12, 0.34, 0.56, 0.78]", "Tennis", "The image shows a busy street with cars and a bus.",
    "Let's think step by step. The angles sum to 180, so x = 180 - 65 - 45 = 70.",
    "The 2020 bar is higher than the 2019 bar by about 12 percent.", "A kitchen in a café.",
    "The man is holding an umbrella while crossing the road near the station.",
)
FOLLOW_UPS = ("Why?", "What else can you see?", "Is it daytime?", "How many are red?")
STYLE_ANSWERS = STYLES + tuple(  # 1-3 styles per answer
    ", ".join(STYLES[k] for k in combo) for combo in ((0, 7), (3, 2), (4, 6), (5, 8, 6))
)
BAD_STYLES = ("short answer", "multi-choice, open-ended", "")
BAD_SCORES = ("The answer is 4", "", "3.5", "N/A", "I cannot rate this.")


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    """Write the pool and score files unless a complete copy for ``n`` samples is cached."""
    pool = folder / "pool.json"
    scores = folder / "scores"
    stamp = folder / "complete.json"
    expected = {"n": n, "seed": SEED, "version": 1}
    if stamp.is_file() and json.loads(stamp.read_text()) == expected:
        return pool, scores
    scores.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    _write_pool(pool, n, rng)
    order = np.concatenate([np.arange(w, n, WORKERS) for w in range(WORKERS)])
    idx_text = [str(i) for i in order.tolist()]
    quality = rng.integers(0, 6, n)
    for cap in DEFAULT_CAPABILITIES:
        score = np.clip(quality + rng.integers(-2, 3, n), 0, 5)
        table = [str(k) for k in range(6)] + list(BAD_SCORES)
        codes = np.where(rng.random(n) < 0.01, 6 + rng.integers(0, len(BAD_SCORES), n), score)
        _write_jsonl(scores / f"{cap}.jsonl", idx_text, [table[k] for k in codes[order].tolist()])
    table = list(STYLE_ANSWERS) + list(BAD_STYLES)
    codes = np.where(
        rng.random(n) < 0.01,
        len(STYLE_ANSWERS) + rng.integers(0, len(BAD_STYLES), n),
        rng.integers(0, len(STYLE_ANSWERS), n),
    )
    _write_jsonl(scores / "style.jsonl", idx_text, [table[k] for k in codes[order].tolist()])
    stamp.write_text(json.dumps(expected))
    print(f"generated {n} samples in {folder} in {time.perf_counter() - started:.0f} s", flush=True)
    return pool, scores


def _write_pool(path: Path, n: int, rng: np.random.Generator) -> None:
    def turns_of(role: str, texts: tuple[str, ...], prefix: str = "") -> list[str]:
        return [json.dumps({"from": role, "value": prefix + text}, ensure_ascii=False) for text in texts]

    human = turns_of("human", QUESTIONS, "<image>\n")
    follow = turns_of("human", FOLLOW_UPS)
    gpt = turns_of("gpt", ANSWERS)
    sources = [json.dumps(s) for s in SOURCES]
    block = 100_000
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        for first in range(0, n, block):
            count = min(block, n - first)
            src = rng.integers(0, len(SOURCES), count).tolist()
            turns = rng.integers(1, 4, count).tolist()
            q = rng.integers(0, len(QUESTIONS), count).tolist()
            a = rng.integers(0, len(ANSWERS), (count, 3)).tolist()
            fu = rng.integers(0, len(FOLLOW_UPS), (count, 2)).tolist()
            records = []
            for k in range(count):
                i = first + k
                s = SOURCES[src[k]]
                conv = [human[q[k]], gpt[a[k][0]]]
                for t in range(1, turns[k]):
                    conv += (follow[fu[k][t - 1]], gpt[a[k][t]])
                records.append(
                    f'{{"id": "{s}/{i:08d}", "image": "{s}/{i}.jpg", "conversations": ['
                    f'{", ".join(conv)}], "idx": {i}, "image_source": {sources[src[k]]}}}'
                )
            if first:
                f.write(",\n")
            f.write(",\n".join(records))
        f.write("\n]\n")


def _write_jsonl(path: Path, idx_text: list[str], responses: list[str]) -> None:
    line = '{{"idx": {}, "pred_response": {}}}'.format
    quoted = {text: json.dumps(text) for text in set(responses)}
    with open(path, "w", encoding="utf-8") as f:
        step = 500_000
        for first in range(0, len(idx_text), step):
            chunk = map(line, idx_text[first:first + step], map(quoted.__getitem__, responses[first:first + step]))
            f.write("\n".join(chunk))
            f.write("\n")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the synthetic data is generated (cached)")
    parser.add_argument("--n", type=int, default=2_600_000, help="pool size (default 2.6M)")
    parser.add_argument("--budget", default="0.3")
    args = parser.parse_args()
    pool, scores = generate(args.folder, args.n)
    output = args.folder / "selected.json"
    command = [
        sys.executable, "-m", "mmssr_plugin.cli", "select", "--pool", str(pool), "--scores", str(scores),
        "--budget", args.budget, "--capabilities", ",".join(DEFAULT_CAPABILITIES), "--output", str(output),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    load_before = f"{os.getloadavg()[0]:.2f}"
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_gb = usage.ru_maxrss * 1024 / 1e9  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    gigabytes = {p.name: p.stat().st_size / 1e9 for p in [pool, *sorted(scores.iterdir())]}
    print()
    print("command:", " ".join(command))
    print(f"machine: {platform.platform()}, {_cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"data: {args.n} samples, pool {gigabytes[pool.name]:.2f} GB, score files "
          f"{sum(gigabytes.values()) - gigabytes[pool.name]:.2f} GB")
    print(f"load average before/after: {load_before} / {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print(f"exit status: {done.returncode}")
    print(f"CPU time of the run: {cpu:.1f} s (user + system, both cores)")
    print(f"wall time: {wall:.1f} s (authors: {AUTHORS_SECONDS:.0f} s, {AUTHORS_SECONDS / wall:.1f}x; target <= {TARGET_SECONDS:.0f} s)")
    print(f"peak RSS: {rss_gb:.2f} GB (authors: {AUTHORS_RSS_GB} GB, {AUTHORS_RSS_GB / rss_gb:.1f}x less; target < {TARGET_RSS_GB} GB)")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
