"""`replication score`: every seed of one experiment -> metrics/<experiment>/scores.json.

Which metrics run is `registry.metrics_for` (the rule, or params `scoring.metrics`).
The file (read by the tables):
    {"experiment", "scale", "task": {"dataset", "direction", "split", "images"},
     "seeds": {"seed-<k>": {"<metric>": {flat record}, ...}, ...},
     "summary": {"<metric>/<key>": {"mean", "std", "n"}},  # numeric keys across seeds;
                                                          # std: sample (ddof 1), null if n < 2
     "machine": {"cpu", "isa", "threads", "gpu", "torch", "python"},  # what computed it
     "timing": {"seconds", "images", "seconds_per_image"},
     "test_time": {...}}  # only when the experiment asked for the test-time study:
                          # {"variants": {"<variant>": {"setting", "same_as_tables",
                          #  "seeds"}}, "samples": ["paper", "sample-1", ...],
                          #  "diversity": {"seed-<k>": {...}}}; "seeds" as above, absent
                          #  where same_as_tables (the file's own "seeds" are that variant)
Undefined numbers (a class absent everywhere) are null: JSON has no NaN.
Per-image scores (metrics/per_image.py) go beside it: metrics/<experiment>/per_image/.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from pathlib import Path

import numpy as np

from replication import layout, test_time
from replication.devices import machine
from replication.config import ExperimentConfig
from replication.params import active_scale, load_experiment, load_params, seed_option
from replication.fast import fp32_exact
from replication.fileio import atomic_dir, write_json
from replication.metrics import per_image
from replication.metrics.headline import write_headline
from replication.metrics.per_image import PER_IMAGE
from replication.metrics.registry import metrics_for, run_metric
from replication.metrics.session import Session, read_rgb
from replication.metrics.settings import ScoringConfig, load_scoring


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


def score_folders(session: Session, scale: str, folders: dict[str, Path],
                  metric_names: list[str]) -> dict:
    """The scores.json record of `metric_names` on each folder (keyed "seed-<k>"), with
    the per-image arrays under PER_IMAGE (write_scores puts them in their own files)."""
    began = time.perf_counter()
    for folder in folders.values():  # fail on a missing or stray image before any scoring
        session.generated_files(folder)
    per_seed, arrays = {}, {}
    for seed, folder in folders.items():
        per_seed[seed] = {name: run_metric(name, session, folder) for name in metric_names}
        arrays[seed] = {name: record.pop(PER_IMAGE) for name, record in per_seed[seed].items()
                        if PER_IMAGE in record}
        print(f"{session.cfg.name} {seed}: " + "; ".join(
            _headline(name, record) for name, record in per_seed[seed].items()), flush=True)
    seconds = time.perf_counter() - began
    images = len(session.names) * len(folders)
    task = {"dataset": session.cfg.data.dataset, "direction": session.cfg.data.direction,
            "split": session.split, "images": len(session.names),
            "source": session.cfg.data.source,
            "max_images": session.cfg.generate.max_images}
    return {**finite({"experiment": session.cfg.name, "scale": scale, "task": task,
                      "seeds": per_seed, "summary": summarize(per_seed),
                      "machine": machine(session.device),
                      "timing": {"seconds": round(seconds, 3), "images": images,
                                 "seconds_per_image": round(seconds / images, 5)}}),
            PER_IMAGE: {"images": list(session.names), "seeds": arrays}}


# --- the test-time study (replication/test_time.py, docs/test_time.md) ---------------------

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


def diversity(session: Session, seeds: list[int], samples: list[str]) -> tuple[dict, dict]:
    """({"seed-<k>": {"diversity": mean, "samples": K}}, per-image arrays) of the draws."""
    by_name = {v.name: v for v in test_time.variants(session.cfg.generate)}
    records, arrays = {}, {}
    for s in seeds:
        files = [session.generated_files(test_time.folder(
            session.cfg.name, by_name[name], session.cfg.generate, s)) for name in samples]
        per_image_std = np.array([_pixel_std([read_rgb(f[i]) for f in files])
                                  for i in range(len(session.names))])
        records[f"seed-{s}"] = {"output_diversity": {
            "diversity": float(per_image_std.mean()), "samples": len(samples),
            "definition": "per-pixel std across the K dropout draws (ddof 1, uint8 units, "
                          "RGB), mean over pixels, channels and images"}}
        arrays[f"seed-{s}"] = {"output_diversity": per_image.mean_values(
            diversity=per_image_std)}
    return records, {"images": list(session.names), "seeds": arrays}


def _pixel_std(draws: list[np.ndarray]) -> float:
    """Mean over pixels and channels of the std across the draws of one image (ddof 1);
    one image at a time: K float64 copies of a 256 px image, not of the whole split."""
    return float(np.stack(draws).astype(np.float64).std(axis=0, ddof=1).mean())


def write_scores(experiment: str, record: dict) -> dict:
    """scores.json, the per-image files beside it (per_image/, replaced whole: no file
    of an earlier scoring stays) and the headline DVC shows; returns what scores.json
    holds. The per-image files go first, so a new scores.json always has its per-image
    scores beside it (the tables also check that the two agree)."""
    record = dict(record)
    files = _per_image_files("", record.pop(PER_IMAGE))
    if record.get("test_time"):
        study = record["test_time"] = dict(record["test_time"])
        study["variants"] = {name: dict(v) for name, v in study["variants"].items()}
        for name, variant in study["variants"].items():
            if PER_IMAGE in variant:
                files += _per_image_files(f"test-time/{name}/", variant.pop(PER_IMAGE))
        if PER_IMAGE in study:
            files += _per_image_files("test-time/diversity/", study.pop(PER_IMAGE))
    # its own folder inside metrics/ (the score stage's output): every other protected
    # folder still may not be touched
    protected = [p for p in layout.PROTECTED if p != layout.METRICS]
    with atomic_dir(layout.per_image_dir(experiment), "score", protected=protected) as tmp:
        for path, images, arrays in files:
            per_image.save(tmp / path, images, arrays)
    write_json(layout.score_metrics(experiment), record)
    write_headline(experiment, record)  # the few numbers DVC shows (dvc.yaml `metrics`)
    return record


def _per_image_files(prefix: str, block: dict) -> list[tuple[str, list, dict]]:
    return [(f"{prefix}{seed}.npz", block["images"], arrays)
            for seed, arrays in block["seeds"].items() if arrays]


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
    write_scores(cfg.name, record)
    timing = record["timing"]
    print(f"{cfg.name}: {timing['images']} images in {timing['seconds']:.1f} s "
          f"({timing['seconds_per_image']:.3f} s/image) -> {out}")
    return 0
