"""Reading the raw rows of LLaMA-Factory datasets into validated samples.

(Contract; the reader and validation are being written.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """One raw row of a dataset, normalised for scoring.

    Attributes:
        uid: stable id ``"{dataset}:{row}:{content_hash}"`` (hash: 12 hex chars of sha1 over the
            canonical JSON of the raw row).
        dataset: dataset name in ``dataset_info.json`` (or the pool file's stem).
        row: index of the raw row in the dataset's file(s), counting every row, broken ones too.
        turns: alternating user/assistant texts, user first (system turns removed).
        images: image paths as resolved against ``media_dir`` the way LLaMA-Factory does it.
        source: image source used for style bins.
        system: the system prompt of the row, if any.
        problems: reasons this sample is unusable (empty when it is valid).
    """

    uid: str
    dataset: str
    row: int
    turns: tuple[str, ...]
    images: tuple[str, ...] = ()
    source: str = ""
    system: str | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the sample has no problem."""
        return not self.problems
