"""Our numbers for the results tables: one record per (table, row, column).

Read from metrics/<experiment>/scores.json (and train.json, for unfinished training) of
the experiments params.yaml lists: mean and sample std over seeds, the interval of
replication/results/statistics.py (from the per-image scores in metrics/<experiment>/per_image/
where the metric has them), which metric, protocol and segmenter produced them, and,
where there is no number, why (a gap). `replication tables` (replication/results/tables.py) sets
them next to the paper's numbers, and your experiments' rows next to their baseline's
(the base_* columns).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from replication.config.params import Params
from replication.core.errors import ScoringError
from replication.core.layout import GROUND_TRUTH
from replication.metrics import per_image
from replication.results.statistics import Bootstrap, Interval, Sample, intervals

# Metric family (paper_numbers.yaml) -> metric names in scores.json, preferred first: the
# paper's FCN-score arithmetic on the paper's inputs before the colour-decoded fallback.
METRIC_NAMES = {
    "fcn_score": ("fcn_score_official", "fcn_score_fallback"),
    "labels_score": ("labels_score",),
    "color_hist": ("color_hist",),
    "fid_kid": ("fid_kid",),
    "psnr_ssim": ("psnr_ssim",),
    "pixel_accuracy": ("pixel_accuracy",),
    # the test-time study's K dropout draws (test_time_tables.py): no paper table uses it
    "output_diversity": ("output_diversity",),
}
# Shown beside a family's numbers, in one extra column: the same FCN predictions scored
# with the official code's quirks removed (docs/protocols.md).
BESIDE = {"fcn_score": "fcn_score_corrected"}
# Protocols whose numbers are not comparable with the paper's (docs/protocols.md): their
# Δ vs paper is shown but not judged (no colour in the notebook).
NOT_COMPARABLE_WITH_PAPER = ("fcn_score_fallback",)
# One number per image set (FID/KID, pooled colour histograms): nothing per image to
# resample, so their intervals are over seeds only (docs/statistics.md).
SET_LEVEL = ("fid_kid", "color_hist")

RECORD_COLUMNS = ["table", "label", "experiment", "column", "reference", "mean", "std", "n",
                  # the interval (statistics.py): its ends, what it accounts for, and the
                  # scores it was resampled from (a statistics.Sample; comparisons use it)
                  "lo", "hi", "covers", "sample",
                  "paper", "diff", "amt_percent_real", "metric", "protocol", "segmenter",
                  "images", "scale", "source", "beside", "gap", "note",
                  # your experiments (not rows of the paper): the row they are compared with
                  # (params.yaml compare_to, else derived) and that comparison (tables.py):
                  # the baseline's numbers, the difference with its interval and verdict
                  "yours", "baseline", "baseline_label", "baseline_how", "base_mean",
                  "base_std", "base_n", "base_diff", "base_diff_lo", "base_diff_hi",
                  "base_verdict", "base_reason"]


@dataclass
class Workspace:
    """Where our numbers come from: the params grid and the metrics folder."""
    params: Params
    metrics_dir: Path
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    _intervals: dict = field(default_factory=dict, repr=False)
    _files: dict = field(default_factory=dict, repr=False)

    @property
    def scale(self) -> str:
        return self.params.scale

    def read_scores(self, experiment: str) -> tuple[dict | None, str | None]:
        """(scores, None) or (None, why there are none)."""
        if experiment != GROUND_TRUTH and experiment not in self.params.experiments:
            return None, "not in params.yaml experiments"
        path = self.metrics_dir / experiment / "scores.json"
        if not path.is_file():  # one wording for every experiment: stated once per table
            return None, "not run yet (no metrics/<experiment>/scores.json)"
        return read_scores_file(path)

    def per_image_file(self, experiment: str, variant: str | None = None) -> Callable:
        """seed -> (images, arrays) of its per-image file (metrics/per_image.py), or a
        string saying why there is none; `variant`: a test-time study variant's."""
        folder = self.metrics_dir / experiment / "per_image"
        if variant is not None:
            folder = folder / "test-time" / variant

        def read(seed: str):
            path = folder / f"{seed}.npz"
            if path not in self._files:
                try:
                    self._files[path] = per_image.load(path) if path.is_file() else (
                        "no per-image scores (metrics/<experiment>/per_image/: rerun "
                        "`replication score`)")
                except ScoringError as err:
                    self._files[path] = str(err)
            return self._files[path]
        return read

    def interval(self, key: tuple, sample: Sample | None, column: str) -> Interval | None:
        """The sample's interval on `column`, computed once per key (a table cell and
        the same cell in another table share it)."""
        if sample is None:
            return None
        if key not in self._intervals:
            self._intervals[key] = intervals(sample, self.bootstrap)[column]
        return self._intervals[key]

    def row_notes(self, experiment: str, scores: dict) -> list[str]:
        notes = []
        if scores.get("scale") not in (None, self.scale):
            notes.append(f"scored at {scores['scale']} scale but params.yaml says {self.scale}")
        limit = (scores.get("task") or {}).get("max_images")
        if limit is not None:
            notes.append(f"first {limit} test images only (generate.max_images)")
        if experiment == GROUND_TRUTH:
            return notes
        expected = self.params.experiment_dict(experiment).get("seeds") or []
        if len(scores["seeds"]) < len(expected):
            notes.append(f"{len(scores['seeds'])} of {len(expected)} seeds scored")
        return notes + self.training_notes(experiment)

    def training_notes(self, experiment: str) -> list[str]:
        """Runs whose training did not finish (metrics/<experiment>/train.json)."""
        path = self.metrics_dir / experiment / "train.json"
        try:
            runs = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return []
        return [f"{seed} training unfinished (step {run.get('step')}/{run.get('total_steps')})"
                for seed, run in sorted(runs.items())
                if isinstance(run, dict) and run.get("finished") is False]


