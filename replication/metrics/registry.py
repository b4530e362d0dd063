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

from replication.config.schema import ExperimentConfig
from replication.config.scoring import ScoringConfig
from replication.metrics.protocols import PROTOCOLS, protocols_for


def _functions() -> dict[str, Callable]:
    """The metric functions by name. Their modules import torch, so they are imported on
    first use: `status` and `tables` read only the names and the rule below (their
    --help stays fast)."""
    from replication.metrics.fcn_score import (
        fcn_score_corrected,
        fcn_score_fallback,
        fcn_score_official,
        labels_score,
    )
    from replication.metrics.image_stats import color_hist, fid_kid
    from replication.metrics.pixel import pixel_accuracy, psnr_ssim
    return {"fcn_score_official": fcn_score_official, "fcn_score_corrected": fcn_score_corrected,
            "fcn_score_fallback": fcn_score_fallback, "labels_score": labels_score,
            "fid_kid": fid_kid, "color_hist": color_hist, "psnr_ssim": psnr_ssim,
            "pixel_accuracy": pixel_accuracy}


class _Metrics(Mapping):
    """METRICS: name -> function, with the names known before any import."""
    names = PROTOCOLS

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


def metrics_for(cfg: ExperimentConfig, scoring: ScoringConfig) -> list[str]:
    """protocols.protocols_for, told whether the exact FCN-score can run here."""
    if cfg.data.dataset == "cityscapes" and cfg.data.direction == "BtoA" \
            and cfg.name not in scoring.metrics:
        from replication.metrics.fcn_score import missing_exact_inputs  # imports torch
        return protocols_for(cfg, scoring, exact_fcn=missing_exact_inputs(cfg, scoring) is None)
    return protocols_for(cfg, scoring, exact_fcn=False)


def scored_split(cfg: ExperimentConfig) -> str:
    return cfg.generate.split or cfg.data.test_split  # as generate.py chooses it
