"""Every bad input and interruption the plugin is known to meet, with the one line it answers.

A table that only grows: each row runs the real command (``mmssr-cli ...`` or
``llamafactory-cli``) or the real function and checks a non-zero exit, exactly one line on stderr
that names the key and what would be valid, and no traceback anywhere in the output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO

MMSSR_CLI = str(Path(sys.executable).parent / "mmssr-cli")

# Imported first by every Python process of a row that sets one of its variables: a fake engine
# that is slow (to interrupt it), killed, or broken inside the scoring worker.
_TEST_SITECUSTOMIZE = '''
import os
if any(os.environ.get(k) for k in ("MMSSR_TEST_SLOW_FAKE", "MMSSR_TEST_WORKER_DIES")):
    import signal, time
    from mmssr_plugin.engines import fake
    _score = fake.FakeEngine.score
    def _patched(self, samples, capabilities):
        if os.environ.get("MMSSR_TEST_WORKER_DIES") == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("MMSSR_TEST_WORKER_DIES") == "every sample fails":
            raise MemoryError("the test engine ran out of memory")
        time.sleep(float(os.environ.get("MMSSR_TEST_SLOW_FAKE") or 0) * len(samples))
        return _score(self, samples, capabilities)
    fake.FakeEngine.score = _patched
    _init = fake.FakeEngine.__init__
    def _init_patched(self, *args, **kwargs):
        if os.environ.get("MMSSR_TEST_WORKER_DIES") == "raises":
            raise RuntimeError("the test engine cannot load")
        _init(self, *args, **kwargs)
    fake.FakeEngine.__init__ = _init_patched
'''


def command_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a row's command: this checkout first on PYTHONPATH, the test hooks."""
    site = tmp_path / "test_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_TEST_SITECUSTOMIZE)
    paths = [str(site), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths)), **(extra or {})}


def assert_one_line(result: subprocess.CompletedProcess, expected: str, status: int = 2) -> str:
    """A non-zero ``status``, one stderr line containing ``expected``, no traceback; the line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def processes_mentioning(*texts: str) -> list[int]:
    """Pids of live processes whose command line contains every one of ``texts`` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if all(text in cmdline for text in texts) and state != "Z":
            pids.append(int(entry.name))
    return pids


# --- scoring: the score command, the store, the workers, interrupts -------------------------------


@dataclass(frozen=True)
class ScoringCase:
    """One bad input of ``mmssr-cli score`` (``{data}``, ``{pool}``, ``{cache}`` in ``args``)."""

    id: str
    args: list[str]
    expected: str
    status: int = 2
    env: dict[str, str] = field(default_factory=dict)
    pool: list | None = None  # written to {pool}; default: the demo pool with its images
    send: int | None = None  # a signal sent to the command once its first shard is written


_FAKE = ["--backend", "fake", "--no-progress"]
_SLOW = {"MMSSR_TEST_SLOW_FAKE": "0.15"}
_RESUME = "run the same command again to resume"


def scoring_workers(cache: Path) -> list[int]:
    """Pids of the live scoring workers of the store under ``cache``."""
    return processes_mentioning("mmssr_plugin.scoring.worker", str(cache))

