"""mmssr-cli curate against a real local OpenAI-compatible server with scripted faults."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest
from PIL import Image

from mmssr_plugin import cli
from mmssr_plugin.core.taxonomy import STYLES, resolve_capabilities
from mmssr_plugin.curation.answers import parse_answer
from mmssr_plugin.curation.backoff import parse_retry_after
from mmssr_plugin.curation.errors import InvalidAnswer, LabelFileError
from mmssr_plugin.curation.labels import label_from_json, read_labels
from mmssr_plugin.curation.pick import pick_samples
from mmssr_plugin.curation.teacher_prompt import build_request
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.sample import Sample

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "data_info"
DEMO = "mmssr_demo"
MYCAP = ("mycap", "reading analog clocks")
CAPS_ARG = "spatial,ocr,mycap"
FAST = ["--retry-base-delay", "0.01", "--retry-max-delay", "0.05", "--concurrency", "4"]


def content_key(content: Any) -> str:
    """Identity of one request's user content (prompt text and inlined images)."""
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()


def teacher_scores(text: str, cap_ids: Sequence[str]) -> dict[str, int]:
    """The fake teacher's deterministic scores: a hash of the prompt and the capability id."""
    return {c: int(hashlib.sha256(f"{text}|{c}".encode()).hexdigest(), 16) % 6 for c in cap_ids}


