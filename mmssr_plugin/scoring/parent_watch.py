"""A worker process stops when the process that started it is gone (killed, crashed or exited),
so no orphan keeps a model, or GPU memory, beside the next run.

On Linux the kernel sends SIGTERM when the parent dies (``PR_SET_PDEATHSIG``); everywhere a daemon
thread also checks every second that the parent is still the process that started this one.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0
PARENT_ENV = "MMSSR_SCORING_PARENT"
"""Environment variable holding the pid of the job process that started a worker."""


def parent_environment() -> dict[str, str]:
    """What a job process adds to a worker's environment so the worker knows its parent."""
    return {PARENT_ENV: str(os.getpid())}


def stop_with_parent(poll_seconds: float = POLL_SECONDS) -> None:
    """Arrange for SIGTERM to reach this process once its parent is gone (at once if the parent
    named in the environment died before this process got here)."""
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        except (OSError, AttributeError):  # no prctl: the watch thread alone
            pass
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch, args=(parent, poll_seconds), daemon=True,
                     name="parent-watch").start()


def _watch(parent: int, poll_seconds: float) -> None:
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os.kill(os.getpid(), signal.SIGTERM)
