"""Per-test-image scores: what scoring keeps so that a table's number can be recomputed
on any resample of the test images (replication/results/statistics.py, docs/statistics.md).

Two kinds, by how a metric turns its images into one number:

    mean        one value per image (PSNR, SSIM, map pixel accuracy, output diversity);
                the number is their mean
    confusion   per frame and class: true positives `tp`, truth pixels `truth` (the
                class's truth row, "other" predictions included) and predicted pixels
                `pred` (the class's prediction column); the number is a ratio of SUMS
                over frames (segmentation.scores pools one confusion matrix), so a
                resample sums the drawn frames' counts and recomputes the ratio, never
                averages per-frame ratios (docs/statistics.md)
    confusion_official   the same counts of the official fast_hist (a frame it drops
                counts zero everywhere, as in the paper's code), scored with the
                official arithmetic (segmentation.official_scores)

Set-level metrics (FID/KID, colour histograms) have no per-image number and keep nothing.

Files: metrics/<experiment>/per_image/seed-<k>.npz beside scores.json, written by
`replication score` (test-time study variants: per_image/test-time/<variant>/seed-<k>.npz).
One array `images` (the test pair's name, as generated/<experiment>/seed-<k>/<name>.png:
two experiments are paired image by image on it), then `<metric>/kind` and
`<metric>/<array>` per metric. Why .npz and not JSON: the counts are (frames, 19)
integers per array, 3 arrays per protocol; as JSON text that is ~0.2 MB per protocol
and seed on the 500 Cityscapes frames, compressed binary ~50 kB (measured on synthetic
counts: 61 kB per seed for one FCN protocol plus PSNR/SSIM), exact
(integers, float64 bit for bit), and loads without pickle (allow_pickle=False).
scores.json stays small and human-readable. Entries are written with a fixed
timestamp, so the same scores give the same bytes (git and DVC see no change).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from replication.core.errors import ScoringError
from replication.core.fileio import atomic_path

PER_IMAGE = "per_image"  # the key a metric record carries its arrays under (score.py
# moves them out of the record before scores.json is written)
KINDS = ("mean", "confusion", "confusion_official")
CONFUSION_ARRAYS = ("tp", "truth", "pred")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: no wall-clock in the file


def mean_values(**arrays) -> dict:
    """A `mean`-kind record: one float per image for each named number."""
    return {"kind": "mean", **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()}}


def confusion_counts(matrices: list[np.ndarray | None], num_classes: int,
                     official: bool = False) -> dict:
    """A `confusion`-kind record from per-frame matrices: (C, C + 1) corrected ones
    (segmentation.confusion_matrix) or (C, C) official ones (None: a dropped frame)."""
    C = num_classes
    frames = [np.zeros((C, C), np.int64) if m is None else np.asarray(m) for m in matrices]
    tp = np.stack([np.diag(m[:, :C]) for m in frames])
    truth = np.stack([m.sum(1) for m in frames])
    pred = np.stack([m[:, :C].sum(0) for m in frames])
    # a frame's counts fit int32 (a 1024x2048 frame has 2^21 pixels): half the bytes
    return {"kind": "confusion_official" if official else "confusion",
            "tp": tp.astype(np.int32), "truth": truth.astype(np.int32),
            "pred": pred.astype(np.int32)}


def columns(kind: str, totals: dict[str, np.ndarray], n: float) -> dict[str, np.ndarray]:
    """The metric's numbers from image totals (sums of each array over the drawn images,
    any leading shape) and the number of drawn images `n`."""
    if kind == "mean":
        return {name: total / n for name, total in totals.items()}
    if kind in ("confusion", "confusion_official"):
        return confusion_columns(totals["tp"], totals["truth"], totals["pred"],
                                 official=kind == "confusion_official")
    raise ScoringError(f"unknown per-image kind {kind!r}; known: {list(KINDS)}")


def confusion_columns(tp, truth, pred, official: bool = False) -> dict[str, np.ndarray]:
    """Per-pixel acc, per-class acc and class IoU from pooled counts (..., C): the
    arithmetic of segmentation.scores (classes absent from truth, or from truth and
    prediction, left out of the means) or, official=True, of official_scores (every
    denominator + 1e-12, every class in the mean)."""
    tp, truth, pred = (np.asarray(a, dtype=np.float64) for a in (tp, truth, pred))
    union = truth + pred - tp
    if official:
        eps = 1e-12
        return {"per_pixel_acc": tp.sum(-1) / (truth.sum(-1) + eps),
                "per_class_acc": (tp / (truth + eps)).mean(-1),
                "class_iou": (tp / (union + eps)).mean(-1)}
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"per_pixel_acc": tp.sum(-1) / truth.sum(-1),
                "per_class_acc": _present_mean(np.where(truth > 0, tp / truth, np.nan)),
                "class_iou": _present_mean(np.where(union > 0, tp / union, np.nan))}


def _present_mean(per_class: np.ndarray) -> np.ndarray:
    present = ~np.isnan(per_class)
    count = present.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(present, per_class, 0).sum(-1) / count, np.nan)


# --- the files -------------------------------------------------------------------------

def save(path: str | Path, images: list[str], metrics: dict[str, dict]) -> None:
    """metrics: {metric name: {"kind": ..., array name: (N, ...) array}}; atomic."""
    entries = {"images": np.asarray(images, dtype=str)}
    for metric, record in metrics.items():
        for name, value in record.items():
            entries[f"{metric}/{name}"] = np.asarray(value)
            if name != "kind" and len(value) != len(images):
                raise ScoringError(f"{metric}/{name} has {len(value)} entries for "
                                   f"{len(images)} images")
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, array in entries.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=False)


def load(path: str | Path) -> tuple[list[str], dict[str, dict]]:
    """(image names, {metric: {"kind": str, array name: array}}) of a saved file."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = [str(n) for n in npz["images"]]
            metrics: dict[str, dict] = {}
            for key in npz.files:
                if key == "images":
                    continue
                metric, _, name = key.rpartition("/")
                value = npz[key]
                metrics.setdefault(metric, {})[name] = str(value) if name == "kind" else value
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ScoringError(f"{path}: unreadable per-image scores ({err}); rerun "
                           "`replication score`") from None
    return images, metrics
