"""The record of one excluded or failed sample: where it comes from and why it is not usable.

Validation (``data``) and scoring (``scoring``) both produce these records; the stage writes them,
one JSON object a line, to ``failures.jsonl`` next to the subset and the report lists them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mmssr_plugin.data.sample import Sample


@dataclass(frozen=True)
class FailureRecord:
    """One sample that was excluded or failed, traceable to its raw row.

    Attributes:
        dataset: dataset name in ``dataset_info.json`` (or the pool file's stem).
        row: index of the raw row in the dataset's file(s).
        uid: the sample's stable uid.
        image: the image path the reason concerns (else the sample's first image), None if none.
        reason: why the sample is not usable (``"<kind>: <detail>"``, kinds as in ``data.sample``).
    """

    dataset: str
    row: int
    uid: str
    image: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (one line of ``failures.jsonl``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FailureRecord:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**{key: values.get(key) for key in ("dataset", "row", "uid", "image", "reason")})


def failure_record(sample: Sample, reason: str) -> FailureRecord:
    """The record of ``sample`` failing for ``reason``; the image named in the reason wins."""
    named = [path for path in sample.images if path and path in reason]
    image = named[0] if named else (sample.images[0] if sample.images else None)
    return FailureRecord(sample.dataset, sample.row, sample.uid, image, reason)


def sample_failures(sample: Sample) -> list[FailureRecord]:
    """One record per validation problem of ``sample`` (none for a valid sample)."""
    return [failure_record(sample, problem) for problem in sample.problems]
