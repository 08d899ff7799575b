"""Wall time and peak memory of ``conv3t explain`` (verification included) from the demo to the paper's sizes.

    python benchmarks/explain_scale.py --work /tmp/explain-scale                   # every row (slow: paper sizes)
    python benchmarks/explain_scale.py --work /tmp/explain-scale --rows demo resnet18_3t@16x112x112
    python benchmarks/explain_scale.py --work /tmp/explain-scale --smoke           # tiny sizes: checks the script
    python benchmarks/explain_scale.py --work W --explain-args --verify-textures 8 --max-memory 3GB
    PYTHONPATH=/tmp/before/src python benchmarks/explain_scale.py --work W   # another version's code (before)

Rows: ``demo`` (the demo model: ``--demo-run`` names a finished ``conv3t demo`` folder, otherwise
``configs/demo.yaml`` is trained first, minutes), and ``MODEL@TxHxW`` for ``resnet18_3t`` / ``googlenet_3t`` at
16x112x112 and 30x150x224: trained from scratch for one epoch on 8 synthetic motion clips (batch 2), as issue 17
set them up, so there is a run to explain. Training is not timed. Each ``conv3t explain RUN --out REPORT`` runs in
a child process; this one samples the resident set (VmRSS) of the child's process tree from ``/proc`` every
0.1 s (the peak is the largest sum seen), and the child records ``torch.cuda.max_memory_allocated`` when it
computed on a GPU. One JSON line per row, then a Markdown table. Report folders are new for every row (no stored
verification is reused), unless ``--keep-reports``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FULL_ROWS = (
    "demo",
    "resnet18_3t@16x112x112",
    "googlenet_3t@16x112x112",
    "resnet18_3t@30x150x224",
    "googlenet_3t@30x150x224",
)
SMOKE_ROWS = ("demo", "resnet18_3t@4x32x32", "googlenet_3t@8x32x32")  # GoogLeNet's pools need T >= 7
SMOKE_EXPLAIN = ["--verify-textures", "2", "--actmax-steps", "2", "--clips", "1", "--top", "1", "--no-faithfulness"]

# The child: run the CLI, then record what only the process itself can know (its GPU peak).
CHILD = """
import json, sys, time
import torch
from conv3t.cli import main
start = time.perf_counter()
code = main(sys.argv[2:])
peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
json.dump({"exit": code, "seconds": time.perf_counter() - start, "cuda_peak_bytes": peak}, open(sys.argv[1], "w"))
sys.exit(code)
"""


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _rss(pids: list[int]) -> int:
    """Summed VmRSS (bytes) of ``pids``."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def measure(command: list[str], log: Path, interval: float = 0.1) -> dict[str, Any]:
    """Run ``command``; its wall time, exit status and the peak resident set of its process tree."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _rss(_tree(proc.pid)))
            time.sleep(interval)
    return {"exit": proc.returncode, "wall_s": round(time.perf_counter() - start, 1), "peak_rss_bytes": peak}


def _conv3t(*args: str) -> list[str]:
    return [sys.executable, "-m", "conv3t", *args]


def prepare_run(row: str, work: Path, smoke: bool, demo_run: Path | None) -> Path:
    """The exported run a row explains (trained here when it is not there yet)."""
    if row == "demo":
        if demo_run is not None:
            return demo_run
        out = work / ("demo-quick" if smoke else "demo-run")
        if not (out / "model.safetensors").is_file():
            command = (
                _conv3t("demo", "--quick", "--no-report", "--out", str(out))
                if smoke
                else _conv3t("train", "configs/demo.yaml", "--out", str(out))
            )
            subprocess.run(command, check=True, cwd=ROOT)
        return out
    model, shape = row.split("@")
    frames, height, width = (int(v) for v in shape.split("x"))
    out = work / f"run-{model}-{shape}"
    if not (out / "model.safetensors").is_file():
        overrides = {
            "model.name": model,
            "model.kwargs": "{}",
            "data.num_frames": str(frames),
            "data.size": f"[{height}, {width}]",
            "data.num_train": "8",
            "data.num_val": "8",
            "data.batch_size": "2",
            "data.num_workers": "0",
            "trainer.max_epochs": "1",
        }
        flags = [item for key, value in overrides.items() for item in (f"--{key}", value)]
        command = _conv3t("train", "configs/synthetic_motion_3t.yaml", "--out", str(out), *flags)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return out


def bench_row(row: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    run = prepare_run(row, work, args.smoke, args.demo_run)
    report = work / f"report-{row.replace('@', '-')}"
    if report.exists() and not args.keep_reports:
        shutil.rmtree(report)
    extra = (SMOKE_EXPLAIN if args.smoke else []) + list(args.explain_args)
    device = [] if args.device == "auto" else ["--device", args.device]  # auto is the default (and older
    # versions, measured for the "before" column with PYTHONPATH=<their src>, have no --device)
    explain = ["explain", str(run), "--out", str(report), "--no-progress", *device, *extra]
    child_json = work / f"child-{row.replace('@', '-')}.json"
    result = measure(
        [sys.executable, "-c", CHILD, str(child_json), *explain], work / f"log-{row.replace('@', '-')}.txt"
    )
    child = json.loads(child_json.read_text()) if child_json.is_file() else {}
    header = _run_summary(report / "index.html")
    return {
        "row": row,
        "explain": " ".join(["conv3t", *explain]),
        **result,
        "peak_rss_gb": round(result["peak_rss_bytes"] / 1e9, 2),
        "cuda_peak_gb": None if child.get("cuda_peak_bytes") is None else round(child["cuda_peak_bytes"] / 1e9, 2),
        "run_summary": header,
        "load_avg": os.getloadavg()[0],
    }


def _run_summary(index: Path) -> str:
    """The report's own line on device, batch sizes and stage times (empty when there is no page)."""
    if not index.is_file():
        return ""
    text = index.read_text(encoding="utf-8")
    start = text.find("Computed on")
    return " ".join(text[start : text.find("</p>", start)].split()) if start >= 0 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for the runs, reports and logs")
    parser.add_argument("--rows", nargs="+", help=f"rows to measure (default: all; {', '.join(FULL_ROWS)})")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and a cheap report: checks the script")
    parser.add_argument("--demo-run", type=Path, help="a finished conv3t demo folder for the demo row")
    parser.add_argument("--device", default="auto", help="conv3t explain --device (auto)")
    parser.add_argument("--keep-reports", action="store_true", help="keep report folders (reuses their store)")
    parser.add_argument(
        "--explain-args", nargs=argparse.REMAINDER, default=[], help="further conv3t explain options (last)"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = args.rows or (SMOKE_ROWS if args.smoke else FULL_ROWS)
    results = []
    for row in rows:
        try:
            result = bench_row(row, args.work, args)
        except subprocess.CalledProcessError as err:  # training the row's run failed: say so, go on
            result = {"row": row, "exit": err.returncode, "wall_s": None, "peak_rss_gb": None, "cuda_peak_gb": None}
            result["error"] = f"preparing the run failed: {' '.join(err.cmd)}"
        print(json.dumps(result), flush=True)
        results.append(result)
    print("\n| row | exit | wall (s) | peak RSS (GB) | peak CUDA (GB) |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['exit']} | {r['wall_s']} | {r['peak_rss_gb']} | {r['cuda_peak_gb'] or '–'} |")


if __name__ == "__main__":
    main()