SCORING_CASES = [
    ScoringCase("workers-0", ["--pool", "{pool}", *_FAKE, "--workers", "0"],
                "--workers must be an integer >= 1"),
    ScoringCase("shard-size-0", ["--pool", "{pool}", *_FAKE, "--shard-size", "0"],
                "--shard-size must be an integer >= 1"),
    ScoringCase("pool-missing", ["--pool", "{data}/nowhere.json", *_FAKE], "nowhere.json not found"),
    ScoringCase("pool-empty", ["--pool", "{pool}", *_FAKE], "has no rows: nothing to score", pool=[]),
    ScoringCase(
        "nothing-scored", ["--pool", "{pool}", *_FAKE, "--cache-dir", "{cache}"],
        "no sample was scored: all 2 failed (2 x invalid sample); first: invalid sample: missing "
        "image: gone/a.png",
        pool=[{"image": f"gone/{n}.png", "conversations": [
            {"from": "human", "value": "<image>What?"}, {"from": "gpt", "value": "A."}]}
            for n in ("a", "b")],
    ),
    ScoringCase("worker-killed", ["--pool", "{pool}", *_FAKE, "--cache-dir", "{cache}"],
                "scoring worker 1 of 1 was killed by SIGKILL", env={"MMSSR_TEST_WORKER_DIES": "killed"}),
    ScoringCase("worker-raises", ["--pool", "{pool}", *_FAKE, "--cache-dir", "{cache}"],
                "scoring worker 1 of 1 exited with code 1: RuntimeError: the test engine cannot "
                "load; finished shards are kept and a rerun resumes; log: ",
                env={"MMSSR_TEST_WORKER_DIES": "raises"}),
    ScoringCase("engine-fails-every-sample", ["--pool", "{pool}", *_FAKE, "--cache-dir", "{cache}"],
                "no sample was scored: all 40 failed (40 x scoring failed); first: scoring failed: "
                "MemoryError: the test engine ran out of memory",
                env={"MMSSR_TEST_WORKER_DIES": "every sample fails"}),
    ScoringCase("sigint", ["--pool", "{pool}", *_FAKE, "--cache-dir", "{cache}", "--shard-size", "4"],
                "scoring interrupted by SIGINT: the workers are stopped", status=130, env=_SLOW,
                send=signal.SIGINT),
    ScoringCase("sigterm", ["--pool", "{pool}", *_FAKE, "--cache-dir", "{cache}", "--shard-size", "4"],
                "scoring interrupted by SIGTERM: the workers are stopped", status=143, env=_SLOW,
                send=signal.SIGTERM),
]


