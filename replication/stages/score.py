"""`replication score`: score generated images: FCN-score, label scores, FID/KID, PSNR/SSIM, Lab colour.

The command's arguments and run; the work is replication.metrics.score's."""

from __future__ import annotations

import argparse
import dataclasses

from replication.config.params import Params
from replication.config.schema import ExperimentConfig
from replication.config.scoring import ScoringConfig, load_scoring
from replication.core import layout
from replication.core.numerics import fp32_exact
from replication.inference import test_time
from replication.metrics.per_image import PER_IMAGE
from replication.metrics.registry import metrics_for
from replication.metrics.score import diversity, score_folders, write_scores
from replication.metrics.session import Session
from replication.stages.arguments import add_params_argument, seed_option


def score_experiment(cfg: ExperimentConfig, scoring: ScoringConfig, scale: str,
                     seeds: list[int] | None = None, models: dict | None = None) -> dict:
    """Score generated/<experiment>/seed-<k>/ for every seed against the real test split
    (and, when the experiment asked for it, every variant of the test-time study)."""
    seeds = list(seeds or cfg.seeds)
    folders = {f"seed-{s}": layout.generated_dir(cfg.name, s) for s in seeds}
    names = metrics_for(cfg, scoring)
    with fp32_exact(), Session(cfg, scoring, models) as session:
        record = score_folders(session, scale, folders, names)
        if test_time.asked(cfg.generate):
            record["test_time"] = score_test_time(session, seeds, names, record)
    return record


def score_test_time(session: Session, seeds: list[int], metric_names: list[str],
                    main: dict) -> dict:
    """Every variant of the study scored as the tables' images are (the variant that IS
    the tables' generation reuses `main`), and the output diversity of the K dropout
    draws: per image, the per-pixel standard deviation across the draws (ddof 1, uint8
    units, over pixels and RGB channels), averaged."""
    cfg = session.cfg
    variants = {}
    for variant in test_time.variants(cfg.generate):
        setting = {"mode": variant.mode, "batch_size": variant.batch_size,
                   "sample_seed": variant.sample_seed, "description": variant.describe()}
        if test_time.is_main(variant, cfg.generate):  # its scores are the file's "seeds"
            variants[variant.name] = {"setting": setting, "same_as_tables": True}
            continue
        folders = {f"seed-{s}": test_time.folder(cfg.name, variant, cfg.generate, s)
                   for s in seeds}
        record = score_folders(session, main["scale"], folders, metric_names)
        variants[variant.name] = {"setting": setting, "same_as_tables": False,
                                  "seeds": record["seeds"], PER_IMAGE: record[PER_IMAGE]}
    study = {"variants": variants, "samples": test_time.sample_names(cfg.generate)}
    if study["samples"]:
        study["diversity"], study[PER_IMAGE] = diversity(session, seeds, study["samples"])
    return study


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_argument(parser, "the experiments and the `scoring` section")
    parser.add_argument("--experiment", "-e", required=True,
                        help="experiment name from params.yaml `experiments`")
    parser.add_argument("--seed", type=seed_option, action="append",
                        help="score this training seed only (repeatable); default: all seeds")
    parser.add_argument("--device", help="overrides scoring.device: auto | cpu | cuda | cuda:N")


def run(args: argparse.Namespace) -> int:
    params = Params.load(args.params)
    cfg = params.config(args.experiment)
    scoring = load_scoring(params)
    if args.device:
        scoring = dataclasses.replace(scoring, device=args.device)
    record = score_experiment(cfg, scoring, params.scale, args.seed)
    out = layout.score_metrics(cfg.name)
    write_scores(cfg.name, record)
    timing = record["timing"]
    print(f"{cfg.name}: {timing['images']} images in {timing['seconds']:.1f} s "
          f"({timing['seconds_per_image']:.3f} s/image) -> {out}")
    return 0
