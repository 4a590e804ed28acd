"""What a scoring job did: counts of scored, failed and non-digit samples, the failed samples
themselves, digit mass, timing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from mmssr_plugin.data.failures import FailureRecord
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.digits import finite_mean
from mmssr_plugin.scoring.failures import failure_kind, failure_records
from mmssr_plugin.scoring.store import ScoreStore, ScoreTable

# Failed samples named in the summary lines (all of them are in ``failed_samples``).
SHOWN_FAILURES = 5


@dataclass
class ScoringSummary:
    """What a scoring job did, for printing and for reports."""

    store_path: Path
    fingerprint_key: str
    total: int
    computed: int  # samples scored by this run (the rest came from the store)
    scored: int
    failures: dict[str, int]  # reason kind -> count
    non_digit: dict[str, int]  # capability -> scores missing because the answer was no digit
    digit_mass: dict[str, float]  # capability -> mean digit mass over scored samples
    style_unmatched: int
    seconds: float
    workers: int
    devices: list[str] = field(default_factory=list)
    failed_samples: list[FailureRecord] = field(default_factory=list)  # pool order

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        rate = self.computed / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"scores: {self.store_path}",
            f"samples: {self.total} ({self.computed} computed now, "
            f"{self.total - self.computed} reused), {self.scored} scored, "
            f"{self.total - self.scored} failed",
            f"time: {self.seconds:.1f} s ({rate:.2f} samples/s, {self.workers} worker(s) on "
            f"{', '.join(self.devices) or 'cpu'})",
        ]
        for reason, count in self.failures.items():
            out.append(f"  failed: {count} x {reason}")
        for record in self.failed_samples[:SHOWN_FAILURES]:
            out.append(f"  failed sample: {record.dataset} row {record.row} ({record.uid}): "
                       f"{record.reason}")
        if len(self.failed_samples) > SHOWN_FAILURES:
            out.append(f"  ... and {len(self.failed_samples) - SHOWN_FAILURES} more failed samples")
        missing = {cap: n for cap, n in self.non_digit.items() if n}
        if missing:
            out.append(f"non-digit answers (score left missing): {missing}")
        if self.digit_mass:
            masses = list(self.digit_mass.values())
            out.append(
                f"digit mass: mean {np.mean(masses):.3f}, lowest capability "
                f"{min(self.digit_mass, key=self.digit_mass.get)} {min(masses):.3f}"
            )
        if self.style_unmatched:
            out.append(f"style answers with unmatched text pieces: {self.style_unmatched}")
        return out


def summarize(
    table: ScoreTable, store: ScoreStore, samples: Sequence[Sample], computed: int,
    seconds: float, workers: int, devices: list[str],
) -> ScoringSummary:
    """Count failures, non-digit answers and digit mass of a score table (rows: ``samples``)."""
    scored = table.scored
    failures = Counter(failure_kind(err) for err in table.errors if err is not None)
    non_digit = {
        cap: int((table.digits.missing[:, c] & scored).sum())
        for c, cap in enumerate(table.capabilities)
    }
    mass = {
        cap: finite_mean(table.digits.mass[scored, c])
        for c, cap in enumerate(table.capabilities)
    }
    return ScoringSummary(
        store_path=store.path,
        fingerprint_key=store.key,
        total=len(table.uids),
        computed=computed,
        scored=int(scored.sum()),
        failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
        non_digit=non_digit,
        digit_mass=mass if scored.any() else {},
        style_unmatched=int((table.style_unmatched > 0).sum()),
        seconds=seconds,
        workers=workers,
        devices=devices,
        failed_samples=failure_records(samples, table.errors),
    )
