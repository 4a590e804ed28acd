"""Preparing batches ahead of the accelerator: background threads, a bounded look-ahead.

Prompt encoding and image preprocessing of the next batches run in worker threads while the
model runs the current one (tokenizers and image processors release the interpreter lock in their
native code); at most ``lookahead`` prepared batches wait in memory. With no workers, each batch
is prepared when it is needed, in the calling thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Plan = TypeVar("Plan")
Prepared = TypeVar("Prepared")


def prefetched(prepare: Callable[[Plan], Prepared], plans: Iterable[Plan], workers: int,
               lookahead: int | None = None) -> Iterator[Prepared]:
    """``prepare(plan)`` for every plan, in order, computed up to ``lookahead`` plans ahead.

    An error raised by ``prepare`` is raised here, when its batch is reached; the batches being
    prepared behind it are dropped.
    """
    if workers <= 0:
        for plan in plans:
            yield prepare(plan)
        return
    ahead = max(1, lookahead if lookahead is not None else workers + 1)
    remaining = iter(plans)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmssr-encode") as pool:
        pending: deque[Future] = deque()
        try:
            for plan in remaining:
                pending.append(pool.submit(prepare, plan))
                if len(pending) >= ahead:
                    break
            while pending:
                ready = pending.popleft().result()
                for plan in remaining:
                    pending.append(pool.submit(prepare, plan))
                    break
                yield ready
        finally:
            for future in pending:
                future.cancel()
