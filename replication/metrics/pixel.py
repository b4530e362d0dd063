"""Weight-free metrics that compare each generated image with its own real target.

    psnr_ssim       PSNR and SSIM per image (scikit-image), averaged over the images
    pixel_accuracy  maps photo -> map: share of pixels whose colour is within a tolerance

Not in the paper (its maps and facades results are AMT studies, which no program can
rerun), but later image-to-image papers report PSNR/SSIM on facades and maps, and
per-pixel colour accuracy is a common measure of generated map tiles. Neither needs
downloaded weights, so every task gets a number on any machine. Both scores depend on
their settings (data range, SSIM window and weighting, channels, tolerance): each
record names them, and numbers are comparable only where the settings agree
(docs/protocols.md "PSNR / SSIM" and "Pixel accuracy").

The target is the test pair's real half at the image size, the same one FID and the
colour histograms use: A for BtoA, B for AtoB.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from replication.metrics.per_image import PER_IMAGE, mean_values
from replication.metrics.session import Session

DATA_RANGE = 255  # uint8 images
SSIM_WINDOW = 7  # skimage's default win_size
SSIM_GAUSSIAN = False  # skimage's default: uniform 7x7 window (Wang et al. use a gaussian)
COLOR_TOLERANCE = 16  # pixel_accuracy: max |generated - target| over R, G, B, of 255


def targets(session: Session) -> np.ndarray:
    """(N, S, S, 3) uint8 real targets in pair order: A for BtoA, B for AtoB."""
    a, b = session.halves()
    return a if session.cfg.data.direction == "BtoA" else b


def _reference(session: Session) -> str:
    return f"real {session.split} targets (the same pair's target half) at {session.size} px"


def image_psnr(generated: np.ndarray, target: np.ndarray) -> float:
    """10 log10(255^2 / MSE) over every pixel and RGB channel; inf when MSE is 0."""
    if np.array_equal(generated, target):  # skimage would divide by zero (and warn)
        return math.inf
    return float(peak_signal_noise_ratio(target, generated, data_range=DATA_RANGE))


def image_ssim(generated: np.ndarray, target: np.ndarray) -> float:
    """Mean SSIM over the image, computed per RGB channel and averaged."""
    return float(structural_similarity(target, generated, channel_axis=-1,
                                       data_range=DATA_RANGE, win_size=SSIM_WINDOW,
                                       gaussian_weights=SSIM_GAUSSIAN))


def psnr_ssim(session: Session, folder: Path) -> dict:
    """PSNR (dB) and SSIM of each generated image against its target, then the mean over
    images. An image identical to its target has an infinite PSNR; JSON has no inf and a
    cap would be an invented number, so the mean PSNR is then null and the record counts
    the identical images (`identical_images`) and says so (`psnr_note`)."""
    generated, real = session.read_generated(folder), targets(session)
    psnrs = [image_psnr(g, t) for g, t in zip(generated, real)]
    ssims = [image_ssim(g, t) for g, t in zip(generated, real)]
    identical = sum(math.isinf(p) for p in psnrs)
    finite = [p for p in psnrs if math.isfinite(p)]
    record = {"protocol": "psnr_ssim",
              "psnr": None if identical else float(np.mean(psnrs)),
              "ssim": float(np.mean(ssims)),
              "psnr_std_over_images": float(np.std(finite)) if finite else None,
              "ssim_std_over_images": float(np.std(ssims)),
              "frames": len(psnrs), "identical_images": identical,
              "data_range": DATA_RANGE, "channels": "RGB",
              "psnr_formula": "10 log10(255^2 / MSE), MSE over pixels and RGB channels",
              "ssim_window": SSIM_WINDOW, "ssim_gaussian_weights": SSIM_GAUSSIAN,
              "ssim_K1": 0.01, "ssim_K2": 0.03,  # skimage's defaults
              "ssim_channels": "per RGB channel, averaged (channel_axis=-1)",
              "averaging": "per image, then the mean over images",
              "library": f"scikit-image {skimage.__version__}",
              "reference": _reference(session),
              PER_IMAGE: mean_values(psnr=psnrs, ssim=ssims)}  # an infinite PSNR stays inf
    if identical:
        record["psnr_note"] = (f"{identical} of {len(psnrs)} images identical to their "
                               "targets (MSE 0, PSNR infinite): mean PSNR null")
    return record


def within_tolerance(generated: np.ndarray, target: np.ndarray,
                     tolerance: int = COLOR_TOLERANCE) -> np.ndarray:
    """(..., S, S) bool: max over R, G, B of |generated - target| <= tolerance."""
    diff = np.abs(generated.astype(np.int16) - target.astype(np.int16))
    return diff.max(axis=-1) <= tolerance


def pixel_accuracy(session: Session, folder: Path) -> dict:
    """maps photo -> map: the share of pixels whose generated colour is within
    COLOR_TOLERANCE of the target colour in every channel, pooled over all pixels of all
    images (all images have the same size, so this is also the mean per image)."""
    generated, real = session.read_generated(folder), targets(session)
    hits = within_tolerance(generated, real)
    return {"protocol": "pixel_accuracy", "pixel_acc": float(hits.mean()),
            "pixel_acc_std_over_images": float(hits.mean(axis=(1, 2)).std()),
            "tolerance": COLOR_TOLERANCE,
            "tolerance_rule": f"max over R, G, B of |generated - target| <= "
                              f"{COLOR_TOLERANCE} (of 255)",
            "pixels": int(hits.size), "frames": len(hits),
            "averaging": "pooled over all pixels of all images",
            "reference": _reference(session),
            PER_IMAGE: mean_values(pixel_acc=hits.mean(axis=(1, 2)))}
