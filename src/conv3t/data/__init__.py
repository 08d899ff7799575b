"""Video data: Jester, UCF101 and synthetic motion clips; sampling, transforms, a data module.

Every dataset yields ``(clip, label)`` with ``clip`` a float32 tensor ``(3, T, H, W)``
(``(V, 3, T, H, W)`` for multi-view test items), normalised with :data:`IMAGENET_MEAN` /
:data:`IMAGENET_STD`, and ``label`` a 0-based int (-1 = unlabeled).
"""

from conv3t.data.check import CheckReport, check_jester, check_ucf101
from conv3t.data.datamodule import DATA_CONFIG_KEYS, SkippedSamplesReport, VideoDataModule, build_datamodule
from conv3t.data.errors import DataError, Problem, SkipCounter, VideoReadError
from conv3t.data.jester import JESTER_FLIP_LABEL_MAP, JesterDataset, jester_flip_label_map
from conv3t.data.sampling import center_indices, multiview_indices, sample_indices, train_indices
from conv3t.data.synthetic import (
    APPEARANCE_CLASSES,
    MOTION_CLASSES,
    SYNTHETIC_FLIP_LABEL_MAP,
    MotionGroundTruth,
    SyntheticMotionDataset,
)
from conv3t.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    JESTER_SIZE,
    UCF101_SIZE,
    HorizontalFlip,
    VideoTransform,
    denormalize,
    normalize,
)
from conv3t.data.ucf101 import UCF101Dataset

__all__ = [
    "APPEARANCE_CLASSES",
    "DATA_CONFIG_KEYS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "JESTER_FLIP_LABEL_MAP",
    "JESTER_SIZE",
    "MOTION_CLASSES",
    "SYNTHETIC_FLIP_LABEL_MAP",
    "UCF101_SIZE",
    "CheckReport",
    "DataError",
    "HorizontalFlip",
    "JesterDataset",
    "MotionGroundTruth",
    "Problem",
    "SkipCounter",
    "SkippedSamplesReport",
    "SyntheticMotionDataset",
    "UCF101Dataset",
    "VideoDataModule",
    "VideoReadError",
    "VideoTransform",
    "build_datamodule",
    "center_indices",
    "check_jester",
    "check_ucf101",
    "denormalize",
    "jester_flip_label_map",
    "multiview_indices",
    "normalize",
    "sample_indices",
    "train_indices",
]
