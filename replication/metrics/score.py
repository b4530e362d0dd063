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

import math
import statistics
import time
from pathlib import Path

import numpy as np

from replication.core import layout
from replication.core.devices import machine
from replication.core.fileio import atomic_dir, write_json
from replication.inference import test_time
from replication.metrics import per_image
from replication.metrics.headline import write_headline
from replication.metrics.per_image import PER_IMAGE
from replication.metrics.registry import run_metric
from replication.metrics.session import Session, read_rgb


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


# --- the test-time study (replication/inference/test_time.py, docs/test_time.md) ---------------------


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
