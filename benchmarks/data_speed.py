"""Clips per second per CPU core for decode + transforms (Jester-, UCF101-format and synthetic data).

Writes realistic files first (Jester: 176×100 JPEG frames; UCF101: 320×240 mpeg4 AVI at 25 fps)
into a temporary folder, then times the datasets of :mod:`conv3t.data` in one process with one
torch thread, i.e. what one DataLoader worker does. Rates are given per second of this process's
CPU time (robust when other processes share the machine) and per wall second. Also times each
stage alone (decode, resize, normalise, seek) to show what bounds the speed.

    .venv/bin/python benchmarks/data_speed.py            # ~1 minute
    .venv/bin/python benchmarks/data_speed.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from conv3t.data import JesterDataset, SyntheticMotionDataset, UCF101Dataset
from conv3t.data.decode import VideoFile, read_jpeg_frames
from conv3t.data.transforms import center_box, normalize, resized_crop

warnings.filterwarnings("ignore", category=DeprecationWarning)

JESTER_CLASSES = [f"Class {i}" for i in range(27)]


def natural_frames(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """``(n, h, w, 3)`` uint8: smooth structure plus fine texture, panning slowly (compresses like video)."""
    rng = np.random.default_rng(seed)
    big_h, big_w = h + 2 * n, w + 3 * n
    coarse = rng.random((big_h // 16 + 2, big_w // 16 + 2, 3)).astype(np.float32)
    smooth = np.asarray(
        Image.fromarray((coarse * 255).astype(np.uint8)).resize((big_w, big_h), Image.BICUBIC), dtype=np.float32
    )
    fine = rng.normal(0, 12, (big_h, big_w, 1)).astype(np.float32)
    canvas = np.clip(smooth * 0.8 + fine + 20, 0, 255).astype(np.uint8)
    return np.stack([canvas[2 * i : 2 * i + h, 3 * i : 3 * i + w] for i in range(n)])


def make_jester(root: Path, videos: int, frames: int) -> None:
    root.mkdir(parents=True)
    (root / "jester-v1-labels.csv").write_text("\n".join(JESTER_CLASSES) + "\n")
    lines = []
    for v in range(videos):
        folder = root / "20bn-jester-v1" / str(v)
        folder.mkdir(parents=True)
        for i, img in enumerate(natural_frames(frames, 100, 176, v)):
            Image.fromarray(img).save(folder / f"{i + 1:05d}.jpg", quality=85)
        lines.append(f"{v};Class {v % 27}")
    for split in ("train", "validation"):
        (root / f"jester-v1-{split}.csv").write_text("\n".join(lines) + "\n")


def make_ucf(base: Path, videos: int, frames: int, gop: int) -> tuple[Path, Path]:
    import av

    root, ann = base / "UCF-101", base / "lists"
    ann.mkdir(parents=True)
    (ann / "classInd.txt").write_text("1 Walk\n")
    lines = []
    for v in range(videos):
        rel = f"Walk/v_Walk_g{v + 1:02d}_c01.avi"
        (root / "Walk").mkdir(parents=True, exist_ok=True)
        with av.open(str(root / rel), "w", format="avi") as out:
            s = out.add_stream("mpeg4", rate=25)
            s.width, s.height, s.pix_fmt, s.gop_size = 320, 240, "yuv420p", gop
            s.bit_rate = 1_000_000
            for img in natural_frames(frames, 240, 320, 100 + v):
                for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(p)
            for p in s.encode():
                out.mux(p)
        lines.append(f"{rel} 1")
    (ann / "trainlist01.txt").write_text("\n".join(lines) + "\n")
    (ann / "testlist01.txt").write_text("\n".join(line.split()[0] for line in lines) + "\n")
    return root, ann


def timed(fn, reps: int) -> tuple[float, float]:
    """(per-call CPU seconds of this process, per-call wall seconds), after one warm-up call."""
    fn()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.process_time() - c0) / reps, (time.perf_counter() - w0) / reps


def row(name: str, cpu: float, wall: float) -> str:
    return f"| {name} | {1 / cpu:7.1f} | {1 / wall:7.1f} | {cpu * 1000:7.1f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 10 if args.quick else 40
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_jester(tmp / "jester", videos=6, frames=36)
        jpeg_kb = np.mean([p.stat().st_size for p in (tmp / "jester").rglob("*.jpg")]) / 1024
        train = JesterDataset(tmp / "jester", "train")
        val = JesterDataset(tmp / "jester", "validation")
        k = iter(range(10**9))
        rows.append(
            row(
                "Jester train clip (random window, jitter crop, 150×224, normalise)",
                *timed(lambda: train[next(k) % 6], reps),
            )
        )
        rows.append(row("Jester eval clip (centre window + crop, 150×224)", *timed(lambda: val[next(k) % 6], reps)))
        files = sorted((tmp / "jester" / "20bn-jester-v1" / "0").glob("*.jpg"))[:30]
        rows.append(
            row("  stage: decode 30 JPEGs (Pillow, as conv3t does)", *timed(lambda: read_jpeg_frames("0", files), reps))
        )

        def tv_decode():
            from torchvision.io import decode_jpeg, read_file

            return torch.stack(decode_jpeg([read_file(str(f)) for f in files]))

        rows.append(
            row("  stage: decode 30 JPEGs (torchvision decode_jpeg, deprecated; comparison)", *timed(tv_decode, reps))
        )
        tv_frames = tv_decode()
        frames = read_jpeg_frames("0", files)
        box = center_box(100, 176, (150, 224))
        rows.append(
            row(
                "  stage: resize 30 frames 100×149 -> 150×224 (uint8, antialias)",
                *timed(lambda: resized_crop(frames, box, (150, 224)), reps),
            )
        )
        rows.append(
            row(
                "  stage: same resize from torchvision's channels-first frames",
                *timed(lambda: resized_crop(tv_frames, box, (150, 224)), reps),
            )
        )
        small = resized_crop(frames, box, (150, 224))
        rows.append(row("  stage: normalise 30×150×224 to float", *timed(lambda: normalize(small), reps)))

        for gop in (12, 250):
            root, ann = make_ucf(tmp / f"ucf{gop}", videos=4, frames=175, gop=gop)
            ucf = UCF101Dataset(root, ann, train=True)
            ucf_val = UCF101Dataset(root, ann, train=False)
            rows.append(
                row(
                    f"UCF101 train clip (GOP {gop}: seek, decode, jitter crop, 168×224)",
                    *timed(lambda ds=ucf: ds[next(k) % 4], reps),
                )
            )
            rows.append(
                row(
                    f"UCF101 eval clip (GOP {gop}: centre window, 168×224)",
                    *timed(lambda ds=ucf_val: ds[next(k) % 4], reps),
                )
            )
            path = root / ucf.videos[0]

            def seek_decode(path=path):
                with VideoFile("v", path) as v:
                    return v.read(np.arange(72, 102))

            rows.append(row(f"  stage: open + seek + decode 30 frames (GOP {gop})", *timed(seek_decode, reps)))
        ucf_frames = seek_decode()
        box = center_box(240, 320, (168, 224))
        rows.append(
            row(
                "  stage: resize 30 frames 240×320 -> 168×224",
                *timed(lambda: resized_crop(ucf_frames, box, (168, 224)), reps),
            )
        )
    for t, size in ((16, 64), (16, 112), (30, 112)):
        syn = SyntheticMotionDataset(1000, t, size)
        rows.append(
            row(
                f"synthetic motion clip {t}×{size}×{size} (render + normalise)",
                *timed(lambda ds=syn: ds[next(k) % 1000], reps * 5),
            )
        )
    print(f"Jester JPEG frames: 176×100, mean {jpeg_kb:.1f} KiB; UCF101: 320×240 mpeg4 AVI, 175 frames, 1 Mbit/s")
    print("| measurement | clips/s per CPU-second | clips/s wall | ms CPU per clip |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
