"""How to reach the teacher and how hard to try: the teacher's settings, checked once.

The tuning fields carry ``help`` (one line for users) and ``min`` / ``strict`` (the lowest
allowed value, excluded when strict) in their metadata; ``mmssr-cli curate`` builds its options
from them, so their defaults live here only.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields

from mmssr_plugin.curation.errors import CurateError


def _tuning(default: float, help_text: str, low: float, strict: bool = False) -> Field:
    """A tuning field: its default, one line of help and the lowest allowed value."""
    return field(default=default, metadata={"help": help_text, "min": low, "strict": strict})


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
    concurrency: int = _tuning(8, "requests in flight", 1)
    max_retries: int = _tuning(5, "retries per sample for transient failures and invalid answers", 0)
    retry_base_delay: float = _tuning(1.0, "first backoff delay in seconds, doubled per retry, with jitter", 0)
    retry_max_delay: float = _tuning(60.0, "longest backoff delay", 0)
    timeout: float = _tuning(120.0, "seconds per request", 0, strict=True)
    temperature: float = _tuning(0.0, "teacher temperature", 0)

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


def tuning_fields() -> tuple[Field, ...]:
    """The fields of :class:`TeacherConfig` that tune a run (those with help metadata), in order."""
    return tuple(f for f in fields(TeacherConfig) if "help" in f.metadata)
