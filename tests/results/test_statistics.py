"""The bootstrap rule (replication/results/statistics.py) on constructed cases whose answer is known.

Expected values come from the construction (hand counts, the normal approximation of a
mean's sampling distribution, binomial tails), never from the code under test. Every
random case uses a fixed generator, and each comment gives the probability that a
correct implementation would fail it on a fresh draw.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from replication.metrics import per_image
from replication.metrics.segmentation import official_scores, scores
from replication.results.statistics import (
    HIGHER,
    LOWER,
    NO_INTERVAL,
    WITHIN_NOISE,
    Bootstrap,
    Sample,
    difference,
    intervals,
)

ROAD, CAR = 0, 13


def mean_sample(x: np.ndarray, images=None, seeds=None) -> Sample:
    """A `mean`-kind sample from (S, N) per-image values."""
    S, N = x.shape
    return Sample(tuple(seeds or (f"seed-{k}" for k in range(S))), {"v": x.mean(1)},
                  tuple(images or (str(i) for i in range(N))), "mean",
                  tuple({"v": row} for row in x))


def seeds_only(values: list[float]) -> Sample:
    return Sample(tuple(f"seed-{k}" for k in range(len(values))), {"v": np.array(values)})


# --- verdicts on known differences -----------------------------------------------------------

def test_identical_experiments_are_within_noise():
    x = np.random.default_rng(0).normal(0.5, 0.1, (3, 50))
    d = difference(mean_sample(x), mean_sample(x.copy()), "v")
    # the same draw for both sides: every replicate's difference is exactly 0
    assert (d.estimate, d.lo, d.hi) == (0.0, 0.0, 0.0) and d.verdict == WITHIN_NOISE
    assert d.covers == "seeds paired by name (3); test images paired by name (50)"


def shifted_pair(shift: float, rng) -> tuple[Sample, Sample]:
    """Two experiments on the same 200 images, 3 seeds each: per-image values with their
    own image effects (sd 1) and a small seed effect (sd 0.05). The difference of the
    means has SE = sqrt(2 * 1 / 200 + 2 * 0.05^2 / 3) = 0.108 (per-image noise sd 0.3
    over 600 cells adds 0.017 in quadrature: SE 0.110)."""
    def one(mu):
        image = rng.normal(0, 1, 200)
        return mu + rng.normal(0, 0.05, (3, 1)) + image + rng.normal(0, 0.3, (3, 200))
    return mean_sample(one(shift)), mean_sample(one(0.0))


@pytest.mark.parametrize("sign, expected", [(1, HIGHER), (-1, LOWER)])
def test_a_shift_of_six_standard_errors_is_outside_noise(sign, expected):
    # shift = 6 SE: the lower end (estimate - 1.96 SE) stays above 0 unless the estimate
    # falls 4 SE short: P = 3e-5 for a correct rule (the 3-seed bootstrap's
    # underestimate of the small seed term moves this by far less than 1 SE)
    a, b = shifted_pair(sign * 6 * 0.110, np.random.default_rng(1))
    d = difference(a, b, "v")
    assert d.verdict == expected
    assert d.estimate == pytest.approx(a.estimate("v") - b.estimate("v"))
    assert d.lo < d.estimate < d.hi


def test_a_difference_of_zero_is_within_noise():
    # no true difference: the 95 % interval holds 0 (P = 0.05 of a correct rule failing
    # on a fresh draw; this fixed draw's estimate is 0.3 SE from 0)
    a, b = shifted_pair(0.0, np.random.default_rng(2))
    d = difference(a, b, "v")
    assert abs(d.estimate) < 0.110 and d.verdict == WITHIN_NOISE


def test_intervals_cover_the_true_difference_at_their_nominal_rate():
    # Crossed design, as the suite's: per experiment e, seed s, image n:
    # x = mu_e + a_es (seed, sd 0.3) + b_n (image difficulty shared by both experiments,
    # sd 2) + c_en (experiment-specific image effect, sd 1) + noise (sd 1); 8 seeds,
    # 60 images; true difference mu_A - mu_B = 0.3.
    # 1000 repetitions: a correct 95 % rule covers at p = 0.95, less the bootstrap's known
    # small-sample shortfall on the seed term ((S - 1) / S on its variance), so p in
    # [0.935, 0.965]; then P(coverage outside [0.90, 0.99]) <= 1.1e-5 (binomial tails,
    # scipy.stats.binom: cdf(899, 1000, 0.935) = 1.0e-5, sf(990, 1000, 0.965) = 1.3e-7).
    # What it catches: no image resampling, or a new image draw per seed (nested instead
    # of crossed): coverage far below 0.90; unpaired images (b_n counted): the interval
    # 1.7x too wide, coverage 0.9993 > 0.99.
    rng = np.random.default_rng(123)
    S, N, R = 8, 60, 1000
    boot = Bootstrap(resamples=400)
    covered = 0
    for r in range(R):
        shared = rng.normal(0, 2, N)
        x = [mu + rng.normal(0, 0.3, (S, 1)) + shared + rng.normal(0, 1, N)
             + rng.normal(0, 1, (S, N)) for mu in (0.3, 0.0)]
        d = difference(mean_sample(x[0]), mean_sample(x[1]), "v", Bootstrap(400, seed=r))
        covered += d.lo <= 0.3 <= d.hi
    assert 0.90 <= covered / R <= 0.99, covered / R
    assert boot.level == 0.95


# --- one experiment ----------------------------------------------------------------------

def test_one_seed_interval_is_the_normal_interval_of_the_image_mean():
    # 400 images, one seed: the bootstrap SE of a mean is sd * sqrt((N - 1) / N) / sqrt(N)
    # and the percentile interval ~ mean -/+ 1.96 SE. Monte Carlo error of each end with
    # B = 2000: SE * sqrt(0.025 * 0.975 / 2000) / phi(1.96) = 0.06 SE; allow 4 of those
    # plus the normal approximation's skew (the values are normal): 0.25 SE
    x = np.random.default_rng(3).normal(10, 2, (1, 400))
    se = x.std() / math.sqrt(400)
    iv = intervals(mean_sample(x))["v"]
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.lo == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert iv.hi == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)
    assert iv.covers.startswith("test images only (one seed")


def test_one_image_draw_serves_every_seed_of_a_replicate():
    # 5 seeds with the same per-image scores (no seed effect): seeds and images are
    # crossed, so the test set's sampling error is shared, and the interval is that of
    # one seed (width 2 x 1.96 SE); drawing images anew per seed would shrink it by
    # sqrt(5) = 2.24. Tolerance: 10 % (Monte Carlo error of the width ~ 4 % with B = 2000)
    x = np.random.default_rng(4).normal(0, 1, 300)
    se = x.std() / math.sqrt(300)
    iv = intervals(mean_sample(np.tile(x, (5, 1))))["v"]
    assert iv.hi - iv.lo == pytest.approx(2 * 1.96 * se, rel=0.10)
    assert iv.covers == "seeds and test images"


def test_seeds_only_interval_of_two_seeds_spans_them():
    # set-level (e.g. FID): the mean of 2 resampled seeds is a, (a + b) / 2 or b with
    # probabilities 1/4, 1/2, 1/4: both 2.5 % and 97.5 % quantiles are the seeds themselves
    iv = intervals(seeds_only([12.0, 15.0]))["v"]
    assert (iv.lo, iv.hi, iv.estimate) == (12.0, 15.0, 13.5)
    assert iv.covers.startswith("seeds only (set-level metric")
    one = intervals(seeds_only([12.0]))["v"]
    assert one.lo is None and one.verdict == NO_INTERVAL and "one seed" in one.covers


def test_seeds_only_difference_with_paired_seeds_spans_the_seed_differences():
    # paired seeds: replicates are means of resampled per-seed differences (1, 3):
    # quantiles 1 and 3, as above
    d = difference(seeds_only([11.0, 13.0]), seeds_only([10.0, 10.0]), "v")
    assert (d.lo, d.hi, d.estimate) == (1.0, 3.0, 2.0) and d.verdict == HIGHER
    assert d.covers.startswith("seeds paired by name (2); test images not resampled")
    none = difference(seeds_only([11.0]), seeds_only([10.0]), "v")
    assert none.verdict == NO_INTERVAL


# --- pooled segmentation scores ------------------------------------------------------------

def two_frames() -> list[np.ndarray]:
    """Frame 1: road 90 of 100 right (10 called car), car 1 of 2 right (1 called road);
    frame 2: road 0 of 10 right (all car), car 50 of 50 right."""
    f1, f2 = np.zeros((19, 20), np.int64), np.zeros((19, 20), np.int64)
    f1[ROAD, ROAD], f1[ROAD, CAR], f1[CAR, CAR], f1[CAR, ROAD] = 90, 10, 1, 1
    f2[ROAD, CAR], f2[CAR, CAR] = 10, 50
    return [f1, f2]


def confusion_sample(frames: list[np.ndarray], official=False) -> Sample:
    counts = per_image.confusion_counts(frames, 19, official=official)
    arrays = {k: counts[k] for k in per_image.CONFUSION_ARRAYS}
    score = (official_scores if official else scores)(sum(f for f in frames if f is not None))
    values = {c: np.array([score[c]]) for c in ("per_pixel_acc", "per_class_acc", "class_iou")}
    return Sample(("seed-0",), values, ("1", "2"), counts["kind"], (arrays,))


def test_pooled_ratio_is_recomputed_from_sums_not_averaged_per_frame():
    sample = confusion_sample(two_frames())
    once = sample.replicates(np.zeros((1, 1), int), np.ones((1, 2), int))  # the full sample
    # pooled by hand: road tp 90, truth 110, predicted 91 -> IoU 90 / 111;
    # car tp 51, truth 52, predicted 10 + 1 + 10 + 50 = 71 -> IoU 51 / 72
    assert once["class_iou"][0] == pytest.approx((90 / 111 + 51 / 72) / 2)
    assert once["per_pixel_acc"][0] == pytest.approx(141 / 162)
    assert once["per_class_acc"][0] == pytest.approx((90 / 110 + 51 / 52) / 2)
    # not the mean of per-frame IoUs: frame 1 (90/101 + 1/12) / 2, frame 2 (0 + 50/60) / 2
    per_frame = ((90 / 101 + 1 / 12) / 2 + (0 + 50 / 60) / 2) / 2
    assert abs(once["class_iou"][0] - per_frame) > 0.1
    # frame 2 drawn twice: counts add (road tp 90, truth 120, predicted 91: union 121;
    # car tp 101, truth 102, predicted 11 + 120 = 131: union 132)
    twice = sample.replicates(np.zeros((1, 1), int), np.array([[1, 2]]))
    assert twice["class_iou"][0] == pytest.approx((90 / 121 + 101 / 132) / 2)


def test_official_arithmetic_on_the_full_sample_and_a_dropped_frame():
    frames = [f[:, :19] for f in two_frames()]
    sample = confusion_sample([frames[0], None], official=True)  # frame 2 dropped: zeros
    once = sample.replicates(np.zeros((1, 1), int), np.ones((1, 2), int))
    # official: frame 1 only; every class in the mean (17 absent ones score 0)
    assert once["class_iou"][0] == pytest.approx((90 / 101 + 1 / 12) / 19)
    assert once["per_pixel_acc"][0] == pytest.approx(91 / 102)


def test_pairing_narrows_the_interval_when_images_share_their_difficulty():
    # image difficulty sd 3 shared by both experiments, own image effects sd 0.5:
    # paired, the difficulty cancels (var 2 * 0.25 / N); unpaired it stays
    # (var 2 * (9 + 0.25) / N): the paired interval is sqrt(0.5 / 18.5) = 0.16 as wide
    rng = np.random.default_rng(5)
    difficulty = rng.normal(0, 3, 100)
    x = [difficulty + rng.normal(0, 0.5, 100) for _ in range(2)]
    paired = difference(mean_sample(x[0][None]), mean_sample(x[1][None]), "v")
    other_names = [f"other-{i}" for i in range(100)]
    unpaired = difference(mean_sample(x[0][None]), mean_sample(x[1][None], other_names), "v")
    assert unpaired.covers.endswith("test images resampled independently (different test sets)")
    assert (paired.hi - paired.lo) < 0.3 * (unpaired.hi - unpaired.lo)


def test_pairing_is_by_seed_and_image_name_not_position():
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (2, 40))
    a = mean_sample(x)
    b = mean_sample(x[::-1, ::-1], images=[str(i) for i in range(39, -1, -1)],
                    seeds=["seed-1", "seed-0"])  # the same scores, listed backwards
    d = difference(a, b, "v")
    assert (d.lo, d.hi) == (pytest.approx(0.0, abs=1e-12), pytest.approx(0.0, abs=1e-12))
    c = mean_sample(x, seeds=["seed-0", "seed-7"])
    assert difference(a, c, "v").covers.startswith("seeds resampled independently (2 vs 2)")
