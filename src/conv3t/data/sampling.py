"""Which frames of a video make a clip.

All functions return 0-based frame indices into a video of ``num_available`` frames.

Rules (the same for every dataset):

* ``"train"``: one window of ``num_frames`` frames, ``stride`` apart, at a uniformly random start.
* ``"eval"``: the window centred in the video.
* ``"multiview"``: ``views`` windows whose starts are spread evenly from the first to the last
  possible start (one view = the centre window).
* ``"whole"``: every frame, as one "window" of the video's own length (no padding, no stride); the
  authors' all-window evaluation cuts it into windows itself (:mod:`conv3t.train.evaluate`).

Short videos are never rejected. If the window ``(num_frames - 1) * stride + 1`` does not fit,
the stride is first lowered to the largest value that fits (at least 1); if even stride 1 does
not fit, the video is padded by ``pad``:

* ``"repeat_last"`` (default): the last frame is repeated, i.e. the motion stops. This adds no
  motion that was not in the video (looping a "swipe left" would add a jump back to the right).
* ``"loop"``: the video restarts from its first frame.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

PadMode = Literal["repeat_last", "loop"]
SampleMode = Literal["train", "eval", "multiview", "whole"]
PAD_MODES: tuple[str, ...] = ("repeat_last", "loop")
SAMPLE_MODES: tuple[str, ...] = ("train", "eval", "multiview", "whole")


def _check(num_available: int, num_frames: int, stride: int, pad: str) -> None:
    if num_available < 1:
        raise ValueError(f"a video needs at least one frame, got num_available={num_available}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if stride < 1:
        raise ValueError(f"frame stride must be >= 1, got {stride}")
    if pad not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {pad!r}")


def effective_stride(num_available: int, num_frames: int, stride: int) -> int:
    """The stride actually used: ``stride`` if the window fits, else the largest that fits (>= 1)."""
    if num_frames == 1 or (num_frames - 1) * stride + 1 <= num_available:
        return stride
    return max(1, (num_available - 1) // (num_frames - 1))


def _window(num_available: int, num_frames: int, stride: int, start: int, pad: str) -> np.ndarray:
    idx = start + stride * np.arange(num_frames, dtype=np.int64)
    if pad == "loop":
        return idx % num_available
    return np.minimum(idx, num_available - 1)


def _max_start(num_available: int, num_frames: int, stride: int) -> int:
    return max(0, num_available - ((num_frames - 1) * stride + 1))


def train_indices(
    num_available: int,
    num_frames: int,
    stride: int = 1,
    pad: PadMode = "repeat_last",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices of a random window, shape ``(num_frames,)``, int64."""
    _check(num_available, num_frames, stride, pad)
    stride = effective_stride(num_available, num_frames, stride)
    rng = rng if rng is not None else np.random.default_rng()
    start = int(rng.integers(0, _max_start(num_available, num_frames, stride) + 1))
    return _window(num_available, num_frames, stride, start, pad)


def center_indices(num_available: int, num_frames: int, stride: int = 1, pad: PadMode = "repeat_last") -> np.ndarray:
    """Indices of the centred window, shape ``(num_frames,)``, int64."""
    _check(num_available, num_frames, stride, pad)
    stride = effective_stride(num_available, num_frames, stride)
    return _window(num_available, num_frames, stride, _max_start(num_available, num_frames, stride) // 2, pad)


def multiview_indices(
    num_available: int, num_frames: int, views: int, stride: int = 1, pad: PadMode = "repeat_last"
) -> np.ndarray:
    """Indices of ``views`` evenly spread windows, shape ``(views, num_frames)``, int64.

    With ``views == 1`` this is :func:`center_indices`.
    """
    _check(num_available, num_frames, stride, pad)
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    if views == 1:
        return center_indices(num_available, num_frames, stride, pad)[None]
    stride = effective_stride(num_available, num_frames, stride)
    starts = np.round(np.linspace(0, _max_start(num_available, num_frames, stride), views)).astype(np.int64)
    return np.stack([_window(num_available, num_frames, stride, int(s), pad) for s in starts])


def sample_indices(
    mode: SampleMode,
    num_available: int,
    num_frames: int,
    stride: int = 1,
    pad: PadMode = "repeat_last",
    views: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Dispatch on ``mode``; always returns shape ``(V, num_frames)`` (``V = 1`` unless multiview)."""
    if mode == "train":
        return train_indices(num_available, num_frames, stride, pad, rng)[None]
    if mode == "eval":
        return center_indices(num_available, num_frames, stride, pad)[None]
    if mode == "multiview":
        return multiview_indices(num_available, num_frames, views, stride, pad)
    if mode == "whole":
        if num_available < 1:
            raise ValueError(f"num_available must be >= 1, got {num_available}")
        return np.arange(num_available, dtype=np.int64)[None]
    raise ValueError(f"sampling mode must be one of {SAMPLE_MODES}, got {mode!r}")
