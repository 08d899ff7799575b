"""The authors' all-window protocol and chunked evaluation, against hand-counted answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conv3t.train.evaluate import evaluate_model, evaluate_windows, window_starts


class StartReader(nn.Module):
    """Predicts class (first frame's value) mod 3: a video whose frame k has value k is 'read' exactly."""

    def forward(self, x):  # (N, 3, T, H, W)
        start = x[:, 0, 0, 0, 0].round().long()
        return nn.functional.one_hot(start % 3, 3).float() * 10


def _video(frames: int) -> torch.Tensor:
    return torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1).expand(3, frames, 2, 2).clone()


def test_window_starts_are_non_overlapping_and_skip_short_videos():
    assert window_starts(29, 30) == [] and window_starts(30, 30) == [0] and window_starts(59, 30) == [0]
    assert window_starts(60, 30) == [0, 30] and window_starts(95, 30) == [0, 30, 60]
    assert window_starts(11, 3, stride=2) == [0, 6]  # a window spans 5 frames, the next starts 6 later
    assert window_starts(10, 3, stride=2) == [0]
    with pytest.raises(ValueError):
        window_starts(10, 0)


@pytest.mark.parametrize("chunk", [1, 2, 5, 100])
def test_per_clip_and_per_video_counts(chunk):
    # windows of 4 frames: starts 0, 4, 8, ... -> predicted class (start mod 3)
    videos = [
        (_video(12), 0),  # starts 0, 4, 8 -> classes 0, 1, 2: 1 of 3 clips right; video: tie -> argmax 0: right
        (_video(9), 1),  # starts 0, 4 -> 0, 1: 1 of 2 right; video: tie 0/1 -> 0: wrong
        (_video(3), 2),  # shorter than a window: skipped
        (_video(8), -1),  # unlabelled: left out
        (_video(4), 0),  # start 0 -> 0: right
    ]
    res = evaluate_windows(StartReader(), videos, num_frames=4, chunk=chunk)
    assert res.num_clips == 6 and res.clip_top1 == pytest.approx(3 / 6)
    assert res.num_videos == 3 and res.video_top1 == pytest.approx(2 / 3)
    assert res.skipped_short == 1 and res.as_dict()["window_frames"] == 4


def test_chunked_multiview_equals_one_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 5)).eval()
    batches = [(torch.randn(3, 4, 3, 5, 6, 6), torch.tensor([0, 3, 1])) for _ in range(2)]
    whole = evaluate_model(model, batches, 5)
    for chunk in (1, 5):
        part = evaluate_model(model, batches, 5, chunk=chunk)
        assert (part.top1, part.top5, part.num_videos, part.views) == (whole.top1, whole.top5, 6, 4)
        assert torch.equal(part.confusion, whole.confusion)


def test_chunk_plan_counts_the_loaders_batch_against_the_budget():
    from conv3t.commands.eval import plan_chunk
    from conv3t.verify.budget import MemoryBudgetError

    model = nn.Sequential(nn.Conv3d(3, 16, 3, padding=1), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(16, 5))
    cpu = torch.device("cpu")
    clip_bytes = 3 * 8 * 32 * 32 * 4
    alone = plan_chunk(model, 8, (32, 32), cpu, "40MB")
    with_batch = plan_chunk(model, 8, (32, 32), cpu, "40MB", batch_clips=300)  # 300 clips = 29.5 MB of input
    assert 1 <= with_batch < alone <= 64
    with pytest.raises(MemoryBudgetError, match="--batch-size"):
        plan_chunk(model, 8, (32, 32), cpu, "40MB", batch_clips=40_000_000 // clip_bytes + 1)
