"""What the ``trainer:`` section may hold, read from Lightning itself: the ``lightning.Trainer`` arguments, the
registered strategies and their arguments, and the strategy object a ``strategy`` mapping describes.

Lightning is imported only when these are asked for, so reading a config stays cheap for commands that never
train.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["TRAINER_RESERVED", "build_strategy", "strategy_keys", "strategy_names", "trainer_arguments"]

#: ``lightning.Trainer`` arguments that conv3t sets itself, and what to use instead.
TRAINER_RESERVED: dict[str, str] = {
    "logger": "logging.csv / logging.tensorboard",
    "callbacks": "the checkpoint: and logging: sections",
    "default_root_dir": "conv3t train --out",
    "enable_checkpointing": "the checkpoint: section",
    "enable_progress_bar": "logging.progress_bar",
}


@functools.cache
def trainer_arguments() -> frozenset[str]:
    """Names of ``lightning.Trainer``'s arguments, minus :data:`TRAINER_RESERVED`."""
    import lightning

    return frozenset(inspect.signature(lightning.Trainer).parameters) - set(TRAINER_RESERVED)


def strategy_names() -> list[str]:
    """Lightning's registered strategy names (``ddp``, ``ddp_spawn``, ``fsdp``, ``deepspeed``, ...)."""
    from lightning.pytorch.strategies import StrategyRegistry

    return list(StrategyRegistry)


def strategy_keys(name: str) -> list[str] | None:
    """The keyword arguments of the strategy registered as ``name``; None when they cannot be listed.

    A DDP strategy passes unknown keywords on to ``torch.nn.parallel.DistributedDataParallel``
    (``find_unused_parameters``, ``static_graph``, ...), so those count too.
    """
    from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

    cls = StrategyRegistry[name]["strategy"]
    params = inspect.signature(cls).parameters
    keys = [p for p, v in params.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
    if any(v.kind == v.VAR_KEYWORD for v in params.values()):
        if not issubclass(cls, DDPStrategy):
            return None  # passed on to something we cannot see: Lightning checks them
        from torch.nn.parallel import DistributedDataParallel

        ddp = inspect.signature(DistributedDataParallel.__init__).parameters
        keys += [p for p in ddp if p not in ("self", "module")]
    return keys


def build_strategy(spec: str | Mapping[str, Any]) -> Any:
    """``trainer.strategy`` as Lightning takes it: a name stays a name; a (validated) mapping
    ``{name: ddp, **kwargs}`` becomes that registered strategy, built with the registry's arguments updated by
    ``kwargs``."""
    if isinstance(spec, str):
        return spec
    from lightning.pytorch.strategies import StrategyRegistry

    entry = StrategyRegistry[spec["name"]]
    kwargs = {**entry["init_params"], **{k: v for k, v in spec.items() if k != "name"}}
    return entry["strategy"](**kwargs)
