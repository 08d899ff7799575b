"""What a conversion did: the modules it replaced, the operations it rewrote, the fate of every parameter."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ConversionError", "ConversionReport", "ModuleChange", "OpRewrite", "ParameterFate"]


class ConversionError(ValueError):
    """The model cannot be converted; the message names the operation or module and its module path."""


@dataclass(frozen=True)
class ModuleChange:
    """One replaced module: ``path`` (``layer1.0.conv1``), its 2D type and what it became."""

    path: str
    before: str
    after: str


@dataclass(frozen=True)
class OpRewrite:
    """One rewritten functional operation of the traced forward.

    Attributes:
        mode: ``"train"``, ``"eval"`` or ``"train+eval"`` (the forward is traced in both modes; they may
            differ, e.g. by auxiliary heads; when they do not, each operation is listed once).
        path: the module whose ``forward`` performs it (``""``: the model's own forward).
        op: the 2D operation (``F.max_pool2d``, ``Tensor.mean``, ...).
        into: what it became.
    """

    mode: str
    path: str
    op: str
    into: str


@dataclass(frozen=True)
class ParameterFate:
    """What happened to one 2D parameter or buffer.

    ``how``: ``"copied"`` (same values), ``"inflated"`` (a 2D kernel repeated over ``D`` time steps, divided
    by ``D`` under ``inflate="mean"``), ``"2d filter"`` (the ``K_1`` of a Conv3T, divided by ``D`` under
    ``inflate="mean"``) or ``"unsqueezed"`` (a 1x1 kernel given a unit time axis). ``used`` is False when no
    traced forward (train or eval) reads it, e.g. the auxiliary heads of a model traced without them.
    """

    key: str
    shape_2d: tuple[int, ...]
    shape_video: tuple[int, ...]
    how: str
    used: bool = True


@dataclass
class ConversionReport:
    """The conversion report (``str(report)`` prints it; ``conv3t convert`` and ``conv3t params`` show it).

    Attributes:
        source: the 2D model's class name.
        kind, inflate, time_kernel, temporal_padding: the settings of :func:`~conv3t.models.convert`.
        modules: every replaced module, in order.
        ops: every rewritten functional operation of the traced forwards.
        parameters: the fate of every 2D parameter and buffer (none is dropped: a key that is not transferred
            stops the conversion).
        new_parameters: video-model keys with no 2D counterpart (Conv3T temporal parameters, at identity).
        parameters_2d, parameters_3t, parameters_3d: parameter counts of the 2D model and of its 3T and 3D
            conversions with the same settings.
        verified: the result of the equivalence check (``None``: not run), as a one-line sentence.
    """

    source: str
    kind: str
    inflate: str
    time_kernel: int
    temporal_padding: str
    modules: list[ModuleChange] = field(default_factory=list)
    ops: list[OpRewrite] = field(default_factory=list)
    parameters: list[ParameterFate] = field(default_factory=list)
    new_parameters: list[str] = field(default_factory=list)
    parameters_2d: int = 0
    parameters_3t: int = 0
    parameters_3d: int = 0
    verified: str | None = None

    @property
    def parameters_video(self) -> int:
        """Parameter count of the converted model (3T or 3D, by :attr:`kind`)."""
        return self.parameters_3t if self.kind == "3t" else self.parameters_3d

    def summary(self) -> str:
        """One paragraph: counts of what was replaced, rewritten and transferred."""
        kinds = Counter(f"{m.before} -> {m.after}" for m in self.modules)
        fates = Counter(p.how for p in self.parameters)
        unused = sum(not p.used for p in self.parameters)
        lines = [
            f"{self.source} -> {self.kind.upper()} video model (inflate={self.inflate!r}, time_kernel="
            f"{self.time_kernel}, temporal_padding={self.temporal_padding!r})",
            f"parameters: 2D {self.parameters_2d:,} | 3T {self.parameters_3t:,} | 3D {self.parameters_3d:,}",
            f"modules replaced: {len(self.modules)}",
            *(f"  {n:4d} x {change}" for change, n in sorted(kinds.items())),
            f"functional operations rewritten: {len(self.ops)}",
            *(f"  {n:4d} x {op}" for op, n in sorted(Counter(f"{o.op} -> {o.into}" for o in self.ops).items())),
            f"2D parameters and buffers: {len(self.parameters)}, all transferred ("
            + ", ".join(f"{n} {how}" for how, n in sorted(fates.items()))
            + ")",
        ]
        if unused:
            lines.append(f"  of which {unused} are read by no traced forward (kept, transferred)")
        if self.new_parameters:
            lines.append(f"new parameters (no 2D counterpart, identity): {len(self.new_parameters)}")
        if self.verified is not None:
            lines.append(f"equivalence check: {self.verified}")
        return "\n".join(lines)

    def details(self) -> str:
        """Every module, operation and parameter, one per line."""
        lines = ["modules:"]
        lines += [f"  {m.path}: {m.before} -> {m.after}" for m in self.modules]
        lines.append("functional operations:")
        lines += [f"  [{o.mode}] {o.path or '<model>'}: {o.op} -> {o.into}" for o in self.ops]
        lines.append("parameters and buffers:")
        lines += [
            f"  {p.key}: {p.how} {p.shape_2d} -> {p.shape_video}" + ("" if p.used else " (unused by forward)")
            for p in self.parameters
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
