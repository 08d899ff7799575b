"""``ConvertedModel``: the video network :func:`~conv3t.models.convert` returns."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, fx, nn

from conv3t.models.conversion.report import ConversionReport

__all__ = ["ConvertedModel"]


class ConvertedModel(nn.Module):
    """A video network converted from a 2D one: ``(N, C, T, H, W) -> (N, K)`` (or what the 2D model returns in
    training mode, e.g. GoogLeNet's auxiliary logits).

    Its submodules, parameters and buffers carry the 2D model's names (``layer1.0.conv1.weight``), so a 2D
    state dict maps key by key and readouts find the layers where the 2D model had them. ``forward`` runs the
    rewritten torch.fx graph of the current mode: the 2D forward was traced twice, in train and in eval mode,
    because models branch on ``self.training`` (auxiliary heads, functional dropout, stochastic depth).

    Attributes:
        conversion_report: the :class:`~conv3t.models.conversion.report.ConversionReport`.
        source: the 2D model's class name.
        code: the generated Python of each mode's forward (``{"train": ..., "eval": ...}``), for reading.

    Save it with ``state_dict()`` and rebuild it with :func:`~conv3t.models.convert` (the registry names do
    this); the generated forward functions are not picklable.
    """

    def __init__(self, root: nn.Module, graphs: dict[str, fx.Graph], report: ConversionReport) -> None:
        super().__init__()
        for name, child in root.named_children():
            self.add_module(name, child)
        for name, param in root.named_parameters(recurse=False):
            self.register_parameter(name, param)
        hidden = getattr(root, "_non_persistent_buffers_set", set())
        for name, buffer in root.named_buffers(recurse=False):
            self.register_buffer(name, buffer, persistent=name not in hidden)
        for graph in graphs.values():
            for node in graph.nodes:
                first = str(node.target).split(".")[0]
                if node.op == "get_attr" and not hasattr(self, first):
                    setattr(self, first, getattr(root, first))  # a plain tensor attribute the forward reads
        self.conversion_report = report
        self.source = type(root).__name__
        self.code: dict[str, str] = {}
        self._forwards: dict[bool, Callable[..., object]] = {}
        for mode, graph in graphs.items():
            compiled = fx.GraphModule(self, graph, class_name=f"{self.source}Video{mode.title()}")
            self._forwards[mode == "train"] = type(compiled).forward
            self.code[mode] = compiled.code
        self.train(root.training)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, T, H, W)`` clips -> the 2D model's outputs (``(N, K)`` logits in eval mode)."""
        if x.dim() != 5:
            raise ValueError(f"{self.source} (converted) expects clips (N, C, T, H, W), got shape {tuple(x.shape)}")
        return self._forwards[self.training](self, x)  # type: ignore[return-value]

    def extra_repr(self) -> str:
        report = self.conversion_report
        return (
            f"converted from {self.source}: kind={report.kind!r}, inflate={report.inflate!r}, "
            f"time_kernel={report.time_kernel}, temporal_padding={report.temporal_padding!r}"
        )
