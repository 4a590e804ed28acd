"""Asking an OpenAI-compatible teacher about one sample: the HTTP request, retries with jittered
backoff and Retry-After, and the verdict (a valid label or a rejection reason)."""

from __future__ import annotations

import http.client
import json
import random
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.curation.answers import ANSWER_REASONS, parse_answer
from mmssr_plugin.curation.backoff import RateGate, parse_retry_after, sleep_or_stop
from mmssr_plugin.curation.errors import InvalidAnswer, TeacherFatal
from mmssr_plugin.curation.labels import Label
from mmssr_plugin.curation.teacher_config import TeacherConfig
from mmssr_plugin.curation.teacher_prompt import build_request
from mmssr_plugin.data.sample import Sample

# Reasons a request failed transiently (retried with backoff).
TRANSIENT_REASONS = ("connection error", "timeout", "rate limited")
# Every reason a rejected line can carry besides "http <status>" (a non-retryable 4xx).
REJECT_REASONS = ANSWER_REASONS + TRANSIENT_REASONS + ("unreadable image",)

# HTTP statuses that mean every request will fail the same way: the run stops.
_FATAL_STATUSES = (401, 403, 404)
# Statuses retried like server errors besides 5xx.
_RETRY_STATUSES = (408, 409)


@dataclass
class Outcome:
    """What happened to one sample (built in a worker thread, merged by the main thread)."""

    sample: Sample
    label: Label | None = None
    reason: str = ""
    detail: str = ""
    attempts: int = 0
    rate_limited: int = 0
    failures: Counter = field(default_factory=Counter)


class _Transient(Exception):
    """A request that failed on the way (no connection, timeout, a cut answer); worth retrying."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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
) -> Outcome:
    """Ask the teacher about one sample until a valid answer, a rejection or a stop.

    Raises:
        TeacherFatal: the teacher answered a status every request would get (401, 403, 404).
        Stopped: the run stopped before this sample finished.
    """
    outcome = Outcome(sample)
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
