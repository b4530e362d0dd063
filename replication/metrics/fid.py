"""FID and KID on pytorch-fid's InceptionV3 pool3 features (docs/protocols.md "FID / KID").

Not in the paper. 500 Cityscapes val images are fewer than the 2048 feature dimensions,
so FID is biased: every result records its sample counts, and KID (unbiased) is
reported next to it. Which weights file is used is weights.py's business (a local file,
pytorch-fid's torch hub cache, a download); image_stats.py turns their absence into a
one-line reason in the result, not a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence
from unittest import mock

import numpy as np
import pytorch_fid.inception
import torch
from PIL import Image
from pytorch_fid.inception import InceptionV3

from replication.config.scoring import INCEPTION_FILE
from replication.core.errors import ScoringError
from replication.data.images import IMAGE_SUFFIXES

FEATURE_EXTRACTOR = "pytorch-fid InceptionV3 pool3 (2048)"
WEIGHTS_FILE = INCEPTION_FILE  # pt_inception-2015-12-05-6726825d.pth
WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub names files by their sha256 prefix
WEIGHTS_PARAM = "scoring.inception_weights"  # params.yaml key for an explicit path


class WeightsUnavailable(ScoringError):
    """The Inception weights file is missing; the message says where to put it."""


# --- distances ----------------------------------------------------------------------

def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)) between two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"Gaussian shapes differ: means {mu1.shape} vs {mu2.shape}, "
                         f"covariances {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * trace_sqrt_product(sigma1, sigma2))


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr(sqrt(S1 S2)) for covariance (PSD) matrices, also singular ones.

    S1 S2 is similar to A = sqrt(S1) S2 sqrt(S1), which is symmetric PSD, so the trace is
    the sum of the square roots of A's eigenvalues (rounding's tiny negatives clipped).
    The sqrtm of the product (pytorch-fid's way) fails when fewer images than the 2048
    feature dimensions make S1 S2 singular, as with 500 Cityscapes frames: sqrtm then
    returns inf or huge imaginary parts, patched there by adding 1e-6 to the diagonals.
    """
    values, vectors = np.linalg.eigh(sigma1)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    eigen = np.linalg.eigvalsh(root @ sigma2 @ root)
    return float(np.sqrt(np.clip(eigen, 0, None)).sum())


