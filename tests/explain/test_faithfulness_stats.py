"""The statistics of the faithfulness checks (conv3t.explain.faithfulness.stats, summary, perturb.road_solve)
against hand-computed values, a dense linear solve and properties of valid p-values."""

from __future__ import annotations

import ast
import itertools
import math

import numpy as np
import pytest
import torch

from conv3t.explain.faithfulness import road_impute, road_solve
from conv3t.explain.faithfulness.stats import (
    ALPHA,
    all_orders,
    binomial_tail,
    exact_test,
    fisher_combined,
    holm,
    rank_test,
    sequential_test,
)


def test_rank_p_value_counts_ties_as_at_least_as_good() -> None:
    # deletion (lower is better): draws 0.1, 0.3 (tie), 0.5, 0.7 against 0.3 -> (1 + 2) / (4 + 1)
    t = rank_test(0.3, np.array([0.1, 0.3, 0.5, 0.7]), lower=True)
    assert t.p_value == pytest.approx(3 / 5) and t.min_p == pytest.approx(1 / 5) and not t.exact
    assert rank_test(0.8, np.array([0.1, 0.3, 0.5, 0.7]), lower=False).p_value == pytest.approx(1 / 5)
    flat = rank_test(0.5, np.full(9, 0.5), lower=True)
    assert flat.min_p == 1.0 and not flat.testable  # the model did not respond


def test_exact_test_and_the_smallest_reachable_p() -> None:
    population = np.array([0.2, 0.4, 0.4, 0.6, 0.8, 1.0])
    t = exact_test(0.4, population, lower=True)
    assert t.p_value == pytest.approx(3 / 6) and t.best == 0.2 and t.min_p == pytest.approx(1 / 6)
    assert not t.testable  # 6 orders (T = 3): nothing can reach 0.05


def test_all_orders_are_every_permutation_once() -> None:
    orders = all_orders(5)
    assert orders.shape == (120, 5)
    assert len({tuple(r) for r in orders.tolist()}) == 120
    assert all(sorted(r) == list(range(5)) for r in orders.tolist())


def test_besag_clifford_stops_after_h_hits_and_is_valid_under_the_null() -> None:
    rng = np.random.default_rng(0)
    calls = []

    def draw(n: int) -> np.ndarray:
        calls.append(n)
        return rng.random(n)

    t, used = sequential_test(0.9, draw, lower=True, max_draws=99, hits=10, batch=10)
    assert t.p_value == pytest.approx(10 / used.size) and used.size < 30  # a clear failure stops early
    # under the null (observed is one more uniform draw) P(p <= 0.05) <= 0.05
    rejections = 0
    for _ in range(400):
        observed = rng.random()
        t, _ = sequential_test(observed, lambda n: rng.random(n), lower=True, max_draws=99, hits=10, batch=10)
        rejections += t.p_value <= 0.05
    assert rejections / 400 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 400)
    best, used = sequential_test(-1.0, lambda n: rng.random(n), lower=True, max_draws=99)
    assert best.p_value == pytest.approx(1 / 100) and used.size == 99  # a clear pass takes every draw


def test_fisher_holm_and_binomial_against_hand_values() -> None:
    # two p-values 0.05: x = -2 (2 ln 0.05) = 11.98 on 4 df: e^(-x/2) (1 + x/2) = 0.0175
    assert fisher_combined([0.05, 0.05]) == pytest.approx(math.exp(-5.9915) * (1 + 5.9915), rel=1e-4)
    assert fisher_combined([0.3]) == pytest.approx(0.3)
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert binomial_tail(1, 2, 0.05) == pytest.approx(1 - 0.95**2)


