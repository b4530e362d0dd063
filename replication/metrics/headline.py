"""metrics/<experiment>/headline.json: the few numbers `dvc metrics show` and `dvc exp show` list.

scores.json holds every metric of every seed and is what the tables read; DVC declares
only these headline files as metrics (train.json, with its timings, is a plain output),
so the experiment table stays a handful of columns per experiment. Each value is the
mean over seeds (scores.json `summary`), rounded; a key is absent when the experiment
has no such number (a metric not run, or unavailable):

    seg.per_pixel_acc, seg.per_class_acc, seg.class_iou
        Cityscapes labels -> photo: the FCN-score of the paper's protocol
        (fcn_score_official) where it was run, else the fallback segmenter's
        (fcn_score_fallback); photo -> labels: labels_score (Table 6). One key set for
        both, so `dvc metrics show` (one row per file, one column per key) stays narrow.
    fid, kid      FID and the KID subset mean (fid_kid)
    psnr, ssim    PSNR and SSIM (psnr_ssim)
"""

from __future__ import annotations

from pathlib import Path

from replication.core import layout
from replication.core.fileio import write_json

SEGMENTATION = ("per_pixel_acc", "per_class_acc", "class_iou")
# (metric families, preferred first; their keys) -> headline keys
HEADLINE = (
    (("fcn_score_official", "fcn_score_fallback", "labels_score"),
     {f"seg.{k}": k for k in SEGMENTATION}),
    (("fid_kid",), {"fid": "fid", "kid": "kid_mean"}),
    (("psnr_ssim",), {"psnr": "psnr", "ssim": "ssim"}),
)
DECIMALS = {"fid": 2, "psnr": 2, "kid": 5}  # others: 4


def headline(scores: dict) -> dict[str, float]:
    """The headline numbers of one scores.json record (see the module docstring)."""
    summary = scores.get("summary") or {}
    out: dict[str, float] = {}
    for metrics, keys in HEADLINE:
        # the first metric of the group with a number: official before fallback
        metric = next((m for m in metrics
                       if any(_mean(summary, m, k) is not None for k in keys.values())), None)
        for name, key in keys.items():
            value = _mean(summary, metric, key) if metric else None
            if value is not None:
                out[name] = round(value, DECIMALS.get(name, 4))
    return out


def _mean(summary: dict, metric: str, key: str) -> float | None:
    value = (summary.get(f"{metric}/{key}") or {}).get("mean")
    return float(value) if isinstance(value, (int, float)) else None


def write_headline(experiment: str, scores: dict) -> Path:
    path = layout.score_headline(experiment)
    write_json(path, headline(scores))
    return path
