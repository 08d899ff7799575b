"""How many aten operations (views not counted) a Conv3T training step runs, against nn.Conv3d.

On a GPU every non-view aten operation is (at least) one kernel launch plus Python/dispatcher work, so the
count is what the fixed cost of a layer call is made of. Counted with a ``TorchDispatchMode`` below
autograd, so the backward's operations are included; deterministic, so one step is enough.

* layers: a lone Conv3T (``3x3x3`` over 64 channels, the ``7x7x7`` RGB stem) and the ``nn.Conv3d`` of the
  same arguments, one training step (forward + backward into input and parameters); the difference is what
  kernel generation costs per layer.
* models: one training step of each registered 3T model and its 3D twin (forward, cross-entropy,
  backward); (3T - 3D) / number of Conv3T layers is kernel generation per layer, amortised when the model
  generates its kernels together (:func:`conv3t.nn.batch_kernel_generation`).

    .venv/bin/python benchmarks/ops.py                     # layers and both models, ~10 s
    .venv/bin/python benchmarks/ops.py --top 15            # also the most frequent operations
    .venv/bin/python benchmarks/ops.py --json ops.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from conv3t import Conv3T
from conv3t.models import create_model
from conv3t.nn import batch_kernel_generation, conv3t_layers


class OpCounter(TorchDispatchMode):
    """Counts every aten operation that is not a view (``detach``, ``view``, ``transpose`` ... are free)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.counts[str(func.overloadpacket.__name__)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _randomize(model: nn.Module) -> nn.Module:
    """Non-identity temporal parameters (identity init would let no code path take a shortcut anyway)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, layer in conv3t_layers(model, min_depth=2):
            layer.scale.copy_(torch.empty_like(layer.scale).uniform_(0.85, 1.15, generator=gen))
            for p in (layer.rotation, layer.translation_x, layer.translation_y):
                p.copy_(torch.empty_like(p).uniform_(-0.3, 0.3, generator=gen))
    return model


def count_layer_step(layer: nn.Module, x: torch.Tensor) -> OpCounter:
    """Operations of one forward + backward of ``layer`` on ``x`` (gradients reset to None first)."""
    for p in layer.parameters():
        p.grad = None
    x.grad = None
    with torch.no_grad():
        grad_out = torch.randn_like(layer(x))
    counter = OpCounter()
    with counter:
        layer(x).backward(grad_out)
    return counter


def count_model_step(model: nn.Module, clip: torch.Tensor, labels: torch.Tensor) -> OpCounter:
    """Operations of one training step's forward, cross-entropy and backward (no optimiser)."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        out = model(clip)
        logits = out[0] if isinstance(out, tuple) else out
        loss_fn(logits, labels).backward()

    step()  # warm-up: first-call work (shape memos) is not part of a training step
    counter = OpCounter()
    with counter:
        step()
    return counter


LAYERS = {
    "64->64 3x3x3": (dict(in_channels=64, out_channels=64, kernel_size=3, padding=1), (2, 64, 4, 14, 14)),
    "3->64 7x7x7/222 (stem)": (
        dict(in_channels=3, out_channels=64, kernel_size=7, stride=2, padding=3),
        (1, 3, 8, 32, 32),
    ),
}


def layer_counts() -> dict[str, dict[str, object]]:
    """Per lone layer: Conv3T and Conv3d operation counts of one training step."""
    out: dict[str, dict[str, object]] = {}
    for label, (args, shape) in LAYERS.items():
        torch.manual_seed(0)
        x = torch.randn(*shape, requires_grad=True)
        t3 = count_layer_step(_randomize(Conv3T(**args)), x)
        d3 = count_layer_step(nn.Conv3d(**args), x)
        out[label] = {"3t": t3.total, "3d": d3.total, "generation": t3.total - d3.total, "ops_3t": t3.counts}
    return out


def model_counts(names: list[str], clip: tuple[int, int, int], batch: int) -> dict[str, dict[str, object]]:
    """Per 3T model, alone and batched: operation counts of a training step of it and of its 3D twin."""
    out: dict[str, dict[str, object]] = {}
    for name in names:
        torch.manual_seed(0)
        x = torch.randn(batch, 3, *clip)
        y = torch.randint(0, 27, (batch,))
        d3 = count_model_step(create_model(name.replace("_3t", "_3d"), num_classes=27), x, y)
        for batched in (False, True):
            t3_model = _randomize(create_model(name, num_classes=27))
            batch_kernel_generation(t3_model, enabled=batched)
            t3 = count_model_step(t3_model, x, y)
            layers = len(conv3t_layers(t3_model, min_depth=2))
            out[f"{name}{', batched' if batched else ', layerwise'}"] = {
                "3t": t3.total,
                "3d": d3.total,
                "conv3t_layers": layers,
                "generation_per_layer": (t3.total - d3.total) / layers,
                "ops_3t": t3.counts,
            }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=["resnet18_3t", "googlenet_3t"])
    ap.add_argument("--clip", nargs=3, type=int, default=[16, 32, 32], metavar=("T", "H", "W"))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--top", type=int, default=0, help="also print the N most frequent operations of 3T")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = {"layers": layer_counts(), "models": model_counts(args.models, tuple(args.clip), args.batch)}
    print("| layer, one training step | Conv3T | Conv3d | kernel generation |")
    print("|---|--:|--:|--:|")
    for label, row in result["layers"].items():
        print(f"| {label} | {row['3t']} | {row['3d']} | **{row['generation']}** |")
    print("\n| model, one training step (fwd + loss + bwd) | 3T | 3D | Conv3T layers | generation per layer |")
    print("|---|--:|--:|--:|--:|")
    for name, row in result["models"].items():
        print(
            f"| {name} | {row['3t']} | {row['3d']} | {row['conv3t_layers']} | **{row['generation_per_layer']:.1f}** |"
        )
    if args.top:
        for label, row in {**result["layers"], **result["models"]}.items():
            common = ", ".join(f"{k} {v}" for k, v in row["ops_3t"].most_common(args.top))
            print(f"\n{label}: {common}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