def kid_subset_size(n1: int, n2: int, subset_size: int) -> int:
    """At most half the smaller sample (at least 2): subsets of the whole sample would all
    be the same set (500 Cityscapes frames: every one of 100 subsets identical, std 0), so
    the spread over subsets would say nothing. The record states the size used."""
    return min(subset_size, max(2, min(n1, n2) // 2))


def kernel_inception_distance(feats1: np.ndarray, feats2: np.ndarray,
                              subset_size: int, subsets: int,
                              seed: int = 0) -> tuple[float, float]:
    """Mean and std over random subsets of the unbiased MMD^2 (Binkowski et al. 2018)."""
    feats1, feats2 = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if feats1.ndim != 2 or feats2.ndim != 2 or feats1.shape[1] != feats2.shape[1]:
        raise ValueError(f"KID needs two (N, d) feature arrays of equal d, got "
                         f"{feats1.shape} and {feats2.shape}")
    if min(len(feats1), len(feats2)) < 2 or subsets < 1:
        raise ScoringError(f"KID needs >= 2 samples per set and >= 1 subset, got n = "
                           f"{len(feats1)}, {len(feats2)} and subsets={subsets}")
    m = kid_subset_size(len(feats1), len(feats2), subset_size)
    rng = np.random.default_rng(seed)
    mmds = [_unbiased_mmd2(feats1[rng.choice(len(feats1), m, replace=False)],
                           feats2[rng.choice(len(feats2), m, replace=False)])
            for _ in range(subsets)]
    return float(np.mean(mmds)), float(np.std(mmds))


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    def kernel(a, b):  # cubic polynomial kernel k(a, b) = (a.b / d + 1)^3
        return (a @ b.T / a.shape[1] + 1) ** 3

    m = len(x)
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    # Within-set sums drop the diagonal k(x_i, x_i): that is what makes it unbiased.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


# --- Inception features -------------------------------------------------------------

def load_inception(path: str | Path, device: str = "cpu") -> InceptionV3:
    """pytorch-fid's FID InceptionV3 returning pool3 (block 3, 2048-d) features, with the
    weights of `path` (found or downloaded by weights.py)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(f"Inception weights {path} not found; set {WEIGHTS_PARAM} "
                                 f"to the local path of {WEIGHTS_FILE}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ScoringError(f"{path}: cannot read as a torch state dict ({err})") from None
    # pytorch-fid builds its FID blocks (FIDInceptionA/C/E) inside InceptionV3() and
    # then fetches the weights with load_state_dict_from_url. Handing that one call our
    # local file keeps pytorch-fid's own construction and strict loading, and never
    # touches the network.
    with mock.patch.object(pytorch_fid.inception, "load_state_dict_from_url",
                           lambda *args, **kwargs: state_dict):
        try:
            model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        except RuntimeError as err:
            first_line = str(err).splitlines()[0]
            raise ScoringError(f"{path}: not the pytorch-fid Inception weights "
                             f"({first_line})") from None
    return model.to(device).eval()


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ScoringError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ScoringError(f"image folder {folder} has no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def common_image_size(files: Sequence[Path]) -> tuple[int, int]:
    """The one (width, height) of all `files`; mixed sizes are an error."""
    sizes = {}
    for path in files:
        with Image.open(path) as img:  # reads the header only
            sizes.setdefault(img.size, path)
    if len(sizes) > 1:
        (size_a, file_a), (size_b, file_b) = list(sizes.items())[:2]
        raise ScoringError(f"images differ in size: {file_a} is {size_a}, {file_b} is "
                         f"{size_b}; resize them to one resolution first")
    return next(iter(sizes))


def image_files(paths_or_folder) -> list[Path]:
    """The images of a folder (sorted), or the given list of files as paths."""
    if isinstance(paths_or_folder, (str, Path)):
        return list_images(paths_or_folder)
    return [Path(p) for p in paths_or_folder]


def _load_batch(files: Sequence[Path]) -> torch.Tensor:
    # As pytorch-fid: RGB in [0, 1]; InceptionV3 resizes to 299 and rescales itself.
    arrays = [np.asarray(Image.open(p).convert("RGB"), np.float32) / 255 for p in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def image_features(model: InceptionV3, paths_or_folder, batch_size: int = 50,
                   device: str = "cpu") -> np.ndarray:
    """(N, 2048) pool3 features of a folder (or list) of same-size PNG/JPG images."""
    files = image_files(paths_or_folder)
    if not files:
        raise ValueError("image_features got an empty list of images")
    common_image_size(files)
    features = []
    with torch.no_grad():
        for start in range(0, len(files), batch_size):
            batch = _load_batch(files[start:start + batch_size]).to(device)
            pool3 = model(batch)[0]  # (B, 2048, 1, 1)
            features.append(pool3.flatten(1).cpu().double().numpy())
    return np.concatenate(features)


# --- the metric record --------------------------------------------------------------

def fid_kid(generated, real, feature_fn: Callable, *, kid_subsets: int, kid_subset_size: int,
            seed: int = 0) -> dict:
    """FID and KID of generated vs real images (folders or lists of files), on the
    features `feature_fn(files) -> (N, d)` gives (image_stats.py: Inception pool3)."""
    gen_files, real_files = image_files(generated), image_files(real)
    _check_same_resolution(gen_files, real_files)
    feats_gen, feats_real = feature_fn(gen_files), feature_fn(real_files)
    return {"fid": _fid_of_features(feats_gen, feats_real),
            **_kid_record(feats_gen, feats_real, kid_subset_size, kid_subsets, seed),
            "n_generated": len(gen_files), "n_real": len(real_files)}


def _check_same_resolution(gen_files, real_files) -> None:
    # docs/protocols.md: real and generated images at the same resolution (FID is resize-sensitive).
    gen_size, real_size = common_image_size(gen_files), common_image_size(real_files)
    if gen_size != real_size:
        raise ScoringError(f"generated images (e.g. {gen_files[0]}) are {gen_size} but real "
                           f"images (e.g. {real_files[0]}) are {real_size}; save both at one "
                           "resolution")


def _fid_of_features(feats_gen: np.ndarray, feats_real: np.ndarray) -> float:
    for name, feats in (("generated", feats_gen), ("real", feats_real)):
        if len(feats) < 2:
            raise ScoringError(f"FID needs >= 2 {name} images to estimate a covariance")
    return frechet_distance(feats_gen.mean(0), np.cov(feats_gen, rowvar=False),
                            feats_real.mean(0), np.cov(feats_real, rowvar=False))


def _kid_record(feats_gen, feats_real, subset_size, subsets, seed) -> dict:
    mean, std = kernel_inception_distance(feats_gen, feats_real, subset_size, subsets, seed)
    return {"kid_mean": mean, "kid_std": std,
            "kid_subset_size": kid_subset_size(len(feats_gen), len(feats_real), subset_size),
            "kid_subsets": subsets}
