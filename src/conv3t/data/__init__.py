"""Video data: a registry of dataset kinds (Jester, UCF101, synthetic motion clips, your own videos
as ``video_list`` / ``frame_list`` / ``video_folder``); sampling, transforms, a data module, a checker.

Every dataset yields ``(clip, label)`` with ``clip`` a float32 tensor ``(3, T, H, W)``
(``(V, 3, T, H, W)`` for multi-view test items), normalised with :data:`IMAGENET_MEAN` /
:data:`IMAGENET_STD`, and ``label`` a 0-based int (-1 = unlabeled).
"""

# Importing a dataset module registers its kind; a new dataset is one module plus one line here.
from conv3t.data.base import ClipOptions, ClipSource
from conv3t.data.check import CheckReport, check_data_config, check_jester, check_ucf101
from conv3t.data.errors import DataError, Problem, SkipCounter, VideoReadError
from conv3t.data.frame_list import FrameListDataset, FrameListSource
from conv3t.data.jester import JESTER_FLIP_LABEL_MAP, JesterDataset, JesterSource, jester_flip_label_map
from conv3t.data.registry import (
    LOADER_OPTIONS,
    DatasetSource,
    create_source,
    data_config_keys,
    dataset_names,
    dataset_options,
    describe_data,
    get_dataset,
    register_dataset,
)
from conv3t.data.sampling import center_indices, multiview_indices, sample_indices, train_indices
from conv3t.data.synthetic import (
    APPEARANCE_CLASSES,
    MOTION_CLASSES,
    SYNTHETIC_FLIP_LABEL_MAP,
    MotionGroundTruth,
    SyntheticMotionDataset,
    SyntheticSource,
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
from conv3t.data.ucf101 import UCF101Dataset, UCF101Source
from conv3t.data.video_folder import VideoFolderSource
from conv3t.data.video_list import VideoFileDataset, VideoListSource
from conv3t.lazy import lazy_exports

__all__ = [
    "APPEARANCE_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "JESTER_FLIP_LABEL_MAP",
    "JESTER_SIZE",
    "LOADER_OPTIONS",
    "MOTION_CLASSES",
    "SYNTHETIC_FLIP_LABEL_MAP",
    "UCF101_SIZE",
    "CheckReport",
    "ClipOptions",
    "ClipSource",
    "DataError",
    "DatasetSource",
    "FrameListDataset",
    "FrameListSource",
    "HorizontalFlip",
    "JesterDataset",
    "JesterSource",
    "MotionGroundTruth",
    "Problem",
    "SkipCounter",
    "SkippedSamplesReport",
    "SyntheticMotionDataset",
    "SyntheticSource",
    "UCF101Dataset",
    "UCF101Source",
    "VideoDataModule",
    "VideoFileDataset",
    "VideoFolderSource",
    "VideoListSource",
    "VideoReadError",
    "VideoTransform",
    "build_datamodule",
    "center_indices",
    "check_data_config",
    "check_jester",
    "check_ucf101",
    "create_source",
    "data_config_keys",
    "dataset_names",
    "dataset_options",
    "denormalize",
    "describe_data",
    "get_dataset",
    "jester_flip_label_map",
    "multiview_indices",
    "normalize",
    "register_dataset",
    "sample_indices",
    "train_indices",
]


#: Names of the Lightning data module, imported on first use: ``conv3t.exported`` and ``conv3t.verify`` import
#: this package for its preprocessing, and importing Lightning would cost them seconds they do not need.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    dict.fromkeys(("SkippedSamplesReport", "VideoDataModule", "build_datamodule"), "conv3t.data.datamodule"),
)