@pytest.mark.parametrize("case", SCORING_CASES, ids=[c.id for c in SCORING_CASES])
def test_scoring_bad_inputs(case: ScoringCase, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "data_info", data, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    pool = data / "mmssr_demo" / "pool.json"
    if case.pool is not None:
        pool = tmp_path / "pool.json"
        pool.write_text(json.dumps(case.pool))
    cache = tmp_path / "cache"
    args = [a.format(data=data, pool=pool, cache=cache) for a in case.args]
    env = command_env(tmp_path, case.env)
    if case.send is None:
        result = subprocess.run([MMSSR_CLI, "score", *args], capture_output=True, text=True,
                                env=env, cwd=tmp_path, timeout=180)
        assert_one_line(result, case.expected, case.status)
        assert not scoring_workers(cache)
        return

    process = subprocess.Popen([MMSSR_CLI, "score", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(cache.glob("scores/*/shard-*.parquet")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    assert scoring_workers(cache), "no scoring worker was running"
    process.send_signal(case.send)  # to the parent only: it must stop its workers itself
    stdout, stderr = process.communicate(timeout=60)
    line = assert_one_line(subprocess.CompletedProcess([], process.returncode, stdout, stderr),
                           case.expected, case.status)
    assert _RESUME in line and "shard(s) finished in this run are kept" in line
    assert not scoring_workers(cache), "a scoring worker outlived the command"
    kept = len(list(cache.glob("scores/*/shard-*.parquet")))
    assert 1 <= kept < 10
    resumed = subprocess.run([MMSSR_CLI, "score", *args], capture_output=True, text=True,
                             env=command_env(tmp_path), cwd=tmp_path, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({kept} of 10 shards reused)" in resumed.stdout


def test_scoring_workers_never_outlive_a_killed_command(tmp_path: Path) -> None:
    """SIGKILL to the command alone (no handler can run): its workers stop by themselves."""
    cache = tmp_path / "cache"
    args = ["score", "--pool", str(REPO / "data_info" / "mmssr_demo" / "pool.json"), *_FAKE,
            "--cache-dir", str(cache), "--shard-size", "4", "--workers", "2"]
    process = subprocess.Popen([MMSSR_CLI, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env=command_env(tmp_path, {"MMSSR_TEST_SLOW_FAKE": "1"}))
    deadline = time.monotonic() + 120
    while not list(cache.glob("scores/*/shard-*.parquet")) and time.monotonic() < deadline:
        assert process.poll() is None
        time.sleep(0.1)
    assert len(scoring_workers(cache)) == 2  # both in the middle of their shards
    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while scoring_workers(cache) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not scoring_workers(cache), "scoring workers outlived their command"


# --- config: the data_selection block and training YAMLs (mmssr-cli train, llamafactory-cli) ------


@dataclass(frozen=True)
class ConfigCase:
    """One bad training config: ``block`` (``{tmp}``, ``{data}`` filled in) merged into the
    ``data_selection`` block of a random/fake-scorer selection of the demo pool; ``top`` into the
    training arguments; ``prepare(tmp, data)`` changes files first; ``raw`` is the YAML text."""

    id: str
    expected: str
    block: dict = field(default_factory=dict)
    top: dict = field(default_factory=dict)
    prepare: object = None
    raw: str | None = None
    command: str = "mmssr-cli"
    env: dict[str, str] = field(default_factory=dict)
    log_lines: bool = False  # the stage's [mmssr] progress lines may come before the error


def _touch(relative: str):
    def prepare(tmp: Path, data: Path) -> None:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_text("{}")
    return prepare


def _truncate_pool(tmp: Path, data: Path) -> None:
    pool = data / "mmssr_demo" / "pool.json"
    pool.write_text(pool.read_text()[:500])


def _block_subset_path(tmp: Path, data: Path) -> None:
    """Make the selection once, then put a folder where its subset file goes."""
    first = _run_train(tmp, _config_yaml(tmp, data, {}, {}), {})
    assert first.returncode == 0, first.stderr
    (subset,) = (data / "mmssr_subsets").glob("mmssr_demo_random_*.json")
    subset.unlink()
    subset.mkdir()


def _llava_qwen_config(**changes):
    """A released llava_qwen ``config.json`` (only the fields the loader checks) with ``changes``."""
    def prepare(tmp: Path, data: Path) -> None:
        config = {"model_type": "llava_qwen", "mm_projector_type": "mlp2x_gelu",
                  "mm_vision_tower": "google/siglip-so400m-patch14-384",
                  "mm_patch_merge_type": "spatial_unpad", "image_aspect_ratio": "anyres_max_9",
                  **changes}
        (tmp / "model").mkdir()
        (tmp / "model" / "config.json").write_text(json.dumps(config))
    return prepare


_SCORER_OK = {"method": "mmssr", "backend": "hf", "model_name_or_path": "{tmp}/model"}
CONFIG_CASES = [
    ConfigCase("model-path-missing", "data_selection.model_name_or_path: /nonexistent/scorer does "
               "not exist; give a local model folder (with config.json) or a hub id such as org/name",
               {"method": "mmssr", "model_name_or_path": "/nonexistent/scorer"}),
    ConfigCase("model-folder-without-config", "data_selection.model_name_or_path: folder "
               "{tmp} holds no config.json", {"method": "mmssr", "model_name_or_path": "{tmp}"}),
    ConfigCase("adapter-missing", "data_selection.adapter_name_or_path: ./lora/none does not exist; "
               "give a local LoRA adapter folder (with adapter_config.json)",
               {**_SCORER_OK, "adapter_name_or_path": "./lora/none"}, prepare=_touch("model/config.json")),
    ConfigCase("unknown-template", "data_selection.template: unknown template 'qwen2vl'; did you "
               "mean qwen2_vl", {**_SCORER_OK, "template": "qwen2vl"},
               prepare=_touch("model/config.json")),
    ConfigCase("llava-qwen-projector", "data_selection.model_name_or_path: {tmp}/model: "
               "mm_projector_type 'linear' is not supported (only mlp2x_gelu)", _SCORER_OK,
               prepare=_llava_qwen_config(mm_projector_type="linear")),
    ConfigCase("llava-qwen-vision-tower", "data_selection.model_name_or_path: {tmp}/model: vision "
               "tower 'openai/clip-vit-large-patch14-336' is not supported (only SigLIP so400m)",
               _SCORER_OK, prepare=_llava_qwen_config(mm_vision_tower="openai/clip-vit-large-patch14-336")),
    ConfigCase("llava-qwen-hub-id", "data_selection.model_name_or_path: mengyaolyu/mmssr-7b-scorer "
               "has no config.json: a llava_qwen checkpoint must be a local folder (download it "
               "first)", {"method": "mmssr", "model_name_or_path": "mengyaolyu/mmssr-7b-scorer",
                          "model_layout": "llava_qwen"}),
    ConfigCase("llava-qwen-template", "data_selection.template: 'qwen' is not used by the llava_qwen "
               "layout, which builds the authors' prompts itself; leave data_selection.template "
               "unset (or mmssr_llava_qwen)", {**_SCORER_OK, "template": "qwen"},
               prepare=_llava_qwen_config()),
    ConfigCase("llava-qwen-template-on-llamafactory-model", "data_selection.template: "
               "mmssr_llava_qwen is the template of converted llava_qwen checkpoints, but "
               "data_selection.model_name_or_path loads through LLaMA-Factory",
               {**_SCORER_OK, "template": "mmssr_llava_qwen"}, prepare=_touch("model/config.json")),
    ConfigCase("infer-dtype", "data_selection.infer_dtype must be one of ['auto', 'float16', "
               "'bfloat16', 'float32'], got 'fp16'", {**_SCORER_OK, "infer_dtype": "fp16"}),
    ConfigCase("threshold-above-scale", "data_selection.threshold must lie in [0, 5) (scores are "
               "0..5", {"threshold": 7}),
    ConfigCase("threshold-not-a-number", "data_selection.threshold must be a number in [0, 5), "
               "got 'high'", {"threshold": "high"}),
    ConfigCase("unknown-capability", "data_selection.capabilities: unknown capabilities ['medical']"
               "; known: spatial", {"capabilities": "ocr,medical"}),
    ConfigCase("unknown-capability-hint", "add a capability of your own under "
               "data_selection.capability_keywords (id: keyword)", {"capabilities": ["medical"]}),
    ConfigCase("unknown-key", "unknown data_selection keys ['budgt']; valid keys: method, budget",
               {"budgt": 0.3}),
    ConfigCase("output-dir-is-a-file", "data_selection.output_dir: {tmp}/out is an existing file; "
               "give a folder", {"output_dir": "{tmp}/out"}, prepare=_touch("out")),
    ConfigCase("cache-dir-is-a-file", "data_selection.cache_dir: {tmp}/cache is an existing file",
               {"cache_dir": "{tmp}/cache"}, prepare=_touch("cache")),
    ConfigCase("output-dir-under-a-file", "data_selection.output_dir: {tmp}/out/sub cannot be "
               "created: {tmp}/out is a file", {"output_dir": "{tmp}/out/sub"}, prepare=_touch("out")),
    ConfigCase("subset-path-is-a-folder", "data_selection.output_dir: the file {data}/mmssr_subsets/"
               "mmssr_demo_random_b0.25_", prepare=_block_subset_path),
    ConfigCase("dataset-json-truncated", "cannot parse JSON file {data}/mmssr_demo/pool.json",
               prepare=_truncate_pool),
    ConfigCase("yaml-syntax", "cannot read training config {tmp}/train.yaml: ", raw="a: [1,\nb: 2\n"),
    ConfigCase("yaml-not-a-mapping", "{tmp}/train.yaml does not hold a mapping", raw="- 1\n- 2\n"),
    ConfigCase("no-digit-answers", "the scorer answered no digit: mean probability on the digits "
               "0..5 (digit mass) 0.", {"method": "mmssr", "backend": "fake", "min_digit_mass": 1.0},
               log_lines=True),
    ConfigCase("hook-disabled-with-block", "mmssr-plugin: error: the training config has a "
               "data_selection block, but MMSSR_DISABLE_HOOK=1 switches the selection stage off",
               command="llamafactory-cli", env={"MMSSR_DISABLE_HOOK": "1"}),
]


def _config_yaml(tmp: Path, data: Path, block: dict, top: dict) -> Path:
    import yaml

    fill = lambda v: v.format(tmp=tmp, data=data) if isinstance(v, str) else v  # noqa: E731
    config = {
        "model_name_or_path": str(tmp / "model"), "stage": "sft", "do_train": True,
        "finetuning_type": "lora", "template": "qwen2_vl", "dataset": "mmssr_demo",
        "dataset_dir": str(data), "output_dir": str(tmp / "train_out"),
        "data_selection": {"method": "random", "budget": 0.25,
                           **{k: fill(v) for k, v in block.items()}},
        **top,
    }
    path = tmp / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run_train(tmp: Path, config: Path, env: dict[str, str], command: str = "mmssr-cli"):
    if command == "mmssr-cli":
        argv = [MMSSR_CLI, "train", str(config), "--select-only"]
    else:
        argv = [str(Path(sys.executable).parent / "llamafactory-cli"), "train", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=tmp, timeout=300,
                          env=command_env(tmp, {"MMSSR_ERROR_LOG_DIR": str(tmp / "errors"), **env}))


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_bad_inputs(case: ConfigCase, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "data_info", data, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    if case.prepare is not None:
        case.prepare(tmp_path, data)
    if case.raw is not None:
        config = tmp_path / "train.yaml"
        config.write_text(case.raw)
    else:
        config = _config_yaml(tmp_path, data, case.block, case.top)
    result = _run_train(tmp_path, config, case.env, case.command)
    expected = case.expected.format(tmp=tmp_path, data=data)
    if case.log_lines:
        assert_error_line(result, expected)
    else:
        assert_one_line(result, expected, 2)
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
    assert not list((tmp_path / "errors").glob("*")), "an internal error was logged"


def assert_error_line(result: subprocess.CompletedProcess, expected: str, status: int = 2) -> str:
    """Like ``assert_one_line``, where ``[mmssr]`` lines and the progress bar may come first."""
    lines = [line for line in result.stderr.strip().splitlines()
             if line.strip() and not line.startswith(("[mmssr] ", "scoring: "))]
    assert result.returncode == status, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


# --- commands: select, curate, report, train ------------------------------------------------------


_POOL = [{"idx": i, "image_source": "coco" if i % 2 else "chart",
          "conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": "A"}]}
         for i in range(10, 16)]


def _score_lines(key: str = "pred_response", value=lambda i: str(i % 6), ids=range(10, 16)) -> str:
    return "".join(json.dumps({"idx": i, key: value(i)}) + "\n" for i in ids)


@dataclass(frozen=True)
class CommandCase:
    """One bad input of a command: ``files`` (name -> text) under ``{tmp}``, then ``argv``."""

    id: str
    argv: list[str]
    expected: str
    files: dict[str, str] = field(default_factory=dict)
    status: int = 2


_SELECT = ["select", "--pool", "{tmp}/pool.json", "--scores", "{tmp}/scores", "--budget", "3",
           "--capabilities", "ocr", "--output", "{tmp}/out.json", "--no-report"]
_GOOD_SCORES = {"pool.json": json.dumps(_POOL), "scores/ocr.jsonl": _score_lines(),
                "scores/style.jsonl": _score_lines(value=lambda i: "yes/no")}
COMMAND_CASES = [
    CommandCase("select-ids-match-nothing", _SELECT, "{tmp}/scores/ocr.jsonl: 0 of its 6 idx values "
                "match the pool's 6 samples (pool idx 10..15, file idx 100..105)",
                {**_GOOD_SCORES, "scores/ocr.jsonl": _score_lines(ids=range(100, 106)),
                 "scores/style.jsonl": _score_lines(value=lambda i: "yes/no", ids=range(100, 106))}),
    CommandCase("select-score-file-empty", _SELECT, "{tmp}/scores/ocr.jsonl is empty: expected one "
                'JSON line {"idx": <pool idx>, "pred_response": "<answer>"} per sample',
                {**_GOOD_SCORES, "scores/ocr.jsonl": ""}),
    CommandCase("select-no-pred-response", _SELECT, "{tmp}/scores/ocr.jsonl: no line has a "
                "pred_response (the scorer's answer); lines look like {idx, answer}",
                {**_GOOD_SCORES, "scores/ocr.jsonl": _score_lines(key="answer")}),
    CommandCase("select-numeric-pred-response", _SELECT, "{tmp}/scores/ocr.jsonl: not JSON lines of "
                "{idx, pred_response}: line 1: pred_response must be the answer as text (e.g. \"4\"), "
                "got int 4", {**_GOOD_SCORES, "scores/ocr.jsonl": _score_lines(value=lambda i: 4)}),
    CommandCase("select-no-digit-answers", _SELECT, "nothing selected, {tmp}/out.json not written: no "
                "score line holds a digit answer 0..5 for a pool sample (unparseable: ocr.jsonl 6 of 6)",
                {**_GOOD_SCORES, "scores/ocr.jsonl": _score_lines(value=lambda i: "maybe")}),
    CommandCase("select-threshold-above-scale", [*_SELECT, "--threshold", "7"],
                "argument --threshold: must lie in [0, 5)", _GOOD_SCORES),
    CommandCase("train-yaml-syntax", ["train", "{tmp}/t.yaml", "--select-only"],
                "cannot read training config {tmp}/t.yaml:", {"t.yaml": "data_selection: {budget: [\n"}),
    CommandCase("report-manifest-missing", ["report", "--manifest", "{tmp}/m.json", "--dataset-dir",
                "{tmp}"], "selection manifest {tmp}/m.json not found"),
]


@pytest.mark.parametrize("case", COMMAND_CASES, ids=[c.id for c in COMMAND_CASES])
def test_command_bad_inputs(case: CommandCase, tmp_path: Path) -> None:
    for name, text in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    argv = [a.format(tmp=tmp_path) for a in case.argv]
    result = subprocess.run([MMSSR_CLI, *argv], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120, env=command_env(tmp_path))
    assert_one_line(result, case.expected.replace("{tmp}", str(tmp_path)), case.status)
    assert not (tmp_path / "out.json").exists()


def test_curate_against_an_unreachable_teacher_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = tmp_path / "labels.jsonl"
    argv = [MMSSR_CLI, "curate", "--dataset-dir", str(REPO / "data_info"), "--dataset", "mmssr_demo",
            "--num-samples", "2", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "t",
            "--max-retries", "0", "--output", str(output)]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env=command_env(tmp_path))
    line = assert_error_line(
        subprocess.CompletedProcess([], result.returncode, result.stdout,
                                    "\n".join(l for l in result.stderr.splitlines() if "curate:" not in l)),
        f"cannot reach the teacher at http://127.0.0.1:{port}/v1/chat/completions (all 2 samples "
        "failed to connect)")
    assert f"no label was written to {output}" in line
    assert "wrote:" not in result.stdout and not output.exists()


def test_select_into_head_ends_quietly(tmp_path: Path) -> None:
    for name, text in _GOOD_SCORES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    argv = " ".join([MMSSR_CLI, *(a.format(tmp=tmp_path) for a in _SELECT)])
    result = subprocess.run(f"set -o pipefail; {argv} | head -1", shell=True, executable="/bin/bash",
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env=command_env(tmp_path))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith("pool: ") and (tmp_path / "out.json").is_file()


def test_internal_error_is_one_line_naming_its_log(tmp_path: Path, monkeypatch, capsys) -> None:
    from mmssr_plugin import cli
    from mmssr_plugin.commands import select

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setenv("MMSSR_ERROR_LOG_DIR", str(tmp_path / "errors"))
    monkeypatch.setattr(select, "run", broken)
    assert cli.main(["select", "--pool", "p", "--scores", "s", "--budget", "1", "--output", "o"]) == 1
    err = capsys.readouterr().err
    (log,) = (tmp_path / "errors").glob("error-*.log")
    assert err == f"mmssr-cli: internal error (KeyError: 'a bug'); the traceback is in {log}\n"
    assert "Traceback" in log.read_text() and "KeyError: 'a bug'" in log.read_text()


def test_help_config_names_the_values_of_ranking(capsys) -> None:
    from mmssr_plugin import cli

    assert cli.main(["train", "--help-config"]) == 0
    (ranking,) = [line for line in capsys.readouterr().out.splitlines() if "ranking (" in line]
    assert "Values: argmax, expected." in ranking and "argmax:" in ranking and "expected:" in ranking


def test_select_only_writes_the_resolved_config_into_the_dataset_cache(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(REPO / "data_info", data, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = _run_train(work, _config_yaml(tmp_path, data, {}, {}), {})
    assert result.returncode == 0, result.stderr
    (resolved,) = (data / ".mmssr_cache" / "train_configs").glob("*.yaml")
    assert f"[mmssr] resolved training config: {resolved}" in result.stderr
    assert not (work / ".mmssr_cache").exists()


def test_reusing_selection_is_said_once_per_process(tmp_path: Path, monkeypatch, capsys) -> None:
    """The hook runs the stage in launch() and again in read_args(): one 'reusing' line in all."""
    import types

    from mmssr_plugin.llamafactory.hook import patch_module

    data = tmp_path / "data"
    shutil.copytree(REPO / "data_info", data, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    config = _config_yaml(tmp_path, data, {}, {})
    assert _run_train(tmp_path, config, {}).returncode == 0  # the selection exists now
    import mmssr_plugin.llamafactory.hook as hook

    monkeypatch.setattr(hook, "_STATE", {"launched": False})
    tuner = types.ModuleType("llamafactory.train.tuner")
    launcher = types.ModuleType("llamafactory.launcher")
    tuner.read_args = lambda args=None: hook.load_config_args(str(config), [])
    launcher.launch = lambda: tuner.read_args()
    patch_module(tuner)
    patch_module(launcher)
    monkeypatch.setattr(sys, "argv", ["llamafactory-cli", "train", str(config)])
    args = launcher.launch()
    assert "data_selection" not in args and args["dataset"].startswith("mmssr_demo_random_")
    assert capsys.readouterr().err.count("reusing selection") == 1
