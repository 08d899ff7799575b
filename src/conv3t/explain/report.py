"""The explanation report: one static, offline ``index.html`` with its images beside it.

:func:`build_report` loads an exported model (``model.safetensors`` + ``model.json``, see
:mod:`conv3t.exported`) and writes, into ``out_dir``:

* ``index.html`` and ``report.css``: no scripts, no remote resources; every image by relative path;
* ``images/``: the PNG figures and GIF animations the page shows;
* ``parameters.csv`` (the full :func:`~conv3t.explain.temporal_parameters` table), ``ranking.csv``,
  ``statistics.md`` and ``statistics.tex`` (Table 2 for this model).

The page holds the model summary and its predictions on the clips used, Table 2 statistics and the parameter
distributions (Fig. 4), then for each chosen layer its most transformed channels (:func:`rank_channels`), each
with a plain sentence, the parameter plots and trajectory (Fig. 3 right), the filter slices and animation
(first layer only, Fig. 2/3 bottom), gradient saliency (:mod:`conv3t.explain.saliency`) and activation
maximisation (:mod:`conv3t.explain.actmax`).

Clips: ``videos`` (video files read with PyAV, or folders of frame images) are preprocessed like the
evaluation data (centre window of ``num_frames`` frames, centre crop resized to the model's size, the model's
normalisation). Without them the report regenerates a few clips of the run's own validation data from
``model.json``'s ``data`` section (synthetic runs make theirs on the fly; Jester/UCF101 need their files).

Defaults are sized for a CPU: 3 layers (first, middle and last temporal layer) x 3 channels, 64 activation
maximisation steps on at most 8 frames of at most 64 x 64 pixels.
"""

from __future__ import annotations

import html
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from conv3t.exported import ExportedModel, ModelInfo, load_exported
from conv3t.files import atomic_open, atomic_write
from conv3t.nn import Conv3T

__all__ = ["ReportClip", "build_comparison", "build_report", "load_video_clip", "select_layers", "temporal_layers"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_NUM_LAYERS = 3
DEFAULT_NUM_CHANNELS = 3
DEFAULT_NUM_CLIPS = 3


@dataclass
class ReportClip:
    """An input clip shown in the report: ``clip`` is the normalised model input ``(3, T, H, W)``."""

    name: str
    clip: Tensor
    label: str | None = None
    prediction: str | None = None
    probability: float | None = None


# ---------------------------------------------------------------------------------------------- clips
def _read_frame_folder(folder: Path) -> Tensor:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--video {folder}: folder has no frame images ({', '.join(IMAGE_SUFFIXES)})")
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1))
        except OSError as err:
            raise ValueError(f"--video {folder}: cannot read frame {f.name} ({err})") from None
    if len({tuple(fr.shape) for fr in frames}) != 1:
        raise ValueError(f"--video {folder}: frames differ in size")
    return torch.stack(frames)


def load_video_clip(
    path: str | os.PathLike[str],
    num_frames: int,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    frame_stride: int = 1,
) -> Tensor:
    """Read a video file (PyAV) or a folder of frame images (sorted by name) as a model input.

    Takes the centre window of ``num_frames`` frames ``frame_stride`` apart (short videos repeat their last
    frame), crops the centre box of the frame's aspect ratio ``size`` and resizes it to ``size`` ``(H, W)``,
    and normalises with ``mean``/``std``. Returns ``(3, num_frames, H, W)`` float32.
    """
    from conv3t.data.sampling import center_indices
    from conv3t.data.transforms import VideoTransform

    path = Path(path)
    if path.is_dir():
        frames = _read_frame_folder(path)
        idx = center_indices(len(frames), num_frames, frame_stride)
        frames = frames[torch.from_numpy(idx)]
    elif path.is_file():
        from conv3t.data.decode import VideoFile
        from conv3t.data.errors import VideoReadError

        try:
            with VideoFile(path.name, path) as video:
                frames = video.read(center_indices(video.num_frames, num_frames, frame_stride))
        except VideoReadError as err:
            raise ValueError(f"--video {path}: {err}") from None
    else:
        raise FileNotFoundError(f"--video {path}: no such file or folder")
    clip, _ = VideoTransform(size, mode="eval", mean=mean, std=std)(frames, -1)
    return clip


