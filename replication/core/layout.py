"""Where the pipeline's stages read and write, relative to the repository root.

dvc.yaml names the same folders (tests/stages/test_pipeline.py checks that they agree):
    data/<dataset>/                       download@<dataset>   (synthetic at smoke scale)
    datasets/                             inputs no stage can fetch (datasets.dvc)
    runs/<experiment>/seed-<k>/           train@<experiment>   checkpoints, config.yaml
    logs/<experiment>/seed-<k>/           train@<experiment>   DVCLive loss curves, samples
    generated/<experiment>/seed-<k>/      generate@<experiment> one PNG per test image,
                                          index.html (results_page.py)
    generated/<experiment>/test-time/<variant>/seed-<k>/  the same, test-time study (test_time.py)
    metrics/<experiment>/train.json       train@<experiment>   small, kept in git
    metrics/<experiment>/scores.json      score@<experiment>   small, kept in git
    metrics/<experiment>/per_image/       score@<experiment>   per-image scores (.npz), in git
    runs/segmenter/                       segmenter            FCN-score segmenters
    metrics/ground-truth/scores.json      segmenter            real photos scored
    data/manual_inputs.json               inputs               what datasets/ holds (hashes)
    data/weights/                         weights              the authors' FCN-8s, weights.json
"""

from __future__ import annotations

import re
from pathlib import Path

from replication.core.errors import ConfigError

DATA = Path("data")  # config.DataConfig.root's default
INPUTS = Path("datasets")
RUNS = Path("runs")
LOGS = Path("logs")
GENERATED = Path("generated")
METRICS = Path("metrics")
SEGMENTER = RUNS / "segmenter"
MANUAL_INPUTS_RECORD = Path("data/manual_inputs.json")
WEIGHTS = Path("data/weights")  # the `weights` stage: downloaded FCN-8s, weights.json
GROUND_TRUTH = "ground-truth"  # metrics/ground-truth/: the real photos scored like generated ones
# the `segmenter` stage's files (metrics/fcn_score.py reads them)
FALLBACK_SEGMENTER = SEGMENTER / "fallback.pt"
FALLBACK_REPORT = SEGMENTER / "fallback.json"
CONVERTED_FCN = SEGMENTER / "fcn8s-cityscapes.pt"
# the per-image results page generate and translate write beside their PNGs
# (results_page.py); scoring reads the test images' PNGs only
RESULTS_PAGE = "index.html"
# What no output folder a command replaces as a whole (generate/translate --out, tables
# --out) may be, hold or lie inside: the datasets, the manual inputs, the trained runs
# and the scores (fileio.check_replaceable), relative to the repository root.
PROTECTED = (DATA, INPUTS, RUNS, METRICS)
# ... and for the commands that install a dataset into data/<name>/ (download, synth):
# data/ is their home, the others stay protected
DATASET_PROTECTED = (INPUTS, RUNS, METRICS)


# An experiment's name is a folder name (runs/, logs/, generated/, metrics/<name>/) and
# part of DVC stage names (train@<name>) that dvc.yaml puts into shell commands: so a
# safe alphabet (no '/', '..', spaces or shell characters; no leading '.' (hidden) or
# '-' (read as an option)).
EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
# A file name may have 255 bytes (NAME_MAX); writers add up to ~90 characters to a name
# for their temporary siblings (`.<name>.<pid>@<host>.<random>.tmp`, host <= 64), and a
# name is a table row's label: 100 leaves that room (the paper's longest is 29).
MAX_NAME_LENGTH = 100
# Names the layout already uses for something else: runs/segmenter/ (the segmenter
# stage), metrics/ground-truth/ (the real photos' scores), and the top-level folders.
RESERVED_NAMES = frozenset({GROUND_TRUTH, SEGMENTER.name, DATA.name, INPUTS.name, RUNS.name,
                            LOGS.name, GENERATED.name, METRICS.name})


def check_experiment_name(name: object, where: str = "experiment") -> str:
    """`name` if it may name an experiment's folders, else one line saying why. params.py
    checks every name of params.yaml; `train`/`generate --data DIR` without --out the
    folder's name, which then names runs/<name>/."""
    rule = (f"use letters, digits, '.', '_' and '-' (not starting with '.' or '-'), at "
            f"most {MAX_NAME_LENGTH} characters")
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError(f"{where} name {name!r} is not a safe folder name: {rule}")
    if len(name) > MAX_NAME_LENGTH:
        raise ConfigError(f"{where} name {name[:20]!r}... has {len(name)} characters: {rule}")
    if name in RESERVED_NAMES:
        raise ConfigError(f"{where} name {name!r} is reserved (the layout uses it: "
                          f"{', '.join(sorted(RESERVED_NAMES))}); choose another")
    return name


def run_dir(experiment: str, seed: int) -> Path:
    return RUNS / experiment / f"seed-{seed}"


def state_path(run: Path) -> Path:
    """A run folder's full training state (exact resume)."""
    return Path(run) / "checkpoints" / "state.pt"


def generator_path(run: Path) -> Path:
    """A run folder's generator snapshot, written once training finishes."""
    return Path(run) / "checkpoints" / "generator.pt"


def log_dir(experiment: str, seed: int) -> Path:
    return LOGS / experiment / f"seed-{seed}"


def generated_dir(experiment: str, seed: int) -> Path:
    return GENERATED / experiment / f"seed-{seed}"


def test_time_dir(experiment: str, variant: str, seed: int) -> Path:
    """Generated images of one variant of the test-time study (replication/inference/test_time.py)."""
    return GENERATED / experiment / "test-time" / variant / f"seed-{seed}"


def train_metrics(experiment: str) -> Path:
    return METRICS / experiment / "train.json"


def score_metrics(experiment: str) -> Path:
    return METRICS / experiment / "scores.json"


def per_image_dir(experiment: str) -> Path:
    """The score stage's per-image scores (metrics/per_image.py): <seed>.npz, and
    test-time/<variant>/<seed>.npz for the test-time study."""
    return METRICS / experiment / "per_image"


def score_headline(experiment: str) -> Path:
    """The score stage's DVC metrics file (metrics/headline.py writes it)."""
    return METRICS / experiment / "headline.json"
