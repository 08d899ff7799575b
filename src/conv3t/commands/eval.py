"""``conv3t eval RUN_DIR|WEIGHTS [--data CONFIG.yaml] [--data.key VALUE ...] [--multiview] [--protocol paper]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
The data come from the run's own data config (recorded in model.json) unless --data gives a YAML file
(a full experiment config or a bare data section); single keys can be changed with --data.KEY VALUE, e.g.
  conv3t eval runs/resnet18_3t_jester_imagenet --data.root /data/jester --multiview --views 5 --crops 3
Single view = centre clip and centre crop of every validation video; multi-view = VIEWS temporal clips x
CROPS spatial crops per video, softmax probabilities averaged. --protocol paper adds the authors' number:
every non-overlapping window of num_frames frames of each validation video is a clip (videos shorter than
one window skipped), per-clip top-1 beside per-video top-1 (windows averaged), with the counts.
Clips go through the network in chunks sized from --max-memory (default: 25% of the available memory, at
most 2 GB, on a CPU): the loader's batch (on a CPU) and the activations of one chunk stay within it.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="top-1 / top-5 / mean-class accuracy of a trained model, single- and multi-view",
        description="Evaluate exported weights (a run directory or model.safetensors) on a dataset.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("weights", type=Path, help="run directory, model.safetensors or model.json")
    p.add_argument("--data", dest="data_file", type=Path, default=None, help="YAML with the data config to use")
    p.add_argument("--multiview", action="store_true", help="also run the multi-view protocol")
    p.add_argument(
        "--protocol",
        choices=("centre", "paper"),
        default="centre",
        help="centre: one centre clip per video (default); paper: also every non-overlapping window per video",
    )
    p.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="memory budget of a batch plus one forward's chunk of clips, e.g. 2GB",
    )
    p.add_argument("--views", type=int, default=None, help="temporal clips per video for --multiview")
    p.add_argument("--crops", type=int, choices=(1, 3), default=None, help="spatial crops per clip for --multiview")
    p.add_argument("--batch-size", type=int, default=None, help="clips per batch (default: the data config's)")
    p.add_argument("--num-workers", type=int, default=None, help="data loader worker processes")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--limit-batches", type=int, default=None, help="evaluate only this many batches (quick look)")
    p.add_argument("--json", type=Path, default=None, help="write the results here (default: RUN_DIR/eval.json)")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="data overrides: --data.KEY VALUE ...")
    p.set_defaults(func=run)


def load_data_section(path: Path) -> dict:
    """The data section of a YAML file (a full experiment config or a bare data section), checked completely
    against the schema and its dataset kind (:func:`conv3t.train.config.data_section`); ConfigError if not."""
    from conv3t.train.config import data_section, read_yaml

    return data_section(read_yaml(path), str(path)).as_mapping()


def _data_config(args: argparse.Namespace, exported) -> dict:
    """The data to evaluate on: the export's own (``model.json``) or ``--data``'s, with the overrides and flags,
    validated once; the model's frames, size and stride (its ``meta``) where the data section sets none."""
    from conv3t.data.registry import dataset_options
    from conv3t.train.config import ConfigError, data_section, parse_override_args, read_yaml

    source = str(exported.path) + " (model.json's data)"
    data = dict(exported.info.data)
    if args.data_file is not None:
        raw = read_yaml(args.data_file)
        data, source = dict(raw["data"] if isinstance(raw.get("data"), dict) else raw), str(args.data_file)
    overrides = parse_override_args(args.overrides or [])
    for key, value in overrides.items():
        if not key.startswith("data."):
            raise ConfigError(f"command line: conv3t eval only takes --data.KEY overrides, got --{key}")
        data[key[len("data.") :]] = value
    flags = {"test_views": args.views, "test_crops": args.crops}
    flags |= {"batch_size": args.batch_size, "num_workers": args.num_workers}
    data.update({k: v for k, v in flags.items() if v is not None})
    if "dataset" not in data:
        raise ConfigError("no data config: the export records none; pass --data CONFIG.yaml")
    meta = exported.meta
    defaults = {"num_frames": meta.num_frames, "size": list(meta.size), "frame_stride": meta.frame_stride}
    kind_options = dataset_options(data["dataset"]) if isinstance(data["dataset"], str) else {}
    data |= {k: v for k, v in defaults.items() if k not in data and k in kind_options}
    if overrides or any(v is not None for v in flags.values()):
        source += " (with command-line options)"
    return data_section(data, source).as_mapping()


