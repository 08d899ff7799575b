"""Frame checks on clips longer than ``exact_frames`` (Monte-Carlo): the insertion test's random orders are the
deletion test's orders reversed, read from the deletion forward passes. Checked against the exact subset table
of FramePlantedNet (every frame-deleted clip computed directly here) and by counting forward passes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from planted import frame_planted_clip, frame_planted_net

from conv3t.explain.faithfulness import frames as frames_module
from conv3t.explain.faithfulness import perturb
from conv3t.explain.faithfulness.frames import frame_curves

TARGET, T = 0, 8


def _table(net: torch.nn.Module, clip: torch.Tensor) -> dict[tuple[bool, ...], float]:
    """Target probability of every frame-deleted version of ``clip``, computed one clip at a time."""
    mean = clip.mean(dim=1, keepdim=True)
    out = {}
    with torch.no_grad():
        for mask in itertools.product([False, True], repeat=T):
            x = torch.where(torch.tensor(mask).view(1, T, 1, 1), mean, clip)
            out[mask] = torch.softmax(net(x[None]), 1)[0, TARGET].item()
    return out


def _orders_from_masks(masks: list[torch.Tensor], steps: int) -> list[list[int]]:
    """Random orders recovered from their deletion masks (steps - 1 nested sets per order, one frame per step)."""
    orders = []
    for start in range(0, len(masks), steps - 1):
        rows = masks[start : start + steps - 1]
        order, seen = [], torch.zeros(T, dtype=torch.bool)
        for row in rows:
            (new,) = (row & ~seen).nonzero().flatten().tolist()
            order.append(new)
            seen = row
        order.append(int((~seen).nonzero()))
        orders.append(order)
    return orders


@pytest.mark.parametrize("draws", [19, 29])
def test_insertion_draws_are_the_reversed_deletion_orders_at_no_forward_pass(monkeypatch, draws: int) -> None:
    net, clip = frame_planted_net(), frame_planted_clip()
    recorded: list[torch.Tensor] = []
    real = perturb.frame_probabilities

    def recording(model, x, target, deleted, batch_size):  # type: ignore[no-untyped-def]
        recorded.extend(deleted.cpu())
        return real(model, x, target, deleted, batch_size)

    monkeypatch.setattr(frames_module.perturb, "frame_probabilities", recording)
    importance = torch.tensor([0.0, 4, 0, 3, 2, 0, 1, 0])  # the decisive frames first: beats every draw
    deletion, insertion = frame_curves(
        net, clip[None], TARGET, importance, torch.Generator().manual_seed(3),
        max_draws=draws, steps=T, batch_size=7, exact_frames=1,
    )  # fmt: skip
    assert deletion.test.draws == insertion.test.draws == draws  # a perfect order runs every draw of both
    # ends (2), the explanation's deletion curve (7), one deletion curve per draw, the explanation's insertion
    # curve (7), and nothing for the insertion test's draws
    assert len(recorded) == 2 + 2 * (T - 1) + draws * (T - 1)
    random_masks = recorded[2 + (T - 1) : 2 + (T - 1) + draws * (T - 1)]
    orders = _orders_from_masks(random_masks, T)
    table = _table(net, clip)
    fractions = np.linspace(0, 1, T + 1)

    def auc(order: list[int], insert: bool) -> float:
        values = []
        for k in range(T + 1):
            chosen = set(order[:k])
            mask = tuple((f not in chosen) if insert else (f in chosen) for f in range(T))
            values.append(table[mask])
        v = np.array(values)
        return float(((v[1:] + v[:-1]) / 2 * np.diff(fractions)).sum())

    deletion_aucs = [auc(o, False) for o in orders]
    insertion_aucs = [auc(o[::-1], True) for o in orders]  # independent of the code under test: the table
    assert deletion.test.random_mean == pytest.approx(np.mean(deletion_aucs), abs=1e-6)
    assert insertion.test.random_mean == pytest.approx(np.mean(insertion_aucs), abs=1e-6)
    assert insertion.test.random_std == pytest.approx(np.std(insertion_aucs, ddof=1), rel=1e-4, abs=1e-7)
    assert insertion.test.p_value == pytest.approx(1 / (draws + 1))


@pytest.mark.parametrize("frames", [15, 16])
def test_asymmetric_steps_compute_the_insertion_curves(monkeypatch, frames: int) -> None:
    """With 10 steps, 15 frames round 1.5 and 13.5 both up (counts 2 and 14: not symmetric), so the insertion
    draws get their own forward passes; 16 frames are symmetric and read them from the deletion passes."""
    counts = frames_module.frame_counts(frames, 10)
    symmetric = torch.equal(counts, frames - counts.flip(0))
    assert symmetric == (frames == 16)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, (3, 1, 1), padding=(1, 0, 0)),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    ).eval()
    clip = torch.randn(1, 3, frames, 4, 4, generator=torch.Generator().manual_seed(0))
    seen = [0]
    real = perturb.frame_probabilities

    def counting(model, x, target, deleted, batch_size):  # type: ignore[no-untyped-def]
        seen[0] += deleted.shape[0]
        return real(model, x, target, deleted, batch_size)

    monkeypatch.setattr(frames_module.perturb, "frame_probabilities", counting)
    deletion, insertion = frame_curves(
        net, clip, 0, torch.randn(frames, generator=torch.Generator().manual_seed(1)),
        torch.Generator().manual_seed(2), max_draws=19, steps=10, batch_size=4, exact_frames=1,
    )  # fmt: skip
    inner = len(counts)
    own = 2 + 2 * inner  # the ends and the explanation's two curves
    # draws are computed 4 at a time (batch_size): a test that stops inside a batch has paid for all of it

    def computed(used: int) -> int:
        return min(19, -(-used // 4) * 4)

    d, i = computed(deletion.test.draws), computed(insertion.test.draws)
    assert seen[0] == own + inner * (max(d, i) if symmetric else d + i)
