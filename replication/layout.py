"""Where the pipeline's stages read and write, relative to the repository root.

dvc.yaml names the same folders (tests/test_pipeline.py checks that they agree):
    data/<dataset>/                       download@<dataset>   (synthetic at smoke scale)
    datasets/                             inputs no stage can fetch (datasets.dvc)
    runs/<experiment>/seed-<k>/           train@<experiment>   checkpoints, config.yaml
    logs/<experiment>/seed-<k>/           train@<experiment>   DVCLive loss curves, samples
    generated/<experiment>/seed-<k>/      generate@<experiment> one PNG per test image
    metrics/<experiment>/train.json       train@<experiment>   small, kept in git
    metrics/<experiment>/scores.json      score@<experiment>   small, kept in git
    runs/segmenter/                       segmenter            FCN-score segmenters
    metrics/ground-truth/scores.json      segmenter            real photos scored
    data/manual_inputs.json               inputs               what datasets/ holds (hashes)
    data/weights/                         weights              the authors' FCN-8s, weights.json
"""

from __future__ import annotations

from pathlib import Path

INPUTS = Path("datasets")
RUNS = Path("runs")
LOGS = Path("logs")
GENERATED = Path("generated")
METRICS = Path("metrics")
SEGMENTER = RUNS / "segmenter"
MANUAL_INPUTS_RECORD = Path("data/manual_inputs.json")
WEIGHTS = Path("data/weights")  # the `weights` stage: downloaded FCN-8s, weights.json


def run_dir(experiment: str, seed: int) -> Path:
    return RUNS / experiment / f"seed-{seed}"


def log_dir(experiment: str, seed: int) -> Path:
    return LOGS / experiment / f"seed-{seed}"


def generated_dir(experiment: str, seed: int) -> Path:
    return GENERATED / experiment / f"seed-{seed}"


def train_metrics(experiment: str) -> Path:
    return METRICS / experiment / "train.json"


def score_metrics(experiment: str) -> Path:
    return METRICS / experiment / "scores.json"


# Source files that define the training computation (paths inside the package). The
# train stages depend on exactly these (dvc.yaml), and a checkpoint records their hash:
# a persisted checkpoint made by other code is not resumed by the pipeline.
TRAIN_CODE = ("models", "data/paired.py", "train.py", "fast.py", "distributed.py", "config.py",
              "checkpoints.py")
