"""`replication score`: every seed of one experiment -> metrics/<experiment>/scores.json.

Which metrics run is `registry.metrics_for` (the rule, or params `scoring.metrics`).
The file (read by the tables):
    {"experiment", "scale", "task": {"dataset", "direction", "split", "images"},
     "seeds": {"seed-<k>": {"<metric>": {flat record}, ...}, ...},
     "summary": {"<metric>/<key>": {"mean", "std", "n"}},  # numeric keys across seeds;
                                                          # std: sample (ddof 1), null if n < 2
     "machine": {"cpu", "threads", "gpu", "torch", "python"},  # what computed it
     "timing": {"seconds", "images", "seconds_per_image"}}
Undefined numbers (a class absent everywhere) are null: JSON has no NaN.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from pathlib import Path

from replication import layout
from replication.devices import machine
from replication.config import ExperimentConfig
from replication.params import active_scale, load_experiment, load_params, seed_option
from replication.fast import fp32_exact
from replication.fileio import write_json
from replication.metrics.headline import write_headline
from replication.metrics.registry import metrics_for, run_metric
from replication.metrics.session import Session
from replication.metrics.settings import ScoringConfig, load_scoring


def score_experiment(cfg: ExperimentConfig, scoring: ScoringConfig, scale: str,
                     seeds: list[int] | None = None, models: dict | None = None) -> dict:
    """Score generated/<experiment>/seed-<k>/ for every seed against the real test split."""
    folders = {f"seed-{s}": layout.generated_dir(cfg.name, s) for s in (seeds or cfg.seeds)}
    with fp32_exact(), Session(cfg, scoring, models) as session:
        return score_folders(session, scale, folders, metrics_for(cfg, scoring))


def score_folders(session: Session, scale: str, folders: dict[str, Path],
                  metric_names: list[str]) -> dict:
    """The scores.json record of `metric_names` on each folder (keyed "seed-<k>")."""
    began = time.perf_counter()
    for folder in folders.values():  # fail on a missing or stray image before any scoring
        session.generated_files(folder)
    per_seed = {}
    for seed, folder in folders.items():
        per_seed[seed] = {name: run_metric(name, session, folder) for name in metric_names}
        print(f"{session.cfg.name} {seed}: " + "; ".join(
            _headline(name, record) for name, record in per_seed[seed].items()), flush=True)
    seconds = time.perf_counter() - began
    images = len(session.names) * len(folders)
    task = {"dataset": session.cfg.data.dataset, "direction": session.cfg.data.direction,
            "split": session.split, "images": len(session.names),
            "source": session.cfg.data.source,
            "max_images": session.cfg.generate.max_images}
    return finite({"experiment": session.cfg.name, "scale": scale, "task": task,
                   "seeds": per_seed, "summary": summarize(per_seed),
                   "machine": machine(session.device),
                   "timing": {"seconds": round(seconds, 3), "images": images,
                              "seconds_per_image": round(seconds / images, 5)}})


def summarize(per_seed: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """{"<metric>/<key>": mean, sample std (ddof 1; None when n < 2), n} over the seeds
    for every numeric key; booleans, strings and null values are left out."""
    values: dict[str, list[float]] = {}
    for record in per_seed.values():
        for metric, flat in record.items():
            for key, value in flat.items():
                if _is_number(value):
                    values.setdefault(f"{metric}/{key}", []).append(float(value))
    return {key: {"mean": statistics.fmean(vs),
                  "std": statistics.stdev(vs) if len(vs) > 1 else None, "n": len(vs)}
            for key, vs in values.items()}


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def finite(obj):
    """NaN and infinities -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _headline(name: str, record: dict) -> str:
    shown = [k for k in ("per_pixel_acc", "per_class_acc", "class_iou", "fid", "kid_mean",
                         "psnr", "ssim", "pixel_acc", "L", "a", "b") if k in record]
    if not shown:
        return f"{name}: {record.get('reason', 'done')}"
    return f"{name} " + " ".join(f"{k}={_fmt(record[k])}" for k in shown)


def _fmt(value) -> str:
    return f"{value:.4g}" if _is_number(value) else str(value)


# --- command line ------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml",
                        help="params file with the experiments and the `scoring` section "
                             "(default: params.yaml)")
    parser.add_argument("--experiment", "-e", required=True,
                        help="experiment name from params.yaml `experiments`")
    parser.add_argument("--seed", type=seed_option, action="append",
                        help="score this training seed only (repeatable); default: all seeds")
    parser.add_argument("--device", help="overrides scoring.device: auto | cpu | cuda | cuda:N")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    cfg = load_experiment(args.params, args.experiment)
    scoring = load_scoring(params)
    if args.device:
        scoring = dataclasses.replace(scoring, device=args.device)
    record = score_experiment(cfg, scoring, active_scale(params), args.seed)
    out = layout.score_metrics(cfg.name)
    write_json(out, record)
    write_headline(cfg.name, record)  # the few numbers DVC shows (dvc.yaml `metrics`)
    timing = record["timing"]
    print(f"{cfg.name}: {timing['images']} images in {timing['seconds']:.1f} s "
          f"({timing['seconds_per_image']:.3f} s/image) -> {out}")
    return 0
