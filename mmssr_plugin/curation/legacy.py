"""Teacher labels for a scorer of one's own: an OpenAI-compatible VLM rates a seeded sample.

``mmssr-cli curate`` picks N valid samples of a pool (seeded, prefix-stable: the picks for N are
the first N of the picks for any larger N), sends each one, images inlined, to
``POST {base_url}/chat/completions`` and asks for 0..5 scores on the chosen capabilities and the
interaction styles. Every answer is validated; nothing is ever guessed.

Label file format (JSON lines, one object per sample; users may also write it by hand)::

    {"uid": "mmssr_demo:3:1a2b3c4d5e6f", "dataset": "mmssr_demo", "row": 3,
     "scores": {"spatial": 4, "ocr": 0, "mycap": 5},
     "styles": ["multi-choice", "chain-of-thought (step-by-step)"],
     "teacher": "gpt-4o-2024-08-06",
     "capabilities": {"spatial": "object spatial understanding",
                      "ocr": "optical character recognition",
                      "mycap": "reading analog clocks"}}

- ``uid``: the sample's uid as :func:`mmssr_plugin.data.samples.load_samples` builds it,
  ``"{dataset}:{row}:{hash of the raw row}"``; it decides which sample a label belongs to, so a
  label stops matching when its row changes. ``dataset`` and ``row`` are for people.
- ``scores``: capability id -> integer 0..5 (how helpful the sample is for training that
  capability). Every id of ``capabilities`` must be scored.
- ``capabilities``: capability id -> the keyword the label was made with; the scorer is trained
  with exactly this keyword in its prompt, and selection must use the same one. Optional in
  hand-written files for built-in ids (their built-in keyword is then used); required for custom
  ids.
- ``styles``: interaction styles from :data:`mmssr_plugin.core.taxonomy.STYLES`, canonical spelling,
  in order. Optional (empty or absent) in hand-written files: then the sample adds no style
  example. Curated labels always have at least one.
- ``teacher``: free text naming who labelled (provenance only).

Rejected samples are appended to ``<output>.rejected.jsonl`` as
``{"uid", "dataset", "row", "reason", "detail", "attempts", "teacher"}``; ``reason`` is one of
:data:`REJECT_REASONS` or ``"http <status>"``. A rerun skips uids already in the output (so an
interrupted run resumes without repeating paid requests) and tries rejected samples again.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.client
import io
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmssr_plugin.core.prompts import format_convs
from mmssr_plugin.data.samples import Sample, load_samples
from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, STYLES, Capability

# Reasons a teacher answer is invalid (each is retried, then recorded as the rejection reason).
ANSWER_REASONS = ("not json", "bad shape", "missing capability", "bad score", "unknown style", "no style")
# Reasons a request failed transiently (retried with backoff).
TRANSIENT_REASONS = ("connection error", "timeout", "rate limited")
# Every reason a rejected line can carry besides "http <status>" (a non-retryable 4xx).
REJECT_REASONS = ANSWER_REASONS + TRANSIENT_REASONS + ("unreadable image",)

# HTTP statuses that mean every request will fail the same way: the run stops.
_FATAL_STATUSES = (401, 403, 404)
# Statuses retried like server errors besides 5xx.
_RETRY_STATUSES = (408, 409)
# The run stops when this many samples in a row are rejected because no connection could be made.
UNREACHABLE_AFTER = 3
# Longest Retry-After honoured, seconds.
MAX_RETRY_AFTER = 600.0
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TEACHER_SYSTEM = (
    "You are an expert curator of training data for multimodal large language models. "
    "You answer with one JSON object and nothing else."
)


class CurateError(ValueError):
    """Curation cannot start or cannot go on (bad input, unusable output file, fatal HTTP status)."""


class LabelFileError(ValueError):
    """A label file line breaks the label file format."""


class InvalidAnswer(ValueError):
    """A teacher answer that breaks the requested format; ``reason`` is one of ANSWER_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Label:
    """One line of a label file (see the module docstring)."""

    uid: str
    dataset: str
    row: int
    scores: dict[str, int]
    styles: tuple[str, ...]
    teacher: str
    capabilities: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The label as its JSON-lines object."""
        return {
            "uid": self.uid,
            "dataset": self.dataset,
            "row": self.row,
            "scores": self.scores,
            "styles": list(self.styles),
            "teacher": self.teacher,
            "capabilities": self.capabilities,
        }


@dataclass(frozen=True)
class TeacherConfig:
    """How to reach the teacher and how hard to try.

    Attributes:
        base_url: OpenAI-compatible API root, e.g. ``https://api.openai.com/v1``.
        model: model name sent in each request (recorded as ``teacher`` in labels).
        api_key: bearer token, if the server needs one.
        concurrency: requests in flight at once.
        max_retries: retries per sample after the first attempt (transient failures and invalid
            answers alike); then the sample is rejected.
        retry_base_delay: first backoff delay in seconds; doubles per retry, with jitter.
        retry_max_delay: cap of one backoff delay (a 429's Retry-After is honoured beyond it,
            up to MAX_RETRY_AFTER).
        timeout: seconds to wait for one response.
        temperature: sampling temperature sent to the teacher.
    """

    base_url: str
    model: str
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 5
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    timeout: float = 120.0
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise CurateError(f"teacher base URL must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise CurateError("the teacher model name is empty")
        if self.concurrency < 1 or self.max_retries < 0:
            raise CurateError("concurrency must be >= 1 and max retries >= 0")
        if self.retry_base_delay < 0 or self.retry_max_delay < 0 or self.timeout <= 0:
            raise CurateError("retry delays must be >= 0 and the timeout > 0")

    @property
    def url(self) -> str:
        """The chat-completions endpoint."""
        return self.base_url.rstrip("/") + "/chat/completions"


@dataclass
class CurateSummary:
    """Totals of one curate run.

    Attributes:
        pool: rows in the pool; invalid: rows with problems (never picked); picked: samples
            picked (at most N); skipped_done: picked samples already in the output; sent:
            samples this run worked on; accepted / rejected: their outcomes (rejected by reason);
            requests, retries, rate_limited: HTTP requests made, retries among them, 429 answers;
            failures: every failed attempt by reason (retried or not); stopped: the run was
            interrupted before every sample finished.
    """

    pool: int = 0
    invalid: int = 0
    picked: int = 0
    skipped_done: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    failures: Counter = field(default_factory=Counter)
    stopped: bool = False

    def lines(self) -> list[str]:
        """The final report, a few human-readable lines."""
        rejected = sum(self.rejected.values())
        by_reason = ", ".join(f"{k}: {v}" for k, v in self.rejected.most_common())
        failures = ", ".join(f"{k}: {v}" for k, v in self.failures.most_common())
        return [
            (
                f"pool: {self.pool} rows ({self.invalid} with problems, never picked); picked {self.picked}; "
                f"already labelled (skipped): {self.skipped_done}; sent: {self.sent}"
            ),
            f"accepted: {self.accepted}; rejected: {rejected}" + (f" ({by_reason})" if by_reason else ""),
            f"requests: {self.requests}; retries: {self.retries}; 429s: {self.rate_limited}"
            + (f"; failed attempts: {failures}" if failures else ""),
        ] + (["stopped before the end: rerun the same command to resume"] if self.stopped else [])


# ---------------------------------------------------------------------------------------------
# Sample choice and the teacher prompt


def pick_samples(samples: Sequence[Sample], num_samples: int, seed: int) -> list[Sample]:
    """The first ``num_samples`` valid samples in a seeded order of their uids.

    The order depends only on ``seed`` and each uid, so the picks for N are a prefix of the picks
    for any larger N, and growing the pool keeps already picked samples picked when they still
    rank first.
    """
    if num_samples < 1:
        raise CurateError(f"--num-samples must be >= 1, got {num_samples}")
    valid = [s for s in samples if s.ok]
    valid.sort(key=lambda s: hashlib.sha256(f"{seed}:{s.uid}".encode()).hexdigest())
    return valid[:num_samples]


def teacher_prompt(turns: Sequence[str], capabilities: Sequence[Capability]) -> str:
    """The user text sent to the teacher with the sample's images."""
    cap_lines = "\n".join(f"- {cap.id}: {cap.keyword}" for cap in capabilities)
    example = ", ".join(f'"{cap.id}": <integer 0-5>' for cap in capabilities)
    return (
        "Rate one visual question answering (VQA) training instance: the image(s) attached above "
        "and the conversation below (<image> marks where an image appears).\n\n"
        f"Conversation:\n{format_convs(turns)}\n\n"
        "Task 1: for each capability below, rate on an integer scale of 0 to 5 how helpful this "
        "instance is for training a Multimodal Large Language Model in that capability "
        "(0: not helpful at all, 5: extremely helpful). Rate each capability on its own.\n"
        f"Capabilities (id: capability):\n{cap_lines}\n\n"
        "Task 2: name the interaction style(s) of the instance, one or more, choosing only from "
        f"these candidates, spelled exactly: {json.dumps(list(STYLES))}\n\n"
        "Answer with this JSON object only, every capability id present, scores as integers:\n"
        f'{{"scores": {{{example}}}, "styles": ["<candidate>", ...]}}'
    )


