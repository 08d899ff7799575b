"""Is the rotation cue of the demo's clips visible at 32 x 32 px and 8 frames? (docs/training.md, the demo)

    python benchmarks/rotation_cue.py [NUM_CLIPS] [SIZE]      # default 900 clips of 32 x 32 px, seed 1

Per class: pixels whose value changes by more than 0.05 between consecutive frames (all, and inside the
object), the object's area and the summed absolute change. Then a fixed rule with no learning: per frame
pair, the one rotation about the centroid of the changed pixels that best explains the grey-level change by
brightness constancy (least squares); the sign of its median over the clip says clockwise or
counter-clockwise. Printed: that rule's accuracy on the rotation clips.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from conv3t.data.synthetic import MOTION_CLASSES, SyntheticMotionDataset


def estimated_rotation(grey: np.ndarray) -> float:
    """Median rotation in radians per frame (positive = clockwise, y down) of ``grey`` ``(T, H, W)``."""
    yy, xx = np.mgrid[0 : grey.shape[1], 0 : grey.shape[2]]
    per_step = []
    for a, b in itertools.pairwise(grey):
        gy, gx = np.gradient(0.5 * (a + b))
        it = b - a
        mask = np.abs(it) > 0.02
        if mask.sum() < 3:
            continue
        w = np.abs(it[mask])
        cy, cx = (yy[mask] * w).sum() / w.sum(), (xx[mask] * w).sum() / w.sum()
        # a clockwise turn by omega about (cx, cy) moves (x, y) by (-omega (y - cy), omega (x - cx))
        coef = (-gx * (yy - cy) + gy * (xx - cx))[mask]
        per_step.append(float((coef * -it[mask]).sum() / max((coef * coef).sum(), 1e-9)))
    return float(np.median(per_step)) if per_step else 0.0


def main(n: int = 900, size: int = 32) -> None:
    ds = SyntheticMotionDataset(n, 8, size, seed=1, normalize=False)
    rows: dict[str, list[tuple[float, ...]]] = {c: [] for c in MOTION_CLASSES}
    for i in range(n):
        rgb, alpha, truth = ds.render(i)
        rgb, alpha = rgb.numpy(), alpha.numpy()
        change = np.abs(np.diff(rgb, axis=1)).max(0)
        inside = (alpha[:-1] > 0.99) & (alpha[1:] > 0.99)
        rows[truth.class_name].append(
            (
                (change > 0.05).sum((1, 2)).mean(),
                ((change > 0.05) & inside).sum((1, 2)).mean(),
                alpha.sum((1, 2)).mean(),
                change.sum((1, 2)).mean(),
                estimated_rotation(rgb.mean(0)),
            )
        )
    print(f"{n} clips of {size} x {size} px, 8 frames")
    print("class            changed px  inside object  object px  sum |change|  est. rotation deg/frame")
    for c in MOTION_CLASSES:
        r = np.array(rows[c])
        print(f"{c:16s} {r[:, 0].mean():9.1f} {r[:, 1].mean():14.1f} {r[:, 2].mean():10.1f} {r[:, 3].mean():13.1f}"
              f" {np.degrees(np.median(r[:, 4])):14.1f}")  # fmt: skip
    cw, ccw = np.array(rows["rotate_cw"])[:, 4], np.array(rows["rotate_ccw"])[:, 4]
    correct = int((cw > 0).sum() + (ccw < 0).sum())
    print(f"fixed rule, clockwise vs counter-clockwise: {correct} of {len(cw) + len(ccw)} rotation clips right")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
