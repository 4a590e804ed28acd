"""The exceptions of curation: unusable input or output, fatal teacher answers, bad labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmssr_plugin.curation.run import CurateSummary


class CurateError(ValueError):
    """Curation cannot start or cannot go on (bad input, unusable output file, fatal HTTP status)."""


class LabelsMismatch(CurateError):
    """The output label file holds labels made for other capabilities or keywords than this run's.

    Attributes:
        path: the label file; found / wanted: capability id -> keyword, in the file and in this run.
    """

    def __init__(self, path: Any, found: dict[str, str], wanted: dict[str, str]) -> None:
        super().__init__(f"{path} holds labels for capabilities {found}, this run asks for {wanted}")
        self.path = path
        self.found = found
        self.wanted = wanted


class TeacherFatal(CurateError):
    """A status that every request would get (bad key, unknown model or endpoint), or no connection.

    Attributes:
        summary: the run's totals up to the stop (set by :func:`mmssr_plugin.curation.run.label_samples`).
    """

    summary: CurateSummary | None = None


class LabelFileError(ValueError):
    """A label file line breaks the label file format."""


class InvalidAnswer(ValueError):
    """A teacher answer that breaks the requested format; ``reason`` is one of ANSWER_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
