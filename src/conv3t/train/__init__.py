"""Training and evaluation: the LightningModule, optimiser/schedule, checkpoints, configs, the run driver.

Entry points: :func:`conv3t.train.config.load_config`, :func:`conv3t.train.run.train` and
:func:`conv3t.train.evaluate.evaluate_model`; the ``conv3t train``, ``conv3t eval`` and ``conv3t demo`` commands
wrap them.
"""

from conv3t.train.checkpoint import AtomicCheckpointIO, CheckpointError, RNGStateCallback, load_checkpoint_file
from conv3t.train.config import ConfigError, load_config, parse_override_args, validate_config
from conv3t.train.module import VideoClassifier, mean_class_accuracy, split_outputs
from conv3t.train.optim import build_optimizer, build_scheduler, parameter_groups
from conv3t.train.schema import ExperimentConfig

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointError",
    "ConfigError",
    "ExperimentConfig",
    "RNGStateCallback",
    "VideoClassifier",
    "build_optimizer",
    "build_scheduler",
    "load_checkpoint_file",
    "load_config",
    "mean_class_accuracy",
    "parameter_groups",
    "parse_override_args",
    "split_outputs",
    "validate_config",
]
