"""The preprocessing a trained model expects of a video, as one object (torchvision's video ``Weights.transforms()``).

An exported model (:func:`conv3t.exported.load_exported`) carries a :class:`ClipPreprocessing` built from its
``model.json``: the number of frames and their stride, the frame size and the normalisation it was trained with.
Calling it on a decoded video gives exactly the clip the evaluation data would have given: the centre window of
``num_frames`` frames ``frame_stride`` apart (a short video repeats its last frame), the centred box of the
aspect ratio of ``size`` resized to ``size`` (bilinear, antialiased), ``(pixel / 255 - mean) / std`` per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.data.sampling import center_indices
from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD, center_box, denormalize, normalize, resized_crop

__all__ = ["ClipPreprocessing"]


class ClipPreprocessing(nn.Module):
    """Decoded video -> model input, the evaluation preprocessing of a trained model.

    Args:
        num_frames: ``T``, frames per clip.
        size: ``(H, W)`` in pixels.
        mean, std: per RGB channel, for pixel values in [0, 1].
        frame_stride: frames between two clip frames (1 = consecutive).

    Call with ``uint8`` frames of a whole decoded video ``(N, 3, h, w)`` (any ``N >= 1``, any ``h × w``);
    returns the clip ``(3, T, H, W)`` float32. :meth:`frame_indices` and :meth:`spatial` are its two steps, for a
    reader that decodes only the frames it needs (:func:`conv3t.data.clips.load_video_clip`).
    """

    def __init__(
        self,
        num_frames: int,
        size: Sequence[int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        frame_stride: int = 1,
    ) -> None:
        super().__init__()
        if int(num_frames) < 1 or int(frame_stride) < 1:
            raise ValueError(f"num_frames and frame_stride must be >= 1, got {num_frames} and {frame_stride}")
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be (H, W) with positive ints, got {tuple(size)}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 values (RGB), std > 0; got {tuple(mean)} and {tuple(std)}")
        self.num_frames, self.frame_stride = int(num_frames), int(frame_stride)
        self.size = (int(size[0]), int(size[1]))
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def frame_indices(self, length: int) -> np.ndarray:
        """The ``num_frames`` frame indices of the centre window of a video of ``length`` frames."""
        if length < 1:
            raise ValueError("the video has no frames")
        return center_indices(length, self.num_frames, self.frame_stride)

    def spatial(self, frames: Tensor) -> Tensor:
        """Frames already picked in time, ``uint8 (T, 3, h, w)`` -> ``(3, T, H, W)`` float32 (crop, resize,
        normalise)."""
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"expected uint8 frames (T, 3, h, w), got {frames.dtype} {tuple(frames.shape)}")
        box = center_box(frames.shape[-2], frames.shape[-1], self.size)
        return normalize(resized_crop(frames, box, self.size), self.mean, self.std)

    def forward(self, video: Tensor) -> Tensor:
        """``uint8 (N, 3, h, w)``, a whole decoded video -> the model's input clip ``(3, T, H, W)`` float32."""
        if video.ndim != 4:
            raise ValueError(f"expected a decoded video (N, 3, h, w), got shape {tuple(video.shape)}")
        return self.spatial(video[torch.from_numpy(self.frame_indices(len(video)))])

    def normalize_pixels(self, pixels: Tensor) -> Tensor:
        """Pixel values in [0, 1], ``(..., 3, T, H, W)`` -> the model's normalisation (a clip made or shown as
        pixels, e.g. a stimulus, or one a dataset normalised with other statistics)."""
        m = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(3, 1, 1, 1)
        s = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(3, 1, 1, 1)
        return (pixels - m) / s

    def to_pixels(self, clip: Tensor) -> Tensor:
        """Undo the normalisation: model input ``(..., 3, T, H, W)`` -> pixel values in [0, 1] (for display)."""
        return denormalize(clip, self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(\n"
            f"    num_frames={self.num_frames}, frame_stride={self.frame_stride}  "
            "# the centre window; a short video repeats its last frame\n"
            f"    size={self.size}  # the centred box of this aspect ratio, resized (bilinear, antialiased)\n"
            f"    mean={self.mean}\n"
            f"    std={self.std}  # per RGB channel, for pixels in [0, 1]\n"
            ")"
        )

    def describe(self) -> str:
        """One paragraph saying what the preprocessing does (torchvision's ``Weights.transforms().describe()``)."""
        h, w = self.size
        return (
            f"Accepts a decoded video as uint8 frames (N, 3, h, w). Takes the centre window of {self.num_frames} "
            f"frames {self.frame_stride} apart (a shorter video repeats its last frame), crops the centred box of "
            f"aspect {h}:{w} and resizes it to {h}x{w} (bilinear, antialiased), scales to [0, 1] and normalises with "
            f"mean={list(self.mean)} and std={list(self.std)}. Returns a float32 clip (3, {self.num_frames}, {h}, {w})."
        )