def build_request(
    sample: Sample, capabilities: Sequence[Capability], model: str, temperature: float = 0.0
) -> dict[str, Any]:
    """The chat-completions request body for one sample (images inlined as PNG data URLs).

    Raises:
        OSError, ValueError: an image cannot be read or converted.
    """
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": image_data_url(path)}} for path in sample.images
    ]
    content.append({"type": "text", "text": teacher_prompt(sample.turns, capabilities)})
    return {
        "model": model,
        "messages": [
            {"role": "system", "content": TEACHER_SYSTEM},
            {"role": "user", "content": content},
        ],
        "response_format": {"type": "json_object"},
        "temperature": temperature,
    }


def image_data_url(path: str) -> str:
    """``data:image/png;base64,...`` of an image file (PNG bytes as they are, others converted)."""
    data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
        data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Validation (teacher answers and label files share the score and style rules)


def check_scores(scores: Any, cap_ids: Iterable[str]) -> dict[str, int]:
    """The scores of ``cap_ids`` as ints 0..5 (extra ids are dropped).

    Raises:
        InvalidAnswer: ``bad shape`` (not an object), ``missing capability``, ``bad score``.
    """
    if not isinstance(scores, dict):
        raise InvalidAnswer("bad shape", f'"scores" must be an object, got {type(scores).__name__}')
    checked = {}
    for cap_id in cap_ids:
        if cap_id not in scores:
            raise InvalidAnswer("missing capability", f"no score for {cap_id!r}")
        value = scores[cap_id]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
            raise InvalidAnswer("bad score", f"{cap_id}: {value!r} is not an integer 0..5")
        checked[cap_id] = value
    return checked


