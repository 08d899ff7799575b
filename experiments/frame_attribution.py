"""Frame attributions on the demo models: which of them do the faithfulness checks confirm?

For the demo model (`conv3t demo`'s settings, :data:`conv3t.commands.demo.DEMO_CONFIG`) at each training seed,
the script takes the clips the demo's report explains (the first ``--clips`` of the run's validation clips,
:func:`conv3t.explain.report.analysis.read_clips`; 3 by default, as the report), explains each clip's top class
with every frame attribution of :mod:`conv3t.explain.methods.frame_attribution`

  input_x_gradient      |x · ∂logit/∂x| per frame, zero baseline (the report's frame importance so far)
  first_order           Σ (x_t − x̄) · ∂logit/∂x_t per frame, mean-frame baseline, signed
  integrated_gradients  integrated gradients from the mean-frame clip, per frame, signed

and checks it with ``Faithfulness(model, draws=D, seed=0, batch_size=8, classes=...).evaluate(clip, target,
Explanation(frame_importance=attribution))``, the checks' explainer recomputing the *same* attribution on the
randomised models (so the randomisation verdict is about that attribution). Only the frame checks run (the
explanation has no channels and no Grad-CAM): every verdict whose check name contains "frame".

Models: ``RUNS/demo_seed<S>/`` (``model.safetensors`` + ``model.json``, as ``conv3t demo --no-report --seed S
--out RUNS/demo_seed<S>`` writes them); a seed without one is trained first, with the demo's settings (its
training time is printed and is in that folder's ``summary.json``).

Run:  python experiments/frame_attribution.py [--runs DIR] [--seeds 0 1 2] [--clips 3] [--draws 20]
                                             [--methods M ...] [--steps N] [--threads 1] [--json FILE]
      (from the repository root, with conv3t importable; default --runs runs/experiments/frame_attribution)

Output (stdout), in this order:
  * one line per model: seed, validation top-1, where it came from (stored or trained, seconds);
  * a Markdown table, one row per (seed, clip, attribution): seed | clip | label -> predicted (p) |
    attribution | IG completeness error (|Σ_t a_t − Δlogit| / |Δlogit|, integrated gradients only) |
    one column per frame check: ✔ / ✘ / – (not testable), then the check's p-value when its Verdict has one,
    else the numbers the check compared (AUC vs random mean ± std; the last rank correlation);
  * a Markdown table of passes per attribution and check over all clips ("k of n");
  * the total time.
``--json FILE`` also writes the rows (one object per row: seed, clip, label, predicted, probability, method,
completeness_error, and per check {passed, p_value, effect, sentence}) atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from conv3t.explain.faithfulness import Explanation, Faithfulness, FaithfulnessResult
from conv3t.explain.methods.frame_attribution import FRAME_ATTRIBUTIONS, frame_attribution, integrated_frame_attribution
from conv3t.explain.report.analysis import read_clips
from conv3t.exported import ExportedModel, load_exported
from conv3t.files import atomic_write

#: The frame checks of the old rules, in column order; a check of another name containing "frame" (new rules)
#: gets its own column after these.
FRAME_CHECKS = ("frame_deletion", "frame_insertion", "randomisation_frame_importance")
MARK = {True: "✔", False: "✘", None: "–"}


@dataclass
class Row:
    """One (seed, clip, attribution): what was explained and the frame checks' verdicts."""

    seed: int
    clip: str
    label: str | None
    predicted: str
    probability: float
    method: str
    completeness_error: float | None
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)


def demo_model(runs: Path, seed: int) -> tuple[ExportedModel, str]:
    """The demo model of training seed ``seed``: stored under ``runs/demo_seed<S>`` or trained there now."""
    folder = runs / f"demo_seed{seed}"
    if (folder / "model.safetensors").is_file() and (folder / "model.json").is_file():
        return load_exported(folder), f"stored in {folder}"
    from conv3t.commands.demo import run_demo

    start = time.perf_counter()
    summary = run_demo(folder, report=False, threads=torch.get_num_threads(), seed=seed)
    spent = time.perf_counter() - start
    return load_exported(folder), (
        f"trained now into {folder}: {spent:.0f} s in all, {summary['train_seconds']:.0f} s of training"
    )


def attribution_explainer(method: str, steps: int | None = None) -> Callable[[nn.Module, Tensor, int], Explanation]:
    """The checks' explainer: ``method``'s frame attribution of one clip ``(1, C, T, H, W)``, nothing else
    (integrated gradients with ``steps`` quadrature points, None: adaptive, as the explanation checked)."""

    def explain(model: nn.Module, clip: Tensor, target: int) -> Explanation:
        with torch.enable_grad():
            if method == "integrated_gradients":
                frames = integrated_frame_attribution(model, clip, target, steps=steps).frames.float()
            else:
                frames = frame_attribution(model, clip, target, method)
            return Explanation(frame_importance=frames[0].detach().cpu())

    return explain


