"""Scoring protocols by name (as StyleGAN3's metric_main) and the rule that picks them.

`METRICS[name](session, folder)` scores one folder of generated PNGs and returns a FLAT
dict of numbers and strings that always says which protocol and which weights or
segmenter produced it (fcn_score.py, image_stats.py; the shared cache: session.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from replication.config import ExperimentConfig
from replication.errors import ConfigError
from replication.metrics.settings import ScoringConfig


def _functions() -> dict[str, Callable]:
    """The metric functions by name. Their modules import torch, so they are imported on
    first use: `status` and `tables` read only the names and the rule below (their
    --help stays fast)."""
    from replication.metrics.fcn_score import (fcn_score_corrected, fcn_score_fallback,
                                               fcn_score_official, labels_score)
    from replication.metrics.image_stats import color_hist, fid_kid
    from replication.metrics.pixel import pixel_accuracy, psnr_ssim
    return {"fcn_score_official": fcn_score_official, "fcn_score_corrected": fcn_score_corrected,
            "fcn_score_fallback": fcn_score_fallback, "labels_score": labels_score,
            "fid_kid": fid_kid, "color_hist": color_hist, "psnr_ssim": psnr_ssim,
            "pixel_accuracy": pixel_accuracy}


class _Metrics(Mapping):
    """METRICS: name -> function, with the names known before any import."""
    names = ("fcn_score_official", "fcn_score_corrected", "fcn_score_fallback", "labels_score",
             "fid_kid", "color_hist", "psnr_ssim", "pixel_accuracy")

    def __getitem__(self, name: str) -> Callable:
        if name not in self.names:
            raise KeyError(name)
        return _functions()[name]

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


METRICS: Mapping[str, Callable] = _Metrics()


def run_metric(name: str, session, folder: Path) -> dict:
    """METRICS[name] with its wall time (seconds) added to the record."""
    began = time.perf_counter()
    record = METRICS[name](session, Path(folder))
    return {**record, "seconds": round(time.perf_counter() - began, 3)}


def check_names(scoring: ScoringConfig) -> None:
    """params `scoring.metrics` names only protocols of METRICS."""
    for name, chosen in scoring.metrics.items():
        unknown = [m for m in chosen if m not in METRICS]
        if unknown:
            raise ConfigError(f"scoring.metrics.{name}={chosen!r}: {unknown[0]!r} is not one of "
                              f"{sorted(METRICS)}")


def metrics_for(cfg: ExperimentConfig, scoring: ScoringConfig) -> list[str]:
    """The rule (docs/protocols.md), unless params `scoring.metrics` names this experiment:

    cityscapes labels -> photo (BtoA): the FCN score (exact when the caffemodel and the
        gtFine val labelIds + val_frames.txt are present, else the fallback segmenter),
        FID/KID and the Lab colour histograms (Fig. 7d);
    cityscapes photo -> labels (AtoB): labels_score (Table 6);
    every other task: FID/KID (the paper's AMT studies cannot be rerun by a program);
    then, for every task, psnr_ssim: it needs no weights, so each task has a number on
    any machine; maps photo -> map (AtoB) then pixel_accuracy (colour within a
    tolerance; pixel.py).
    """
    check_names(scoring)
    if cfg.name in scoring.metrics:
        return list(scoring.metrics[cfg.name])
    if cfg.data.dataset == "cityscapes" and cfg.data.direction == "BtoA":
        from replication.metrics.fcn_score import missing_exact_inputs  # imports torch
        missing = missing_exact_inputs(cfg, scoring)
        fcn_scores = ["fcn_score_fallback"] if missing else ["fcn_score_official",
                                                             "fcn_score_corrected"]
        return [*fcn_scores, "fid_kid", "color_hist", "psnr_ssim"]
    if cfg.data.dataset == "cityscapes":
        return ["labels_score", "psnr_ssim"]
    if cfg.data.dataset == "maps" and cfg.data.direction == "AtoB":
        return ["fid_kid", "psnr_ssim", "pixel_accuracy"]
    return ["fid_kid", "psnr_ssim"]


def scored_split(cfg: ExperimentConfig) -> str:
    return cfg.generate.split or cfg.data.test_split  # as generate.py chooses it
