"""Timing helpers and a description of the machine the numbers come from."""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synchronised(function: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """`function`, waiting for queued CUDA work to finish so that its time is the work's time."""
    if device.type != "cuda":
        return function

    def call() -> object:
        result = function()
        torch.cuda.synchronize(device)
        return result
    return call


def machine_info(device: torch.device) -> dict:
    """What the numbers depend on: CPU, cores this process may use, load, torch and its threads."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
