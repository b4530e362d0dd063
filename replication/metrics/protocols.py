"""Which scoring protocols score which experiment (docs/protocols.md): names only.

The rule needs no network and no file, so `tables` can place an experiment in its tables
without depending on the metrics' code (registry.py runs them; registry.metrics_for
tells the rule whether the exact FCN-score can run here).
"""

from __future__ import annotations

from replication.config.schema import ExperimentConfig
from replication.config.scoring import ScoringConfig
from replication.core.errors import ConfigError

PROTOCOLS = ("fcn_score_official", "fcn_score_corrected", "fcn_score_fallback", "labels_score",
             "fid_kid", "color_hist", "psnr_ssim", "pixel_accuracy")


def check_names(scoring: ScoringConfig) -> None:
    """params `scoring.metrics` names only protocols of PROTOCOLS."""
    for name, chosen in scoring.metrics.items():
        unknown = [m for m in chosen if m not in PROTOCOLS]
        if unknown:
            raise ConfigError(f"scoring.metrics.{name}={chosen!r}: {unknown[0]!r} is not one of "
                              f"{sorted(PROTOCOLS)}")


def protocols_for(cfg: ExperimentConfig, scoring: ScoringConfig, *, exact_fcn: bool) -> list[str]:
    """The rule (docs/protocols.md), unless params `scoring.metrics` names this experiment:

    cityscapes labels -> photo (BtoA): the FCN score (`exact_fcn`: the caffemodel and the
        gtFine val labelIds + val_frames.txt are present; else the fallback segmenter),
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
        fcn_scores = ["fcn_score_official", "fcn_score_corrected"] if exact_fcn \
            else ["fcn_score_fallback"]
        return [*fcn_scores, "fid_kid", "color_hist", "psnr_ssim"]
    if cfg.data.dataset == "cityscapes":
        return ["labels_score", "psnr_ssim"]
    if cfg.data.dataset == "maps" and cfg.data.direction == "AtoB":
        return ["fid_kid", "psnr_ssim", "pixel_accuracy"]
    return ["fid_kid", "psnr_ssim"]
