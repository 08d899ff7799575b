"""A hand-built network whose conv1 channels have set motions, and a classifier head wired to them.

conv1 is a 7x7x7 Conv3T (stride 2 in space, as a ResNet stem). Channels, content motion per frame in the
project's convention (x right, y down, clockwise positive):

====  ================================  ==============================================
  0   translation 1 px/frame right      smooth noise, symmetric up-down, under a Gaussian
                                        window 3 px left of centre (the content stays in
                                        the kernel for all 6 steps)
  1   translation 1 px/frame left       channel 0's filter mirrored left-right
  2   rotation 20 deg/frame clockwise   noise on a ring of radius 2.8 px
  3   rotation 20 deg/frame ccw         another noise on that ring
  4   zoom in 12 %/frame                noise on a ring of radius 1.5 px (grows to 2.9)
  5   zoom out 12 %/frame               noise on a ring of radius 2.8 px (shrinks)
  6,7 no motion (identity parameters)   smooth noise
  8   dead (zero filter)
====  ================================  ==============================================

The motions lie on the probe grid of :class:`conv3t.verify.VerifyConfig` (1 px/frame, 20 deg/frame, zoom
1.12), so a measurement can return exactly them. The head classifies the direction of translation and is
motion-opponent: ``logit(translate_right) = g (p_0 - p_1) = -logit(translate_left)``, with ``p_c`` the mean
rectified response of channel ``c`` over time and the middle of the map; channel 1 is the mirror image of
channel 0 (whose filter is symmetric up-down), so any motion other than a horizontal translation, or none,
gives both the same response on average. ``g`` is set once, for a mean logit of 4 on rightward clips of a
calibration texture other than the test clips'. Rotation and zoom get no class: with 7 x 7 kernels a single
clip's cw/ccw or in/out energy difference is within its texture noise (the verification averages 16 or more
texture views), so a head wired to them would not classify single clips reliably.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from conv3t import Conv3T
from conv3t.exported import ExportedModel, ModelInfo
from conv3t.verify.identifiability import smooth_filters
from conv3t.verify.stimuli import Motion, motion_clips, noise_texture

CLASSES = ("translate_right", "translate_left")
MOTIONS = {
    "translate_right": Motion("translation", vx=1.0),
    "translate_left": Motion("translation", vx=-1.0),
    "rotate_cw": Motion("rotation", rotation_cw_deg=20.0),
    "rotate_ccw": Motion("rotation", rotation_cw_deg=-20.0),
    "zoom_in": Motion("zoom", zoom=1.12),
    "zoom_out": Motion("zoom", zoom=1 / 1.12),
}
PLANTED_CHANNELS = {0: "translation", 1: "translation", 2: "rotation", 3: "rotation", 4: "zoom", 5: "zoom"}
FRAMES, SIZE = 8, 32
HALF = 3.0  # (k - 1) / 2 kernel pixels per affine_grid unit for k = 7
STRIDE = (1, 2, 2)


class PlantedNet(nn.Module):
    """``(N, 3, 8, 32, 32) -> (N, 2)`` logits; ``conv1`` is the only temporal layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv3T(3, 9, 7, stride=STRIDE, padding=3, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(9, len(CLASSES))

    def pooled(self, x: Tensor) -> Tensor:
        """``(N, 9)``: mean rectified response over time and the middle half of the map (the centre of the
        clips' rotation and zoom)."""
        a = self.relu(self.conv1(x))
        h, w = a.shape[-2:]
        return self.pool(a[..., h // 4 : h - h // 4, w // 4 : w - w // 4]).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pooled(x))


def _windows() -> list[Tensor]:
    ys, xs = torch.meshgrid(torch.arange(7.0) - 3, torch.arange(7.0) - 3, indexing="ij")
    radius = torch.sqrt(xs**2 + ys**2)

    def blob(cx: float) -> Tensor:
        return torch.exp(-((xs - cx) ** 2 + ys**2) / (2 * 2.0**2))

    def ring(r: float, width: float) -> Tensor:
        return torch.exp(-((radius - r) ** 2) / (2 * width**2))

    return [blob(-3.0), blob(3.0), ring(2.8, 0.8), ring(2.8, 0.8), ring(1.5, 0.7), ring(2.8, 0.7), *[ring(0, 9)] * 3]


MEAN, STD = (0.5, 0.5, 0.5), (0.18, 0.18, 0.18)  # the model's input normalisation (model.json)


def planted_pixels(seed: int = 1, views: int = 1) -> tuple[Tensor, list[str]]:
    """``views`` clips per planted motion, ``(views * 6, 3, 8, 32, 32)`` in [0, 1] pixels, view-major: windows
    of a noise texture moving with the motion (0.5 +- 0.18, as the verification's stimuli); and the motion's
    name (a class name for the two translations) of each clip."""
    texture = noise_texture(3, size=256, generator=torch.Generator().manual_seed(seed))
    offsets = torch.rand(views, 2, generator=torch.Generator().manual_seed(seed)) * 256
    motions = list(MOTIONS.values())
    clips = torch.cat([motion_clips(texture, motions, FRAMES, SIZE, offset=(float(x), float(y))) for x, y in offsets])
    return (0.5 + 0.18 * clips).clamp(0, 1), list(MOTIONS) * views


def planted_clips(seed: int = 1, views: int = 1) -> tuple[Tensor, list[str]]:
    """:func:`planted_pixels` normalised with ``MEAN`` / ``STD``: the model's inputs."""
    pixels, names = planted_pixels(seed, views)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1, 1), torch.tensor(STD).view(1, 3, 1, 1, 1)
    return (pixels - mean) / std, names


def _symmetric(noise: Tensor) -> Tensor:
    """``(3, 7, 7)`` made symmetric under up-down mirroring, so the left-right mirror image of a horizontally
    moving channel differs from it only in the direction of motion."""
    return (noise + noise.flip(-2)) / 2


def planted_net() -> PlantedNet:
    """The network, with its conv1 set by hand and its head calibrated (module notes)."""
    torch.manual_seed(0)
    net = PlantedNet().eval()
    conv = net.conv1
    with torch.no_grad():
        noise = smooth_filters(9, 3, 7, 0.5, generator=torch.Generator().manual_seed(0))
        w = torch.stack([n * window for n, window in zip(noise, _windows())])
        w[0] = _symmetric(w[0])
        w = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        w[1] = w[0].flip(-1)  # the left-moving mirror image of the right-moving channel
        w[8] = 0.0
        conv.weight.copy_(w)
        conv.translation_x[0], conv.translation_x[1] = -1.0 / HALF, 1.0 / HALF  # content moves by -t
        conv.rotation[2], conv.rotation[3] = -math.radians(20.0), math.radians(20.0)  # clockwise = -r
        conv.scale[4], conv.scale[5] = 1 / 1.12, 1.12  # content scales by 1/s
        net.fc.weight.zero_()
        net.fc.bias.zero_()
        clips, _ = planted_clips(seed=0, views=4)  # calibration texture, not the test clips'
        pooled = net.pooled(clips).unflatten(0, (4, len(MOTIONS))).mean(0)  # (motions, channels)
        gain = 4.0 / float(pooled[0, 0] - pooled[0, 1])  # mean logit 4 on rightward clips
        net.fc.weight[0, 0], net.fc.weight[0, 1] = gain, -gain
        net.fc.weight[1, 0], net.fc.weight[1, 1] = -gain, gain
    return net


def write_frame_folders(root: Path, seed: int = 1) -> list[Path]:
    """One folder of PNG frames per translation class (a video the report reads with ``--video``)."""
    from PIL import Image

    pixels, names = planted_pixels(seed)
    folders = []
    for clip, name in zip(pixels, names):
        if name not in CLASSES:
            continue
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(clip.shape[1]):
            frame = (clip[:, t].permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
            Image.fromarray(frame).save(folder / f"{t:03d}.png")
        folders.append(folder)
    return folders


def exported_planted() -> ExportedModel:
    """The planted network as the report's loader returns an exported model (it is not in the registry)."""
    info = ModelInfo(
        model="planted",
        num_classes=len(CLASSES),
        classes=list(CLASSES),
        num_frames=FRAMES,
        size=(SIZE, SIZE),
        mean=MEAN,
        std=STD,
    )
    return ExportedModel(model=planted_net(), info=info, path=Path("planted.safetensors"))


# --- A plain nn.Conv3d network whose decisive channel and frames are known (the faithfulness checks) ---------

DECISIVE_CHANNELS = (0, 1, 2)  # conv1's channels the head reads (each a third of the logit)
DECISIVE_CHANNEL = DECISIVE_CHANNELS[0]
DECISIVE_FRAMES = (1, 3, 4, 6)  # the only frames the temporal layer reads
FRAME_CLASSES = ("red_square", "nothing")
SQUARE = (slice(5, 11), slice(5, 11))  # rows, columns of the square in a 16 x 16 frame


class FramePlantedNet(nn.Module):
    """``(N, 3, 8, 16, 16) -> (N, 2)`` logits, plain ``nn.Conv3d`` layers.

    * ``conv1`` (1 x 3 x 3, per frame): channels 0, 1, 2 = mean over 3 x 3 of ``R - (G + B) / 2`` ("redness");
      channels 3..15: small random filters the head ignores;
    * ``time`` (8 x 1 x 1, depthwise, no padding): every channel's weight is 1 at frames 1, 3, 4 and 6, 0 elsewhere;
    * ``fc``: ``logit(red_square) = GAIN / 3 * sum_{c < 3} mean_{y,x} relu(time(relu(conv1)))_c``,
      ``logit(nothing) = 3``.

    Three decisive channels of 16, so that a perfect channel explanation can be told from a random one at
    alpha 0.05 (one of 16 cannot: a random channel hits it with probability 1/16).
    """

    GAIN = 8.0 / (3.0 * 36 / 256 * 4)  # logit 8 on frame_planted_clip: redness 3 on 36 of 256 pixels in 4 frames

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 16, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.relu = nn.ReLU()
        self.time = nn.Conv3d(16, 16, (8, 1, 1), groups=16, bias=False)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(16, len(FRAME_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.time(self.relu(self.conv1(x)))).flatten(1))


def frame_planted_net() -> FramePlantedNet:
    net = FramePlantedNet().eval()
    with torch.no_grad():
        torch.manual_seed(0)
        net.conv1.weight.normal_(0.0, 0.05)
        for c in DECISIVE_CHANNELS:
            net.conv1.weight[c] = 0.0
            net.conv1.weight[c, 0] = 1.0 / 9
            net.conv1.weight[c, 1:] = -0.5 / 9
        net.time.weight.zero_()
        net.time.weight[:, 0, list(DECISIVE_FRAMES)] = 1.0
        net.fc.weight.zero_()
        net.fc.weight[0, list(DECISIVE_CHANNELS)] = FramePlantedNet.GAIN / len(DECISIVE_CHANNELS)
        net.fc.bias.copy_(torch.tensor([0.0, 3.0]))
    return net


def frame_planted_clip(seed: int = 0) -> Tensor:
    """``(3, 8, 16, 16)`` normalised clip: noise (std 0.1) on grey; a square (rows and columns 5..10) of redness
    ``R - (G + B) / 2 = +3`` in the decisive frames and ``-3`` in the other four, so that its temporal mean is
    grey: a deleted frame (the temporal mean) carries no redness."""
    clip = 0.1 * torch.randn(3, 8, 16, 16, generator=torch.Generator().manual_seed(seed))
    for t in range(8):
        red = 3.0 if t in DECISIVE_FRAMES else -3.0
        clip[0, t][SQUARE] += red * 2 / 3
        clip[1:, t][(slice(None), *SQUARE)] -= red * 2 / 3
    return clip


#: ClassPlantedNet's classes: class k is "frame k is bright"
FRAME_CLASS_COUNT = 8


class ClassPlantedNet(nn.Module):
    """``(N, 1, 8, H, W) -> (N, 8)`` logits: ``logit_k = GAIN * mean_{y,x} x[:, 0, k]``, so only frame ``k`` matters
    to class ``k`` (``fc`` is the identity times ``GAIN``). A class-specific explanation of class ``k`` credits
    frame ``k`` alone; one that depends only on the input is the same for every class."""

    GAIN = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(FRAME_CLASS_COUNT, FRAME_CLASS_COUNT, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.mean((1, 3, 4)))


def class_planted_net() -> ClassPlantedNet:
    net = ClassPlantedNet().eval()
    with torch.no_grad():
        net.fc.weight.copy_(ClassPlantedNet.GAIN * torch.eye(FRAME_CLASS_COUNT))
    return net
