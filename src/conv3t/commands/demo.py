"""``conv3t demo [--out DIR] [--seed S] [--quick] [--no-report]``: the whole idea on a laptop in a few minutes.

Synthetic clips of a textured object that translates, rotates, zooms or stays still (the class is the motion,
:class:`~conv3t.data.SyntheticMotionDataset`) -> a reduced 3TConv ResNet trained from scratch on the CPU ->
validation accuracy -> ``summary.json``, exported weights and the explanation report, which reads the learned
motions straight from the temporal parameters.

The workflow lives here, above both :mod:`conv3t.train` and :mod:`conv3t.explain`, because it uses both and
neither may import the other.

The network is ``resnet10_3t`` (one residual block per stage instead of ResNet18's two) with
``base_width`` 16 instead of 64 and no temporal stride in the stem; its temporal parameters start at random
small motions, one constant motion per channel (``model.temporal_init`` 0.3, ``temporal_init_per_channel``;
at the identity every slice is the same filter and the network starts blind to the direction of motion) and
learn with their own rate (``optim.temporal_lr`` 0.01; Adam moves each parameter by about its rate per step,
and at 0.1 they jumped across the whole useful range, see docs/training.md), for 16 epochs. A CPU-sized model
of the paper's family, not one of its Table 1 networks.
The same settings are in ``configs/demo.yaml``: ``conv3t train configs/demo.yaml`` repeats the training step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conv3t.files import write_json

if TYPE_CHECKING:  # importing conv3t.train loads Lightning: `conv3t --help` must not
    from conv3t.train.schema import ExperimentConfig

__all__ = ["DEMO_CONFIG", "QUICK_OVERRIDES", "demo_config", "register", "run", "run_demo"]


#: The demo's experiment (validated form: ``demo_config()``); ``configs/demo.yaml`` holds the same values.
DEMO_CONFIG: dict[str, Any] = {
    "seed": 0,
    "model": {
        "name": "resnet10_3t",
        "pretrained": None,
        "kwargs": {"base_width": 16, "stem_temporal_stride": 1},
        "temporal_init": 0.3,
        "temporal_init_per_channel": True,
    },
    "data": {
        "dataset": "synthetic",
        "task": "motion",
        "num_frames": 8,
        "size": [32, 32],
        "num_train": 2000,
        "num_val": 450,
        "batch_size": 32,
        "num_workers": 0,
        "seed": 0,
    },
    "cache": {"clips": True, "flip": True, "reverse": True},
    "optim": {"name": "adam", "lr": 0.003, "temporal_lr": 0.01},
    "sched": {"name": "cosine", "warmup_epochs": 0.5},
    "trainer": {
        "max_epochs": 16,
        "accelerator": "cpu",
        "devices": 1,
        "log_every_n_steps": 10,
        "num_sanity_val_steps": 0,
        "enable_model_summary": False,
    },
    "checkpoint": {"every_n_epochs": 1},
    "logging": {"tensorboard": False, "csv": True, "progress_bar": "rich"},
}

#: ``--quick``: the same code path on a handful of tiny clips (seconds; for tests, not for accuracy).
QUICK_OVERRIDES: dict[str, Any] = {
    "model": {"kwargs": {"base_width": 4, "stem_temporal_stride": 1}},
    "data": {"num_frames": 4, "size": [32, 32], "num_train": 18, "num_val": 9, "batch_size": 9},
    "trainer": {"max_epochs": 1},
}


def demo_config(quick: bool = False, seed: int | None = None) -> ExperimentConfig:
    """The validated demo config (``quick``: the tiny variant; ``seed``: the training seed, default 0).

    ``seed`` sets the top-level seed (initial weights and temporal parameters, batch order, flip and
    time-reversal draws); the clips themselves (``data.seed``) stay the same, so seeds are compared on the
    same validation clips.
    """
    # Importing conv3t.train loads Lightning (seconds); ``conv3t --help`` imports this module, so not at the top.
    from conv3t.train.config import merge, validate_config

    cfg = merge(DEMO_CONFIG, QUICK_OVERRIDES) if quick else DEMO_CONFIG
    if seed is not None:
        cfg = merge(cfg, {"seed": int(seed)})
    return validate_config(cfg, source="conv3t demo")


#: Written first into the output folder, so that a demo killed half-way (no ``summary.json`` yet) is still
#: recognised as the demo's own output when it is rerun into the same folder.
DEMO_MARKER = "demo-started.json"
_DEMO_OUTPUTS = (
    "summary.json",
    "metrics.json",
    "config.yaml",
    "model.json",
    "model.safetensors",
    "confusion_matrix.csv",
    "confusion_matrix.png",
)


def _prepare_out(out: Path, seed: int) -> None:
    """Make ``out`` ready: a previous demo's outputs (finished or killed half-way) are replaced; any other
    non-empty folder is refused with ``FileExistsError``. Leaves ``out/demo-started.json`` behind."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / "summary.json").is_file() or (out / DEMO_MARKER).is_file()):
            raise FileExistsError(
                f"{out} is not empty and holds no demo output (neither summary.json nor {DEMO_MARKER}); "
                "choose another --out"
            )
        for name in ("checkpoints", "logs", "tensorboard", "report"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        for name in _DEMO_OUTPUTS:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json({"conv3t_demo": True, "seed": seed, "started_utc": started}, out / DEMO_MARKER)


def _quiet_lightning() -> None:
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_demo(
    out: str | os.PathLike[str] = "runs/demo",
    quick: bool = False,
    report: bool = True,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the summary written to ``out/summary.json``.

    ``seed``: the training seed (:func:`demo_config`). A folder holding a previous demo's output, also one
    killed half-way, is reused; any other non-empty folder raises ``FileExistsError``.

    ``threads``: torch CPU threads. One by default: this model's small convolutions gain little from more,
    and on a machine shared with other work extra threads mostly wait for each other (measured: a 2-thread
    training step was slower than a 1-thread one while other jobs kept the 2 cores busy).
    """
    # torch, rich, Lightning and the report are imported when the demo runs, not when ``conv3t --help`` starts.
    import torch
    from rich.console import Console

    console = Console(stderr=True)
    t_start = time.perf_counter()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        return _run(console, t_start, Path(out), quick, report, seed)
    finally:
        torch.set_num_threads(previous_threads)


def _run(console: Any, t_start: float, out: Path, quick: bool, report: bool, seed: int) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from conv3t.explain.report import build_report
    from conv3t.train.run import train

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cfg = demo_config(quick, seed)
    _prepare_out(out, seed)
    d, m = cfg.data.options, cfg.model
    console.print(
        f"[bold]conv3t demo[/bold]: {d['num_train']} training + {d['num_val']} validation synthetic clips "
        f"({d['num_frames']} frames of {d['size'][0]}x{d['size'][1]} px; the class is the motion: "
        "left/right/up/down, clockwise/counter-clockwise, zoom in/out, static)\n"
        f"model {m.name} (reduced 3TConv ResNet, base width {m.kwargs['base_width']}) trained from scratch "
        f"for {cfg.trainer.max_epochs} epochs on the CPU; output in {out}/"
    )
    _quiet_lightning()

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    )
    tasks: dict[str, Any] = {}

    t_data = time.perf_counter()
    data_seconds: list[float] = []

    def on_clips(done: int, total: int, what: str) -> None:
        if not tasks:
            progress.start()
        if what not in tasks:
            tasks[what] = progress.add_task(f"rendering {what}", total=total)
        progress.update(tasks[what], completed=done)
        if what == "validation clips" and done == total:
            progress.stop()  # the training progress bar takes over the terminal
            data_seconds.append(time.perf_counter() - t_data)
            console.print(f"clips ready in {data_seconds[0]:.0f} s; training ...")

    result = train(cfg, out, cache_progress=on_clips)
    summary = _summary(cfg, out, result, quick, data_seconds[0] if data_seconds else None, load)
    report_path = None
    if report:
        console.print("building the explanation report ...")
        t_report = time.perf_counter()
        build_report(out, out / "report", progress=True)
        report_path = out / "report" / "index.html"
        summary["report"] = str(report_path)
        summary["report_seconds"] = round(time.perf_counter() - t_report, 2)
    summary["total_seconds"] = round(time.perf_counter() - t_start, 2)
    write_json(summary, out / "summary.json")

    top1 = summary["val_top1"]
    console.print(
        f"\n[bold]validation top-1 {top1:.1%}[/bold] on {d['num_val']} clips "
        f"(chance {1 / len(summary['classes']):.1%}); training took {result.train_seconds:.0f} s, "
        f"everything {summary['total_seconds']:.0f} s.\n"
        f"Look at:\n"
        f"  {out / 'summary.json'}         accuracy, clip size, timings\n"
        f"  {out / 'confusion_matrix.png'}  which motions get confused\n"
        f"  {out / 'model.safetensors'}     the weights (+ model.json): conv3t eval / conv3t explain take {out}"
    )
    if report_path is not None:
        console.print(f"  {report_path}  the explanation report: what each channel learned to track")
        _print_faithfulness(console, report_path.parent / "predictions.json")
    return summary


def _print_faithfulness(console: Any, predictions: Path) -> None:
    """The report's faithfulness verdicts (``predictions.json``): each check over the clips (its verdict after
    the Holm correction), then one block per explained clip. Faithfulness and sanity checks are counted apart:
    a passed sanity check is necessary, never evidence of faithfulness."""
    data = json.loads(predictions.read_text(encoding="utf-8")) if predictions.is_file() else {}
    entries = data.get("predictions", []) if isinstance(data, dict) else data
    checked = [e for e in entries if e.get("faithfulness")]
    if not checked:
        return
    console.print("\nAre the explanations of the predictions faithful to the model? (report section Faithfulness)")
    summary = data.get("faithfulness_summary") if isinstance(data, dict) else None
    checks = (summary or {}).get("checks", [])
    if checks:
        console.print(f"  over the {len(checked)} clips explained (Holm-corrected across {len(checks)} checks):")
    for c in checks:
        holm = "-" if c["holm_p"] is None else f"{c['holm_p']:.2g}"
        console.print(
            f"  {_OVER_CLIPS[c.get('holds')]:9s} {c['kind']:12s} {c['check']}: {c['passed']} of {c['tested']} "
            f"testable clips pass; Holm p = {holm}",
            highlight=False,
            markup=False,
        )
    for entry in checked:
        verdicts = entry["faithfulness"]["verdicts"]
        counts = ", ".join(_count(verdicts, kind) for kind in ("faithfulness", "sanity"))
        console.print(f"  {entry['video']} -> {entry['top'][0]['class']}: {counts}", highlight=False, markup=False)
        for v in verdicts:
            mark = "pass" if v["passed"] else ("fail" if v["passed"] is False else "n/a ")
            console.print(f"    {mark}  {v['sentence']}", highlight=False, markup=False)


#: A check's verdict over the clips (``holds`` of the summary): None when no clip was testable.
_OVER_CLIPS = {True: "holds", False: "fails", None: "untested"}


def _count(verdicts: list[dict[str, Any]], kind: str) -> str:
    """'<kind> k of n pass' over the testable verdicts of one kind (old files without ``kind``: faithfulness),
    with the untestable ones named."""
    mine = [v for v in verdicts if v.get("kind", "faithfulness") == kind]
    tested = [v for v in mine if v["passed"] is not None]
    text = f"{kind} {sum(bool(v['passed']) for v in tested)} of {len(tested)} pass"
    untestable = len(mine) - len(tested)
    return text + (f" ({untestable} not testable)" if untestable else "")


def _summary(
    cfg: ExperimentConfig, out: Path, result: Any, quick: bool, data_seconds: float | None, load: float | None
) -> dict[str, Any]:
    """What ``summary.json`` records: accuracy, the experiment in brief, timings and the machine's state."""
    import torch  # loaded by run_demo already

    from conv3t.exported import read_meta

    d, m, meta = cfg.data.options, cfg.model, read_meta(out)
    metrics = result.metrics
    summary: dict[str, Any] = {
        "val_top1": metrics.get("val/top1"),
        "val_top5": metrics.get("val/top5"),
        "val_mean_class_acc": metrics.get("val/mean_class_acc"),
        "model": m.name,
        "model_kwargs": m.kwargs,
        "task": d["task"],
        "classes": list(meta.classes),
        "clip": {"num_frames": meta.num_frames, "size": list(meta.size)},
        "num_train": d["num_train"],
        "num_val": d["num_val"],
        "epochs": cfg.trainer.max_epochs,
        "data_seconds": round(data_seconds, 2) if data_seconds is not None else None,
        "train_seconds": round(result.train_seconds, 2),
        "quick": quick,
        "seed": cfg.seed,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "weights": str(out / "model.safetensors"),
        "report": None,
    }
    return summary


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="train a small 3TConv network on synthetic motion clips and explain it (a few minutes on a CPU)",
        description=(
            "Generate synthetic clips whose class is a motion, train a reduced 3TConv ResNet from scratch on the "
            "CPU, evaluate it and write summary.json, the weights and the explanation report into --out."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    p.add_argument("--quick", action="store_true", help="a few tiny clips and one epoch: checks the pipeline only")
    p.add_argument("--no-report", action="store_true", help="skip the explanation report")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, see docs/training.md)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0); the clips stay the same")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        run_demo(args.out, quick=args.quick, report=not args.no_report, threads=args.threads, seed=args.seed)
    except FileExistsError as err:
        print(f"conv3t demo: {err}", file=sys.stderr)
        return 1
    return 0
