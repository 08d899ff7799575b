"""The faithfulness checks' cost per clip at the paper's size (30 x 150 x 224), part by part.

A whole ``Faithfulness.evaluate`` at this size takes tens of CPU-minutes, so each part is timed once on one clip
(CPU seconds of one thread, ``time.process_time``: the machine is shared) and multiplied by how many times the
checks run it with the report's defaults (``draws`` random draws, ``seeds`` randomisation seeds, 10 frame steps);
the counts are upper bounds (every Monte-Carlo test running to ``draws`` draws, which an explanation no better
than chance nearly does: Besag-Clifford stops at 10 draws as good). Parts:

* ``forward``: the model on a batch of 8 perturbed clips (per clip);
* ``road``: the ROAD fills of one map's MoRF curve, its 8 inner fractions removed from a random map drawn at
  Grad-CAM's resolution (as the spatial check's random maps), solved as ``spatial_probabilities`` does (8 clips
  in one call of ``road_solve``); per fill;
* ``explain``: one explanation by :func:`conv3t_explainer` (channels, Grad-CAM, integrated gradients), which the
  sanity tests recompute once per cascade step and per draw (randomised copy, parameter-family copy, other
  class) while the frame attribution's verdict is open;
* ``explain_partial``: the same without the frame attribution (``kinds=("gradcam", "channels")``): a draw
  taken after the frame attribution's verdict is settled.

The sanity tests' draws are counted twice: the upper bound (every kind positive on every draw, so every test
runs to ``seeds`` draws with every kind) and the typical count measured on the demo models (``sanity draws used``
of ``benchmarks/faithfulness_demo.py --check-seed 0`` on RESULTS.md section 5's models, 9 clips: 12-20 whole
explanations, mean 14.9, and 1-4 without the frame attribution, mean 3.2, reference and cascade included).

Run:  OMP_NUM_THREADS=1 python benchmarks/faithfulness_scale.py [--parts forward road explain explain_partial]
      [--model resnet18_3t]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from conv3t.explain.faithfulness import conv3t_explainer, road_solve
from conv3t.explain.faithfulness.frames import random_order
from conv3t.explain.faithfulness.pixels import FRACTIONS, random_map
from conv3t.explain.faithfulness.randomise import default_layer_groups
from conv3t.models import create_model


def _cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _road(clip: torch.Tensor, coarse: tuple[int, int, int], generator: torch.Generator) -> float:
    """CPU seconds per fill over the 8 inner fractions of one random map's MoRF order."""
    _, c, t, h, w = clip.shape
    order = random_order(random_map(coarse, (t, h, w), generator), generator)
    counts = [round(t * h * w * f) for f in FRACTIONS[1:-1]]
    removed = torch.zeros(len(counts), t * h * w, dtype=torch.bool)
    for j, k in enumerate(counts):
        removed[j, order[:k]] = True
    frames = clip[0].transpose(0, 1).repeat(len(counts), 1, 1, 1)
    fill = clip.mean(dim=(2, 3, 4)).expand(t * len(counts), c)
    worst = [0.0]

    def run() -> None:
        worst[0] = road_solve(frames, removed.view(-1, h, w), fill)[1]

    seconds = _cpu(run)
    print(f"road: {len(counts)} fills in {seconds:.1f} s, largest relative residual {worst[0]:.1e}")
    return seconds / len(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18_3t")
    parser.add_argument("--size", type=int, nargs=3, default=[30, 150, 224], metavar=("T", "H", "W"))
    parser.add_argument("--parts", nargs="+", default=["forward", "road", "explain", "explain_partial"])
    parser.add_argument("--draws", type=int, default=19)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model(args.model, 27).eval()
    t, h, w = args.size
    clip = torch.randn(1, 3, t, h, w, generator=torch.Generator().manual_seed(0))
    explainer = conv3t_explainer()
    probe = explainer(model, clip, 0) if "explain" in args.parts else None
    ran: list[str] = []
    hooks = [m.register_forward_hook(lambda *_a, _n=n: ran.append(_n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(clip)
    for hook in hooks:
        hook.remove()
    groups = len(default_layer_groups(model, ran))
    cam_layer = probe.gradcam_layer if probe is not None else "layer3.1.conv2"
    shapes: dict[str, tuple[int, ...]] = {}
    handle = model.get_submodule(cam_layer).register_forward_hook(lambda _m, _i, o: shapes.update(cam=o.shape))
    with torch.no_grad():
        model(clip)
    handle.remove()
    coarse = tuple(int(v) for v in shapes["cam"][2:])
    seconds: dict[str, float] = {}
    if "forward" in args.parts:
        batch = clip.expand(8, *clip.shape[1:]).contiguous()
        with torch.no_grad():
            seconds["forward"] = _cpu(lambda: model(batch)) / 8
    if "road" in args.parts:
        seconds["road"] = _road(clip, coarse, torch.Generator().manual_seed(1))
    if "explain" in args.parts:
        seconds["explain"] = _cpu(lambda: explainer(model, clip, 0))
    if "explain_partial" in args.parts:
        seconds["explain_partial"] = _cpu(lambda: explainer(model, clip, 0, kinds=("gradcam", "channels")))
    maps, inner = 1 + args.draws, 2 * (len(FRACTIONS) - 2)  # MoRF and LeRF at each inner fraction
    counts = {
        "spatial: ROAD fills": ("road", maps * inner + 1),
        "spatial: forward passes": ("forward", maps * inner + 2),
        # the insertion test's random orders are the deletion test's reversed (frames._DeletionPool)
        "frames: forward passes": ("forward", (maps + 1) * (args.steps - 1) + 2),
        "channels: forward passes": ("forward", maps + 1),
    }
    k = args.seeds
    bound = {"sanity: explanations, upper bound": ("explain", 1 + groups + (k - 1) + 2 * k + k)}
    typical = {  # measured on the demo models (module notes)
        "sanity: whole explanations, typical": ("explain", 15),
        "sanity: explanations without frames, typical": ("explain_partial", 3),
    }
    perturbation = _add_up(counts, seconds)
    for name, sanity in (("upper bound", bound), ("typical", typical)):
        print(f"per clip, sanity draws {name}: {perturbation + _add_up(sanity, seconds):.0f} CPU s")


def _add_up(counts: dict[str, tuple[str, int]], seconds: dict[str, float]) -> float:
    """Print each counted part and return their sum (parts not timed are left out)."""
    total = 0.0
    for label, (part, n) in counts.items():
        if part in seconds:
            total += n * seconds[part]
            print(f"  {label}: {n} x {seconds[part]:.2f} = {n * seconds[part]:.0f} CPU s")
    return total


if __name__ == "__main__":
    main()