def _same_normalisation(exported) -> None:
    """The datasets normalise with ImageNet's statistics (every conv3t export records them); a model that records
    others would be fed wrongly, so it is refused instead of evaluated quietly wrong."""
    from conv3t.data import IMAGENET_MEAN, IMAGENET_STD

    meta = exported.meta
    pairs = zip((*meta.mean, *meta.std), (*IMAGENET_MEAN, *IMAGENET_STD), strict=True)
    if any(abs(a - b) > 1e-6 for a, b in pairs):
        raise ValueError(
            f"{exported.path}: its model.json says the model expects inputs normalised with mean {list(meta.mean)} and "
            f"std {list(meta.std)}, but conv3t eval's datasets normalise with ImageNet's {list(IMAGENET_MEAN)} / "
            f"{list(IMAGENET_STD)}; evaluating would feed it wrongly (the report reads clips through the model's own "
            "preprocessing, conv3t explain)"
        )


_VALUED = {
    "--data": ("data_file", Path),
    "--views": ("views", int),
    "--crops": ("crops", int),
    "--batch-size": ("batch_size", int),
    "--num-workers": ("num_workers", int),
    "--device": ("device", str),
    "--limit-batches": ("limit_batches", int),
    "--json": ("json", Path),
    "--protocol": ("protocol", str),
    "--max-memory": ("max_memory", str),
}


def _reparse(args: argparse.Namespace) -> None:
    """argparse hands every token after the first ``--data.KEY`` override to ``overrides``: pick ours back out."""
    from conv3t.commands.train import split_options

    found, rest = split_options(list(args.overrides or []), ("--multiview",), tuple(_VALUED))
    for opt, value in found.items():
        if opt == "--multiview":
            args.multiview = True
            continue
        dest, kind = _VALUED[opt]
        try:
            setattr(args, dest, kind(value))
        except ValueError:
            raise ValueError(f"{opt}: bad value {value!r}") from None
    if args.crops not in (None, 1, 3):
        raise ValueError(f"--crops must be 1 or 3, got {args.crops}")
    if args.protocol not in ("centre", "paper"):
        raise ValueError(f"--protocol must be centre or paper, got {args.protocol!r}")
    args.overrides = rest


def plan_chunk(
    model, num_frames: int, size: tuple[int, int], device, max_memory: str | None, batch_clips: int = 0
) -> int:
    """Clips per forward: as many as the memory budget holds (at most 64).

    One clip's peak is measured; on a CPU the loader's batch of ``batch_clips`` float32 clips is held beside
    the chunk, so it counts against the budget too (on a GPU only the chunk is moved there).
    """
    import torch

    from conv3t.verify.budget import memory_budget, peak_bytes, plan_batch

    budget = memory_budget(device, max_memory)
    model.eval().to(device)
    clip = torch.zeros(1, 3, num_frames, *size, device=device)
    with torch.no_grad():
        item = peak_bytes(lambda: model(clip), device)
    fixed = batch_clips * clip.numel() * clip.element_size() if device.type == "cpu" else 0
    return plan_batch(item, fixed, budget, cap=64, what="evaluation", option="--batch-size")