def check_styles(styles: Any, required: bool) -> tuple[str, ...]:
    """Styles in canonical spelling (case and surrounding blanks ignored), order kept, no repeats.

    Raises:
        InvalidAnswer: ``bad shape`` (not a list of strings), ``unknown style``, ``no style``
            (only when ``required``).
    """
    if styles is None:
        if required:
            raise InvalidAnswer("no style", '"styles" is missing')
        return ()
    if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
        raise InvalidAnswer("bad shape", '"styles" must be a list of strings')
    lookup = {name.lower(): name for name in STYLES}
    canonical: list[str] = []
    for text in styles:
        name = lookup.get(text.strip().lower())
        if name is None:
            raise InvalidAnswer("unknown style", f"{text!r} is not one of the {len(STYLES)} candidates")
        if name not in canonical:
            canonical.append(name)
    if required and not canonical:
        raise InvalidAnswer("no style", '"styles" is empty')
    return tuple(canonical)


def parse_answer(content: Any, capabilities: Sequence[Capability]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Validate the teacher's message content: the JSON scores and styles it must hold.

    Raises:
        InvalidAnswer: with one of ANSWER_REASONS.
    """
    if not isinstance(content, str):
        raise InvalidAnswer("bad shape", "the message has no text content")
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):  # a fenced block around the object
        text = text[3:-3].removeprefix("json").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        raise InvalidAnswer("not json", repr(content[:200])) from None
    if not isinstance(answer, dict):
        raise InvalidAnswer("bad shape", f"expected a JSON object, got {type(answer).__name__}")
    scores = check_scores(answer.get("scores"), [cap.id for cap in capabilities])
    return scores, check_styles(answer.get("styles"), required=True)


def read_labels(path: str | Path) -> list[Label]:
    """Read and validate a label file (format in the module docstring).

    Raises:
        LabelFileError: ``path:line: reason`` for the first bad line; OSError if unreadable.
    """
    labels = []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                labels.append(label_from_json(json.loads(text)))
            except (ValueError, TypeError) as err:
                reason = "not a JSON object" if isinstance(err, json.JSONDecodeError) else str(err)
                raise LabelFileError(f"{path}:{number}: {reason}") from None
    return labels


def label_from_json(obj: Any) -> Label:
    """One label-file object as a :class:`Label`.

    Raises:
        ValueError: a missing or malformed field.
    """
    if not isinstance(obj, dict):
        raise ValueError("a label must be a JSON object")
    uid, dataset, row = obj.get("uid"), obj.get("dataset", ""), obj.get("row", -1)
    if not isinstance(uid, str) or not uid:
        raise ValueError('"uid" must be a non-empty string')
    if not isinstance(dataset, str) or isinstance(row, bool) or not isinstance(row, int):
        raise ValueError('"dataset" must be a string and "row" an integer')
    raw_scores, raw_caps = obj.get("scores"), obj.get("capabilities", {})
    if not isinstance(raw_scores, dict) or not raw_scores:
        raise ValueError('"scores" must be a non-empty object')
    if not isinstance(raw_caps, dict):
        raise ValueError('"capabilities" must be an object (id -> keyword)')
    keywords = {}
    for cap_id in list(raw_caps) + [c for c in raw_scores if c not in raw_caps]:
        keyword = raw_caps.get(cap_id, DEFAULT_CAPABILITIES.get(cap_id))
        if not isinstance(keyword, str) or not keyword.strip():
            raise ValueError(f"capability {cap_id!r} has no keyword (custom ids need one in \"capabilities\")")
        keywords[cap_id] = keyword.strip()
    scores = check_scores(raw_scores, keywords)
    styles = check_styles(obj.get("styles"), required=False)
    teacher = obj.get("teacher", "")
    return Label(uid, dataset, row, scores, styles, str(teacher), keywords)


# ---------------------------------------------------------------------------------------------
# HTTP with retries


class _Stopped(Exception):
    """The run is stopping; this sample is left for a rerun."""


class TeacherFatal(CurateError):
    """A status that every request would get (bad key, unknown model or endpoint).

    Attributes:
        summary: the run's totals up to the stop (set by :func:`label_samples`).
    """

    summary: CurateSummary | None = None


class RateGate:
    """Shared pause: after a 429 with Retry-After no request starts before the time it names."""

    def __init__(self, stop: threading.Event) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._stop = stop

    def hold(self, seconds: float) -> None:
        """Start no request in the next ``seconds``."""
        with self._lock:
            self._not_before = max(self._not_before, time.monotonic() + seconds)

    def wait(self) -> None:
        """Block until requests may start again (raises _Stopped when the run stops)."""
        while True:
            with self._lock:
                delay = self._not_before - time.monotonic()
            if delay <= 0:
                break
            sleep_or_stop(self._stop, delay)
        if self._stop.is_set():
            raise _Stopped


def sleep_or_stop(stop: threading.Event, seconds: float) -> None:
    """Sleep, waking early (raising _Stopped) when the run stops."""
    if seconds > 0 and stop.wait(seconds):
        raise _Stopped


def parse_retry_after(value: str | None) -> float | None:
    """Seconds named by a Retry-After header (delta seconds or an HTTP date), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass
class _Outcome:
    """What happened to one sample (built in a worker thread, merged by the main thread)."""

    sample: Sample
    label: Label | None = None
    reason: str = ""
    detail: str = ""
    attempts: int = 0
    rate_limited: int = 0
    failures: Counter = field(default_factory=Counter)


def _post(config: TeacherConfig, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
    """One POST; HTTP error statuses are returned, network failures raise _Transient."""
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    request = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()
    except TimeoutError as err:
        raise _Transient("timeout", str(err) or "no answer in time") from None
    except urllib.error.URLError as err:
        kind = "timeout" if isinstance(err.reason, TimeoutError) else "connection error"
        raise _Transient(kind, str(err.reason)) from None
    except (OSError, ValueError, http.client.HTTPException) as err:  # resets, bad status lines, cut bodies
        raise _Transient("connection error", f"{type(err).__name__}: {err}") from None


class _Transient(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _message_content(body: bytes) -> Any:
    """``choices[0].message.content`` of a chat-completions response body."""
    try:
        return json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InvalidAnswer("bad shape", f"not a chat-completions response: {body[:200]!r}") from None


def label_sample(
    sample: Sample,
    capabilities: Sequence[Capability],
    config: TeacherConfig,
    gate: RateGate,
    stop: threading.Event,
    seed: int = 0,
) -> _Outcome:
    """Ask the teacher about one sample until a valid answer, a rejection or a stop."""
    outcome = _Outcome(sample)
    try:
        body = json.dumps(build_request(sample, capabilities, config.model, config.temperature)).encode()
    except Exception as err:  # noqa: BLE001 -- PIL raises many error types for bad image files
        outcome.reason, outcome.detail = "unreadable image", f"{type(err).__name__}: {err}"
        return outcome
    rng = random.Random(f"{seed}:{sample.uid}")
    while True:
        gate.wait()
        outcome.attempts += 1
        retry_after = None
        try:
            status, headers, payload = _post(config, body)
        except _Transient as err:
            reason, detail = err.reason, err.detail
        else:
            detail = payload[:300].decode("utf-8", "replace")
            if status == 200:
                try:
                    scores, styles = parse_answer(_message_content(payload), capabilities)
                except InvalidAnswer as err:
                    reason, detail = err.reason, err.detail
                else:
                    outcome.label = Label(
                        sample.uid, sample.dataset, sample.row, scores, styles, config.model,
                        {cap.id: cap.keyword for cap in capabilities},
                    )
                    return outcome
            elif status == 429:
                outcome.rate_limited += 1
                reason, retry_after = "rate limited", parse_retry_after(headers.get("Retry-After"))
                if retry_after is not None:
                    gate.hold(retry_after)
            elif status in _FATAL_STATUSES:
                raise TeacherFatal(f"the teacher at {config.url} answered HTTP {status}: {detail.strip()}")
            elif status >= 500 or status in _RETRY_STATUSES:
                reason = f"http {status}"
            else:  # the request itself is refused (e.g. 400 for an image the model cannot take)
                outcome.failures[f"http {status}"] += 1
                outcome.reason, outcome.detail = f"http {status}", detail
                return outcome
        outcome.failures[reason] += 1
        if outcome.attempts > config.max_retries:
            outcome.reason, outcome.detail = reason, detail
            return outcome
        backoff = min(config.retry_max_delay, config.retry_base_delay * 2 ** (outcome.attempts - 1))
        delay = retry_after if retry_after is not None else backoff * (0.5 + 0.5 * rng.random())
        sleep_or_stop(stop, delay)


# ---------------------------------------------------------------------------------------------
# Output files and the run


def rejected_path(output: str | Path) -> Path:
    """``<output>.rejected.jsonl``."""
    return Path(f"{output}.rejected.jsonl")


def load_done(output: Path, capabilities: Sequence[Capability]) -> set[str]:
    """Uids already labelled in ``output`` (an interrupted, partial last line is cut off first).

    Raises:
        CurateError: the file holds labels made for other capabilities or keywords.
    """
    if not output.exists():
        return set()
    with open(output, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            print(f"curate: cut an unfinished last line off {output} (that sample is redone)", file=sys.stderr)
    wanted = {cap.id: cap.keyword for cap in capabilities}
    try:
        labels = read_labels(output)
    except LabelFileError as err:
        raise CurateError(f"cannot resume from {err}") from None
    for label in labels:
        if label.capabilities != wanted:
            raise CurateError(
                f"{output} holds labels for capabilities {label.capabilities}, this run asks for "
                f"{wanted}: write to another --output (build-scorer-data merges several label files)"
            )
    return {label.uid for label in labels}


class _JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced, so nothing written is lost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = None

    def write(self, obj: Mapping[str, Any]) -> None:
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- kept open for the whole run
        self._handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def label_samples(
    samples: Sequence[Sample],
    capabilities: Sequence[Capability],
    config: TeacherConfig,
    output: str | Path,
    *,
    seed: int = 0,
    summary: CurateSummary | None = None,
    log: Callable[[str], None] | None = None,
    progress_every: float = 2.0,
) -> CurateSummary:
    """Label ``samples`` with the teacher, appending results to the output files as they arrive.

    Samples already in ``output`` are skipped. Ctrl-C stops starting requests, keeps the answers
    of requests in flight and returns (``summary.stopped``); a second Ctrl-C aborts.

    Raises:
        CurateError: unusable output file. TeacherFatal: the teacher refuses every request (401,
            403, 404) or cannot be reached (UNREACHABLE_AFTER samples in a row), raised after the
            answers in flight are saved.
    """
    summary = summary or CurateSummary(picked=len(samples))
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    output = Path(output)
    if not output.parent.is_dir():
        raise CurateError(f"output folder {output.parent} does not exist")
    done = load_done(output, capabilities)
    todo = [s for s in samples if s.uid not in done]
    summary.skipped_done += len(samples) - len(todo)
    summary.sent += len(todo)
    log(
        f"curate: teacher {config.model} at {config.url}; capabilities {', '.join(c.id for c in capabilities)}; "
        f"{len(todo)} samples to label ({len(samples) - len(todo)} already in {output})"
    )
    stop = threading.Event()
    gate = RateGate(stop)
    accepted, rejected = _JsonlAppender(output), _JsonlAppender(rejected_path(output))
    fatal: TeacherFatal | None = None
    last_report = time.monotonic()
    finished = 0
    pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="curate")
    try:
        pending: set[Future] = {
            pool.submit(label_sample, s, capabilities, config, gate, stop, seed) for s in todo
        }
        unreachable = 0  # samples in a row rejected because the teacher could not be reached
        while pending:
            try:
                completed, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in completed:
                    pending.discard(future)
                    finished += 1
                    try:
                        outcome = future.result()
                    except _Stopped:
                        summary.stopped = True
                        continue
                    except TeacherFatal as err:
                        fatal = fatal or err
                        pending = _halt(stop, pending)
                        continue
                    _record(outcome, summary, accepted, rejected, config.model)
                    unreachable = unreachable + 1 if outcome.reason == "connection error" else 0
                    if unreachable >= UNREACHABLE_AFTER and fatal is None:
                        fatal = TeacherFatal(
                            f"cannot reach the teacher at {config.url} ({unreachable} samples in a row failed "
                            f"to connect, last: {outcome.detail})"
                        )
                        pending = _halt(stop, pending)
                if time.monotonic() - last_report >= progress_every:
                    last_report = time.monotonic()
                    log(_progress(summary, finished, len(todo)))
            except KeyboardInterrupt:
                if stop.is_set():
                    raise
                summary.stopped = True
                pending = _halt(stop, pending)
                log(f"curate: stopping, waiting for {len(pending)} requests in flight (Ctrl-C again to abort)")
    finally:
        stop.set()  # normally every worker is done; after an abort none may start or sleep on
        pool.shutdown(wait=False, cancel_futures=True)
        accepted.close()
        rejected.close()
    if fatal is not None:
        summary.stopped = True
        fatal.summary = summary
        raise fatal
    log(_progress(summary, finished, len(todo)))
    return summary


def _halt(stop: threading.Event, pending: set[Future]) -> set[Future]:
    """Stop the run: no new request starts; returns the futures still running (the rest are cancelled)."""
    stop.set()
    return {future for future in pending if not future.cancel()}


def _record(
    outcome: _Outcome, summary: CurateSummary, accepted: _JsonlAppender, rejected: _JsonlAppender, teacher: str
) -> None:
    """Write one outcome and add it to the totals."""
    summary.requests += outcome.attempts
    summary.retries += max(outcome.attempts - 1, 0)
    summary.rate_limited += outcome.rate_limited
    summary.failures.update(outcome.failures)
    if outcome.label is not None:
        accepted.write(outcome.label.to_json())
        summary.accepted += 1
        return
    sample = outcome.sample
    rejected.write({
        "uid": sample.uid, "dataset": sample.dataset, "row": sample.row, "reason": outcome.reason,
        "detail": outcome.detail, "attempts": outcome.attempts, "teacher": teacher,
    })
    summary.rejected[outcome.reason] += 1


def _progress(summary: CurateSummary, finished: int, total: int) -> str:
    return (
        f"curate: {finished}/{total} done (accepted {summary.accepted}, rejected "
        f"{sum(summary.rejected.values())}, retries {summary.retries}, 429s {summary.rate_limited})"
    )


def curate(
    dataset_dir: str | Path,
    dataset: str,
    num_samples: int,
    capabilities: Sequence[Capability],
    config: TeacherConfig,
    output: str | Path,
    *,
    media_dir: str | Path | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> CurateSummary:
    """Pick ``num_samples`` valid samples of ``dataset`` (seeded) and label them with the teacher.

    Args:
        dataset_dir: folder holding ``dataset_info.json``.
        dataset: dataset name(s), comma-separated.
        num_samples: how many samples to label (fewer when the pool has fewer valid ones).
        capabilities: the capabilities to score, with the keywords put into the prompt.
        config: the teacher and the retry policy.
        output: label file (JSON lines), appended to; its rejections go next to it.
        media_dir: image root (default ``dataset_dir``).
        seed: seed of the pick and of the retry jitter.
        log: progress sink (default: stderr).

    Returns:
        The run's totals.

    Raises:
        DatasetError, CurateError, TeacherFatal: see :func:`label_samples`.
    """
    samples = load_samples(dataset_dir, dataset, media_dir, check_images=False)
    picked = pick_samples(samples, num_samples, seed)
    invalid = sum(1 for s in samples if not s.ok)
    summary = CurateSummary(pool=len(samples), invalid=invalid, picked=len(picked))
    if not picked:
        raise CurateError(f"dataset {dataset!r} has no valid sample to label ({invalid} rows with problems)")
    return label_samples(picked, capabilities, config, output, seed=seed, summary=summary, log=log)
