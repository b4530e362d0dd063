"""The rule behind every interval and verdict of the tables (docs/statistics.md).

A number of ours is the mean over seeds of each seed's score on the test images. Two
things make it uncertain: other seeds would train other networks, and another sample
of test images of the same kind would score them differently. Both are resampled, by a
hierarchical bootstrap (Davison & Hinkley 1997, §3.8; Field & Welsh 2007):

- per replicate, draw S seeds with replacement from the S seeds, then N test images
  with replacement from the N, recompute each drawn seed's score on the drawn images
  (a pooled segmentation score as a ratio of resampled sums, metrics/per_image.py) and
  average over the drawn seeds;
- every seed is scored on the SAME test images (seeds and images are crossed, not
  nested), so one image draw serves all the seeds of a replicate, and both experiments
  of a comparison (the two-way "pigeonhole" bootstrap of Owen 2007; McCullagh 2000):
  drawing the images anew for each seed would treat one test set as S independent
  ones and shrink the image part of the interval by up to sqrt(S);
- the interval is the percentile interval (Efron & Tibshirani 1993, ch. 13): the
  (1 - level) / 2 and (1 + level) / 2 quantiles of the replicates;
- a comparison resamples the DIFFERENCE of two experiments with the same draw for both:
  images paired by name where both were scored on the same test images, seeds paired
  by seed name where both have the same seeds (else each side draws its own); the
  verdict is "higher" / "lower" when the difference's interval excludes zero, "within
  noise" when it holds zero;
- set-level metrics (FID/KID, colour histograms: one number per image set) and scores
  without per-image files get the seed level only, and say so.

What it does not account for is in docs/statistics.md (few seeds, one test set, the
percentile interval's small-sample bias, the segmenter's own error).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from replication.metrics import per_image

HIGHER, LOWER, WITHIN_NOISE, NO_INTERVAL = "higher", "lower", "within noise", "no interval"


@dataclass(frozen=True)
class Bootstrap:
    """How many replicates, from which random stream, at which level: printed with every
    table and kept in its CSV. Efron & Tibshirani (1993, ch. 19) ask for B >= 1000 for
    percentile intervals; 2000 keeps the Monte Carlo error of a 2.5 % quantile small
    next to the interval's width."""
    resamples: int = 2000
    seed: int = 0  # numpy default_rng seed of the draws: the same tables every render
    level: float = 0.95

    def describe(self) -> str:
        return (f"{self.level:.0%} percentile intervals of a hierarchical bootstrap (seeds, "
                f"then test images): {self.resamples} resamples, resampling seed {self.seed}")


@dataclass(frozen=True)
class Sample:
    """One experiment's scores of one metric over its seeds, as the bootstrap sees them.

    values: column -> (S,) the per-seed numbers (scores.json). With per-image scores,
    images names the N test images and arrays holds, per seed, the (N, ...) arrays of
    per_image.py of `kind`; without them (a set-level metric, or no per-image file)
    only the seeds are resampled and `without_images` says why."""
    seeds: tuple[str, ...]
    values: dict[str, np.ndarray]
    images: tuple[str, ...] | None = None
    kind: str | None = None
    arrays: tuple[dict[str, np.ndarray], ...] = field(default=(), repr=False)
    without_images: str = "set-level metric"

    @property
    def per_image(self) -> bool:
        return self.images is not None

    def estimate(self, column: str) -> float:
        return float(np.mean(self.values[column]))

    def aligned(self, seeds: tuple[str, ...] | None = None,
                images: tuple[str, ...] | None = None) -> "Sample":
        """The same scores with seeds and images in another order (paired draws)."""
        s = [self.seeds.index(k) for k in seeds] if seeds else list(range(len(self.seeds)))
        i = [self.images.index(n) for n in images] if images else None
        arrays = tuple({k: (a[i] if i is not None else a) for k, a in self.arrays[j].items()}
                       for j in s) if self.arrays else ()
        return replace(self, seeds=tuple(self.seeds[j] for j in s),
                       values={c: v[s] for c, v in self.values.items()},
                       images=tuple(images) if images else self.images, arrays=arrays)

    def replicates(self, seed_draw: np.ndarray, image_counts: np.ndarray | None
                   ) -> dict[str, np.ndarray]:
        """(B,) per column: the mean over the drawn seeds (seed_draw: (B, S) indices) of
        each drawn seed's score on the drawn images (image_counts: (B, N), how often
        each image is drawn; None: the seeds' own numbers, no image resampled)."""
        if image_counts is None or not self.per_image:
            return {c: v[seed_draw].mean(1) for c, v in self.values.items()}
        weights = image_counts.astype(np.float64)
        B, n = weights.shape
        scored = []  # per seed: column -> (B,) its score on each replicate's images
        for arrays in self.arrays:
            with np.errstate(invalid="ignore"):  # 0 x inf (an identical image's PSNR)
                totals = {k: (weights @ a.reshape(n, -1).astype(np.float64)).reshape(
                    (B,) + a.shape[1:]) for k, a in arrays.items() if k != "kind"}
            scored.append(per_image.columns(self.kind, totals, n))
        out = {}
        for column in self.values:
            per_seed = np.stack([s[column] for s in scored])  # (S, B)
            out[column] = per_seed[seed_draw.T, np.arange(B)].mean(0)
        return out


