"""Real-format test data: Jester JPEG folders (Pillow) and UCF101 AVI files (PyAV, mpeg4).

Frame ``i`` (0-based) of every generated video spells ``i`` in bright/dark bars (:func:`grey_frame`),
so a test can tell from pixel values which frames a loader returned (:func:`frame_index`).
Kept out of conftest.py so test modules import it by a name no other test folder uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

JESTER_CLASSES = [
    "Swiping Left",
    "Swiping Right",
    "Swiping Down",
    "Swiping Up",
    "Pushing Hand Away",
    "Pulling Hand In",
    "Sliding Two Fingers Left",
    "Sliding Two Fingers Right",
    "Sliding Two Fingers Down",
    "Sliding Two Fingers Up",
    "Pushing Two Fingers Away",
    "Pulling Two Fingers In",
    "Rolling Hand Forward",
    "Rolling Hand Backward",
    "Turning Hand Clockwise",
    "Turning Hand Counterclockwise",
    "Zooming In With Full Hand",
    "Zooming Out With Full Hand",
    "Zooming In With Two Fingers",
    "Zooming Out With Two Fingers",
    "Thumb Up",
    "Thumb Down",
    "Shaking Hand",
    "Stop Sign",
    "Drumming Fingers",
    "No gesture",
    "Doing other things",
]
UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]
BITS = 7  # frame numbers up to 127


def grey_frame(i: int, h: int, w: int) -> np.ndarray:
    """Frame ``i``: ``BITS`` vertical bars, dark (0) or bright (1), spelling ``i`` in binary (MSB left)."""
    img = np.full((h, w, 3), 128, dtype=np.uint8)
    for k in range(BITS):
        bit = (i >> (BITS - 1 - k)) & 1
        img[:, k * w // BITS : (k + 1) * w // BITS] = 225 if bit else 30
    return img


def frame_index(frame) -> int:
    """Read back the number of a frame ``(3, h, w)`` or ``(h, w, 3)`` (tensor or array) made by :func:`grey_frame`."""
    a = np.asarray(frame, dtype=np.float32)
    if a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    h, w = a.shape[:2]
    out = 0
    for k in range(BITS):
        x = (2 * k + 1) * w // (2 * BITS)
        out = (out << 1) | int(a[h // 4 : 3 * h // 4, x].mean() > 128)
    return out


def write_jester_video(frames_dir: Path, vid: str, n: int, width: int = 176, numbers: Iterable[int] | None = None):
    folder = frames_dir / vid
    folder.mkdir(parents=True, exist_ok=True)
    for k in numbers if numbers is not None else range(1, n + 1):
        Image.fromarray(grey_frame(k - 1, 100, width)).save(folder / f"{k:05d}.jpg", quality=95)
    return folder


def make_jester(root: Path, lengths: dict[str, int], splits: dict[str, list[tuple[str, str | None]]]) -> Path:
    """A Jester root: ``lengths`` = frames per video id; ``splits`` = split -> [(id, class or None)]."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "jester-v1-labels.csv").write_text("\n".join(JESTER_CLASSES) + "\n")
    for split, rows in splits.items():
        lines = [vid if cls is None else f"{vid};{cls}" for vid, cls in rows]
        (root / f"jester-v1-{split}.csv").write_text("\n".join(lines) + "\n")
    for vid, n in lengths.items():
        write_jester_video(root / "20bn-jester-v1", vid, n)
    return root


