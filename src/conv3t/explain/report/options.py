"""The report's options, once: :class:`ReportOptions` holds every knob of ``conv3t explain`` with its default,
its check and its command-line flag (``conv3t explain``'s parser is generated from these fields).

A bad value raises :class:`OptionError`, which names the field; the command line shows the field's flag instead
(``num_channels must be >= 1`` reads ``--top must be >= 1``), from the field's metadata, not from the text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ANALYSED", "MissingInput", "OptionError", "ReportOptions", "flag_of"]


class OptionError(ValueError):
    """A bad report option: ``option`` is the :class:`ReportOptions` field, ``detail`` the rest of the message
    (``str(err)`` is ``option + detail``, e.g. ``"layers foo: not a convolution ..."``)."""

    def __init__(self, option: str, detail: str) -> None:
        super().__init__(option + detail)
        self.option = option
        self.detail = detail


class MissingInput(FileNotFoundError):
    """An input named by a report option does not exist (``videos[2] clip.avi: no such file or folder``);
    ``option`` and ``detail`` as :class:`OptionError`."""

    def __init__(self, option: str, detail: str) -> None:
        super().__init__(option + detail)
        self.option = option
        self.detail = detail


def _flag(flag: str, help: str, **argparse: Any) -> dict[str, Any]:
    """A field's command-line form: the flag, its help text and further :mod:`argparse` keywords."""
    return {"flag": flag, "help": help, **argparse}


@dataclass(frozen=True)
class ReportOptions:
    """Every knob of :func:`~conv3t.explain.report.build_report` (and the flags of ``conv3t explain``).

    ``videos``: video files or frame folders to explain (default: ``num_clips`` clips of the run's own
    validation data); ``layers``: qualified layer names (default: the first, middle and last temporal layer);
    ``channels``: channel indices shown for every chosen layer (default: the ``num_channels`` most transformed).
    ``actmax_frames`` / ``actmax_size`` cap the clip length (frames) and side (pixels) of activation
    maximisation; ``seed`` seeds it; ``verify`` asks for the verification section (3T models only), measured
    with ``verify_textures`` texture views per stimulus. ``device``: where every computation runs (``auto``,
    ``cpu``, ``cuda``, ``cuda:N``); ``max_memory``: the memory budget of the streamed stages (``"4GB"``; default
    a fraction of the device's free memory, :func:`conv3t.verify.budget.memory_budget`). ``faithfulness``: check
    every prediction explanation; ``faithfulness_draws``: their most random draws (p >= 1 / (B + 1)).
    """

    num_clips: int = field(default=3, metadata=_flag("--clips", "clips taken from the run's data (3)", metavar="K"))
    num_channels: int = field(default=3, metadata=_flag("--top", "channels per layer by default (3)", metavar="K"))
    actmax_steps: int = field(
        default=64, metadata=_flag("--actmax-steps", "activation maximisation steps per layer (64)", metavar="S")
    )
    actmax_frames: int = field(default=8, metadata={})  # library only: caps of activation maximisation
    actmax_size: int = field(default=64, metadata={})
    seed: int = field(default=0, metadata=_flag("--seed", "seed of activation maximisation (0)"))
    verify: bool = field(
        default=True,
        metadata=_flag(
            "--no-verify",
            "leave out the section that checks channels against stimuli of known motion (3T models)",
        ),
    )
    verify_textures: int = field(
        default=24,
        metadata=_flag(
            "--verify-textures",
            "texture views per verification stimulus (24); e.g. 8 is 3x faster, each count then comes with a "
            "wider confidence interval (printed beside it)",
            metavar="N",
        ),
    )
    device: str = field(
        default="auto",
        metadata=_flag(
            "--device", "where the report is computed: auto (CUDA when available, else cpu), cpu, cuda or cuda:N"
        ),
    )
    max_memory: str | None = field(
        default=None,
        metadata=_flag(
            "--max-memory",
            "memory budget of the verification's batches, e.g. 4GB (default: 25%% of the available memory, "
            "at most 2GB, on a CPU; 80%% of the free memory on a GPU)",
            metavar="SIZE",
        ),
    )
    faithfulness: bool = field(
        default=True,
        metadata=_flag(
            "--no-faithfulness",
            "leave out the faithfulness checks of the prediction explanations (channel ablation, frame "
            "deletion and insertion, Grad-CAM pixel deletion, weight randomisation)",
        ),
    )
    faithfulness_draws: int = field(
        default=19,
        metadata=_flag(
            "--faithfulness-draws",
            "the most random channel sets, frame orders and maps a Monte-Carlo faithfulness check draws (19: the "
            "fewest with which p = 1/(N+1) reaches alpha 0.05; frame checks of clips up to 10 frames are exact)",
            metavar="N",
        ),
    )
    videos: tuple[str, ...] | None = field(
        default=None,
        metadata=_flag(
            "--video",
            "video files (any format PyAV reads) or folders of frame images to explain; default: a few clips "
            "of the run's own validation data",
            metavar="FILE",
        ),
    )
    layers: tuple[str, ...] | None = field(
        default=None,
        metadata=_flag(
            "--layers",
            "layer names (e.g. conv1 layer2.0.conv1); default: first, middle and last temporal layer",
            metavar="NAME",
        ),
    )
    channels: tuple[int, ...] | None = field(
        default=None,
        metadata=_flag("--channels", "channels to show in every layer; default: the most transformed", metavar="N"),
    )

    def __post_init__(self) -> None:
        for name, least in (("num_clips", 1), ("num_channels", 1), ("actmax_steps", 0), ("verify_textures", 1)):
            if getattr(self, name) < least:
                raise OptionError(name, f" must be >= {least}, got {getattr(self, name)}")
        for name in ("actmax_frames", "actmax_size"):
            if getattr(self, name) < 1:
                raise OptionError(name, f" must be >= 1, got {getattr(self, name)}")
        if self.faithfulness_draws < 2:
            raise OptionError("faithfulness_draws", f" must be >= 2, got {self.faithfulness_draws}")
        if self.max_memory is not None:
            from conv3t.runtime import parse_memory  # torch: not at the command line's start

            try:
                parse_memory(self.max_memory)  # a bad size fails now, not after minutes of work
            except ValueError as err:  # "max_memory: expected a size ..."
                raise OptionError("max_memory", str(err).removeprefix("max_memory")) from None
        # sequences are kept as tuples (hashable, frozen); a bad channel fails before any work
        for name in ("videos", "layers"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(os.fspath(v) for v in value) or None)
        if self.channels is not None:
            object.__setattr__(self, "channels", _channel_numbers(self.channels))

    def replace(self, **changes: Any) -> ReportOptions:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return ReportOptions(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


def _channel_numbers(values: Sequence[Any]) -> tuple[int, ...] | None:
    try:
        numbers = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise OptionError("channels", f" takes channel numbers, got {' '.join(map(str, values))}") from None
    return numbers or None


#: The options that change what the analysis holds, in the order ``analysis.json`` records them (``device`` and
#: ``max_memory`` only decide where and in how many pieces; the clips, layers and channels are keyed as such).
ANALYSED = (
    "num_clips",
    "num_channels",
    "actmax_steps",
    "actmax_frames",
    "actmax_size",
    "seed",
    "verify",
    "verify_textures",
    "faithfulness",
    "faithfulness_draws",
)


def flag_of(option: str) -> str:
    """The command-line flag of a :class:`ReportOptions` field (the field's own name when it has none)."""
    for f in fields(ReportOptions):
        if f.name == option:
            return str(f.metadata.get("flag", option))
    return option
