"""The logits of a video network's output, whatever form the output takes.

A plain classifier returns ``(N, classes)`` logits; a GoogLeNet in training mode returns
:class:`~conv3t.models.googlenet.GoogLeNetOutputs` ``(logits, aux2, aux1)`` (a tuple). Training, evaluation and
every explanation method read the logits through :func:`logits`, so the rule is written once.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["logits"]


def logits(output: object) -> Tensor:
    """The ``(N, classes)`` logits of a model's output: the output itself, or the first item (``.logits``) of a
    tuple or list of tensors (a GoogLeNet with auxiliary heads).

    Raises:
        TypeError: the output holds no tensor to read logits from.
    """
    if isinstance(output, Tensor):
        return output
    if isinstance(output, tuple | list) and output:
        main = getattr(output, "logits", output[0])
        if isinstance(main, Tensor):
            return main
    raise TypeError(f"cannot read logits from a model output of type {type(output).__name__}")
