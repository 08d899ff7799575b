"""Wall time of layer-mode verification (``conv3t verify --mode layer``) of the paper's networks, closed form vs
sampled, in one process.

    python benchmarks/verify_layer_mode.py                                   # resnet18_3t, closed form
    python benchmarks/verify_layer_mode.py --models resnet18_3t googlenet_3t --sampled-textures 2

Each model is built for 27 classes with random temporal parameters (the demo's init, 0.3 per channel: a trained
model's layers are not at the identity; the time does not depend on the values) and verified at the paper's
clip, 30x150x224 (layer mode does not depend on the clip: each layer gets its own small stimulus clips). The
closed form (``layer_energies="exact"``, the default) always runs; ``--sampled-textures V`` also times the
sampled measurement with ``V`` views (its time is linear in ``V``: the default 24 views cost ``24 / V`` times
what is printed; the line says so). One thread (``--threads``).
"""

from __future__ import annotations

import argparse
import time

import torch

from conv3t.models import create_model
from conv3t.nn import randomize_temporal_parameters
from conv3t.verify.network import VerifyConfig, verify_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet18_3t"])
    parser.add_argument("--sampled-textures", type=int, default=0, help="also time the sampled mode with V views")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models:
        torch.manual_seed(0)  # the same weights every run (the tuned count printed is then reproducible)
        model = create_model(name, num_classes=27)
        randomize_temporal_parameters(model, 0.3, torch.Generator().manual_seed(0), per_channel=True)
        runs = [("exact", 24)] + ([("sampled", args.sampled_textures)] if args.sampled_textures else [])
        for how, views in runs:
            cfg = VerifyConfig(modes=("layer",), layer_energies=how, textures=views)
            start = time.perf_counter()
            result = verify_model(model, num_frames=30, size=(150, 224), config=cfg, device="cpu")
            seconds = time.perf_counter() - start
            tuned = int(result.summary["tuned"].sum())
            extra = f", {views} views (x{24 / views:g} for the default 24: {seconds * 24 / views:.0f} s)"
            print(
                f"{name} 30x150x224 layer mode, {how}: {seconds:.1f} s{extra if how == 'sampled' else ''}; "
                f"{len(result.channels)} channels, {tuned} tuned (motion type x channel)",
                flush=True,
            )


if __name__ == "__main__":
    main()
