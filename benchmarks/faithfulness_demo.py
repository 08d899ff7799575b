"""The report's faithfulness stage on the demo models: verdicts, the summary over the clips and the time.

For each ``RUNS/demo_seed<S>`` (``conv3t demo --no-report --seed S --out RUNS/demo_seed<S>``), the report's clips
(the first ``--clips`` validation clips, :func:`conv3t.explain.report.analysis.read_clips`) are explained as the
report explains them (:func:`conv3t.explain.report.analysis.explain_predictions`, built on
:func:`conv3t.explain.faithfulness.explain_clip`, with the default frame attribution) and checked as the report
checks them (``Faithfulness(model, draws=19, seed=0, batch_size=8, explainer=conv3t_explainer(...),
pixel_std=model.json std)``). Prints one line per clip (seconds, each check's verdict and p-value; then the
randomisation tests' absolute variant and the draws each sanity test used),
then ``Faithfulness.summarise`` over each seed's clips and over all clips,
and the faithfulness stage's seconds per seed (the report's own stage: checks only, not the explanations).

Run:  OMP_NUM_THREADS=1 python benchmarks/faithfulness_demo.py --runs RUNS [--seeds 0 1 2] [--clips 3] [--check-seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import torch

from conv3t.explain.faithfulness import Faithfulness, FaithfulnessResult, conv3t_explainer
from conv3t.explain.methods import temporal_layers
from conv3t.explain.methods.frame_attribution import DEFAULT_FRAME_ATTRIBUTION
from conv3t.explain.report.analysis import explain_predictions, predict, read_clips
from conv3t.exported import load_exported


def _summary(title: str, results: list[FaithfulnessResult]) -> None:
    print(f"\n{title}")
    print("| check | kind | clips testable | clips passing | combined p | Holm p | holds |")
    print("|---|---|---:|---:|---:|---:|---|")
    for c in Faithfulness.summarise(results).checks:
        combined = "–" if c.combined_p is None else f"{c.combined_p:.2g}"
        holm = "–" if c.holm_p is None else f"{c.holm_p:.2g}"
        holds = {True: "yes", False: "no", None: "–"}[c.holds]
        print(f"| {c.check} | {c.kind} | {c.tested} of {c.clips} | {c.passed} | {combined} | {holm} | {holds} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--draws", type=int, default=19)
    parser.add_argument("--frame-method", default=DEFAULT_FRAME_ATTRIBUTION)
    parser.add_argument("--check-seed", type=int, default=0, help="Faithfulness seed: the random draws (report: 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    everything: list[FaithfulnessResult] = []
    for seed in args.seeds:
        run = load_exported(args.runs / f"demo_seed{seed}")
        model, info = run.model.eval(), run.info
        clips, _ = read_clips(info, None, args.clips)
        clips = predict(model, clips, info.classes)
        layers = temporal_layers(model)
        records = explain_predictions(
            model,
            torch.stack([c.clip for c in clips]),
            [c.name for c in clips],
            info.classes,
            layers,
            frame_method=args.frame_method,
        )
        results, start, cpu = [], time.perf_counter(), time.process_time()
        for record, clip in zip(records, clips):
            t = time.perf_counter()
            check = Faithfulness(
                model,
                draws=args.draws,
                seed=args.check_seed,
                batch_size=8,
                classes=list(info.classes),
                explainer=conv3t_explainer(layers, record.cam_layer or None, frame_method=record.frame_method),
                pixel_std=info.std,
            )
            r = check.evaluate(clip.clip, record.target, record.explanation)
            results.append(r)
            marks = " ".join(
                f"{v.check}={'✔' if v.passed else ('✘' if v.passed is False else '–')}"
                + ("" if v.p_value is None else f"{v.p_value:.2g}")
                for v in r.verdicts
            )
            absolute = " ".join(
                f"{t.kind}={t.absolute_corr:.2f}/{t.absolute_p:.2g}" for t in r.randomisation_tests if t.absolute_p
            )
            print(f"seed {seed} {clip.name} ({record.top[0]['class']}): {time.perf_counter() - t:.1f} s  {marks}")
            print(f"    absolute variant (r / p): {absolute}")
            logit = [dataclasses.replace(t, kind=f"logit/{t.kind}") for t in r.random_logit_tests]
            used = [*r.randomisation_tests, *logit]
            print("    sanity draws used: " + " ".join(f"{t.kind}={t.draws_used}/{t.seeds}" for t in used))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"seed {seed}: faithfulness stage {seconds:.1f} s wall, {cpu:.1f} s CPU for {len(clips)} clips; "
            f"load {os.getloadavg()}"
        )
        _summary(f"seed {seed}", results)
        everything += results
    _summary(f"all {len(everything)} clips", everything)


if __name__ == "__main__":
    main()
