"""Shared helpers of the Conv3T speed benchmarks: interleaved timing, medians, machine description.

Not a module of the package: the benchmark scripts import it from their own folder.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    device: torch.device,
    budget_s: float | None = None,
    clock: str = "wall",
) -> dict[str, list[float]]:
    """Seconds of each function, run in rounds (one call of each per round, rotating order).

    Side by side in one process so that every variant sees the same machine state; ``budget_s`` stops
    after the round in which it is exceeded (at least 3 rounds are kept when possible). ``clock="cpu"``
    measures this process's CPU time instead of wall time: robust against other processes on a shared
    machine, meaningful with one torch thread (with more it also counts threads spinning at barriers).
    """
    timer = time.process_time if clock == "cpu" else time.perf_counter
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
        sync(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            sync(device)
            t0 = timer()
            fns[name]()
            sync(device)
            times[name].append(timer() - t0)
        if budget_s is not None and r >= 2 and time.perf_counter() - start > budget_s:
            break
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine(device: torch.device) -> dict[str, object]:
    """What ran the benchmark: CPU model, threads, torch version, GPU, load average."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, object] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_avg_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


@contextlib.contextmanager
def maybe_autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
    else:
        with torch.autocast(device.type, dtype=dtype):
            yield


def parse_dtype(name: str | None) -> torch.dtype | None:
    if name in (None, "", "none", "fp32", "float32"):
        return None
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if name not in table:
        raise SystemExit(f"--autocast must be one of none, bf16, fp16; got {name!r}")
    return table[name]
