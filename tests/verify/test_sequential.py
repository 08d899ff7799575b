"""Image mode's readings carry their sampling error over texture views, and the views stop when the readings
are decided: the quantiles and standard errors against independent references, the pooled per-view energies
against a direct computation, and, on a network with planted motions, an early stop whose readings are the
all-view ones except where flagged undecided."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conv3t.verify.energies import ViewStats
from conv3t.verify.network import VerifyConfig, verify_model
from conv3t.verify.readings import channel_readings
from conv3t.verify.sequential import DIRECTION_RESOLUTION_DEG, jackknife, student_t_quantile

sys.path.insert(0, str(Path(__file__).parent))
from test_pipeline import _model  # the planted network: set translations, rotations, zooms


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [(0.995, 3, 5.840909), (0.995, 7, 3.499483), (0.995, 23, 2.807336), (0.975, 1, 12.706205), (0.975, 30, 2.042272)],
)
def test_student_t_quantiles_match_the_tables(p: float, df: int, table: float) -> None:
    assert student_t_quantile(p, df) == pytest.approx(table, abs=2e-6)


def _stats(full: np.ndarray) -> ViewStats:
    v, m, c = full.shape
    zeros = torch.zeros(v, m, c, dtype=torch.float64)
    return ViewStats(torch.from_numpy(full), zeros, zeros, torch.ones(v, m, dtype=torch.float64))


def test_jackknife_error_of_a_mean_is_the_standard_error_over_views() -> None:
    full = np.random.default_rng(0).gamma(2.0, 1.5, size=(9, 3, 5))
    est, se = jackknife(_stats(full), lambda e: {"energy": e[1, :, 0]})
    np.testing.assert_allclose(est["energy"], full[:, 1].mean(axis=0))
    np.testing.assert_allclose(se["energy"], full[:, 1].std(axis=0, ddof=1) / 3.0)


def test_jackknife_error_of_an_index_matches_its_spread_over_replications() -> None:
    """An opposite-direction index (a - b) / (a + b) of mean energies: the mean jackknife error over 2000
    replications of 12 views is within 10 % of the replications' standard deviation (numpy)."""
    rng = np.random.default_rng(1)
    # per view: energies of the two senses of 40 channels, correlated (the same texture), unequal means
    shape = rng.uniform(2.0, 20.0, size=40)
    draws = rng.gamma(shape[None, None, None], 1.0, size=(2000, 12, 1, 40))
    a, b = draws * rng.uniform(1.0, 1.6, size=40), 0.5 * draws + rng.gamma(3.0, 1.0, size=(2000, 12, 1, 40))
    full = np.concatenate([a, b], axis=2)  # (R, V, 2, C)

    def index(e: np.ndarray) -> dict[str, np.ndarray]:
        return {"index": (e[0, :, 0] - e[1, :, 0]) / (e[0, :, 0] + e[1, :, 0])}

    _, ses = zip(*(jackknife(_stats(r), index) for r in full[:300]))
    spread = np.array([index(r.mean(axis=0)[..., None])["index"] for r in full]).std(axis=0, ddof=1)
    mean_se = np.mean([s["index"] for s in ses], axis=0)
    np.testing.assert_allclose(mean_se, spread, rtol=0.1)


def test_pooled_centre_variance_is_the_variance_of_every_views_values() -> None:
    rng = np.random.default_rng(2)
    windows = rng.normal(rng.normal(size=(5, 2, 3, 1)), 1.0, size=(5, 2, 3, 7))  # (V, M, C, values)
    stats = ViewStats(
        torch.from_numpy(rng.gamma(2.0, size=(5, 2, 3))),
        torch.from_numpy(windows.mean(axis=-1)),
        torch.from_numpy(((windows - windows.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)),
        torch.full((5, 2), 7.0, dtype=torch.float64),
    )
    keep = [True, False, True, True, False]
    got = stats.energies(keep).numpy()
    picked = windows[np.array(keep)]
    np.testing.assert_allclose(got[..., 1], picked.transpose(1, 2, 0, 3).reshape(2, 3, -1).var(axis=-1))
    np.testing.assert_allclose(got[..., 0], stats.full.numpy()[np.array(keep)].mean(axis=0))


@pytest.fixture(scope="module")
def planted():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for sequential in (True, False):
            looks: list = []
            config = VerifyConfig(modes=("image",), textures=24, sequential=sequential)
            result = verify_model(_model(), num_frames=8, size=32, config=config, device="cpu", looks=looks.append)
            runs[sequential] = result, looks
        return runs
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_strong_planted_motions_stop_early(planted) -> None:  # type: ignore[no-untyped-def]
    result, looks = planted[True]
    views = result.config["views_measured"]["image"]
    assert views < 24 and views % 4 == 0
    assert [d.views for d in looks] == list(range(4, views + 1, 4))
    assert looks[-1].pending == 0 and all(d.pending > 0 for d in looks[:-1])
    assert planted[False][0].config["views_measured"]["image"] == 24
    assert len(planted[False][1]) == 1  # all views, one decision at the end


@pytest.mark.slow
def test_early_readings_are_the_all_view_ones_unless_flagged(planted) -> None:  # type: ignore[no-untyped-def]
    early = channel_readings(planted[True][0]).set_index("channel")
    full = channel_readings(planted[False][0]).set_index("channel")
    for c in early.index:
        flagged = set(early.loc[c, "undecided_readings"].split("; "))
        if "tuned" not in flagged:
            assert early.loc[c, "tuned"] == full.loc[c, "tuned"], c
        if not math.isnan(early.loc[c, "measured_speed_px"]) and "translation" not in flagged:  # shown in both
            if "speed" not in flagged:
                assert early.loc[c, "measured_speed_px"] == full.loc[c, "measured_speed_px"], c
            if "direction" not in flagged and early.loc[c, "measured_speed_px"] > 0:
                gap = (early.loc[c, "measured_direction_deg"] - full.loc[c, "measured_direction_deg"] + 180) % 360
                assert abs(gap - 180) <= DIRECTION_RESOLUTION_DEG, c
        for kind in ("rotation", "zoom"):
            if kind not in flagged:
                assert early.loc[c, f"measured_{kind}"] == full.loc[c, f"measured_{kind}"], (c, kind)
    # the set translations are tuned, decided and read as set (test_pipeline's expectations)
    for c, expected in ((0, 0.0), (1, 90.0)):
        assert early.loc[c, "tuned"] and "tuned" not in early.loc[c, "undecided_readings"]
        assert abs((early.loc[c, "measured_direction_deg"] - expected + 180) % 360 - 180) < 25


@pytest.mark.slow
def test_standard_errors_shrink_with_views(planted) -> None:  # type: ignore[no-untyped-def]
    """The translation index's error after V views and after 24: about sqrt(24 / V) times larger."""
    early, full = (planted[k][0].channels.set_index("channel") for k in (True, False))
    views = early.attrs.get("views", planted[True][0].config["views_measured"]["image"])
    ratio = early["translation_index_se"] / full["translation_index_se"]
    assert float(np.median(ratio)) == pytest.approx(math.sqrt(24 / views), rel=0.35)


def test_config_refuses_no_views() -> None:
    with pytest.raises(ValueError, match="view_round"):
        VerifyConfig(view_round=0)
    with pytest.raises(ValueError, match="textures"):
        VerifyConfig(textures=0)