def read_scores_file(path: Path) -> tuple[dict | None, str | None]:
    """(scores, None), or (None, why the file cannot be used): unreadable, truncated or of
    another shape than metrics/score.py writes (a reason, never a traceback)."""
    try:
        scores = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable: {path}: {err}; rerun its score stage"
    problem = shape_problem(scores)
    return (None, f"unreadable: {path}: {problem}; rerun its score stage") if problem \
        else (scores, None)


def shape_problem(scores) -> str | None:
    """What in a parsed scores.json differs from the shape metrics/score.py writes:
    {"seeds": {"seed-<k>": {"<metric>": {record}}}, "task"/"machine": mappings, "scale":
    a name}; None when it has that shape."""
    if not isinstance(scores, dict):
        return f"not a mapping but a {type(scores).__name__}"
    if not isinstance(scores.get("seeds"), dict):
        return "no `seeds` mapping"
    for key, kind in (("task", dict), ("machine", dict), ("scale", str)):
        if scores.get(key) is not None and not isinstance(scores[key], kind):
            return f"`{key}` is a {type(scores[key]).__name__}, not a {kind.__name__}"
    for seed, metrics in scores["seeds"].items():
        if not isinstance(metrics, dict):
            return f"seeds.{seed} is a {type(metrics).__name__}, not a mapping of metrics"
        for metric, record in metrics.items():
            if not isinstance(record, dict):
                return f"seeds.{seed}.{metric} is a {type(record).__name__}, not a mapping"
    return None


def measure(scores: dict, family: str, column: str, prefer: set[str] = frozenset(),
            per_image_file: Callable | None = None, seeds: dict | None = None) -> dict:
    """Our number for one column over the seeds: mean, std, n, what produced it and the
    statistics.Sample its interval is resampled from ("sample", None without numbers).

    Per seed the first metric of the family that is present counts (exact before
    fallback); names in `prefer` go first (a reference row follows the table's rows).
    per_image_file: Workspace.per_image_file of the experiment (None: seeds only);
    seeds: another "seeds" mapping than scores["seeds"] (a test-time study variant)."""
    candidates = sorted(METRIC_NAMES[family], key=lambda m: m not in prefer)  # stable
    seeds = scores["seeds"] if seeds is None else seeds
    values, names, protocols, segmenters, images, gaps = [], set(), set(), set(), set(), []
    chosen = {}  # seed -> metric name, for the seeds with a number
    for seed, metrics in seeds.items():
        name = next((m for m in candidates if m in (metrics or {})), None)
        result = metrics[name] if name else {}
        if name is None:
            gaps.append(f"no {' or '.join(METRIC_NAMES[family])} in scores.json")
        elif result.get("available") is False:
            gaps.append(f"{name}: {result.get('reason', 'unavailable, no reason given')}")
        elif not isinstance(result.get(column), (int, float)):
            gaps.append(f"{name} has no number {column!r}")
        else:
            values.append(float(result[column]))
            names.add(name)
            chosen[seed] = name
            protocol = result.get("protocol")
            protocols.add(f"{name} ({protocol})" if protocol and protocol != name else name)
            segmenters.add(str(result.get("segmenter") or ""))
            images.add(_image_count(result))
    gaps = list(dict.fromkeys(gaps))  # each reason once, in order
    partial = f"{len(seeds) - len(values)} seed(s) without a number: {'; '.join(gaps)}"
    sample = column_sample(chosen, values, family, column, per_image_file) if values else None
    return {**summary_stats(values), "sample": sample, "metric": _joined(names, mixed=True),
            "protocol": _joined(protocols, mixed=True),
            "segmenter": _joined(segmenters, mixed=True), "images": _joined(images),
            "gap": None if values else "; ".join(gaps) or "no seeds in scores.json",
            "note": partial if values and gaps else ""}


