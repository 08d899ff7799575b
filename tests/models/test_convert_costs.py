"""``conv3t params --all``: parameters and FLOPs per clip, checked against a count by hand."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from conv3t.cli import main
from conv3t.commands import params
from conv3t.models.costs import FamilyCost, family_costs


def _conv_flops_by_hand(model: nn.Module, size: int) -> tuple[int, int]:
    """2 x multiply-accumulates of the k x k (k > 1) and of the 1 x 1 convolutions on one image."""
    totals = [0, 0]

    def hook(m: nn.Conv2d, inputs: object, out: torch.Tensor) -> None:
        macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        totals[m.kernel_size == (1, 1)] += 2 * macs

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    return totals[0], totals[1]


def test_squeezenet_costs_match_a_count_by_hand():
    frames, size = 2, 32
    (row,) = family_costs(["squeezenet1_1"], frames=frames, size=size, classes=5)
    kxk, one = _conv_flops_by_hand(torchvision.models.squeezenet1_1(num_classes=5), size)
    assert row.flops_2d == frames * (kxk + one)
    # every 3 x 3 conv sees 3 frames per output frame (stride 1 and same padding in time), 1 x 1 convs one
    assert row.flops_3d == frames * (3 * kxk + one)
    assert row.flops_3t >= row.flops_3d  # + the kernel generation's products
    model = torchvision.models.squeezenet1_1(num_classes=5)
    assert row.params_2d == sum(p.numel() for p in model.parameters())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert row.params_3d - row.params_2d == sum(2 * m.weight.numel() for m in convs)
    assert row.params_3t - row.params_2d == sum(4 * m.out_channels * 2 for m in convs)


def test_params_all_prints_one_row_per_family(capsys, monkeypatch):
    row = FamilyCost("resnet50", False, 25_557_032, 25_700_000, 46_000_000, 10**9, 3 * 10**9, 3 * 10**9)
    monkeypatch.setattr("conv3t.models.costs.family_costs", lambda **kw: [row])
    assert main(["params", "--all", "--frames", "8"]) == 0
    out = capsys.readouterr().out
    assert "clip of 8 x 112 x 112" in out
    line = next(line for line in out.splitlines() if line.startswith("resnet50 "))
    assert line.split() == ["resnet50", "25,557,032", "25,700,000", "46,000,000", "1.00", "3.00", "3.00"]
    assert params.format_costs([row]).splitlines()[0].startswith("family")


def test_convert_command_prints_the_report(capsys):
    assert main(["convert", "squeezenet1_1", "--kind", "3d", "--image-size", "32", "--details"]) == 0
    out = capsys.readouterr().out
    assert "SqueezeNet -> 3D video model (inflate='mean'" in out
    assert "equivalence check: passed" in out
    assert "features.0.weight: inflated (64, 3, 3, 3) -> (64, 3, 3, 3, 3)" in out
    assert "F.adaptive_avg_pool2d" not in out and "AdaptiveAvgPool2d -> AdaptiveAvgPool3d" in out
