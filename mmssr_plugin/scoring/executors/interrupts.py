"""Interrupts of a scoring job, the same for every executor: SIGINT and SIGTERM stop the run (the
executor's own clean-up stops its workers or actors) and surface as one
:class:`ScoringInterrupted` whose message says what was kept and how to resume.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from mmssr_plugin.scoring.store import ScoreStore


class ScoringInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a scoring job; its workers are stopped, finished shards kept.

    ``exit_status`` is the conventional status of the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signal_number: int, message: str = "") -> None:
        super().__init__(message or f"scoring interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = int(signal_number)
        self.exit_status = 128 + int(signal_number)


@contextlib.contextmanager
def interruptible(store: ScoreStore) -> Iterator[None]:
    """Run an executor so that SIGINT or SIGTERM ends it with :class:`ScoringInterrupted`.

    While the block runs, SIGTERM raises like SIGINT raises ``KeyboardInterrupt`` (handlers can be
    set from the main thread only); the block's own ``finally`` stops its workers, then the shards
    this run finished are counted for the message.
    """
    before = store.shard_versions()
    received: list[int] = []
    with _terminate_raises(received):
        try:
            yield
        except KeyboardInterrupt:
            # A library may re-raise a plain KeyboardInterrupt: the handler noted the signal.
            number = received[-1] if received else signal.SIGINT
            kept = len(set(store.shard_versions().items()) - set(before.items()))
            raise ScoringInterrupted(
                number,
                f"scoring interrupted by {signal.Signals(number).name}: the workers are stopped, "
                f"{kept} shard(s) finished in this run are kept in {store.path}; run the same "
                f"command again to resume",
            ) from None


@contextlib.contextmanager
def job_signal_handlers() -> Iterator[None]:
    """Keep this process's SIGTERM handler across the block (``ray.init`` installs its own, which
    would exit without stopping the run the way :func:`interruptible` does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _terminate_raises(received: list[int]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_terminate(number: int, frame: Any) -> None:
        received.append(number)
        raise ScoringInterrupted(number)

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