@dataclass(frozen=True)
class Interval:
    """A number (or a difference) with its interval and what the interval accounts for;
    lo and hi are None where there is no interval (`covers` then says why)."""
    estimate: float
    lo: float | None
    hi: float | None
    covers: str

    @property
    def verdict(self) -> str:
        """For a difference: HIGHER / LOWER when the interval excludes zero, else
        WITHIN_NOISE; NO_INTERVAL without one."""
        if self.lo is None:
            return NO_INTERVAL
        return HIGHER if self.lo > 0 else LOWER if self.hi < 0 else WITHIN_NOISE


# --- one experiment -----------------------------------------------------------------------

def intervals(sample: Sample, boot: Bootstrap = Bootstrap()) -> dict[str, Interval]:
    """Every column's interval from one set of replicates (one draw for all columns)."""
    rng = np.random.default_rng(boot.seed)
    seeds = rng.integers(0, len(sample.seeds), (boot.resamples, len(sample.seeds)))
    counts = _image_draw(rng, boot, len(sample.images)) if sample.per_image else None
    replicates = sample.replicates(seeds, counts)
    covers = _covers(sample)
    fixed = not sample.per_image and len(sample.seeds) < 2
    return {c: _interval(sample.estimate(c), replicates[c], boot, covers,
                         None if not fixed else f"no interval: one seed, {sample.without_images}")
            for c in sample.values}


def _covers(sample: Sample) -> str:
    if sample.per_image:
        return ("seeds and test images" if len(sample.seeds) > 1 else
                "test images only (one seed: training randomness not included)")
    return f"seeds only ({sample.without_images}: test-image sampling not included)"


# --- two experiments ----------------------------------------------------------------------

def difference(a: Sample, b: Sample, column: str, boot: Bootstrap = Bootstrap()) -> Interval:
    """a − b on `column`, its interval from replicates of the difference (one draw for
    both sides where they share seeds / test images), and how they were paired."""
    rng = np.random.default_rng(boot.seed)
    B = boot.resamples
    paired_seeds = set(a.seeds) == set(b.seeds)
    if paired_seeds:
        b = b.aligned(seeds=a.seeds)
    paired_images = a.per_image and b.per_image and set(a.images) == set(b.images)
    if paired_images:
        b = b.aligned(images=a.images)
    seeds_a = rng.integers(0, len(a.seeds), (B, len(a.seeds)))
    seeds_b = seeds_a if paired_seeds else rng.integers(0, len(b.seeds), (B, len(b.seeds)))
    counts_a = _image_draw(rng, boot, len(a.images)) if a.per_image else None
    counts_b = counts_a if paired_images else (
        _image_draw(rng, boot, len(b.images)) if b.per_image else None)
    replicates = (a.replicates(seeds_a, counts_a)[column]
                  - b.replicates(seeds_b, counts_b)[column])
    fixed = (not a.per_image and not b.per_image and len(a.seeds) < 2 and len(b.seeds) < 2)
    return _interval(a.estimate(column) - b.estimate(column), replicates, boot,
                     _pairing(a, b, paired_seeds, paired_images),
                     "no interval: one seed each and no per-image scores" if fixed else None)


def _pairing(a: Sample, b: Sample, paired_seeds: bool, paired_images: bool) -> str:
    if paired_seeds:
        seeds = ("one seed each: training randomness not included" if len(a.seeds) < 2
                 else f"seeds paired by name ({len(a.seeds)})")
    else:
        seeds = f"seeds resampled independently ({len(a.seeds)} vs {len(b.seeds)})"
    if paired_images:
        images = f"test images paired by name ({len(a.images)})"
    elif a.per_image and b.per_image:
        images = "test images resampled independently (different test sets)"
    elif a.per_image or b.per_image:
        fixed = b if a.per_image else a
        images = f"test images resampled on one side only (the other: {fixed.without_images})"
    else:
        images = f"test images not resampled ({a.without_images})"
    return f"{seeds}; {images}"


# --- shared -------------------------------------------------------------------------------

def _image_draw(rng: np.random.Generator, boot: Bootstrap, n: int) -> np.ndarray:
    """(B, N) counts: how often each of the N images is drawn in each replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=boot.resamples)


def _interval(estimate: float, replicates: np.ndarray, boot: Bootstrap, covers: str,
              none: str | None) -> Interval:
    if none is None and not np.isfinite(replicates).all():
        none = "no interval: some resamples have no finite value"
    if none is not None:
        return Interval(estimate, None, None, none)
    tail = (1 - boot.level) / 2
    lo, hi = np.quantile(replicates, [tail, 1 - tail])
    return Interval(estimate, float(lo), float(hi), covers)
