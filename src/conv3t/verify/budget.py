"""How much of the work fits at once: memory budget, batch size, OOM retry (device names and sizes: conv3t.runtime).

The explanation report and ``conv3t verify`` stream their clips through the network in batches. The batch
size follows a memory budget: by default a share of the memory the device has free now (on a CPU
:data:`CPU_FRACTION` of ``MemAvailable`` in ``/proc/meminfo``, at most :data:`CPU_CAP_BYTES`; on a GPU
:data:`CUDA_FRACTION` of ``torch.cuda.mem_get_info``'s free bytes); ``--max-memory`` (``"4GB"``) sets it
instead. On a CPU the kernel's out-of-memory killer cannot be caught, so the budget is what keeps a run alive;
on a GPU an out-of-memory error is caught and the batch is retried at half the size (:func:`run_in_batches`).

The memory one item (one clip) takes is measured, not guessed: :func:`peak_bytes` runs one item under
torch's CPU memory profiler (every allocation of torch's CPU allocator, kernel workspaces included) or reads
``torch.cuda.max_memory_allocated`` on a GPU.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from conv3t.runtime import parse_memory

__all__ = [
    "CPU_CAP_BYTES",
    "CPU_FRACTION",
    "CUDA_FRACTION",
    "MemoryBudget",
    "MemoryBudgetError",
    "available_bytes",
    "format_bytes",
    "memory_budget",
    "peak_bytes",
    "plan_batch",
    "run_in_batches",
]

#: Default budget on a CPU: this fraction of the memory the kernel reports as available, at most
#: :data:`CPU_CAP_BYTES`, so that a report of the paper's networks stays within a few GB resident on a machine
#: with much free memory (a CPU is kept busy by a few paper-size clips per batch).
CPU_FRACTION = 0.25
CPU_CAP_BYTES = 2 * 10**9
#: Default budget on a GPU: this fraction of its free memory.
CUDA_FRACTION = 0.8


class MemoryBudgetError(ValueError):
    """The work does not fit the memory budget even one item at a time (the message names the option)."""


def format_bytes(n: float) -> str:
    """``1.5e9 -> "1.50 GB"`` (decimal units)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def available_bytes(device: torch.device, meminfo: str | os.PathLike[str] = "/proc/meminfo") -> int:
    """Free memory now: ``MemAvailable`` of ``meminfo`` (CPU; total physical memory when that file is missing)
    or the GPU's free bytes."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file counts kB (KiB)
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the streamed work may hold at once, and where that number came from (shown in the report)."""

    bytes: int
    source: str

    def __str__(self) -> str:
        return f"{format_bytes(self.bytes)} ({self.source})"


def memory_budget(
    device: torch.device, max_memory: str | int | None = None, meminfo: str | os.PathLike[str] = "/proc/meminfo"
) -> MemoryBudget:
    """``max_memory`` (``"4GB"``) when given, else the default share of ``device``'s free memory (see the
    module notes)."""
    if max_memory is not None:
        return MemoryBudget(parse_memory(max_memory), "--max-memory")
    if device.type == "cuda":
        return MemoryBudget(int(CUDA_FRACTION * available_bytes(device)), f"{CUDA_FRACTION:.0%} of free GPU memory")
    share = int(CPU_FRACTION * available_bytes(device, meminfo))
    if share > CPU_CAP_BYTES:
        return MemoryBudget(CPU_CAP_BYTES, f"the CPU default cap; {CPU_FRACTION:.0%} of available memory is more")
    return MemoryBudget(share, f"{CPU_FRACTION:.0%} of available memory")


def peak_bytes(work: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated by torch while ``work()`` runs, above what was allocated before it.

    CPU: the allocation events of torch's profiler (``profile_memory``), summed in time order; CUDA:
    ``torch.cuda.max_memory_allocated``. Returns -1 (not measured) on a CPU where a profiler is already running.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        work()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile

    if torch.autograd._profiler_enabled():
        work()  # a profiler is already running (e.g. a test measuring this run): it cannot be nested
        return -1
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        work()
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()  # type: ignore[union-attr]
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    )
    live = peak = 0
    for _, n in events:
        live += n
        peak = max(peak, live)
    return int(peak)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null: the profiler's C++ side prints start/stop lines there (Python errors are
    raised, not printed, so nothing the user needs is lost)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def plan_batch(item_bytes: int, fixed_bytes: int, budget: MemoryBudget, cap: int, what: str, option: str) -> int:
    """The largest batch ``<= cap`` with ``fixed_bytes + batch * item_bytes <= budget.bytes``.

    Raises :class:`MemoryBudgetError` naming ``option`` (and ``--max-memory``) when one item does not fit.
    ``item_bytes < 0`` (not measured, see :func:`peak_bytes`) gives ``cap``.
    """
    if item_bytes < 0:
        return cap
    room = budget.bytes - fixed_bytes
    if item_bytes > room:
        raise MemoryBudgetError(
            f"{what} needs {format_bytes(fixed_bytes + item_bytes)} for a single clip, more than the memory budget "
            f"of {budget}; raise --max-memory or lower {option}"
        )
    return max(1, min(cap, math.floor(room / max(item_bytes, 1))))


def run_in_batches(
    total: int,
    batch: int,
    work: Callable[[int, int], None],
    on_retry: Callable[[str], None] | None = None,
    option: str = "--max-memory",
) -> int:
    """Call ``work(start, stop)`` over ``range(total)`` in batches of ``batch``; returns the batch size used last.

    A CUDA out-of-memory error retries the same items with half the batch (``on_retry`` gets a sentence that
    says so); at batch size 1 it is re-raised with a message naming ``option``. ``work`` must leave no partial
    result behind when it raises.
    """
    start = 0
    while start < total:
        stop = min(total, start + batch)
        try:
            work(start, stop)
        except torch.OutOfMemoryError as err:
            if batch == 1:
                raise MemoryBudgetError(
                    f"the GPU ran out of memory at batch size 1; free GPU memory, lower {option} or use --device cpu"
                ) from err
            torch.cuda.empty_cache()
            batch = max(1, batch // 2)
            if on_retry is not None:
                on_retry(f"GPU out of memory at batch size {stop - start}: retrying with batch size {batch}")
            continue
        start = stop
    return batch