def _paper_protocol(args: argparse.Namespace, exported, dm, device, chunk: int) -> dict:
    from torch.utils.data import DataLoader

    from conv3t.train.evaluate import evaluate_windows, whole_video_dataset

    videos = whole_video_dataset(dm.make_dataset("val"))
    loader = DataLoader(videos, batch_size=None, shuffle=False, num_workers=dm.num_workers)
    stride = int(getattr(dm.source, "frame_stride", 1))
    limit = None if args.limit_batches is None else args.limit_batches * dm.batch_size
    print(
        f"paper: every {dm.num_frames}-frame window of {len(videos)} videos, {chunk} clips per forward ...",
        file=sys.stderr,
    )
    res = evaluate_windows(exported.model, loader, dm.num_frames, stride, device, chunk, limit)
    print(
        f"{'paper':>11}: per-clip top-1 {res.clip_top1:.4f} over {res.num_clips} clips (the authors' number)  "
        f"per-video top-1 {res.video_top1:.4f} over {res.num_videos} videos; {res.skipped_short} videos "
        f"shorter than {dm.num_frames} frames skipped"
    )
    return res.as_dict()


def run(args: argparse.Namespace) -> int:
    import torch

    from conv3t.data import build_datamodule
    from conv3t.exported import load_exported
    from conv3t.train.artifacts import write_json
    from conv3t.train.config import ConfigError
    from conv3t.train.evaluate import evaluate_model

    try:
        _reparse(args)
        exported = load_exported(args.weights)
        data_cfg = _data_config(args, exported)
        dm = build_datamodule(data_cfg)
        _same_normalisation(exported)
        if dm.classes != exported.info.classes:
            raise ValueError(
                f"the data's classes ({dm.num_classes}) differ from the model's ({exported.info.num_classes}, "
                f"recorded in model.json): wrong dataset or labels file?"
            )
        if (dm.num_frames, tuple(dm.size)) != (exported.info.num_frames, tuple(exported.info.size)):
            print(
                f"note: evaluating on clips of {dm.num_frames}x{dm.size[0]}x{dm.size[1]}, the model was trained on "
                f"{exported.info.num_frames}x{exported.info.size[0]}x{exported.info.size[1]}",
                file=sys.stderr,
            )
    except (ConfigError, ValueError, FileNotFoundError, TypeError) as err:
        print(f"conv3t eval: {err}", file=sys.stderr)
        return 1
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        views = int(getattr(dm.source, "test_views", 1)) * int(getattr(dm.source, "test_crops", 1))
        batch_clips = dm.batch_size * (views if args.multiview else 1)
        chunk = plan_chunk(
            exported.model, dm.num_frames, tuple(dm.size), torch.device(device), args.max_memory, batch_clips
        )
    except ValueError as err:  # MemoryBudgetError, a bad --max-memory
        print(f"conv3t eval: {err}", file=sys.stderr)
        return 1
    results: dict[str, dict] = {}
    protocols = [("single_view", "val")] + ([("multi_view", "test")] if args.multiview else [])
    for name, split in protocols:
        loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
        total = len(loader) if args.limit_batches is None else min(len(loader), args.limit_batches)
        print(f"{name.replace('_', '-')}: {len(loader.dataset)} videos, {total} batches ...", file=sys.stderr)
        res = evaluate_model(exported.model, loader, exported.info.num_classes, device, args.limit_batches, chunk=chunk)
        results[name] = res.as_dict()
        print(
            f"{name.replace('_', '-'):>11}: top-1 {res.top1:.4f}  top-5 {res.top5:.4f}  mean class "
            f"{res.mean_class_acc:.4f}  ({res.num_videos} videos, {res.views} view(s) each)"
        )
    if args.protocol == "paper":
        results["paper"] = _paper_protocol(args, exported, dm, device, chunk)
    out = args.json
    if out is None and args.weights.is_dir():
        out = args.weights / "eval.json"
    if out is not None:
        write_json({"weights": str(args.weights), "data": data_cfg, "results": results}, out)
        print(f"results written to {out}", file=sys.stderr)
    return 0