def _dataset_clips(info: ModelInfo, count: int) -> tuple[list[ReportClip], str | None]:
    """A few validation clips of the run's own data; ``(clips, reason)`` with a reason when there are none."""
    if not info.data or "dataset" not in info.data:
        return [], "model.json has no data section to regenerate clips from"
    from conv3t.data import DataError, build_datamodule
    from conv3t.data.transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize

    cfg = dict(info.data)
    cfg.setdefault("num_frames", info.num_frames)
    cfg.setdefault("size", list(info.size))
    try:
        dm = build_datamodule(cfg)
        dataset = dm.make_dataset("val")
        classes = dm.classes
    except (DataError, OSError, ValueError, KeyError, TypeError) as err:
        return [], f"the run's {cfg['dataset']} data could not be opened ({err})"
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        return [], "the run's validation set is empty"
    # spread over the set: for synthetic data (label = index % classes) this shows different classes
    picks = sorted({min(n - 1, round(j * min(n, max(len(classes), count)) / count)) for j in range(count)})
    mean, std = torch.tensor(info.mean).view(3, 1, 1, 1), torch.tensor(info.std).view(3, 1, 1, 1)
    clips = []
    for i in picks:
        try:
            clip, label = dataset[i]
        except (DataError, OSError) as err:
            return clips, f"reading validation clip {i} failed ({err})"
        if clip.ndim == 5:  # multi-view item: keep the first view
            clip = clip[0]
        if tuple(info.mean) != tuple(IMAGENET_MEAN) or tuple(info.std) != tuple(IMAGENET_STD):
            clip = (denormalize(clip) - mean) / std
        name = classes[label] if 0 <= label < len(classes) else None
        clips.append(ReportClip(f"val clip {i}", clip.float(), label=name))
    return clips, None


# --------------------------------------------------------------------------------------------- layers
def temporal_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers with a temporal extent: Conv3T and Conv3d modules whose kernel depth is > 1, in order."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, (Conv3T, nn.Conv3d)) and m.kernel_size[0] > 1:
            out.append((name, m))
    return out


def select_layers(model: nn.Module, layers: Sequence[str] | None, count: int = DEFAULT_NUM_LAYERS) -> list[str]:
    """The layers to explain: ``layers`` checked against the model, or the first, middle and last temporal layer."""
    candidates = [name for name, _ in temporal_layers(model)]
    if layers:
        convs = {n for n, m in model.named_modules() if isinstance(m, (Conv3T, nn.Conv3d))}
        bad = [name for name in layers if name not in convs]
        if bad:
            raise ValueError(
                f"--layers {', '.join(bad)}: not a convolution of this model; temporal layers are: "
                + ", ".join(candidates)
            )
        return list(dict.fromkeys(layers))
    if not candidates:
        raise ValueError("the model has no Conv3T or Conv3d layer with temporal depth > 1 to explain")
    if len(candidates) <= count:
        return candidates
    idx = np.linspace(0, len(candidates) - 1, count).round().astype(int)
    return [candidates[i] for i in dict.fromkeys(idx.tolist())]


def _kernel_variation(module: nn.Module) -> np.ndarray:
    """Per output channel of a Conv3d: sum over t of ``||K_{t+1} - K_t|| / ||K||`` (how much the kernel changes)."""
    w = module.weight.detach().double()  # (out, in, D, kH, kW)
    steps = (w[:, :, 1:] - w[:, :, :-1]).transpose(1, 2).flatten(2).norm(dim=2).sum(1)  # (out, D-1) -> (out,)
    return (steps / w.flatten(1).norm(dim=1).clamp_min(1e-12)).numpy()