def column_sample(chosen: dict[str, str], values: list[float], family: str, column: str,
                  per_image_file: Callable | None) -> Sample:
    """The statistics.Sample of one column: the seeds' numbers, with their per-image
    scores where the metric has them, every seed's file is there, and each file agrees
    with scores.json (a stale file is never resampled: the interval falls back to the
    seeds and says why)."""
    seeds = tuple(chosen)
    base = Sample(seeds, {column: np.array(values)})
    if family in SET_LEVEL:
        return base
    if per_image_file is None:
        return seeds_only(base, "no per-image scores")
    if len(set(chosen.values())) > 1:
        return seeds_only(base, "protocols differ across seeds")
    found, arrays = [per_image_file(seed) for seed in seeds], []
    for seed, file, value in zip(seeds, found, values):
        if isinstance(file, str):
            return seeds_only(base, file)
        images, metrics = file
        record = metrics.get(chosen[seed])
        if record is None:
            return seeds_only(base, f"no per-image {chosen[seed]} for {seed}")
        if images != found[0][0] or record["kind"] != found[0][1][chosen[seed]]["kind"]:
            return seeds_only(base, "the seeds' per-image scores cover different images")
        own = {k: a for k, a in record.items() if k != "kind"}
        full = per_image.columns(record["kind"], {k: a.sum(0) for k, a in own.items()},
                                 len(images))
        # the same sums in another order: float64 rounding ~1e-13 relative, far below 1e-9
        if column not in full or not np.isclose(full[column], value, rtol=1e-9, atol=1e-12):
            return seeds_only(base, f"per-image scores of {seed} disagree with scores.json "
                                    "(stale: rerun `replication score`)")
        arrays.append(own)
    kind = found[0][1][chosen[seeds[0]]]["kind"]
    return Sample(seeds, {column: np.array(values)}, tuple(found[0][0]), kind, tuple(arrays))


def seeds_only(sample: Sample, reason: str) -> Sample:
    return Sample(sample.seeds, sample.values, without_images=reason)


def _mean_of(scores: dict, metric: str, column: str) -> float | None:
    """The mean over seeds of one metric's column, where every seed has it."""
    values = [(m or {}).get(metric, {}).get(column) for m in scores["seeds"].values()]
    numbers = [float(v) for v in values if isinstance(v, (int, float))]
    return statistics.fmean(numbers) if numbers and len(numbers) == len(values) else None


def summary_stats(values: list[float]) -> dict:
    """Mean and SAMPLE standard deviation (n - 1); no std from a single seed."""
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) >= 2 else None,
            "n": len(values)}


def _image_count(result: dict) -> str:
    # docs/protocols.md: FID is biased below 2048 images, so every table says how many were used
    if "frames" in result:
        return f"{result['frames']} frames"
    if "n_generated" in result:
        kid = f", KID {result['kid_subsets']} subsets of {result['kid_subset_size']}" \
            if "kid_subset_size" in result else ""
        return f"{result['n_generated']} generated / {result.get('n_real')} real{kid}"
    return ""


def _joined(texts: set[str], mixed: bool = False) -> str:
    texts = sorted(t for t in texts if t)
    prefix = "MIXED: " if mixed and len(texts) > 1 else ""
    return prefix + " + ".join(texts)


def row_records(table_id: str, spec: dict, row: dict, workspace: Workspace,
                reference: bool = False, prefer: set[str] = frozenset()) -> list[dict]:
    scores, gap = workspace.read_scores(row["experiment"])
    notes = workspace.row_notes(row["experiment"], scores) if scores else []
    files = workspace.per_image_file(row["experiment"])
    records = []
    for i, column in enumerate(spec["columns"]):
        paper = row["paper"][i] if row.get("paper") else None
        cell = (measure(scores, spec["metric"], column, prefer, files) if scores
                else {**summary_stats([]), "sample": None, "metric": "", "protocol": "",
                      "segmenter": "", "images": "", "gap": gap, "note": ""})
        interval = workspace.interval((row["experiment"], spec["metric"], column,
                                       tuple(sorted(prefer))), cell["sample"], column)
        cell.update(lo=interval.lo if interval else None,
                    hi=interval.hi if interval else None,
                    covers=interval.covers if interval else None)
        diff = cell["mean"] - paper if cell["mean"] is not None and paper is not None else None
        beside = BESIDE.get(spec["metric"])
        cell["beside"] = _mean_of(scores, beside, column) if scores and beside else None
        note = "; ".join(n for n in [*notes, cell.pop("note")] if n)
        records.append({"table": table_id, "label": row["label"], "experiment": row["experiment"],
                        "column": column, "reference": reference, **cell, "paper": paper,
                        "diff": diff, "amt_percent_real": row.get("amt_percent_real"),
                        "scale": (scores or {}).get("scale"),
                        "source": ((scores or {}).get("task") or {}).get("source"),
                        "note": note, "yours": bool(row.get("yours")),
                        "baseline": row.get("baseline"), "baseline_label": row.get("baseline_label"),
                        "baseline_how": row.get("baseline_how")})
    return records
