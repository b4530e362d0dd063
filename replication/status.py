"""`replication status`: what the pipeline has produced, experiment by experiment.

For every experiment and seed in params.yaml: is the generator trained, is every test
image generated, is it scored, and WHAT was scored: the metrics with numbers, those
without (each reason stated once, below the table) and those the rule
(`registry.metrics_for`) names but scores.json lacks; then the tables and the executed
notebook. With --check it exits 1 when a seed is untrained, ungenerated or unscored, or
a table or the notebook is missing (CI runs it after the smoke pipeline); a metric
without a number (FID/KID offline) is listed, not an error.
"""

from __future__ import annotations

from pathlib import Path

from replication import layout
from replication.params import load_experiment, load_params
from replication.records import read_scores_file
from replication.datasets import IMAGE_SUFFIXES
from replication.metrics.registry import metrics_for
from replication.metrics.settings import load_scoring

PIPELINE_PRODUCTS = (Path("tables/README.md"), Path("notebooks/results.html"))


def count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def experiment_rows(params_path: str) -> list[dict]:
    rows = []
    params = load_params(params_path)
    scoring = load_scoring(params)
    for name in params.get("experiments") or {}:
        cfg = load_experiment(params_path, name)
        seeds, problem = read_scores(name)
        expected_metrics = metrics_for(cfg, scoring)
        split = cfg.generate.split or cfg.data.test_split
        expected = count_images(Path(cfg.data.root) / cfg.data.dataset / split)
        if cfg.generate.max_images is not None:  # the rehearsal's named deviation
            expected = min(expected, cfg.generate.max_images)
        for seed in cfg.seeds:
            rows.append({
                "experiment": name, "seed": seed,
                "trained": layout.generator_path(layout.run_dir(name, seed)).is_file(),
                "generated": f"{count_images(layout.generated_dir(name, seed))}/{expected}",
                "complete": expected > 0 and
                count_images(layout.generated_dir(name, seed)) == expected,
                "scored": f"seed-{seed}" in seeds,
                "metrics": seed_metrics(seeds.get(f"seed-{seed}"), expected_metrics),
                "problem": problem,  # why metrics/<name>/scores.json cannot be used
            })
    return rows


def scored_seeds(name: str) -> dict:
    """metrics/<name>/scores.json `seeds` ({"seed-<k>": {metric: record}}), {} if none."""
    return read_scores(name)[0]


def read_scores(name: str) -> tuple[dict, str | None]:
    """(`seeds` of metrics/<name>/scores.json, None), ({}, None) when there is none, or
    ({}, why it cannot be used): unreadable or of another shape (records.py's reading)."""
    path = layout.score_metrics(name)
    if not path.is_file():
        return {}, None
    scores, problem = read_scores_file(path)
    return (scores["seeds"], None) if scores else ({}, problem)


def seed_scored(name: str, seed: int) -> bool:
    return f"seed-{seed}" in scored_seeds(name)


def seed_metrics(records: dict | None, expected: list[str]) -> dict:
    """What one seed's scores say: {"numbers": [metric, ...], "unavailable": {metric:
    reason}, "not_run": [metric the rule names, absent from scores.json]}."""
    records = records if isinstance(records, dict) else {}
    numbers, unavailable = [], {}
    for metric, record in records.items():
        if isinstance(record, dict) and record.get("available") is False:
            unavailable[metric] = short_reason(record.get("reason"))
        else:
            numbers.append(metric)
    not_run = [m for m in expected if m not in records] if records else []
    return {"numbers": numbers, "unavailable": unavailable, "not_run": not_run}


def short_reason(reason, limit: int = 60) -> str:
    """A reason as one short phrase (scores.json from before reasons were cut down)."""
    text = " ".join(str(reason or "no reason given").split())
    if len(text) <= limit:
        return text
    for mark in (" (", "; ", ": "):
        if 0 < text.find(mark) <= limit:
            return text[:text.find(mark)]
    return text[:limit - 3] + "..."


def metrics_column(metrics: dict) -> str:
    """e.g. "fcn_score_fallback psnr_ssim; no number: fid_kid; not run: pixel_accuracy"."""
    parts = [" ".join(metrics["numbers"]) or "no numbers"]
    if metrics["unavailable"]:
        parts.append("no number: " + " ".join(metrics["unavailable"]))
    if metrics["not_run"]:
        parts.append("not run: " + " ".join(metrics["not_run"]))
    return "; ".join(parts)


def scored_column(row: dict) -> str:
    """yes | partial (a metric without a number, or one not run) | NO."""
    if not row["scored"]:
        return "NO"
    metrics = row["metrics"]
    return "partial" if metrics["unavailable"] or metrics["not_run"] else "yes"


def reasons_once(rows: list[dict]) -> list[str]:
    """"<metric>: <reason> (<k> seeds)", once per metric and reason, in table order."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        for metric, reason in row["metrics"]["unavailable"].items():
            counts[metric, reason] = counts.get((metric, reason), 0) + 1
    return [f"{metric}: {reason} ({k} seed{'s' if k > 1 else ''})"
            for (metric, reason), k in counts.items()]


def add_arguments(parser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if any experiment, table or notebook is missing")


def run(args) -> int:
    rows = experiment_rows(args.params)
    print(f"{'experiment':34} seed  trained  generated   scored  metrics")
    missing = []
    for r in rows:
        metrics = metrics_column(r["metrics"]) if r["scored"] else ""
        print(f"{r['experiment']:34} {r['seed']:>4}  {'yes' if r['trained'] else 'NO':>7}  "
              f"{r['generated']:>9}  {scored_column(r):>7}  {metrics}".rstrip())
        if not (r["trained"] and r["complete"] and r["scored"]):
            missing.append(f"{r['experiment']} seed {r['seed']}")
    problems = list(dict.fromkeys(r["problem"] for r in rows if r["problem"]))
    if problems:
        print("not scored, why:")
        for line in problems:
            print(f"  {line}")
    reasons = reasons_once(rows)
    if reasons:
        print("no number, why:")
        for line in reasons:
            print(f"  {line}")
    for product in PIPELINE_PRODUCTS:
        print(f"{str(product):34}       {'present' if product.is_file() else 'MISSING'}")
        if not product.is_file():
            missing.append(str(product))
    if missing:
        print(f"missing: {len(missing)} ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    return 1 if (args.check and missing) else 0