# ------------------------------------------------------------------------------------------- progress
class _Progress:
    """A rich progress bar on stderr over units of work (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]conv3t explain[/]"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(stderr=True),  # stdout carries the report's path
            )
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        if self._bar is not None:
            self._bar.update(self._task, description=what)
        yield
        if self._bar is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# --------------------------------------------------------------------------------------------- images
def _pixels(clip: Tensor, info: ModelInfo) -> Tensor:
    mean = torch.tensor(info.mean, dtype=clip.dtype).view(3, 1, 1, 1)
    std = torch.tensor(info.std, dtype=clip.dtype).view(3, 1, 1, 1)
    return (clip.detach().cpu() * std + mean).clamp(0, 1)


def _to_uint8(image: Tensor) -> np.ndarray:
    """``(3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8."""
    return (image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def _save_png(array: np.ndarray, path: Path, min_side: int = 96) -> None:
    """Save an ``(H, W, 3)`` uint8 image, enlarged by an integer factor (nearest) to at least ``min_side``."""
    from PIL import Image

    image = Image.fromarray(array)
    factor = max(1, math.ceil(min_side / min(image.size)))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    with atomic_open(path, fsync=False) as handle:
        image.save(handle, format="PNG")


def _strip(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` images into rows with a white gap."""
    h, w, _ = rows[0][0].shape
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = img
    return out


def _save_figure(fig, path: Path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    with atomic_open(path, fsync=False) as handle:
        fig.savefig(handle, format=path.suffix.lstrip(".") or "png", dpi=90, bbox_inches="tight")
    plt.close(fig)


# --------------------------------------------------------------------------------------------- report
@dataclass
class _Card:
    """What the page shows for one channel."""

    layer: str
    channel: int
    score: float | None = None
    sentence: str | None = None
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (relative path, caption, css class)
    notes: list[str] = field(default_factory=list)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(src: str, caption: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<figure{cls}><img src="{_e(src)}" alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _logits(output: object) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple | list) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"cannot read logits from a model output of type {type(output).__name__}")


def build_report(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    videos: Sequence[str | os.PathLike[str]] | None = None,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    progress: bool = True,
    num_clips: int = DEFAULT_NUM_CLIPS,
    num_channels: int = DEFAULT_NUM_CHANNELS,
    actmax_steps: int = 64,
    actmax_frames: int = 8,
    actmax_size: int = 64,
    seed: int = 0,
    extra_sections: Sequence[str] = (),
    verify: bool = True,
) -> Path:
    """Write the explanation report of an exported model; returns the path of ``index.html``.

    Args:
        run_dir: a run directory, or the path of its ``model.safetensors`` or ``model.json``.
        out_dir: the report folder (created; files of an earlier report are overwritten).
        videos: video files or frame folders to explain; default: ``num_clips`` clips of the run's own
            validation data.
        layers: qualified layer names (e.g. ``["conv1", "layer2.0.conv1"]``); default: the first, middle and
            last layer with a temporal extent.
        channels: channel indices shown for every chosen layer; default: the ``num_channels`` most
            transformed channels of each layer (3T: :func:`~conv3t.explain.rank_channels`; 3D: largest
            relative change between consecutive kernel slices).
        progress: show a progress bar on the terminal.
        actmax_steps: Adam steps of activation maximisation per layer (all channels of a layer in one batch).
        actmax_frames, actmax_size: caps on the clip length and side used for activation maximisation (the
            model's own clip shape when smaller), to keep the report fast on a CPU.
        seed: seeds activation maximisation.
        extra_sections: HTML fragments (e.g. ``<section>...</section>``) appended after the layers, such as
            :func:`conv3t.verify.verification_section` output; their images must lie inside ``out_dir``.
        verify: for 3T models, add the section "Do channels prefer the motion their parameters say?":
            :func:`conv3t.verify.verify_model` drives every channel with stimuli of known motion and compares
            the measured preference with the parameters' reading (``conv3t verify`` gives the full output).
    """
    exported = load_exported(run_dir)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    writer = _ReportWriter(exported, out, progress, seed)
    writer.extra_sections = list(extra_sections)
    writer.verify = verify
    return writer.run(videos, layers, channels, num_clips, num_channels, actmax_steps, actmax_frames, actmax_size)


class _ReportWriter:
    def __init__(self, exported: ExportedModel, out: Path, progress: bool, seed: int) -> None:
        self.model = exported.model.eval()
        self.info = exported.info
        self.source = exported.path
        self.out = out
        self.images = out / "images"
        self.progress_enabled = progress
        self.seed = seed
        self.is_3t = any(isinstance(m, Conv3T) for m in self.model.modules())
        self._activations: dict[str, Tensor] = {}
        self.extra_sections: list[str] = []
        self.verify = False
        self._started = time.perf_counter()

    # -- helpers -----------------------------------------------------------------------------------
    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def _load_clips(self, videos: Sequence[str | os.PathLike[str]] | None, count: int) -> tuple[list[ReportClip], str]:
        info = self.info
        if videos:
            stride = int(info.data.get("frame_stride", 1) or 1)
            clips = [
                ReportClip(Path(v).name, load_video_clip(v, info.num_frames, info.size, info.mean, info.std, stride))
                for v in videos
            ]
            return clips, "the videos given with --video"
        clips, reason = _dataset_clips(info, count)
        if reason and not clips:
            return [], reason
        return clips, f"{len(clips)} clips of the run's own {info.data.get('dataset', '')} validation data"

    def _predict(self, clips: list[ReportClip]) -> None:
        if not clips:
            return
        with torch.no_grad():
            probs = torch.softmax(_logits(self.model(torch.stack([c.clip for c in clips]))), dim=1)
        for c, p in zip(clips, probs):
            k = int(p.argmax())
            c.prediction = self.info.classes[k] if k < len(self.info.classes) else str(k)
            c.probability = float(p[k])

    # -- the work ------------------------------------------------------------------------------------
    def run(
        self,
        videos: Sequence[str | os.PathLike[str]] | None,
        layers: Sequence[str] | None,
        channels: Sequence[int] | None,
        num_clips: int,
        num_channels: int,
        actmax_steps: int,
        actmax_frames: int,
        actmax_size: int,
    ) -> Path:
        from conv3t.explain import rank_channels, temporal_parameters
        from conv3t.explain.stats import (
            format_statistics,
            statistics_latex,
            statistics_markdown,
            summary_statistics,
        )

        layer_names = select_layers(self.model, layers)
        modules = dict(self.model.named_modules())
        chosen: dict[str, list[int]] = {}
        clip_size = (self.info.num_frames, *self.info.size)
        table = temporal_parameters(self.model, input_size=clip_size) if self.is_3t else None
        ranking = None
        if table is not None and len(table):
            ranking = rank_channels(table, per_layer=True)
        for name in layer_names:
            n_out = modules[name].out_channels
            if channels:
                bad = [c for c in channels if not 0 <= c < n_out]
                if bad:
                    raise ValueError(f"--channels {bad}: layer {name} has channels 0..{n_out - 1}")
                chosen[name] = list(dict.fromkeys(int(c) for c in channels))
            elif ranking is not None and name in set(ranking["layer"]):
                chosen[name] = ranking[ranking["layer"] == name]["channel"].head(num_channels).astype(int).tolist()
            else:
                order = np.argsort(-_kernel_variation(modules[name]), kind="stable")
                chosen[name] = order[:num_channels].astype(int).tolist()

        cards = [_Card(name, c) for name in layer_names for c in chosen[name]]
        verify = self.verify and self.is_3t
        total = 4 + len(layer_names) + 2 * len(cards) + int(verify)
        bar = _Progress(self.progress_enabled, total)
        try:
            with bar.step("reading clips"):
                clips, clip_source = self._load_clips(videos, num_clips)
                self._predict(clips)
            with bar.step("parameter tables and statistics"):
                stats_html = self._statistics(table, summary_statistics, format_statistics)
                if table is not None:
                    atomic_write(self.out / "parameters.csv", table.to_csv(index=False).encode())
                    stats = summary_statistics({self.info.model: table}) if len(table) else None
                    if stats is not None:
                        atomic_write(self.out / "statistics.md", statistics_markdown(stats).encode())
                        atomic_write(self.out / "statistics.tex", statistics_latex(stats).encode())
                if ranking is not None:
                    atomic_write(self.out / "ranking.csv", ranking.to_csv(index=False).encode())
            with bar.step("distributions"):
                distribution_html = self._distributions(table)
            clip_html = self._clips_section(clips, clip_source)
            for card in cards:
                if ranking is not None:
                    row = ranking[(ranking["layer"] == card.layer) & (ranking["channel"] == card.channel)]
                    if len(row):
                        card.score = float(row["score"].iloc[0])
                        card.sentence = str(row["sentence"].iloc[0])
            for name in layer_names:
                with bar.step(f"activation maximisation: {name}"):
                    self._actmax(name, [c for c in cards if c.layer == name], actmax_steps, actmax_frames, actmax_size)
            for card in cards:
                with bar.step(f"parameters and filters: {card.layer} #{card.channel}"):
                    self._channel_figures(card, table)
                with bar.step(f"saliency: {card.layer} #{card.channel}"):
                    self._saliency(card, clips)
            if verify:
                with bar.step("verification against motion stimuli"):
                    self.extra_sections.insert(0, self._verification())
            with bar.step("writing index.html"):
                page = self._page(clip_html, stats_html, distribution_html, layer_names, cards)
                shutil.copyfile(resources.files("conv3t.explain").joinpath("report.css"), self.out / "report.css")
                index = self.out / "index.html"
                atomic_write(index, page.encode("utf-8"))
        finally:
            bar.close()
        return index

    # -- sections ------------------------------------------------------------------------------------
    def _statistics(self, table, summary_statistics, format_statistics) -> str:  # type: ignore[no-untyped-def]
        if table is None:
            return (
                "<p>This is a 3D model: its kernels have no explicit temporal parameters, so there is no Table 2. "
                "Channels below are ranked by how much their kernel changes from one slice to the next.</p>"
            )
        if not len(table):
            return "<p>The model has no Conv3T layer with temporal depth &gt; 1.</p>"
        shown = format_statistics(summary_statistics({self.info.model: table})).rename_axis(None)
        return (
            "<p>Mean μ and standard deviation σ over all Conv3T channels and steps of the deviation of each "
            "temporal parameter from the identity (raw units, ×10<sup>−3</sup>, as Table 2 of the paper): "
            "|s − 1|, |r| (radians), |t<sub>x</sub>|, |t<sub>y</sub>| (affine-grid units).</p>"
            + shown.to_html(index=True, border=0, classes="table", escape=True)
            + '<p class="files">Also as <a href="statistics.md">Markdown</a> and <a href="statistics.tex">LaTeX</a>; '
            'every parameter in <a href="parameters.csv">parameters.csv</a>, the channel ranking in '
            '<a href="ranking.csv">ranking.csv</a>.</p>'
        )

    def _distributions(self, table) -> str:  # type: ignore[no-untyped-def]
        from conv3t.explain.plots import plot_distributions, save_figure

        if table is None or not len(table):
            return "<p>No temporal parameters to plot (a 3D model, or no Conv3T layer with depth &gt; 1).</p>"
        parts = ["<p>All (channel, step) values of the model, per step: zoom, rotation and the joint translation.</p>"]
        for units, caption in (
            ("human", "human units: zoom %, degrees clockwise, content motion in kernel pixels"),
            ("raw", "the paper's axes: s, −r (radians, clockwise positive), t_x, t_y"),
        ):
            path = self.images / f"distributions_{units}.png"
            save_figure(plot_distributions(table, units=units, title=self.info.model), path, dpi=80)
            parts.append(_img(self._rel(path), caption, "plot wide"))
        return "\n".join(parts)

    def _channel_figures(self, card: _Card, table) -> None:  # type: ignore[no-untyped-def]
        from conv3t.explain.filters import filter_layer, filter_strip, save_filter_gif
        from conv3t.explain.plots import plot_channel, save_figure

        slug = f"{_slug(card.layer)}_{card.channel}"
        if table is not None and ((table["layer"] == card.layer) & (table["channel"] == card.channel)).any():
            path = self.images / f"parameters_{slug}.png"
            save_figure(plot_channel(table, card.layer, card.channel), path, dpi=70)
            caption = "temporal parameters per slice and the trajectory (blue: start, red: end)"
            card.figures.append((self._rel(path), caption, "plot wide"))
        first, module = filter_layer(self.model)
        if card.layer == first and getattr(module, "in_channels", 0) == 3:
            path = self.images / f"filter_{slug}.png"
            filter_strip(self.model, card.channel, layer=first).save(path)
            card.figures.append((self._rel(path), "the filter's time slices (RGB), first to last", ""))
            gif = self.images / f"filter_{slug}.gif"
            save_filter_gif(self.model, card.channel, gif, layer=first)
            card.figures.append((self._rel(gif), "the filter, animated over its slices", ""))

    def _clips_section(self, clips: list[ReportClip], source: str) -> str:
        if not clips:
            return f'<p class="note">No input clips: {_e(source)}. Pass <code>--video FILE</code> for saliency.</p>'
        parts = [f"<p>Inputs: {_e(source)}. Every frame of each clip, then the model's top prediction.</p>"]
        for i, c in enumerate(clips):
            frames = _pixels(c.clip, self.info)
            path = self.images / f"clip{i}.png"
            _save_png(_strip([[_to_uint8(frames[:, t]) for t in range(frames.shape[1])]]), path, min_side=48)
            truth = f" — label: {c.label}" if c.label else ""
            pred = f"; predicted {c.prediction} ({c.probability:.0%})" if c.prediction else ""
            parts.append(_img(self._rel(path), f"{c.name}{truth}{pred}", "wide"))
        return "\n".join(parts)

    def _actmax(self, layer: str, cards: list[_Card], steps: int, max_frames: int, max_side: int) -> None:
        from conv3t.explain.actmax import ActivationMaximization

        if not cards:
            return
        h, w = self.info.size
        factor = min(1.0, max_side / max(h, w))
        size = (max(16, round(h * factor)), max(16, round(w * factor)))
        frames = min(self.info.num_frames, max_frames)
        am = ActivationMaximization(
            self.model, layer, num_frames=frames, size=size, mean=self.info.mean, std=self.info.std
        )
        result = am.optimize([c.channel for c in cards], steps=steps, seed=self.seed)
        baseline = am.random_baseline([c.channel for c in cards], n=4, seed=self.seed).mean(0)
        for k, card in enumerate(cards):
            pixels = result.pixels[k]  # (3, T, H, W)
            path = self.images / f"actmax_{_slug(layer)}_{card.channel}.png"
            if result.single_frame:
                _save_png(_to_uint8(pixels[:, 0]), path, min_side=128)
                caption = "activation maximisation: one image, repeated over time"
            else:
                _save_png(_strip([[_to_uint8(pixels[:, t]) for t in range(pixels.shape[1])]]), path, min_side=64)
                caption = "activation maximisation: the optimised video, frame by frame"
            card.figures.append((self._rel(path), caption, "actmax" if result.single_frame else "wide"))
            card.notes.append(
                f"Activation maximisation: mean rectified activation {float(result.activation[k]):.3g} for the "
                f"optimised input ({steps} steps) vs {float(baseline[k]):.3g} for random pixels."
            )

    def _saliency(self, card: _Card, clips: list[ReportClip]) -> None:
        from conv3t.explain.saliency import ChannelSaliency, overlay, saliency_map

        if not clips:
            return
        sal = ChannelSaliency(self.model, card.layer)
        if card.layer not in self._activations:  # (clips, C): each channel's mean activation per clip
            out = sal.activation(torch.stack([c.clip for c in clips]))
            self._activations[card.layer] = out.flatten(2).mean(2)
        act = self._activations[card.layer][:, card.channel]
        best = int(act.argmax())  # the clip that excites this channel most
        clip = clips[best]
        slug = f"{_slug(card.layer)}_{card.channel}"
        grad = sal.attribute(clip.clip[None], card.channel)[0]  # (3, T, H, W)
        rectify = bool(grad.abs().max() > 0)
        if not rectify:  # silent everywhere: max(A, 0) has no gradient; show the raw activation's instead
            grad = sal.attribute(clip.clip[None], card.channel, rectify=False)[0]
            if bool(grad.abs().max() > 0):
                card.notes.append(
                    f"Saliency: the channel does not fire anywhere in the clips (largest mean activation in "
                    f"{clip.name}); the maps show the gradient of its raw activation A instead of max(A, 0)."
                )
            else:
                card.notes.append(
                    "Saliency: the channel's output does not depend on the input here (zero gradient): the "
                    "kernel taps that reach this layer's small input are zero, so its temporal parameters "
                    "have no effect at this clip size."
                )
        heat = saliency_map(grad)  # (T, H, W), one scale for the whole clip
        frames = _pixels(clip.clip, self.info)
        originals = [_to_uint8(frames[:, t]) for t in range(frames.shape[1])]
        overlays = [overlay(frames[:, t], heat[t]) for t in range(frames.shape[1])]
        path = self.images / f"saliency_seq_{slug}.png"
        _save_png(_strip([originals, overlays]), path, min_side=96)
        caption = f"gradient saliency per frame ({clip.name}; top: frames, bottom: the gradient over them)"
        card.figures.append((self._rel(path), caption, "wide"))
        if self.is_3t:
            peak = sal.peak_frame(clip.clip, card.channel, rectify=rectify)
            image = _pixels(peak.frame[:, None], self.info)[:, 0]
            pair = _strip([[_to_uint8(image), overlay(image, saliency_map(peak.gradient[:, None])[0])]])
            path = self.images / f"saliency_peak_{slug}.png"
            _save_png(pair, path, min_side=128)
            card.figures.append(
                (
                    self._rel(path),
                    f"frame {peak.frame_index} of {clip.name}, the highest activation (output step "
                    f"{peak.time_index}), and its gradient",
                    "pair",
                )
            )

    def _verification(self) -> str:
        from conv3t.verify import verification_section, verify_model

        info = self.info
        result = verify_model(self.model, num_frames=info.num_frames, size=info.size, mean=info.mean, std=info.std)
        return verification_section(result, out_dir=self.out, image_subdir="images")

    def _page(
        self, clip_html: str, stats_html: str, distribution_html: str, layer_names: list[str], cards: list[_Card]
    ) -> str:
        info = self.info
        kind = "3TConv" if self.is_3t else "3DConv"
        n_temporal = len(temporal_layers(self.model))
        summary = [
            ("model", f"{info.model} ({kind})"),
            ("weights", str(self.source)),
            ("parameters", f"{_parameter_count(self.model):,}"),
            ("temporal layers", str(n_temporal)),
            ("classes", f"{info.num_classes}: {', '.join(info.classes[:12])}{' …' if info.num_classes > 12 else ''}"),
            ("clip", f"{info.num_frames} frames of {info.size[0]} × {info.size[1]} pixels"),
            ("data", ", ".join(f"{k}={v}" for k, v in info.data.items()) or "not recorded"),
        ]
        rows = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in summary)
        toc = "\n".join(f'<li><a href="#{_slug(n)}">{_e(n)}</a></li>' for n in layer_names)
        verified = any('id="verification"' in section for section in self.extra_sections)
        verify_link = '<li><a href="#verification">Verification</a></li>' if verified else ""
        body = [
            f"<h1>{_e(info.model)}: what its temporal filters learned</h1>",
            '<nav><ol><li><a href="#model">Model</a></li><li><a href="#statistics">Statistics</a></li>'
            f'<li><a href="#distributions">Distributions</a></li>{toc}{verify_link}</ol></nav>',
            f'<section id="model"><h2>Model</h2><table class="summary">{rows}</table>{clip_html}</section>',
            f'<section id="statistics"><h2>Temporal parameter statistics (Table 2)</h2>{stats_html}</section>',
            f'<section id="distributions"><h2>Distributions (Fig. 4)</h2>{distribution_html}</section>',
            f"<section><h2>Reading the channels</h2><p>{_e(_CONVENTIONS)}</p></section>",
        ]
        for name in layer_names:
            body.append(f'<section id="{_slug(name)}"><h2>Layer {_e(name)}</h2>')
            for card in (c for c in cards if c.layer == name):
                score = f' <span class="score">score {card.score:.3g}</span>' if card.score is not None else ""
                sentence = f'<p class="sentence">{_e(card.sentence)}</p>' if card.sentence else ""
                notes = "".join(f'<p class="note">{_e(n)}</p>' for n in card.notes)
                # small pictures side by side first, then the full-width plots and strips
                ordered = sorted(card.figures, key=lambda f: "wide" in f[2].split())
                figures = "".join(_img(src, cap, css) for src, cap, css in ordered)
                body.append(
                    f'<article class="channel"><h3>{_e(name)} — channel {card.channel}{score}</h3>'
                    f'{sentence}<div class="figures">{figures}</div>{notes}</article>'
                )
            body.append("</section>")
        body.extend(self.extra_sections)
        return (
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(info.model)} — conv3t explanation report</title>\n"
            '<link rel="stylesheet" href="report.css">\n</head>\n<body>\n'
            + "\n".join(body)
            + f"\n<footer>Written by <code>conv3t explain</code> in {time.perf_counter() - self._started:.0f} s. "
            "Static page: no scripts, nothing loaded from the network.</footer>\n</body>\n</html>\n"
        )


