"""Synthetic motion clips with known ground truth, made on the fly (no files).

Each clip shows one textured object on a static textured background. The object is drawn
analytically in every frame: each screen pixel is mapped back into the object's own frame
(inverse pose: translate, rotate, scale) where the shape's signed distance and its texture are
evaluated. Edges are antialiased at screen resolution, so an object that shrinks or turns shows
no sampling flicker, and nothing but the object moves.

Motion convention (the project's): x to the right, y down, in pixels, with pixel centres at
integer coordinates and (0, 0) the top-left pixel; rotation in degrees, positive = clockwise on
screen; scale as a factor of the object's size (> 1 = bigger = zoom in).

Two tasks:

* ``"motion"``: the class is the motion, :data:`MOTION_CLASSES` (translate left/right/up/down,
  rotate clockwise/counter-clockwise, zoom in/out, static); shape, texture, colours, position and
  speed are random. The total motion over a clip is drawn per clip (translation 22–50 % of the
  frame side, rotation 60–150°, zoom factor 1.6–2.4) and spread evenly over the frame steps.
* ``"appearance"``: the class is shape × colour, :data:`APPEARANCE_CLASSES`; a random small
  translation, rotation and zoom is nuisance motion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from conv3t.data.registry import DatasetSource, register_dataset
from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD, HorizontalFlip, symmetric_label_map

MOTION_CLASSES: tuple[str, ...] = (
    "translate_left",
    "translate_right",
    "translate_up",
    "translate_down",
    "rotate_cw",
    "rotate_ccw",
    "zoom_in",
    "zoom_out",
    "static",
)
_APPEARANCE_SHAPES = ("disk", "square", "triangle")
_APPEARANCE_COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.1, 0.75, 0.2), "blue": (0.15, 0.3, 0.95)}
APPEARANCE_CLASSES: tuple[str, ...] = tuple(f"{c}_{s}" for s in _APPEARANCE_SHAPES for c in _APPEARANCE_COLOURS)
_MOTION_SHAPES = ("disk", "square", "triangle", "cross", "bar", "hexagon")

#: Label swaps under a horizontal mirror, per task (left <-> right, clockwise <-> counter-clockwise).
SYNTHETIC_FLIP_LABEL_MAP: dict[str, dict[int, int]] = {
    "motion": symmetric_label_map([(0, 1), (4, 5)]),
    "appearance": {},
}


@dataclass(frozen=True)
class MotionGroundTruth:
    """The motion that made a clip, per frame (``T`` frames).

    Attributes:
        label: class index; ``class_name`` its name.
        center: ``(T, 2)`` object centre ``(x, y)`` in pixels (x right, y down).
        angle: ``(T,)`` object orientation in degrees relative to frame 0, positive = clockwise.
        scale: ``(T,)`` object size relative to frame 0 (> 1 = bigger).
        radius: ``(T,)`` object radius in pixels (the shape fits in a circle of 0.9 × radius).
        shape: the shape's name.
    """

    label: int
    class_name: str
    center: np.ndarray
    angle: np.ndarray
    scale: np.ndarray
    radius: np.ndarray
    shape: str

    @property
    def translation(self) -> np.ndarray:
        """``(T - 1, 2)`` centre displacement ``(dx, dy)`` from frame t to t + 1, pixels."""
        return np.diff(self.center, axis=0)

    @property
    def rotation(self) -> np.ndarray:
        """``(T - 1,)`` rotation from frame t to t + 1, degrees, positive = clockwise."""
        return np.diff(self.angle)

    @property
    def zoom(self) -> np.ndarray:
        """``(T - 1,)`` size factor from frame t to t + 1 (> 1 = zoom in)."""
        return self.scale[1:] / self.scale[:-1]


@dataclass(frozen=True)
class _Look:
    colour: np.ndarray  # (3,) in [0, 1]
    gratings: np.ndarray  # (G, 4): kx, ky, phase, weight in object units
    marker: np.ndarray  # (2,) marker position in object units
    marker_colour: np.ndarray  # (3,)
    bg_tint: np.ndarray  # (3,)
    bg_coarse: np.ndarray  # (3, 5, 5) smooth background noise seeds
    bg_grating: np.ndarray  # (3,): kx, ky, phase (per pixel)


def _shape_distance(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (> 0 inside), in object units, of the named shape at object coords ``(x, y)``."""
    if shape == "disk":
        return 0.9 - np.sqrt(x * x + y * y)
    ax, ay = np.abs(x), np.abs(y)
    if shape == "square":
        return 0.68 - np.maximum(ax, ay)
    if shape == "bar":
        return np.minimum(0.9 - ax, 0.42 - ay)
    if shape == "cross":
        return np.maximum(np.minimum(0.3 - ax, 0.9 - ay), np.minimum(0.9 - ax, 0.3 - ay))
    if shape in ("triangle", "hexagon"):
        n, inradius = (3, 0.48) if shape == "triangle" else (6, 0.8)
        # outward edge normals; the triangle points up (y down on screen)
        proj = None
        for k in range(n):
            a = math.pi / 2 + 2 * math.pi * k / n
            p = x * np.float32(math.cos(a)) + y * np.float32(math.sin(a))
            proj = p if proj is None else np.maximum(proj, p)
        return inradius - proj
    raise ValueError(f"unknown shape {shape!r}")