def write_avi(path: Path, n: int, size: tuple[int, int] = (320, 240), fps: int = 25, gop: int = 8) -> Path:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.gop_size = gop
        stream.options = {"qscale": "2"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(grey_frame(i, h, w), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_ucf101(base: Path, lengths: dict[str, int]) -> tuple[Path, Path]:
    """UCF101 ``(root, annotation_path)``; ``lengths`` = relative avi path -> frames.

    Fold 1: per class, the first video is a test video, the others train videos.
    """
    root, ann = base / "UCF-101", base / "ucfTrainTestlist"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "classInd.txt").write_text("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(UCF_CLASSES)))
    train, test = [], []
    for rel, n in lengths.items():
        write_avi(root / rel, n)
        cls = rel.split("/")[0]
        if rel.endswith("_g01_c01.avi"):
            test.append(rel)
        else:
            train.append(f"{rel} {UCF_CLASSES.index(cls) + 1}")
    (ann / "trainlist01.txt").write_text("".join(f"{line}\r\n" for line in train))
    (ann / "testlist01.txt").write_text("".join(f"{line}\r\n" for line in test))
    return root, ann


JESTER_LENGTHS = {"101": 40, "102": 36, "103": 12, "104": 50, "105": 31, "201": 37, "202": 20, "301": 33}
JESTER_SPLITS = {
    "train": [
        ("101", "Swiping Left"),
        ("102", "Swiping Right"),
        ("103", "Turning Hand Clockwise"),
        ("104", "Thumb Up"),
        ("105", "Sliding Two Fingers Left"),
    ],
    "validation": [("201", "Swiping Left"), ("202", "Stop Sign")],
    "test": [("301", None)],
}

UCF_LENGTHS = {
    f"{c}/v_{c}_g{g:02d}_c01.avi": n for c, n0 in zip(UCF_CLASSES, (45, 60, 24)) for g, n in ((1, n0), (2, n0 + 7))
}


BROKEN_JESTER_TRAIN = [
    "ok1;Swiping Left",  # 1
    "missing;Swiping Right",  # 2: no frame folder
    "empty;Thumb Up",  # 3: empty folder
    "trunc;Thumb Down",  # 4: 00005.jpg truncated
    "garbage;Stop Sign",  # 5: 00003.jpg is not a JPEG
    "gap;Shaking Hand",  # 6: 00006.jpg missing
    "badline",  # 7: no label
    "unk;Jumping Jacks",  # 8: label not in the labels file
]


BROKEN_UCF_TRAIN = [
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 1",  # 1 ok
    "YoYo/v_YoYo_g02_c01.avi 2",  # 2 label disagrees with folder
    "Basketball/v_Basketball_g09_c01.avi 2",  # 3 missing file
    "Basketball/v_Basketball_g02_c01.avi 2",  # 4 truncated
    "Basketball/v_Basketball_g03_c01.avi 2",  # 5 not a video
    "Nope/v_Nope_g01_c01.avi 4",  # 6 class folder not in classInd
    "this line has too many parts",  # 7 does not parse
    "YoYo/v_YoYo_g03_c01.avi 3",  # 8 ok
    "YoYo/v_YoYo_g04_c01.avi 7",  # 9 label not in classInd
]


#: Container -> (PyAV format, codec) for :func:`write_video`.
CONTAINERS = {
    ".mp4": ("mp4", "libx264"),
    ".avi": ("avi", "mpeg4"),
    ".webm": ("webm", "libvpx"),
    ".mkv": ("matroska", "mpeg4"),
    ".mov": ("mov", "mpeg4"),
}


def write_video(path: Path, n: int, size: tuple[int, int] = (64, 48), fps: int = 25) -> Path:
    """A video of ``n`` :func:`grey_frame` frames in the container its suffix names (:data:`CONTAINERS`)."""
    import av

    fmt, codec = CONTAINERS[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.gop_size = 8
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "10"}
        elif codec == "libvpx":
            stream.options = {"crf": "4", "b": "2M", "deadline": "realtime", "cpu-used": "8"}
        else:
            stream.options = {"qscale": "2"}
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(grey_frame(i, h, w), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_frames(folder: Path, n: int, template: str = "img_{:05d}.jpg", size: tuple[int, int] = (64, 48)) -> Path:
    """``n`` :func:`grey_frame` JPEG frames named ``template.format(1) ...``."""
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    for k in range(1, n + 1):
        Image.fromarray(grey_frame(k - 1, h, w)).save(folder / template.format(k), quality=95)
    return folder