def _dense_road(f: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's system for one frame ``f (H, W)`` built entry by entry from its definition and solved densely:
    the imputed values of the ``removed (H, W)`` pixels, in ``nonzero`` order."""
    h, w = f.shape
    weights = {(-1, -1): 1 / 12, (-1, 0): 1 / 6, (-1, 1): 1 / 12, (0, -1): 1 / 6, (0, 1): 1 / 6}
    weights.update({(1, -1): 1 / 12, (1, 0): 1 / 6, (1, 1): 1 / 12})
    cells = [tuple(c) for c in np.argwhere(removed).tolist()]
    index = {c: i for i, c in enumerate(cells)}
    a, b = np.zeros((len(cells), len(cells))), np.zeros(len(cells))
    for (y, x), i in index.items():
        for (dy, dx), wgt in weights.items():
            yy, xx = y + dy, x + dx
            if 0 <= yy < h and 0 <= xx < w:
                a[i, i] += wgt
                if (yy, xx) in index:
                    a[i, index[(yy, xx)]] -= wgt
                else:
                    b[i] += wgt * f[yy, xx]
    return np.linalg.solve(a, b)


def test_road_solve_matches_a_dense_solve_of_the_road_system() -> None:
    torch.manual_seed(0)
    h = w = 12
    frame = torch.nn.functional.avg_pool2d(torch.randn(1, 1, h + 4, w + 4), 5, 1)
    removed = torch.zeros(1, h, w, dtype=torch.bool)
    removed[0, 3:8, 2:9] = True
    removed[0, 0, :4] = True  # at the border: weights renormalised
    got, residual = road_solve(frame, removed, torch.zeros(1, 1), tol=1e-6)
    f = frame[0, 0].double().numpy()
    exact = _dense_road(f, removed[0].numpy())
    assert residual <= 1e-6
    assert np.abs(got[0, 0][removed[0]].double().numpy() - exact).max() < 1e-4 * f.std()
    assert torch.equal(got[0, 0][~removed[0]], frame[0, 0][~removed[0]])  # known pixels are never touched


@pytest.mark.parametrize("chunk_values", [1, 2 * 10 * 13, 2**17])
def test_road_solve_in_chunks_matches_the_dense_solve_of_every_frame(
    chunk_values: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames solved a few at a time (the CPU path) or all at once give each frame its own exact solution."""
    from conv3t.explain.faithfulness import perturb

    monkeypatch.setattr(perturb, "_CHUNK_VALUES", chunk_values)
    g = torch.Generator().manual_seed(1)
    frames = torch.nn.functional.avg_pool2d(torch.randn(5, 2, 14, 17, generator=g), 5, 1)  # (5, 2, 10, 13)
    removed = torch.rand(5, 10, 13, generator=g) < torch.tensor([0.1, 0.5, 0.0, 0.9, 1.0]).view(5, 1, 1)
    fill = torch.tensor([[0.5, -0.5]]).expand(5, 2)
    got, residual = road_solve(frames, removed, fill, tol=1e-6)
    assert residual <= 1e-6
    for i in (0, 1, 3):
        for c in range(2):
            f = frames[i, c].double().numpy()
            exact = _dense_road(f, removed[i].numpy())
            assert np.abs(got[i, c][removed[i]].double().numpy() - exact).max() < 1e-4 * f.std()
    assert torch.equal(got[2], frames[2])  # nothing removed: untouched
    assert torch.equal(got[4], fill[4].view(2, 1, 1).expand(2, 10, 13))  # nothing left: the fill colour


def test_road_noise_is_in_the_units_given_per_colour() -> None:
    frames = torch.zeros(1, 2, 16, 16)
    removed = torch.zeros(1, 16, 16, dtype=torch.bool)
    removed[0, 4:12, 4:12] = True
    out = road_impute(frames, removed, torch.zeros(1, 2), torch.tensor([0.1, 0.01]), torch.Generator().manual_seed(0))
    hole = out[0][:, removed[0]]
    assert 0.07 < float(hole[0].std()) < 0.13 and 0.007 < float(hole[1].std()) < 0.013
    assert float(out[0][:, ~removed[0]].abs().max()) == 0.0


def test_the_position_only_baseline_is_tested_on_each_clips_exact_table() -> None:
    from planted import DECISIVE_FRAMES, frame_planted_clip, frame_planted_net

    from conv3t.explain.faithfulness import Explanation, Faithfulness

    net = frame_planted_net()
    importance = torch.zeros(8)
    importance[list(DECISIVE_FRAMES)] = 1.0
    check = Faithfulness(net, randomise=False)
    results = [check.evaluate(frame_planted_clip(s), 0, Explanation(frame_importance=importance)) for s in (0, 1)]
    summary = Faithfulness.summarise(results)
    deletion = summary.position_only[0]
    # the planted frames are the same in every clip: position alone is as good as the explanation
    assert deletion.kind == "baseline" and deletion.clips == 2 and deletion.passed == 2
    assert set(ast.literal_eval(deletion.check.split("only ")[1])[:4]) == set(DECISIVE_FRAMES)
    assert all(c.kind != "baseline" for c in summary.checks)


def test_the_randomisation_test_holds_its_level_when_random_explanations_share_a_pattern_up_to_sign() -> None:
    """Eight frames in two groups of alike frames (FramePlantedNet's clip): a randomised model's frame attribution
    is that pattern times a random sign, plus a little noise, so each seed's correlation with the trained one is
    near +-1 and carries nothing about the learned weights. The item-permutation null alone (variance
    1 / (K (n - 1))) failed such explanations whenever 4 of 5 signs agreed (about 6 in 32); the test must fail at
    most at ALPHA (here exactly when all 5 signs are positive, 1 in 32)."""
    from conv3t.explain.faithfulness import Explanation
    from conv3t.explain.faithfulness.sanity_stats import randomisation_tests

    pattern = torch.tensor([-1.0, 1, -1, 1, 1, -1, 1, -1])
    trained = Explanation(frame_importance=torch.tensor([0.0, 2.7, 0, 2.7, 2.7, 0, 2.7, 0]))
    g = torch.Generator().manual_seed(0)
    trials, failed = 200, 0
    for _ in range(trials):
        signs = torch.randint(0, 2, (5,), generator=g) * 2 - 1
        randomised = [
            Explanation(frame_importance=s * (pattern + 0.3 * torch.randn(8, generator=g))) for s in signs.tolist()
        ]
        (test,) = randomisation_tests(trained, randomised, None, g)
        failed += test.p_value <= ALPHA
    # Binomial(200, 0.05): mean 10, P(>= 19) < 0.01 (the permutation null alone failed 85 of 400)
    assert failed < 19, failed


def test_an_explanation_the_weights_do_not_change_fails_with_five_seeds_and_is_not_testable_with_two() -> None:
    from conv3t.explain.faithfulness import Explanation
    from conv3t.explain.faithfulness.sanity_stats import randomisation_tests
    from conv3t.explain.faithfulness.verdicts import randomisation_verdicts

    ramp = Explanation(frame_importance=torch.linspace(1, -1, 8))
    g = torch.Generator().manual_seed(0)
    (five,) = randomisation_tests(ramp, [ramp] * 5, None, g)
    assert five.p_value == pytest.approx(1 / 32) and five.seed_corrs == pytest.approx((1.0,) * 5)
    # |ramp| is a V: its absolute variant is reported beside the signed one, which decides
    assert five.absolute_corr == pytest.approx(1.0) and five.absolute_p == pytest.approx(1 / 32)
    (verdict,) = randomisation_verdicts((five,))
    assert verdict.passed is False
    (two,) = randomisation_tests(ramp, [ramp] * 2, None, g)
    (verdict,) = randomisation_verdicts((two,))
    assert verdict.passed is None and "not testable with 2 seeds" in verdict.sentence


def _old_sign_flip_p(values: np.ndarray) -> float:
    """The rule before the sequential sign test, written out here: the exact one-sided sign-flip p-value of the
    mean over all 2^K sign patterns."""
    k = values.size
    signs = 1 - 2 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)
    return float(((signs * np.abs(values)).mean(1) >= values.mean() - 1e-12).mean())