def _check_numbers(result: FaithfulnessResult, check: str) -> str:
    """What an old-rule check compared, in words: the AUC against the random orders, or the last correlation."""
    curve = {"frame_deletion": result.frame_deletion, "frame_insertion": result.frame_insertion}.get(check)
    if curve is not None and hasattr(curve, "auc"):
        return f"{curve.auc:.3f} vs {curve.random_auc_mean:.3f}±{curve.random_auc_std:.3f}"
    steps = getattr(result, "randomisation", ())
    if check.startswith("randomisation") and steps and hasattr(steps[-1], "frame_importance_rank_corr"):
        return f"ρ {steps[-1].frame_importance_rank_corr:.2f}"
    return ""


def _verdicts(result: FaithfulnessResult) -> dict[str, dict[str, Any]]:
    out = {}
    for v in result.verdicts:
        if "frame" not in v.check:
            continue
        p_value = getattr(v, "p_value", None)
        out[v.check] = {
            "passed": v.passed,
            "p_value": p_value,
            "effect": getattr(v, "effect", None),
            "sentence": v.sentence,
            "numbers": f"p={p_value:.3g}" if p_value is not None else _check_numbers(result, v.check),
        }
    return out


def evaluate_model(
    exported: ExportedModel, seed: int, clips: int, draws: int, methods: Sequence[str], steps: int | None
) -> list[Row]:
    """Every (clip, attribution) row of one model."""
    model, classes = exported.model.eval(), list(exported.info.classes)
    shown, _ = read_clips(exported.info, None, clips)
    rows = []
    for item in shown:
        x = item.clip[None]
        with torch.no_grad():
            probs = torch.softmax(model(x), 1)[0]
        target = int(probs.argmax())
        for method in methods:
            error = None
            if method == "integrated_gradients":
                ig = integrated_frame_attribution(model, x, target, steps=steps)
                attribution, error = ig.frames[0].float(), float(ig.relative_error[0])
            else:
                attribution = frame_attribution(model, x, target, method)[0]
            explainer = attribution_explainer(method, steps)
            check = Faithfulness(model, draws=draws, seed=0, batch_size=8, classes=classes, explainer=explainer)
            result = check.evaluate(item.clip, target, Explanation(frame_importance=attribution.detach().cpu()))
            rows.append(
                Row(
                    seed, item.name, item.label, classes[target], float(probs[target]), method, error, _verdicts(result)
                )
            )
    return rows


def _columns(rows: Sequence[Row]) -> list[str]:
    seen = [c for r in rows for c in r.checks]
    return [c for c in FRAME_CHECKS if c in seen] + sorted({c for c in seen if c not in FRAME_CHECKS})


def print_tables(rows: Sequence[Row]) -> None:
    columns = _columns(rows)
    print("\n| seed | clip | label → predicted (p) | attribution | IG completeness | " + " | ".join(columns) + " |")
    print("|---" * (5 + len(columns)) + "|")
    for r in rows:
        error = "" if r.completeness_error is None else f"{r.completeness_error:.1e}"
        cells = [f"{MARK[r.checks[c]['passed']]} {r.checks[c]['numbers']}" if c in r.checks else "" for c in columns]
        print(
            f"| {r.seed} | {r.clip} | {r.label} → {r.predicted} ({r.probability:.2f}) | {r.method} | {error} | "
            + " | ".join(cells)
            + " |"
        )
    print("\n| attribution | " + " | ".join(columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        cells = []
        for c in columns:
            judged = [r.checks[c]["passed"] for r in mine if c in r.checks]
            untestable = sum(p is None for p in judged)
            cells.append(
                f"{sum(p is True for p in judged)} of {len(judged)}" + (f" ({untestable} –)" if untestable else "")
            )
        print(f"| {method} | " + " | ".join(cells) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/experiments/frame_attribution"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clips", type=int, default=3, help="validation clips per model (the report's 3)")
    parser.add_argument("--draws", type=int, default=20, help="Faithfulness draws (the report's default 20)")
    parser.add_argument("--methods", nargs="+", choices=sorted(FRAME_ATTRIBUTIONS), default=list(FRAME_ATTRIBUTIONS))
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="integrated gradients' quadrature points (default: adaptive, as the report and the checks' explainer)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows: list[Row] = []
    for seed in args.seeds:
        exported, origin = demo_model(args.runs, seed)
        summary = exported.path / "summary.json"
        top1 = json.loads(summary.read_text())["val_top1"] if summary.is_file() else float("nan")
        print(f"seed {seed}: validation top-1 {top1:.3f}, {origin}", flush=True)
        rows += evaluate_model(exported, seed, args.clips, args.draws, args.methods, args.steps)
    print_tables(rows)
    print(f"\ntotal {time.perf_counter() - start:.0f} s ({args.threads} thread(s))")
    if args.json is not None:
        atomic_write(args.json, (json.dumps([vars(r) for r in rows], indent=1) + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
