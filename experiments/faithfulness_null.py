"""False-positive rate and power of the faithfulness checks on the planted networks (tests/explain/planted.py).

For each planted network, ``--explanations N`` explanations of each uninformative kind are checked with the
library's defaults (at most 99 random draws, exact frame tests):

* ``white``: a white-noise map, declared at the clip's resolution (``gradcam_shape = (T, H, W)``);
* ``smooth``: uniform noise drawn at the Grad-CAM layer's resolution and upsampled trilinearly, declared with
  that layer (``gradcam_layer``), i.e. smooth like a Grad-CAM;
* ``frames``: a uniformly random frame importance;
* ``channels``: a random channel set of the temporal layer (3 channels of 16 on FramePlantedNet, 2 of 9 on the
  3T PlantedNet);

and the perfect explanation (the decisive channels, frames and pixels) once per clip. Prints one JSON line per
(network, kind, check): the pass rate at alpha 0.05 with its Wilson 95 % interval, and
the mean p-value. An uninformative kind should pass at most at 0.05; the perfect explanation should pass.

Run:  OMP_NUM_THREADS=1 python experiments/faithfulness_null.py --explanations 50
      (``--first-seed 50`` draws a sample independent of the first run's 50)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "explain"))
from planted import (
    DECISIVE_CHANNELS,
    DECISIVE_FRAMES,
    SQUARE,
    frame_planted_clip,
    frame_planted_net,
    planted_clips,
    planted_net,
)

from conv3t.explain.faithfulness import ALPHA, Explanation, Faithfulness
from conv3t.proportions import wilson_interval


def _networks() -> list[tuple[str, torch.nn.Module, torch.Tensor, int, str, int, Explanation | None]]:
    """(name, net, clip, target, temporal layer, channels per random set, perfect explanation)."""
    net, clip = frame_planted_net(), frame_planted_clip()
    importance = torch.zeros(8)
    importance[list(DECISIVE_FRAMES)] = 1.0
    cam = torch.zeros(8, 16, 16)
    for t in DECISIVE_FRAMES:
        cam[t][SQUARE] = 1.0
    perfect = Explanation(
        channels={"conv1": DECISIVE_CHANNELS}, frame_importance=importance, gradcam=cam, gradcam_shape=(8, 16, 16)
    )
    clips, _ = planted_clips(seed=1)
    return [
        ("FramePlantedNet", net, clip, 0, "conv1", 3, perfect),
        ("PlantedNet (3T)", planted_net(), clips[0], 0, "conv1", 2, None),
    ]


def _explanation(
    kind: str, net: torch.nn.Module, clip: torch.Tensor, layer: str, k: int, g: torch.Generator
) -> Explanation:
    t, h, w = clip.shape[1:]
    if kind == "white":
        return Explanation(gradcam=torch.rand(t, h, w, generator=g), gradcam_shape=(t, h, w))
    if kind == "smooth":
        shapes: dict[str, tuple[int, ...]] = {}
        hook = net.get_submodule(layer).register_forward_hook(lambda _m, _i, o: shapes.update(s=tuple(o.shape)))
        with torch.no_grad():
            net(clip[None])
        hook.remove()
        coarse = shapes["s"][2:]
        noise = torch.rand(1, 1, *coarse, generator=g)
        cam = F.interpolate(noise, size=(t, h, w), mode="trilinear", align_corners=False)[0, 0]
        return Explanation(gradcam=cam, gradcam_layer=layer)
    if kind == "frames":
        return Explanation(frame_importance=torch.rand(t, generator=g))
    width = net.get_submodule(layer).out_channels
    return Explanation(channels={layer: tuple(torch.randperm(width, generator=g)[:k].tolist())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--explanations", type=int, default=50)
    parser.add_argument("--draws", type=int, default=99)
    parser.add_argument("--kinds", nargs="+", default=["white", "smooth", "frames", "channels"])
    parser.add_argument("--networks", nargs="+", default=["FramePlantedNet", "PlantedNet (3T)"])
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds explanations first.. (a fresh sample: past the last run's)"
    )
    parser.add_argument("--every", type=int, default=0, help="also print the rows so far every N explanations")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, net, clip, target, layer, k, perfect in _networks():
        if name not in args.networks:
            continue
        if perfect is not None:
            start = time.perf_counter()
            r = Faithfulness(net, draws=args.draws, randomise=False).evaluate(clip, target, perfect)
            for v in r.verdicts:
                row = {"network": name, "kind": "perfect", "check": v.check, "passed": v.passed, "p": v.p_value}
                print(json.dumps(row | {"seconds": round(time.perf_counter() - start, 1)}), flush=True)
        for kind in args.kinds:
            g = torch.Generator().manual_seed(1000 + args.first_seed)
            outcomes: dict[str, list[tuple[bool | None, float | None]]] = {}
            start = time.perf_counter()
            for i in range(args.explanations):
                check = Faithfulness(net, draws=args.draws, seed=args.first_seed + i, randomise=False)
                for v in check.evaluate(clip, target, _explanation(kind, net, clip, layer, k, g)).verdicts:
                    outcomes.setdefault(v.check, []).append((v.passed, v.p_value))
                if args.every and (i + 1) % args.every == 0 and i + 1 < args.explanations:
                    _print(name, kind, outcomes, start)
            _print(name, kind, outcomes, start)


def _print(name: str, kind: str, outcomes: dict[str, list[tuple[bool | None, float | None]]], start: float) -> None:
    """One JSON line per check: the pass rate so far with its Wilson 95 % interval."""
    for check, rows in outcomes.items():
        tested = [(p, q) for p, q in rows if p is not None]
        passed = sum(bool(p) for p, _ in tested)
        low, high = wilson_interval(passed, len(tested))
        row = {
            "network": name,
            "kind": kind,
            "check": check,
            "explanations": len(rows),
            "testable": len(tested),
            "passed": passed,
            "rate": round(passed / len(tested), 3) if tested else None,
            "wilson95": [round(low, 3), round(high, 3)],
            "mean_p": round(sum(q for _, q in tested) / len(tested), 3) if tested else None,
            "alpha": ALPHA,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
