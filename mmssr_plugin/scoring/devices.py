"""Where scoring workers run: the visible GPUs (one worker each), and the CPU threads of each.

Found without importing torch in the calling process: ``CUDA_VISIBLE_DEVICES`` (indices, GPU and
MIG UUIDs, with CUDA's rule that the list ends at the first invalid entry), else ``nvidia-smi -L``
(a GPU split into MIG instances gives one worker per instance), else, where NVIDIA device files
exist, ``torch.cuda.device_count()`` in a short child process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from glob import glob

_ENTRY = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")
_GPU_LINE = re.compile(r"^GPU (\d+):.*?(?:\(UUID: (GPU-[^)]+)\))?\s*$")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)]+)\)\s*$")
# Environment of CPU workers: OpenMP threads sleep instead of spinning while they wait, so a
# worker sharing its cores with other busy processes does not burn its time slices spinning.
CPU_WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}


def parse_visible_devices(value: str) -> list[str]:
    """The devices a ``CUDA_VISIBLE_DEVICES`` value makes visible, in order."""
    devices: list[str] = []
    for entry in (part.strip() for part in value.split(",")):
        if not _ENTRY.match(entry) or entry in devices:
            break  # CUDA ignores this entry and every one after it
        devices.append(entry)
    return devices


def parse_nvidia_smi_listing(listing: str) -> list[str]:
    """Devices of an ``nvidia-smi -L`` listing: GPU indices, or MIG UUIDs of split GPUs."""
    devices: list[str] = []
    current: str | None = None
    migs: list[str] = []
    for line in listing.splitlines():
        gpu, mig = _GPU_LINE.match(line), _MIG_LINE.match(line)
        if gpu:
            if current is not None:
                devices += migs or [current]
            current, migs = gpu.group(1), []
        elif mig and current is not None:
            migs.append(mig.group(1))
    if current is not None:
        devices += migs or [current]
    return devices


def visible_gpus() -> list[str]:
    """The GPUs (indices or UUIDs) scoring workers should run on, one worker each."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return parse_visible_devices(declared)
    if shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                     timeout=20, check=True).stdout
            return parse_nvidia_smi_listing(listing)
        except (OSError, subprocess.SubprocessError):
            pass
    if not glob("/dev/nvidia[0-9]*"):
        return []
    return [str(i) for i in range(_torch_device_count())]


def _torch_device_count() -> int:
    """``torch.cuda.device_count()``, asked of a child process so this one stays torch-free."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
            capture_output=True, text=True, timeout=120, check=True).stdout
        return int(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return 0


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_threads(n_workers: int, cores: int | None = None) -> int:
    """Torch threads of one scoring worker (local process or Ray actor alike):
    ``OMP_NUM_THREADS`` when set, else the usable cores shared out.

    The count never depends on the machine's momentary load: a different thread count changes
    float rounding, so a resumed run must use the count of the run it resumes. Workers wait
    passively (``OMP_WAIT_POLICY=PASSIVE``), which is what keeps them fast beside busy processes.

    Args:
        n_workers: worker processes about to start on this machine.
        cores: usable cores (default: this process's affinity; given, ``OMP_NUM_THREADS`` is not
            read).
    """
    declared = os.environ.get("OMP_NUM_THREADS", "")
    if cores is None and declared.isdigit() and int(declared) > 0:
        return int(declared)
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, n_workers))