def teacher_styles(text: str) -> list[str]:
    digest = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    first, second = STYLES[digest % 9], STYLES[(digest // 9) % 9]
    return [first] if first == second or digest % 2 else [first, second.upper()]  # case is normalised


class FakeTeacher:
    """``POST /v1/chat/completions`` on 127.0.0.1 that rates deterministically and fails on cue.

    ``script[uid]`` lists behaviours for that uid's 1st, 2nd, ... request ("ok" afterwards):
    ``ok``, ``500``, ``429`` (Retry-After: 1), ``garbage`` (not JSON), ``range`` (a score of 7),
    ``missing`` (a capability left out), ``style`` (an unknown style), ``drop`` (connection closed
    without an answer), ``slow`` (answers after 1 s), ``400``. After ``fatal_after`` requests in
    all, every answer is 401; ``delay`` slows every answer down.
    """

    def __init__(self, samples: Sequence[Sample] = (), capabilities: Sequence = ()) -> None:
        self.uids = {content_key(build_request(s, capabilities, "m")["messages"][1]["content"]): s.uid
                     for s in samples}
        assert len(self.uids) == len(samples), "two samples send the same request"
        self.script: dict[str, list[str]] = {}
        self.fatal_after: int | None = None
        self.delay = 0.0  # seconds before every answer
        self.api_key: str | None = None
        self.requests: Counter = Counter()  # uid -> requests
        self.times: dict[str, list[float]] = defaultdict(list)
        self.bodies: list[dict] = []
        self.total = 0
        self._lock = threading.Lock()
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                teacher.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset_counts(self) -> None:
        self.requests.clear()
        self.total = 0

    def handle(self, http: BaseHTTPRequestHandler) -> None:
        body = json.loads(http.rfile.read(int(http.headers["Content-Length"])))
        content = body["messages"][1]["content"]
        uid = self.uids.get(content_key(content), content_key(content))
        with self._lock:
            self.total += 1
            number = self.requests[uid]
            self.requests[uid] += 1
            self.times[uid].append(time.monotonic())
            self.bodies.append(body)
            script = self.script.get(uid, [])
            action = script[number] if number < len(script) else "ok"
            if self.fatal_after is not None and self.total > self.fatal_after:
                action = "401"
        if http.path != "/v1/chat/completions":
            return self.reply(http, 404, {"error": "no such route"})
        if self.api_key and http.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.reply(http, 401, {"error": "bad key"})
        if action == "drop":
            http.close_connection = True
            return
        if action in ("500", "400", "401"):
            return self.reply(http, int(action), {"error": action})
        if action == "429":
            return self.reply(http, 429, {"error": "slow down"}, {"Retry-After": "1"})
        time.sleep(1.0 if action == "slow" else self.delay)
        text = content[-1]["text"]
        cap_ids = re.findall(r"^- ([\w-]+): ", text, flags=re.MULTILINE)
        answer: dict[str, Any] = {"scores": teacher_scores(text, cap_ids), "styles": teacher_styles(text)}
        if action == "range":
            answer["scores"][cap_ids[0]] = 7
        elif action == "missing":
            del answer["scores"][cap_ids[-1]]
        elif action == "style":
            answer["styles"] = ["haiku"]
        message = "this is not JSON" if action == "garbage" else json.dumps(answer)
        self.reply(http, 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": message}}]})

    @staticmethod
    def reply(http: BaseHTTPRequestHandler, status: int, obj: dict, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        http.send_response(status)
        http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            http.send_header(key, value)
        http.end_headers()
        http.wfile.write(data)


@contextlib.contextmanager
def _commands_listed() -> Iterator[None]:
    """Make the dispatcher know curate and build-scorer-data (until its command list has them)."""
    modules = {"curate": "curate", "build-scorer-data": "build_scorer_data"}
    saved = cli.COMMANDS, cli.load_command
    missing = tuple(name for name in modules if name not in cli.COMMANDS)
    if missing:
        cli.COMMANDS = (*cli.COMMANDS, *missing)
        cli.load_command = lambda name: saved[1](modules.get(name, name))
    try:
        yield
    finally:
        cli.COMMANDS, cli.load_command = saved


def mmssr(*argv: Any) -> tuple[int, str, str]:
    """Run ``mmssr-cli`` in-process: ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with _commands_listed(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(arg) for arg in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo_samples() -> list[Sample]:
    return load_samples(DEMO_DIR, DEMO)


def demo_caps():
    return resolve_capabilities(CAPS_ARG, dict([MYCAP]))


def curate_args(url: str, output: Path, num: int, *extra: str) -> list[str]:
    return [
        "curate", "--dataset-dir", DEMO_DIR, "--dataset", DEMO, "--num-samples", num, "--seed", "7",
        "--capabilities", CAPS_ARG, "--keyword", f"{MYCAP[0]}={MYCAP[1]}", "--base-url", url,
        "--model", "fake-teacher", "--output", output, *FAST, *extra,
    ]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------------------------


def test_pick_is_seeded_prefix_stable_and_skips_invalid(demo_samples):
    ten, twenty = pick_samples(demo_samples, 10, 7), pick_samples(demo_samples, 20, 7)
    assert twenty[:10] == ten and len({s.uid for s in twenty}) == 20
    assert pick_samples(demo_samples, 10, 8) != ten
    assert len(pick_samples(demo_samples, 999, 7)) == 40
    broken = Sample(uid="x:0:0", dataset="x", row=0, turns=(), problems=("empty conversation",))
    assert broken not in pick_samples([broken, *demo_samples], 41, 7)


def test_request_inlines_png_and_asks_for_every_capability(tmp_path, demo_samples):
    caps = demo_caps()
    request = build_request(demo_samples[0], caps, "fake-teacher")
    assert request["model"] == "fake-teacher"
    assert request["response_format"] == {"type": "json_object"}
    image, text = request["messages"][1]["content"]
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == Path(demo_samples[0].images[0]).read_bytes()
    assert "Question: <image>\nWhat color are the squares?" in text["text"]
    assert "- mycap: reading analog clocks" in text["text"]
    assert all(style in text["text"] for style in STYLES)

    jpeg = tmp_path / "x.jpg"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(jpeg)
    sample = Sample(uid="j:0:0", dataset="j", row=0, turns=("<image>\nHi", "Yo"), images=(str(jpeg),))
    jpeg_url = build_request(sample, caps, "m")["messages"][1]["content"][0]["image_url"]["url"]
    decoded = Image.open(io.BytesIO(base64.b64decode(jpeg_url.split(",", 1)[1])))
    assert decoded.format == "PNG" and decoded.size == (8, 8)


@pytest.mark.parametrize(
    "content, reason",
    [
        ("no json here", "not json"),
        ("[1, 2]", "bad shape"),
        ('{"scores": {"spatial": 1, "mycap": 2}, "styles": ["yes/no"]}', "missing capability"),
        ('{"scores": {"spatial": 1, "ocr": 6, "mycap": 2}, "styles": ["yes/no"]}', "bad score"),
        ('{"scores": {"spatial": 1, "ocr": "3", "mycap": 2}, "styles": ["yes/no"]}', "bad score"),
        ('{"scores": {"spatial": 1.5, "ocr": 3, "mycap": 2}, "styles": ["yes/no"]}', "bad score"),
        ('{"scores": {"spatial": true, "ocr": 3, "mycap": 2}, "styles": ["yes/no"]}', "bad score"),
        ('{"scores": {"spatial": 1, "ocr": 3, "mycap": 2}, "styles": ["poem"]}', "unknown style"),
        ('{"scores": {"spatial": 1, "ocr": 3, "mycap": 2}, "styles": []}', "no style"),
        ('{"scores": {"spatial": 1, "ocr": 3, "mycap": 2}}', "no style"),
        ('{"scores": [1, 3, 2], "styles": ["yes/no"]}', "bad shape"),
    ],
)
def test_invalid_answers_are_named(content, reason):
    with pytest.raises(InvalidAnswer) as err:
        parse_answer(content, demo_caps())
    assert err.value.reason == reason


def test_valid_answer_is_normalised_not_guessed():
    answer = {"scores": {"spatial": 5, "ocr": 0.0, "mycap": 3, "extra": 9},
              "styles": [" Yes/No ", "comparison", "yes/no"]}
    content = f"```json\n{json.dumps(answer)}\n```"
    scores, styles = parse_answer(content, demo_caps())
    assert scores == {"spatial": 5, "ocr": 0, "mycap": 3}
    assert styles == ("yes/no", "comparison")


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("99999") == 600.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_curate_retries_validates_and_records(tmp_path, demo_samples):
    picked = pick_samples(demo_samples, 12, 7)
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        teacher.api_key = "sk-test"
        u = [s.uid for s in picked]
        teacher.script = {
            u[0]: ["500", "500"],  # two server errors, then fine
            u[1]: ["429"],  # Retry-After: 1 must be honoured
            u[2]: ["garbage", "range", "missing", "style"],  # four invalid answers, then fine
            u[3]: ["garbage"] * 5,  # never valid within 1 + 4 attempts: rejected
            u[4]: ["drop"],  # connection closed without an answer
            u[5]: ["400"],  # the request itself is refused: rejected at once
            u[6]: ["500"] * 5,  # server errors beyond the limit: rejected
        }
        began = time.monotonic()
        args = curate_args(teacher.url, output, 12, "--api-key", "sk-test", "--max-retries", "4")
        status, out, err = mmssr(*args)
        assert time.monotonic() - began < 20
    assert status == 0, err
    accepted = lines(output)
    rejected = lines(Path(f"{output}.rejected.jsonl"))
    assert len(accepted) == 9 and len(rejected) == 3
    by_uid = {r["uid"]: r for r in rejected}
    assert set(by_uid) == {u[3], u[5], u[6]}
    assert by_uid[u[3]]["reason"] == "not json" and by_uid[u[3]]["attempts"] == 5
    assert by_uid[u[5]]["reason"] == "http 400" and by_uid[u[5]]["attempts"] == 1
    assert by_uid[u[6]]["reason"] == "http 500" and by_uid[u[6]]["attempts"] == 5
    assert teacher.requests[u[0]] == 3 and teacher.requests[u[1]] == 2 and teacher.requests[u[2]] == 5
    assert teacher.requests[u[4]] == 2 and all(teacher.requests[uid] == 1 for uid in u[7:])
    gap = teacher.times[u[1]][1] - teacher.times[u[1]][0]
    assert gap >= 0.95, f"Retry-After: 1 not honoured ({gap:.2f} s)"
    # totals: 2 + 1 + 4 + 4 + 1 + 0 + 4 = 16 retries, 12 + 16 = 28 requests
    assert "accepted: 9; rejected: 3 (" in out and "not json: 1" in out and "http 400: 1" in out
    assert "requests: 28; retries: 16; 429s: 1" in out
    assert teacher.total == 28
    assert all(b["response_format"] == {"type": "json_object"} for b in teacher.bodies)

    keywords = {"spatial": "object spatial understanding", "ocr": "optical character recognition", "mycap": MYCAP[1]}
    for record in accepted:
        sample = next(s for s in picked if s.uid == record["uid"])
        text = build_request(sample, demo_caps(), "m")["messages"][1]["content"][-1]["text"]
        assert record["scores"] == teacher_scores(text, ["spatial", "ocr", "mycap"])
        assert record["styles"] == [s.lower() for s in teacher_styles(text)]
        assert record["capabilities"] == keywords and record["teacher"] == "fake-teacher"
        assert (record["dataset"], record["row"]) == (sample.dataset, sample.row)
    assert [label.uid for label in read_labels(output)] == [r["uid"] for r in accepted]


def test_rerun_after_fatal_error_repeats_no_accepted_sample(tmp_path, demo_samples):
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        teacher.fatal_after = 6  # the server starts refusing everything: the run stops
        status, out, err = mmssr(*curate_args(teacher.url, output, 15, "--concurrency", "2"))
        assert status == 2
        assert err.strip().splitlines()[-1].startswith("mmssr-cli: error: the teacher at ")
        assert "HTTP 401" in err and "rerun to resume" in err and "Traceback" not in err
        first = {r["uid"] for r in lines(output)}
        assert 1 <= len(first) <= 6

        teacher.fatal_after = None
        teacher.reset_counts()
        status, out, err = mmssr(*curate_args(teacher.url, output, 15))
    assert status == 0, err
    assert not first & set(teacher.requests), "an accepted sample was sent again"
    assert teacher.total == 15 - len(first)
    assert f"already labelled (skipped): {len(first)}" in out
    final = [r["uid"] for r in lines(output)]
    assert len(final) == len(set(final)) == 15
    assert set(final) == {s.uid for s in pick_samples(demo_samples, 15, 7)}


CLI_SCRIPT = """
import sys
from mmssr_plugin import cli
modules = {"curate": "curate", "build-scorer-data": "build_scorer_data"}
real = cli.load_command
cli.COMMANDS = tuple(dict.fromkeys((*cli.COMMANDS, *modules)))
cli.load_command = lambda name: real(modules.get(name, name))
sys.exit(cli.main(sys.argv[1:]))
"""


def test_ctrl_c_keeps_answers_in_flight_and_rerun_resumes(tmp_path, demo_samples):
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        teacher.delay = 0.3
        args = [str(a) for a in curate_args(teacher.url, output, 12, "--concurrency", "2")]
        process = subprocess.Popen(
            [sys.executable, "-c", CLI_SCRIPT, *args], cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while len(lines(output)) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "stopping, waiting for" in err and "stopped before the end" in out
        first = {r["uid"] for r in lines(output)}
        assert 2 <= len(first) < 12
        assert set(teacher.requests) == first, "an answer that arrived after Ctrl-C was not saved"

        teacher.delay = 0.0
        teacher.reset_counts()
        status, out, _ = mmssr(*args)
    assert status == 0 and teacher.total == 12 - len(first) and not first & set(teacher.requests)
    assert len(lines(output)) == 12


def test_growing_the_sample_count_only_labels_new_samples(tmp_path, demo_samples):
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        assert mmssr(*curate_args(teacher.url, output, 5))[0] == 0
        before = set(teacher.requests)
        teacher.reset_counts()
        status, out, _ = mmssr(*curate_args(teacher.url, output, 9))
    assert status == 0
    assert len(teacher.requests) == 4 and not before & set(teacher.requests)
    assert "already labelled (skipped): 5" in out and "accepted: 4; rejected: 0" in out


def test_unfinished_last_line_is_cut_and_redone(tmp_path, demo_samples):
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        assert mmssr(*curate_args(teacher.url, output, 3))[0] == 0
        text = output.read_text().splitlines(keepends=True)
        output.write_text("".join(text[:2]) + text[2][:25])  # killed in the middle of a write
        teacher.reset_counts()
        status, _, err = mmssr(*curate_args(teacher.url, output, 3))
    assert status == 0 and "cut an unfinished last line" in err
    assert teacher.total == 1 and len(lines(output)) == 3


def test_slow_answers_time_out_and_are_retried(tmp_path, demo_samples):
    output = tmp_path / "labels.jsonl"
    first = pick_samples(demo_samples, 1, 7)[0]
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        teacher.script = {first.uid: ["slow"]}
        status, out, _ = mmssr(*curate_args(teacher.url, output, 2, "--timeout", "0.4"))
    assert status == 0 and teacher.requests[first.uid] == 2
    assert "timeout: 1" in out and len(lines(output)) == 2


def test_unreachable_teacher_stops_the_run(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = tmp_path / "labels.jsonl"
    args = curate_args(f"http://127.0.0.1:{port}/v1", output, 10, "--max-retries", "1", "--concurrency", "1",
                       "--retry-base-delay", "0.3", "--retry-max-delay", "0.3")  # the 4th sample is in its backoff
    status, out, err = mmssr(*args)
    assert status == 2 and "mmssr-cli: error: cannot reach the teacher at" in err and "3 samples in a row" in err
    assert "accepted: 0; rejected: 3 (connection error: 3)" in out
    assert len(lines(Path(f"{output}.rejected.jsonl"))) == 3 and not lines(output)


def test_resume_refuses_other_capabilities(tmp_path, demo_samples):
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        assert mmssr(*curate_args(teacher.url, output, 2))[0] == 0
        args = curate_args(teacher.url, output, 2)
        args[args.index(f"{MYCAP[0]}={MYCAP[1]}")] = "mycap=another keyword"
        status, _, err = mmssr(*args)
    assert status == 2 and "write to another --output" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--base-url": None}, "no teacher URL: pass --base-url or set MMSSR_TEACHER_BASE_URL"),
        ({"--capabilities": "spatial,nope"}, "unknown capabilities ['nope']"),
        ({"--dataset": "missing"}, "unknown dataset 'missing'"),
        ({"--keyword": "broken"}, "expected ID=KEYWORD"),
        ({"--num-samples": "0"}, "must be >= 1"),
        ({"--base-url": "ftp://x"}, "must start with http:// or https://"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, monkeypatch, change, message):
    monkeypatch.delenv("MMSSR_TEACHER_BASE_URL", raising=False)
    args = curate_args("http://127.0.0.1:9/v1", tmp_path / "l.jsonl", 2)
    for flag, value in change.items():
        at = args.index(flag)
        if value is None:
            del args[at : at + 2]
        else:
            args[at + 1] = value
    status, _, err = mmssr(*args)
    assert status == 2 and err.startswith("mmssr-cli: error: ") and message in err and err.count("\n") == 1


def test_env_fallbacks_reach_the_teacher(tmp_path, monkeypatch, demo_samples):
    output = tmp_path / "labels.jsonl"
    with FakeTeacher(demo_samples, demo_caps()) as teacher:
        teacher.api_key = "sk-env"
        monkeypatch.setenv("MMSSR_TEACHER_BASE_URL", teacher.url)
        monkeypatch.setenv("MMSSR_TEACHER_MODEL", "env-teacher")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        args = curate_args("x", output, 2)
        for flag in ("--base-url", "--model"):
            at = args.index(flag)
            del args[at : at + 2]
        status, _, err = mmssr(*args)
    assert status == 0, err
    assert {r["teacher"] for r in lines(output)} == {"env-teacher"}


def test_hand_written_labels():
    label = label_from_json({"uid": "d:1:abc", "scores": {"ocr": 4}, "styles": []})
    assert label.capabilities == {"ocr": "optical character recognition"} and label.styles == ()
    with pytest.raises(ValueError, match="'mycap' has no keyword"):
        label_from_json({"uid": "d:1:abc", "scores": {"mycap": 4}})
    with pytest.raises(ValueError, match="bad score"):
        label_from_json({"uid": "d:1:abc", "scores": {"ocr": 9}})


def test_label_file_errors_name_the_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"uid": "d:1:a", "scores": {"ocr": 1}}\n{"uid": "d:2:b", "scores": {"ocr": 1}, "styles": ["x"]}\n')
    with pytest.raises(LabelFileError, match=r"labels.jsonl:2: unknown style"):
        read_labels(path)
