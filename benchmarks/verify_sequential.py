"""Sequential image-mode views on a trained model: would stopping early change the readings, and are the channels
whose readings change the ones flagged undecided?

    python benchmarks/verify_sequential.py /work/notes/demo_run --seeds 0 1 2

For each texture seed, image mode is measured with all 24 views and with the first ``V`` of the same views
(``V`` = 4, 8, ..., 20: the views nest, the offsets are drawn in order) without stopping; at each ``V`` it
prints what the stopping rule says (channels with an undecided reading, channels still *pending*: the rule
stops at 0) and compares every channel's readings (:func:`conv3t.verify.readings.channel_readings`: tuned,
primary motion, direction (differs: more than 15 degrees), speed, rotation and zoom sense, agreement) with the
24-view ones: how many channels differ, and how many of those were flagged undecided at ``V`` (for the
stopping readings, tuned / speed / direction, and for any reading). CPU seconds per run (one thread).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from conv3t.verify.network import VerifyConfig, verify_run
from conv3t.verify.readings import channel_readings
from conv3t.verify.sequential import STOPPING_READINGS, Decision

CAP = 24
_SAME_TEXT = ("measured_motion", "measured_rotation", "measured_zoom")


def _differs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per channel, which readings of ``a`` differ from ``b``'s (bool columns)."""
    out = pd.DataFrame(index=a.index)
    out["tuned"] = a["tuned"] != b["tuned"]
    for c in _SAME_TEXT:
        out[c] = a[c] != b[c]
    da, db = a["measured_direction_deg"], b["measured_direction_deg"]
    gap = np.abs((da - db + 180.0) % 360.0 - 180.0)
    out["direction"] = (da.isna() != db.isna()) | (gap > 15.0)
    sa, sb = a["measured_speed_px"], b["measured_speed_px"]
    out["speed"] = (sa.isna() != sb.isna()) | ((sa != sb) & sa.notna())
    out["agreement"] = a["parameters_agree"].astype(str) != b["parameters_agree"].astype(str)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        start = time.process_time()
        pending: dict[int, int] = {}

        def look(d: Decision, _pending: dict[int, int] = pending) -> None:
            _pending[d.views] = d.pending

        config = VerifyConfig(modes=("image",), seed=seed)
        res = verify_run(args.run, config, device="cpu", looks=look)
        stopped = res.config["views_measured"]["image"]
        if stopped < CAP:
            res = verify_run(args.run, VerifyConfig(modes=("image",), seed=seed, sequential=False), device="cpu")
        ref = channel_readings(res).set_index(["layer", "channel"])
        print(
            f"seed {seed}: the rule stops at {stopped} of {CAP} views ({time.process_time() - start:.1f} CPU s); "
            f"{len(ref)} channels, {int(ref['undecided'].sum())} with an undecided reading at {CAP}, "
            f"{int(_flagged(ref).sum())} in tuned/speed/direction",
            flush=True,
        )
        for views in range(4, CAP, 4):
            config = VerifyConfig(modes=("image",), sequential=False, seed=seed, textures=views)
            got = channel_readings(verify_run(args.run, config, device="cpu")).set_index(["layer", "channel"])
            diff = _differs(got, ref)
            stopping, anything = diff[["tuned", "speed", "direction"]].any(axis=1), diff.any(axis=1)
            flagged = _flagged(got)
            print(
                f"  V={views:2d}: undecided {int(got['undecided'].sum())} (tuned/speed/direction "
                f"{int(flagged.sum())}), pending {pending.get(views, 0)}; differ from {CAP} views in "
                f"tuned/speed/direction: {int(stopping.sum())} channels ({int((stopping & flagged).sum())} flagged "
                f"there), in any reading: {int(anything.sum())} ({int((anything & got['undecided']).sum())} "
                f"flagged); unflagged: {sorted(map(tuple, diff.index[stopping & ~flagged]))[:4]}",
                flush=True,
            )


def _flagged(readings: pd.DataFrame) -> pd.Series:
    """Channels with an undecided stopping reading (tuned, speed or direction)."""
    return readings["undecided_readings"].map(lambda r: any(n in r.split("; ") for n in STOPPING_READINGS))


if __name__ == "__main__":
    main()
