"""The driver's progress bar of a scoring job (stderr): samples done, samples/s and ETA, as
either executor finishes shards."""

from __future__ import annotations

import sys
from typing import Any


class ShardProgress:
    """Counts finished samples of the pending shards; quiet unless ``enabled``."""

    def __init__(self, total_samples: int, total_shards: int, enabled: bool) -> None:
        from tqdm import tqdm

        interactive = sys.stderr.isatty()
        self.total_shards = total_shards
        self.shards = 0
        self.samples = 0
        self._bar: Any = tqdm(
            total=total_samples, unit="sample", disable=not enabled, dynamic_ncols=True,
            desc="scoring", file=sys.stderr, mininterval=0.5 if interactive else 10.0,
        )

    def advance_to(self, samples: int, shards: int) -> None:
        """Move the bar to ``samples`` finished samples in ``shards`` finished shards."""
        if samples > self.samples:
            self._bar.update(samples - self.samples)
            self.samples = samples
        if shards != self.shards:
            self.shards = shards
            self._bar.set_postfix_str(f"shards {shards}/{self.total_shards}", refresh=False)

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()