def test_the_sequential_sign_test_against_a_hand_enumeration() -> None:
    from conv3t.explain.faithfulness.sanity_stats import sequential_sign_p

    # L = leading positive values, p = 2^-L; zero and NaN are not positive
    assert sequential_sign_p([0.3, 0.2, -0.1]) == 0.25
    assert sequential_sign_p([-1.0, 1.0, 1.0]) == 1.0
    assert sequential_sign_p([0.5, 0.0, 1.0]) == 0.5
    assert sequential_sign_p([0.5, float("nan")]) == 0.5
    assert sequential_sign_p([0.1] * 5) == 1 / 32
    # all 2^4 sign patterns with fair signs: P(p <= 2^-m) = 2^-m exactly (m = 0..4)
    patterns = list(itertools.product((-1.0, 1.0), repeat=4))
    ps = [sequential_sign_p(list(s)) for s in patterns]
    for m in range(5):
        assert sum(p <= 2.0**-m for p in ps) == 16 // 2**m


def test_the_sequential_sign_test_holds_its_level_under_a_skewed_null_where_the_sign_flip_does_not() -> None:
    """c_k = exp(Z) - 1: median 0 (P(c > 0) = 1/2) but skewed, as a family randomised around its own mean or
    another class's explanation may be. The sign-flip test of the mean assumes symmetry and fails at twice its
    level with K = 8; the sequential sign test does not assume it."""
    from conv3t.explain.faithfulness.sanity_stats import sequential_sign_p

    rng = np.random.default_rng(24)
    c = np.exp(rng.normal(size=(2000, 8))) - 1
    sequential = np.mean([sequential_sign_p(row.tolist()) <= ALPHA for row in c])
    flip = np.mean([_old_sign_flip_p(row) <= ALPHA for row in c])
    assert sequential <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000), sequential  # 2^-5 = 0.031 expected
    assert flip > 0.08, flip  # the null is skewed enough to matter (0.10 measured)


def test_with_five_draws_the_sequential_sign_test_rejects_exactly_when_the_sign_flip_did() -> None:
    """So the cascade's verdicts do not change: with K = 5 both reach ALPHA only when all five c_k are > 0."""
    from conv3t.explain.faithfulness.sanity_stats import sequential_sign_p

    rng = np.random.default_rng(5)
    for _ in range(500):
        c = rng.normal(0.4, 0.5, size=5)
        assert (sequential_sign_p(c.tolist()) <= ALPHA) == (_old_sign_flip_p(c) <= ALPHA), c