def _smooth_upsample_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights interpolating ``n_in`` samples smoothly (smoothstep) over ``n_out`` points."""
    pos = np.linspace(0, n_in - 1, n_out)
    i0 = np.minimum(np.floor(pos).astype(np.int64), n_in - 2)
    f = pos - i0
    f = f * f * (3 - 2 * f)
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), i0] = 1 - f
    m[np.arange(n_out), i0 + 1] = f
    return m


class SyntheticMotionDataset(Dataset):
    """Clips of a textured object moving on a static textured background, with known motion.

    Args:
        num_clips: dataset length.
        num_frames: ``T``.
        size: frame side in pixels, or ``(H, W)``.
        task: ``"motion"`` (class = motion) or ``"appearance"`` (class = shape × colour).
        seed: clip ``i`` depends only on ``(seed, i)`` (and the arguments above).
        normalize: ImageNet mean/std normalisation (like the video datasets); False gives [0, 1].
        transform: optional ``(clip, label) -> (clip, label)`` applied last, e.g. a
            :class:`~conv3t.data.transforms.HorizontalFlip` with :attr:`flip_label_map`.

    Items are ``(clip, label)``: ``clip`` float32 ``(3, T, H, W)``. Labels cycle through the
    classes (``label = i % num_classes``), so every prefix of the dataset is balanced.
    """

    def __init__(
        self,
        num_clips: int,
        num_frames: int = 16,
        size: int | Sequence[int] = 64,
        task: str = "motion",
        seed: int = 0,
        *,
        normalize: bool = True,
        transform: Callable[[torch.Tensor, int], tuple[torch.Tensor, int]] | None = None,
    ) -> None:
        if task not in ("motion", "appearance"):
            raise ValueError(f"task must be 'motion' or 'appearance', got {task!r}")
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        if num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (motion needs two frames), got {num_frames}")
        h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if min(h, w) < 16:
            raise ValueError(f"size must be at least 16 pixels, got {size}")
        self.num_clips, self.num_frames, self.size = num_clips, num_frames, (h, w)
        self.task, self.seed, self.normalize, self.transform = task, seed, normalize, transform
        self.classes: list[str] = list(MOTION_CLASSES if task == "motion" else APPEARANCE_CLASSES)
        self.flip_label_map: dict[int, int] = dict(SYNTHETIC_FLIP_LABEL_MAP[task])
        self.skipped = None  # nothing to skip: same interface as the file-backed datasets

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return self.num_clips

    def label(self, index: int) -> int:
        return index % len(self.classes)

    def _check_index(self, index: int) -> int:
        if not -self.num_clips <= index < self.num_clips:
            raise IndexError(f"index {index} out of range for {self.num_clips} clips")
        return index % self.num_clips

    # ---- random draws -------------------------------------------------------------------------
    def _rngs(self, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        ss = np.random.SeedSequence([self.seed, index, 0x3C0])
        a, b = ss.spawn(2)
        return np.random.default_rng(a), np.random.default_rng(b)

    def ground_truth(self, index: int) -> MotionGroundTruth:
        """The motion of clip ``index`` (cheap: nothing is rendered)."""
        index = self._check_index(index)
        return self._motion(index, self._rngs(index)[0])

    def _motion(self, index: int, rng: np.random.Generator) -> MotionGroundTruth:
        h, w = self.size
        side = min(h, w)
        t = np.arange(self.num_frames, dtype=np.float64)
        frac = t / (self.num_frames - 1)  # 0 .. 1 over the clip
        label = self.label(index)
        name = self.classes[label]
        shift = np.zeros(2)  # total displacement over the clip, pixels
        turn = 0.0  # total rotation, degrees clockwise
        grow = 1.0  # total size factor
        radius0 = rng.uniform(0.14, 0.22) * side
        if self.task == "motion":
            shape = _MOTION_SHAPES[rng.integers(len(_MOTION_SHAPES))]
            if name.startswith("translate"):
                d = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[name.split("_")[1]]
                shift = np.array(d, dtype=np.float64) * rng.uniform(0.22, 0.5) * side
            elif name.startswith("rotate"):
                turn = rng.uniform(60.0, 150.0) * (1 if name == "rotate_cw" else -1)
            elif name == "zoom_in":
                grow = rng.uniform(1.6, 2.4)
                radius0 = rng.uniform(0.1, 0.14) * side
            elif name == "zoom_out":
                grow = 1.0 / rng.uniform(1.6, 2.4)
                radius0 = rng.uniform(0.24, 0.3) * side
        else:
            shape = name.split("_", 1)[1]
            angle = rng.uniform(0, 2 * np.pi)
            shift = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(0.0, 0.3) * side
            turn = rng.uniform(-90.0, 90.0)
            grow = float(np.exp(rng.uniform(-np.log(1.5), np.log(1.5))))
        radius = radius0 * grow**frac
        # place the path so that the whole object stays in the frame
        rmax = radius.max()
        lo = rmax + np.maximum(-shift, 0) + 1
        hi = np.array([w - 1, h - 1]) - rmax - np.maximum(shift, 0) - 1
        start = lo + rng.random(2) * np.maximum(hi - lo, 0)
        center = start[None, :] + frac[:, None] * shift[None, :]
        return MotionGroundTruth(
            label=label,
            class_name=name,
            center=center,
            angle=frac * turn,
            scale=grow**frac,
            radius=radius,
            shape=shape,
        )

    def _look(self, index: int, rng: np.random.Generator) -> _Look:
        label = self.label(index)
        if self.task == "appearance":
            colour = np.array(_APPEARANCE_COLOURS[self.classes[label].split("_")[0]])
        else:
            hue = rng.uniform(0, 2 * np.pi)
            colour = 0.55 + 0.4 * np.cos(hue + np.array([0.0, 2.094, 4.189]))
        g = 2
        ang = rng.uniform(0, np.pi, g)
        freq = rng.uniform(1.2, 2.6, g) * np.pi  # 1.2-2.6 cycles across the object's diameter
        gratings = np.stack(
            [freq * np.cos(ang), freq * np.sin(ang), rng.uniform(0, 2 * np.pi, g), rng.uniform(0.5, 1.0, g)], 1
        )
        marker_angle = rng.uniform(0, 2 * np.pi)
        marker = 0.45 * np.array([np.cos(marker_angle), np.sin(marker_angle)])
        marker_colour = 1.0 - colour
        tint = 0.75 + 0.25 * rng.random(3)
        bg_ang = rng.uniform(0, np.pi)
        bg_freq = rng.uniform(0.15, 0.4)
        return _Look(
            colour=colour,
            gratings=gratings,
            marker=marker,
            marker_colour=marker_colour,
            bg_tint=tint,
            bg_coarse=rng.random((3, 5, 5)),
            bg_grating=np.array([bg_freq * np.cos(bg_ang), bg_freq * np.sin(bg_ang), rng.uniform(0, 2 * np.pi)]),
        )

    # ---- rendering ----------------------------------------------------------------------------
    def render(self, index: int) -> tuple[torch.Tensor, torch.Tensor, MotionGroundTruth]:
        """Clip ``index`` before normalisation and transform.

        Returns ``(rgb, alpha, truth)``: ``rgb`` float32 ``(3, T, H, W)`` in [0, 1], ``alpha``
        float32 ``(T, H, W)`` the object's coverage of each pixel, ``truth`` its ground truth.
        """
        rgb, alpha, truth = self._render_np(index)
        return torch.from_numpy(rgb), torch.from_numpy(alpha), truth

    def _render_np(self, index: int) -> tuple[np.ndarray, np.ndarray, MotionGroundTruth]:
        # numpy, single-threaded: torch's thread pool costs far more than these small arrays
        # need when the cores are shared (DataLoader workers, a busy machine)
        index = self._check_index(index)
        motion_rng, look_rng = self._rngs(index)
        truth = self._motion(index, motion_rng)
        look = self._look(index, look_rng)
        h, w = self.size
        f32 = np.float32
        t_count = self.num_frames
        bg = self._background(look)  # (3, H, W)

        # Only a box around the object is drawn, per frame; the object never leaves the frame.
        box = int(np.ceil(2 * 0.95 * truth.radius.max())) + 4
        bh, bw = min(box, h), min(box, w)
        oy = np.clip(np.floor(truth.center[:, 1] - bh / 2).astype(np.int64) + 1, 0, h - bh)
        ox = np.clip(np.floor(truth.center[:, 0] - bw / 2).astype(np.int64) + 1, 0, w - bw)

        # screen pixel -> object coordinates (object radius = 1), for all frames at once
        dy = (np.arange(bh, dtype=f32)[None, :, None] + oy[:, None, None] - truth.center[:, 1, None, None]).astype(f32)
        dx = (np.arange(bw, dtype=f32)[None, None, :] + ox[:, None, None] - truth.center[:, 0, None, None]).astype(f32)
        th = np.deg2rad(truth.angle)
        rad = truth.radius.astype(f32)[:, None, None]
        cos, sin = np.cos(th).astype(f32)[:, None, None], np.sin(th).astype(f32)[:, None, None]
        # inverse of a clockwise (y down) turn by th, then of the scale
        u = (cos * dx + sin * dy) / rad
        v = (cos * dy - sin * dx) / rad

        dist = _shape_distance(truth.shape, u, v)
        alpha_box = np.clip(dist * rad + f32(0.5), 0.0, 1.0)  # 1-pixel antialiased edge, in screen pixels
        pattern = np.zeros_like(u)
        for kx, ky, phase, weight in look.gratings.tolist():  # soft-edged stripes
            pattern += f32(weight) * np.clip(f32(1.5) * np.sin(f32(kx) * u + f32(ky) * v + f32(phase)), -1.0, 1.0)
        pattern = f32(0.6) + f32(0.4 / look.gratings[:, 3].sum()) * pattern
        obj = look.colour.astype(f32)[:, None, None, None] * pattern[None]
        mdist = np.sqrt((u - f32(look.marker[0])) ** 2 + (v - f32(look.marker[1])) ** 2)
        mark = np.clip((f32(0.2) - mdist) * rad + f32(0.5), 0.0, 1.0)[None]
        obj = obj * (1 - mark) + look.marker_colour.astype(f32)[:, None, None, None] * mark
        edge = np.clip((dist - f32(0.07)) * rad + f32(0.5), 0.0, 1.0)[None]  # dark outline
        obj *= f32(0.25) + f32(0.75) * edge

        rgb = np.repeat(bg[:, None], t_count, axis=1)
        alpha = np.zeros((t_count, h, w), dtype=f32)
        for t in range(t_count):
            ys_, xs_ = slice(int(oy[t]), int(oy[t]) + bh), slice(int(ox[t]), int(ox[t]) + bw)
            a = alpha_box[t]
            alpha[t, ys_, xs_] = a
            rgb[:, t, ys_, xs_] = rgb[:, t, ys_, xs_] * (1 - a) + obj[:, t] * a
        np.clip(rgb, 0.0, 1.0, out=rgb)
        return rgb, alpha, truth

    def _background(self, look: _Look) -> np.ndarray:
        h, w = self.size
        my, mx = _smooth_upsample_matrix(h, 5), _smooth_upsample_matrix(w, 5)
        noise = np.einsum("hi,cij,wj->chw", my, look.bg_coarse.astype(np.float32), mx)
        kx, ky, ph = look.bg_grating.tolist()
        grating = np.sin(kx * np.arange(w)[None, :] + ky * np.arange(h)[:, None] + ph).astype(np.float32)
        tint = look.bg_tint.astype(np.float32)[:, None, None]
        return np.clip(tint * (0.32 + 0.16 * noise + 0.05 * grating), 0.0, 1.0).astype(np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rgb, _, truth = self._render_np(index)
        if self.normalize:
            for c in range(3):
                rgb[c] -= IMAGENET_MEAN[c]
                rgb[c] /= IMAGENET_STD[c]
        clip, label = torch.from_numpy(rgb), truth.label
        if self.transform is not None:
            clip, label = self.transform(clip, label)
        return clip, label


# Synthetic splits use different seeds so that their clips differ.
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_006}
#: Label swaps when a motion clip is played backwards (static stays static).
_REVERSE_PAIRS = (("translate_left", "translate_right"), ("translate_up", "translate_down"))
_REVERSE_PAIRS += (("rotate_cw", "rotate_ccw"), ("zoom_in", "zoom_out"))


@register_dataset("synthetic")
@dataclass(kw_only=True)
class SyntheticSource(DatasetSource):
    """Synthetic clips made on the fly (:class:`SyntheticMotionDataset`); every split single-view.

    Args:
        num_frames, size: clip ``T`` and ``(H, W)`` (or an int for square).
        flip: random label-aware horizontal flip of training clips.
        num_train, num_val, num_test: clips per split.
        task: ``"motion"`` or ``"appearance"``.
        seed: the train split's seed; val and test use seeds offset from it, so the splits differ.
    """

    num_frames: int = 16
    size: int | Sequence[int] = 64
    flip: bool = False
    num_train: int = 2000
    num_val: int = 500
    num_test: int = 500
    task: str = "motion"
    seed: int = 0

    def read_classes(self) -> list[str]:
        if self.task not in SYNTHETIC_FLIP_LABEL_MAP:
            raise ValueError(f"data.task must be one of {sorted(SYNTHETIC_FLIP_LABEL_MAP)}, got {self.task!r}")
        return list(MOTION_CLASSES if self.task == "motion" else APPEARANCE_CLASSES)

    def flip_label_map(self) -> dict[int, int]:
        return dict(SYNTHETIC_FLIP_LABEL_MAP[self.task])

    def describe(self) -> str:
        return f"synthetic {self.task}"

    def reverse_label_map(self) -> dict[int, int]:
        """Playing a clip backwards swaps opposite motions; appearance labels do not change."""
        if self.task != "motion":
            return {}
        index = {c: i for i, c in enumerate(self.class_names())}
        return symmetric_label_map([(index[a], index[b]) for a, b in _REVERSE_PAIRS])

    def dataset(self, split: str) -> SyntheticMotionDataset:
        n = {"train": self.num_train, "val": self.num_val, "test": self.num_test}[split]
        seed = self.seed + _SPLIT_SEED_OFFSET[split]
        ds = SyntheticMotionDataset(n, self.num_frames, self.size, task=self.task, seed=seed)
        if split == "train" and self.flip:
            ds.transform = HorizontalFlip(0.5, ds.flip_label_map)
        return ds
