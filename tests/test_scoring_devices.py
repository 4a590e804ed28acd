"""Where scoring workers run: CUDA_VISIBLE_DEVICES (MIG included), nvidia-smi, torch's count, and
CPU threads that leave busy cores alone."""

import pytest

from mmssr_plugin.scoring import devices
from mmssr_plugin.scoring.devices import (
    worker_threads,
    parse_nvidia_smi_listing,
    parse_visible_devices,
)

LISTING = """\
GPU 0: NVIDIA H200 (UUID: GPU-1a2b3c4d-0000-1111-2222-333344445555)
GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-5e6f7a8b-0000-1111-2222-333344445555)
  MIG 3g.40gb     Device  0: (UUID: MIG-aaaa1111-2222-3333-4444-555566667777)
  MIG 3g.40gb     Device  1: (UUID: MIG-bbbb1111-2222-3333-4444-555566667777)
GPU 2: NVIDIA H200 (UUID: GPU-9c0d1e2f-0000-1111-2222-333344445555)
"""


@pytest.mark.parametrize("value, expected", [
    ("0,1", ["0", "1"]),
    (" 2 , 3 ", ["2", "3"]),
    ("", []),
    ("-1", []),
    ("1,-1,2", ["1"]),  # CUDA stops at the first invalid entry
    ("0,0", ["0"]),  # a repeated device ends the list too
    ("GPU-1a2b3c4d-0000-1111-2222-333344445555", ["GPU-1a2b3c4d-0000-1111-2222-333344445555"]),
    ("MIG-aaaa1111-2222-3333-4444-555566667777,MIG-GPU-5e6f7a8b/1/0",
     ["MIG-aaaa1111-2222-3333-4444-555566667777", "MIG-GPU-5e6f7a8b/1/0"]),
])
def test_cuda_visible_devices(value, expected):
    assert parse_visible_devices(value) == expected


def test_nvidia_smi_listing_gives_mig_instances_of_split_gpus():
    assert parse_nvidia_smi_listing(LISTING) == [
        "0", "MIG-aaaa1111-2222-3333-4444-555566667777",
        "MIG-bbbb1111-2222-3333-4444-555566667777", "2",
    ]
    assert parse_nvidia_smi_listing("") == []
    assert parse_nvidia_smi_listing("No devices were found\n") == []


def test_visible_gpus_sources(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert devices.visible_gpus() == ["3", "1"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(devices.shutil, "which", lambda name: None)  # no nvidia-smi
    monkeypatch.setattr(devices, "glob", lambda pattern: ["/dev/nvidia0"])
    monkeypatch.setattr(devices, "_torch_device_count", lambda: 2)
    assert devices.visible_gpus() == ["0", "1"]
    monkeypatch.setattr(devices, "glob", lambda pattern: [])  # no NVIDIA device: no torch probe
    monkeypatch.setattr(devices, "_torch_device_count", lambda: pytest.fail("probed torch"))
    assert devices.visible_gpus() == []


def test_cpu_threads_share_the_usable_cores_whatever_the_load(monkeypatch):
    monkeypatch.setattr(devices.os, "getloadavg", lambda: (7.0, 7.0, 7.0))  # must not matter
    assert worker_threads(1, cores=2) == 2
    assert worker_threads(2, cores=16) == 8
    assert worker_threads(4, cores=2) == 1
    assert worker_threads(1, cores=1) == 1


def test_worker_threads_honour_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_threads(2) == 3  # the user's pin, for local workers and Ray actors alike
    monkeypatch.setenv("OMP_NUM_THREADS", "none")
    assert 1 <= worker_threads(2) <= max(1, devices.usable_cores())
