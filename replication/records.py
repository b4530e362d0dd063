"""Our numbers for the results tables: one record per (table, row, column).

Read from metrics/<experiment>/scores.json (and train.json, for unfinished training) of
the experiments params.yaml lists: mean and sample std over seeds, which metric,
protocol and segmenter produced them, and, where there is no number, why (a gap).
`replication tables` (replication/tables.py) sets them next to the paper's numbers, and
your experiments' rows next to their baseline's (the base_* columns).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from replication.layout import GROUND_TRUTH
from replication.params import active_scale, experiment_dict

# Metric family (paper_numbers.yaml) -> metric names in scores.json, preferred first: the
# paper's FCN-score arithmetic on the paper's inputs before the colour-decoded fallback.
METRIC_NAMES = {
    "fcn_score": ("fcn_score_official", "fcn_score_fallback"),
    "labels_score": ("labels_score",),
    "color_hist": ("color_hist",),
    "fid_kid": ("fid_kid",),
    "psnr_ssim": ("psnr_ssim",),
    "pixel_accuracy": ("pixel_accuracy",),
}
# Shown beside a family's numbers, in one extra column: the same FCN predictions scored
# with the official code's quirks removed (docs/protocols.md).
BESIDE = {"fcn_score": "fcn_score_corrected"}
# Protocols whose numbers are not comparable with the paper's (docs/protocols.md): their
# Δ vs paper is shown but not judged (no colour in the notebook).
NOT_COMPARABLE_WITH_PAPER = ("fcn_score_fallback",)

RECORD_COLUMNS = ["table", "label", "experiment", "column", "reference", "mean", "std", "n",
                  "paper", "diff", "amt_percent_real", "metric", "protocol", "segmenter",
                  "images", "scale", "source", "beside", "gap", "note",
                  # your experiments (not rows of the paper): the row they are compared with
                  # (params.yaml compare_to, else derived) and that comparison (tables.py)
                  "yours", "baseline", "baseline_label", "baseline_how", "base_mean",
                  "base_std", "base_n", "base_diff", "base_verdict", "base_reason"]


@dataclass
class Workspace:
    """Where our numbers come from: the params grid and the metrics folder."""
    params: dict
    metrics_dir: Path

    @property
    def scale(self) -> str:
        return active_scale(self.params)

    def read_scores(self, experiment: str) -> tuple[dict | None, str | None]:
        """(scores, None) or (None, why there are none)."""
        if experiment != GROUND_TRUTH and experiment not in (self.params.get("experiments") or {}):
            return None, "not in params.yaml experiments"
        path = self.metrics_dir / experiment / "scores.json"
        if not path.is_file():  # one wording for every experiment: stated once per table
            return None, "not run yet (no metrics/<experiment>/scores.json)"
        return read_scores_file(path)

    def row_notes(self, experiment: str, scores: dict) -> list[str]:
        notes = []
        if scores.get("scale") not in (None, self.scale):
            notes.append(f"scored at {scores['scale']} scale but params.yaml says {self.scale}")
        limit = (scores.get("task") or {}).get("max_images")
        if limit is not None:
            notes.append(f"first {limit} test images only (generate.max_images)")
        if experiment == GROUND_TRUTH:
            return notes
        expected = experiment_dict(self.params, experiment).get("seeds") or []
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


def measure(scores: dict, family: str, column: str, prefer: set[str] = frozenset()) -> dict:
    """Our number for one column over the seeds: mean, std, n and what produced it.

    Per seed the first metric of the family that is present counts (exact before
    fallback); names in `prefer` go first (a reference row follows the table's rows)."""
    candidates = sorted(METRIC_NAMES[family], key=lambda m: m not in prefer)  # stable
    values, names, protocols, segmenters, images, gaps = [], set(), set(), set(), set(), []
    for metrics in scores["seeds"].values():
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
            protocol = result.get("protocol")
            protocols.add(f"{name} ({protocol})" if protocol and protocol != name else name)
            segmenters.add(str(result.get("segmenter") or ""))
            images.add(_image_count(result))
    gaps = list(dict.fromkeys(gaps))  # each reason once, in order
    partial = f"{len(scores['seeds']) - len(values)} seed(s) without a number: {'; '.join(gaps)}"
    return {**summary_stats(values), "metric": _joined(names, mixed=True),
            "protocol": _joined(protocols, mixed=True),
            "segmenter": _joined(segmenters, mixed=True), "images": _joined(images),
            "gap": None if values else "; ".join(gaps) or "no seeds in scores.json",
            "note": partial if values and gaps else ""}


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
    records = []
    for i, column in enumerate(spec["columns"]):
        paper = row["paper"][i] if row.get("paper") else None
        cell = (measure(scores, spec["metric"], column, prefer) if scores
                else {**summary_stats([]), "metric": "", "protocol": "", "segmenter": "",
                      "images": "",
                      "gap": gap, "note": ""})
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
