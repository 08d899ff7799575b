"""Process CPU time of the report's verification stage (layer mode + image mode) at the paper's clip.

    python benchmarks/verify_stage.py                                        # resnet18_3t and googlenet_3t
    python benchmarks/verify_stage.py --models resnet18_3t --image-textures 2 --profile
    python benchmarks/verify_stage.py --models resnet18_3t --image-textures 8 --sequential --cap 24

``--sequential`` runs image mode's views in rounds of 4 with the stopping rule of
:mod:`conv3t.verify.sequential` and prints each look: views, channels with an undecided reading, channels more
views may still settle ("pending"; the rule stops at 0). The rule judges against a cap of ``--cap`` views
(default ``--image-textures``); with a larger cap the run is cut after the look at ``--image-textures`` views (what
the rule would do next is then in the last line: it stops only at 0 pending).

Each model is built for 27 classes with random temporal parameters (the demo's init, 0.3 per channel) and
verified for 30x150x224 clips on the CPU, one thread. Layer mode runs in closed form (the default); image mode
renders ``--image-textures V`` views per motion and runs the network on them. Its time is linear in ``V`` (one
forward per batch of clips): the line also gives the extrapolation to the default 24 views. CPU seconds
(``time.process_time``), not wall time: the machine may be shared. ``--profile`` prints the functions of
``conv3t`` with the most cumulative time (cProfile) of the image-mode run: what dominates the stage.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import time
from collections.abc import Callable

import torch

from conv3t.models import create_model
from conv3t.nn import randomize_temporal_parameters
from conv3t.verify.network import VerifyConfig, verify_model
from conv3t.verify.sequential import Decision

DEFAULT_VIEWS = 24


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=27)
    randomize_temporal_parameters(model, 0.3, torch.Generator().manual_seed(0), per_channel=True)
    return model.eval()


class _Enough(Exception):
    """Raised by a look once the views asked for are measured (a cap larger than them)."""


def _looker(views: int) -> Callable[[Decision], None]:
    def look(decision: Decision) -> None:
        undecided = int(decision.channels["undecided"].sum())
        print(f"  look at {decision.views} views: {undecided} channels undecided, {decision.pending} pending")
        if decision.views >= views and decision.pending:
            raise _Enough

    return look


def _timed(model: torch.nn.Module, config: VerifyConfig, profiler: cProfile.Profile | None, views: int) -> float:
    start = time.process_time()
    if profiler is not None:
        profiler.enable()
    with contextlib.suppress(_Enough):  # the views asked for are measured
        verify_model(model, num_frames=30, size=(150, 224), config=config, device="cpu", looks=_looker(views))
    if profiler is not None:
        profiler.disable()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet18_3t", "googlenet_3t"])
    parser.add_argument("--image-textures", type=int, default=1, help="views per motion in image mode")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the image-mode run")
    parser.add_argument("--sequential", action="store_true", help="image mode's stopping rule (capped at V)")
    parser.add_argument("--skip-layer", action="store_true", help="image mode only")
    parser.add_argument("--cap", type=int, default=None, help="the sequential rule's cap (default: the views)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models:
        model = _model(name)
        layer = 0.0 if args.skip_layer else _timed(model, VerifyConfig(modes=("layer",)), None, 0)
        profiler = cProfile.Profile() if args.profile else None
        views = args.image_textures
        config = VerifyConfig(modes=("image",), textures=args.cap or views, sequential=args.sequential)
        image = _timed(model, config, profiler, views)
        full = image * DEFAULT_VIEWS / views
        print(
            f"{name} 30x150x224 verification, CPU s: layer mode (closed form) {layer:.1f}; image mode "
            f"{image:.1f} for {views} view(s) per motion (x{DEFAULT_VIEWS / views:g} for the default "
            f"{DEFAULT_VIEWS}: {full:.0f}); stage at the defaults ~{layer + full:.0f}",
            flush=True,
        )
        if profiler is not None:
            stats = pstats.Stats(profiler).sort_stats("cumulative")
            stats.print_stats(r"conv3t|conv3d|forward", 25)


if __name__ == "__main__":
    main()
