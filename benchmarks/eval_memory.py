"""Peak memory of multi-view evaluation at the paper's clip size, streamed in chunks vs one forward per batch.

``conv3t eval --multiview`` (and ``--protocol paper``) send a batch's ``B x V`` clips through the network
``chunk`` at a time, ``chunk`` planned from the memory budget exactly as the command does
(:func:`conv3t.commands.eval.plan_chunk`: one clip's measured peak, the budget of ``--max-memory`` or the CPU
default). This script evaluates one random batch ``(B, V, 3, T, H, W)`` that way and prints the chunk, the
time and the peak resident set of the process (``ru_maxrss``); run it under ``/usr/bin/time -v`` for an
independent reading. ``--chunk 0`` runs the batch in one forward (the behaviour before chunking).

    OMP_NUM_THREADS=1 /usr/bin/time -v python benchmarks/eval_memory.py --model resnet18_3t --batch 8 --views 10
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from conv3t.commands.eval import plan_chunk
from conv3t.models import create_model
from conv3t.train.evaluate import evaluate_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18_3t")
    parser.add_argument("--classes", type=int, default=27)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--clip", type=int, nargs=3, default=(30, 150, 224), metavar=("T", "H", "W"))
    parser.add_argument("--max-memory", default=None, help="budget as conv3t eval --max-memory (default: its)")
    parser.add_argument("--chunk", type=int, default=None, help="clips per forward; 0 = the whole batch at once")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model, args.classes).eval()
    t, h, w = args.clip
    start = time.perf_counter()
    if args.chunk is None:
        batch_clips = args.batch * args.views
        chunk: int | None = plan_chunk(model, t, (h, w), torch.device("cpu"), args.max_memory, batch_clips)
    else:
        chunk = args.chunk or None
    planned = time.perf_counter() - start
    x = torch.randn(args.batch, args.views, 3, t, h, w)
    y = torch.arange(args.batch) % args.classes
    start = time.perf_counter()
    result = evaluate_model(model, [(x, y)], args.classes, "cpu", chunk=chunk)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"{args.model} {args.batch}x{args.views} clips of {t}x{h}x{w}: chunk {chunk or 'all'} (planned in "
        f"{planned:.1f} s), batch input {x.numel() * 4 / 1e9:.2f} GB, evaluated in {elapsed:.0f} s, "
        f"peak RSS {peak / 1e9:.2f} GB, views {result.views}"
    )


if __name__ == "__main__":
    main()
