"""Toy pairs: the smallest learnable paired dataset, for tests and the benchmark.

A is low-frequency colour blobs, B a fixed channel permutation of A: a pixel-wise map a
small U-Net learns in a few hundred steps, so loss curves fall and a trained model can be
checked against the exact answer. No scenes, no labels, no download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def colour_transform(a: np.ndarray) -> np.ndarray:
    """A fixed, learnable pixel-wise map: a channel permutation.

    A permutation commutes exactly with any per-channel resize, so the pair stays exact
    through the jitter's resize (an inversion would not: rounding differs at .5).
    """
    return a[..., [2, 0, 1]]


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour blobs: learnable by a small U-Net in a few hundred steps."""
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.BILINEAR))


def toy_pair(rng: np.random.Generator, size: int) -> np.ndarray:
    """One A | B pair (uint8, size x 2*size x 3): B = colour_transform(A)."""
    a = smooth_image(rng, size)
    return np.concatenate([a, colour_transform(a)], axis=1)


def write_pairs(root: Path, splits: dict[str, int], size: int = 32, seed: int = 0,
                suffix: str = ".png") -> Path:
    """<root>/<split>/<i><suffix>, i = 0, 1, ...: toy pairs from one generator, in order."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(toy_pair(rng, size)).save(root / split / f"{i}{suffix}")
    return root
