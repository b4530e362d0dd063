"""Shared fixtures: tiny paired datasets written by the tests themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

torch.set_num_threads(1)  # 2-core CI machine; tests run in parallel processes
os.environ.setdefault("DVCLIVE_LOGLEVEL", "ERROR")


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


def write_pairs(root: Path, splits: dict[str, int], size: int = 32, seed: int = 0,
                suffix: str = ".png") -> Path:
    """<root>/<split>/<i><suffix>: A | B with B = colour_transform(A)."""
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            a = smooth_image(rng, size)
            Image.fromarray(np.concatenate([a, colour_transform(a)], axis=1)).save(
                root / split / f"{i}{suffix}")
    return root


@pytest.fixture
def toy_dataset(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "toy", {"train": 8, "test": 3})


def tiny_overrides(**extra) -> dict:
    """Small nets and images so a CPU test trains in seconds (same code paths as 256 px)."""
    cfg = {"generator": {"ngf": 8}, "discriminator": {"ndf": 8},
           "data": {"image_size": 32},
           "train": {"iterations": 12, "log_every": 4, "sample_every": 6, "checkpoint_every": 5}}
    for section, values in extra.items():
        cfg.setdefault(section, {}).update(values)
    return cfg