_CONVENTIONS = (
    "Motion is that of the filter's content from one time slice to the next, which is the motion the channel "
    "prefers in the input: x to the right, y down, in input-image pixels; rotation in degrees, positive = "
    "clockwise on screen; zoom in percent per step, positive = content grows (zooms in). Channels are ranked "
    "by how far their content travels over the kernel's slices. Saliency is the gradient, with respect to the "
    "input pixels, of the channel's positive activation max(A, 0) summed over all positions (brighter = larger), "
    "shown for the clip that excites the channel most; activation maximisation shows an input optimised to "
    "excite the channel."
)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name) or "model"


# ------------------------------------------------------------------------------------------ comparison
def _run_label(exported: ExportedModel) -> tuple[str, str]:
    data = exported.info.data
    dataset = str(data.get("dataset", "")) or "unknown data"
    if dataset == "synthetic" and data.get("task"):
        dataset = f"synthetic {data['task']}"
    return exported.info.model, dataset


def _folder_name(run: str | os.PathLike[str]) -> str:
    path = Path(run).resolve()
    return path.parent.name if path.is_file() else path.name


def build_comparison(
    runs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Several runs side by side: the Fig. 4/5 grid and Table 2/4; returns the path of ``index.html``.

    Args:
        runs: run directories (or their ``model.safetensors`` / ``model.json``), 3T models.
        out_dir: output folder: ``index.html``, ``report.css``, ``statistics.md``, ``statistics.tex``,
            ``statistics.csv`` and ``images/distributions_{human,raw}.png``.
        names: one label per run for the table columns and the grid rows (default: the model name, or the run
            folder's name where two runs share model and dataset). Grid columns are the runs' datasets.
    """
    from conv3t.explain import temporal_parameters
    from conv3t.explain.plots import plot_distribution_grid, save_figure
    from conv3t.explain.stats import format_statistics, statistics_latex, statistics_markdown, summary_statistics

    if not runs:
        raise ValueError("compare needs at least one run directory")
    if names is not None and len(names) != len(runs):
        raise ValueError(f"--names: got {len(names)} names for {len(runs)} runs")
    loaded = [load_exported(r) for r in runs]
    labels = [_run_label(e) for e in loaded]
    if names is None:
        names = [_folder_name(r) if labels.count(lab) > 1 else lab[0] for r, lab in zip(runs, labels)]
    if len(set(zip(names, (lab[1] for lab in labels)))) != len(names):
        raise ValueError(f"two runs have the same name and dataset {list(zip(names, labels))}; pass --names")
    tables, skipped = {}, []
    for run, exp, name in zip(runs, loaded, names):
        table = temporal_parameters(exp.model)
        if len(table):
            tables[name] = table
        else:
            skipped.append(f"{run} ({exp.info.model}: no temporal parameters)")
    if not tables:
        raise ValueError("none of the runs has Conv3T layers with temporal parameters to compare")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    stats = summary_statistics(tables)
    atomic_write(out / "statistics.md", statistics_markdown(stats).encode())
    atomic_write(out / "statistics.tex", statistics_latex(stats).encode())
    atomic_write(out / "statistics.csv", stats.to_csv(index=False).encode())
    dataset_of = dict(zip(names, (lab[1] for lab in labels)))
    panels = {(name, dataset_of[name]): table for name, table in tables.items()}
    figures = []
    for units, caption in (
        ("human", "zoom % per step, rotation ° clockwise per step, content motion in kernel pixels"),
        ("raw", "the paper's axes: s, −r (radians, clockwise positive), t_x, t_y"),
    ):
        path = out / "images" / f"distributions_{units}.png"
        save_figure(plot_distribution_grid(panels, units=units), path, dpi=80)
        figures.append(_img(path.relative_to(out).as_posix(), caption, "plot wide"))
    rows = "".join(
        f"<tr><td>{_e(n)}</td><td>{_e(e.info.model)}</td><td>{_e(lab[1])}</td><td>{_e(r)}</td></tr>"
        for n, e, lab, r in zip(names, loaded, labels, runs)
    )
    note = f'<p class="note">Left out: {_e("; ".join(skipped))}.</p>' if skipped else ""
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>conv3t comparison</title>\n"
        '<link rel="stylesheet" href="report.css">\n</head>\n<body>\n'
        f"<h1>Temporal parameters of {len(tables)} runs</h1>\n"
        '<table class="summary"><tr><th>name</th><th>model</th><th>data</th><th>weights</th></tr>'
        f"{rows}</table>{note}\n"
        "<h2>Statistics (Tables 2 and 4)</h2>\n"
        "<p>Mean μ / standard deviation σ over all Conv3T channels and steps, raw units ×10<sup>−3</sup>.</p>\n"
        + format_statistics(stats).rename_axis(None).to_html(index=True, border=0, classes="table", escape=True)
        + '\n<p class="files">Also as <a href="statistics.md">Markdown</a>, <a href="statistics.tex">LaTeX</a> and '
        '<a href="statistics.csv">CSV</a>.</p>\n'
        "<h2>Distributions (Figs. 4 and 5)</h2>\n<p>Identical axes in every panel, so panels compare directly.</p>\n"
        + "\n".join(figures)
        + "\n<footer>Written by <code>conv3t compare</code>.</footer>\n</body>\n</html>\n"
    )
    shutil.copyfile(resources.files("conv3t.explain").joinpath("report.css"), out / "report.css")
    index = out / "index.html"
    atomic_write(index, page.encode("utf-8"))
    return index
