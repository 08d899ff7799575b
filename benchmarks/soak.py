"""Memory over a long training run: it must stay flat after the first epoch (BENCHMARKS.md, "Soak").

    python benchmarks/soak.py demo --out /tmp/soak-demo                 # conv3t train configs/demo.yaml, 16 epochs
    python benchmarks/soak.py steps --model resnet18_3t --steps 500     # a plain loop on a small clip

``demo`` runs ``conv3t train CONFIG`` as a child process and samples the proportional set size (PSS, from
``/proc/PID/smaps_rollup``, summed over the process tree) every ``--interval`` seconds. An epoch ends when its
``checkpoints/last.ckpt`` is written (the demo config saves one every epoch). It prints one JSON line per epoch
(PSS at its end and the most during it, MB) and a summary: the child's peak resident set (``ru_maxrss``, what
``/usr/bin/time -v`` reports), wall time and the growth per epoch after the first, in % of the first epoch's
end. ``steps`` runs forward + backward + Adam in this process and reads the resident set after
``gc.collect()`` and glibc ``malloc_trim(0)``, so allocator slack does not count.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

MB = 1 << 20


def _pss_bytes(pid: int) -> int:
    """PSS of ``pid`` and its descendants, bytes (0 for a process that is gone)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        pids += [int(c) for c in children]
    return total


def _growth(ends: list[float]) -> float | None:
    """Least-squares slope of the epoch-end PSS from the second epoch on, in % of the first epoch's end."""
    later = ends[1:]
    if len(later) < 2:
        return None
    xs = range(len(later))
    mx, my = sum(xs) / len(later), sum(later) / len(later)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, later)) / sum((x - mx) ** 2 for x in xs)
    return 100 * slope / ends[0]


def soak_demo(config: Path, out: Path, interval: float, extra: list[str]) -> None:
    last = out / "checkpoints" / "last.ckpt"
    cmd = [sys.executable, "-m", "conv3t", "train", str(config), "--out", str(out), *extra]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    seen, epoch_peak, ends = None, 0, []
    while child.poll() is None:
        pss = _pss_bytes(child.pid)
        epoch_peak = max(epoch_peak, pss)
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp is not None and stamp != seen:
            seen = stamp
            ends.append(pss / MB)
            row = {"epoch": len(ends), "pss_end_mb": round(pss / MB), "pss_max_mb": round(epoch_peak / MB)}
            print(json.dumps(row), flush=True)
            epoch_peak = 0
        time.sleep(interval)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    growth = _growth(ends)
    summary = {
        "command": " ".join(cmd[1:]),
        "returncode": child.returncode,
        "epochs_seen": len(ends),
        "peak_rss_mb": round(peak / MB),
        "wall_s": round(wall, 1),
        "growth_per_epoch_pct": None if growth is None else round(growth, 2),
        "load_avg_end": os.getloadavg(),
    }
    print(json.dumps(summary), flush=True)


def _rss_bytes() -> int:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def soak_steps(model_name: str, steps: int, every: int, frames: int, side: int) -> None:
    import torch

    from conv3t.models import create_model
    from conv3t.nn import randomize_temporal_parameters

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = create_model(model_name, 5).train()
    randomize_temporal_parameters(model, 0.3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    clip, labels = torch.randn(2, 3, frames, side, side), torch.tensor([0, 1])
    readings, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        optimiser.zero_grad(set_to_none=True)
        out = model(clip)
        logits = out[0] if isinstance(out, tuple) else out
        torch.nn.functional.cross_entropy(logits, labels).backward()
        optimiser.step()
        if step == 1 or step % every == 0:
            readings.append((step, _rss_bytes() / MB))
            print(json.dumps({"step": step, "rss_mb": round(readings[-1][1], 1)}), flush=True)
    (s0, r0), (s1, r1) = readings[1] if len(readings) > 1 else readings[0], readings[-1]
    per_step = (r1 - r0) / max(s1 - s0, 1)
    summary = {
        "model": model_name,
        "clip": [2, 3, frames, side, side],
        "steps": steps,
        "rss_first_mb": round(readings[0][1], 1),
        "rss_last_mb": round(r1, 1),
        "growth_mb_per_step_after_warmup": round(per_step, 4),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    demo = sub.add_parser("demo", help="conv3t train CONFIG in a child process, PSS per epoch")
    demo.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    demo.add_argument("--out", type=Path, required=True)
    demo.add_argument("--interval", type=float, default=0.25, help="seconds between samples")
    demo.add_argument("extra", nargs="*", help="more arguments for conv3t train (after --)")
    steps = sub.add_parser("steps", help="forward + backward + Adam in this process, RSS every N steps")
    steps.add_argument("--model", default="resnet18_3t")
    steps.add_argument("--steps", type=int, default=500)
    steps.add_argument("--every", type=int, default=50)
    steps.add_argument("--frames", type=int, default=16)
    steps.add_argument("--side", type=int, default=32)
    args = parser.parse_args()
    if args.what == "demo":
        soak_demo(args.config, args.out, args.interval, args.extra)
    else:
        soak_steps(args.model, args.steps, args.every, args.frames, args.side)


if __name__ == "__main__":
    main()
