"""The preprocessing an export carries (``load_exported(run).transforms``), on a real mp4 decoded by PyAV, against
a normalisation computed by hand from the decoded pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conv3t.data.clips import load_video_clip
from conv3t.data.preprocessing import ClipPreprocessing

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def write_mp4(path: Path, n: int = 20, h: int = 48, w: int = 64) -> None:
    """``n`` frames of a textured pattern that changes from frame to frame (H.264 via PyAV)."""
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = np.roll(base, 2 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_all(path: Path) -> np.ndarray:
    """Every frame as decoded by PyAV, ``(N, h, w, 3)`` uint8 (the codec is lossy: compare with these)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def hand_clip(decoded: np.ndarray, indices: list[int], left: int, width: int) -> np.ndarray:
    """(3, T, H, W): the frames at ``indices``, columns ``left : left + width``, ``(x / 255 - mean) / std``."""
    pixels = decoded[indices][:, :, left : left + width].astype(np.float64) / 255.0
    out = (pixels - np.array(MEAN)) / np.array(STD)  # (T, H, W, 3)
    return out.transpose(3, 0, 1, 2)


def test_transforms_of_a_decoded_mp4_equal_the_hand_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_mp4(path)
    decoded = decode_all(path)
    assert decoded.shape == (20, 48, 64, 3)
    # 8 frames 2 apart span 15 of 20: the centre window starts at (20 - 15) // 2 = 2. A 48 x 64 frame and a
    # square model: the centred 48 x 48 box starts at column 8 and needs no resize.
    transforms = ClipPreprocessing(8, (48, 48), MEAN, STD, frame_stride=2)
    expected = hand_clip(decoded, [2, 4, 6, 8, 10, 12, 14, 16], left=8, width=48)
    video = torch.from_numpy(decoded).permute(0, 3, 1, 2).contiguous()  # (N, 3, h, w)
    got = transforms(video)
    assert got.shape == (3, 8, 48, 48) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-5)
    # the reader decodes only the window's frames (seeking) and gives the same clip
    np.testing.assert_allclose(load_video_clip(path, transforms).numpy(), expected, rtol=0, atol=1e-5)
    # to_pixels undoes it: back to the decoded pixels / 255
    pixels = decoded[[2, 4, 6, 8, 10, 12, 14, 16]][:, :, 8:56].transpose(3, 0, 1, 2) / 255.0
    np.testing.assert_allclose(transforms.to_pixels(got).numpy(), pixels, rtol=0, atol=1e-5)


def test_a_short_video_repeats_its_last_frame(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    write_mp4(path, n=5)
    decoded = decode_all(path)
    transforms = ClipPreprocessing(8, (48, 48), MEAN, STD)
    expected = hand_clip(decoded, [0, 1, 2, 3, 4, 4, 4, 4], left=8, width=48)
    np.testing.assert_allclose(load_video_clip(path, transforms).numpy(), expected, rtol=0, atol=1e-5)
    with pytest.raises(TypeError, match="ClipPreprocessing"):  # the six numbers by hand are gone
        load_video_clip(path, 8)  # type: ignore[arg-type]


def test_repr_and_description_state_every_number() -> None:
    transforms = ClipPreprocessing(30, (150, 224), MEAN, STD, frame_stride=2)
    text = repr(transforms)
    for part in ("num_frames=30", "frame_stride=2", "size=(150, 224)", "mean=(0.4, 0.5, 0.6)", "std=(0.2, 0.25, 0.3)"):
        assert part in text, part
    assert "(3, 30, 150, 224)" in transforms.describe()


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, (8, 8)), "num_frames"), ((4, (8,)), "size"), ((4, (8, 8), (0.5,) * 3, (0.0, 1.0, 1.0)), "std > 0")],
)
def test_bad_settings_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClipPreprocessing(*args)


def test_float_frames_are_refused_with_the_expected_input() -> None:
    with pytest.raises(ValueError, match=r"uint8 frames \(T, 3, h, w\)"):
        ClipPreprocessing(2, (8, 8))(torch.rand(4, 3, 8, 8))
