"""`replication status`: what the pipeline has produced, experiment by experiment.

For every experiment and seed in params.yaml: is the generator trained, is every test
image generated, is it scored, and WHAT was scored: the metrics with numbers, those
without (each reason stated once, below the table) and those the rule
(`registry.metrics_for`) names but scores.json lacks; then the tables and the executed
notebook. With --check it exits 1 when a seed is untrained, ungenerated or unscored, or
a table, the plots page or the notebook is missing (CI runs it after the smoke pipeline),
each with what is missing and why; a metric without a number (FID/KID offline) is
listed, not an error. It shows the active scale, marks outputs older than what they are
made from as stale (by file times: scores older than their generated images, tables
than a scores.json, the plots page than a loss log, the notebook than the tables), and
ends with the command to run next.
"""

from __future__ import annotations

from pathlib import Path

from replication.config.params import Params
from replication.config.scoring import load_scoring
from replication.core import layout
from replication.data.images import IMAGE_SUFFIXES
from replication.metrics.registry import metrics_for
from replication.results.records import read_scores_file

TABLES, PLOTS, NOTEBOOK = Path("tables/README.md"), Path("plots/index.html"), \
    Path("notebooks/results.html")
PIPELINE_PRODUCTS = (TABLES, PLOTS, NOTEBOOK)
# the DVC stage writing each product (dvc.yaml), for the hints
PRODUCT_STAGES = {TABLES: "tables", PLOTS: "plots", NOTEBOOK: "notebooks"}
# Clock slack when comparing file times: a git checkout or `dvc exp run` writing a
# product and its inputs in one go may order them within this; a real change is later.
SLACK_S = 2.0


def count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def newest(paths) -> float:
    """The latest modification time among `paths` (0 when there are none)."""
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def older(product: Path, inputs) -> bool:
    """`product` exists and is older than the newest of `inputs`, beyond SLACK_S."""
    return product.is_file() and newest(inputs) - product.stat().st_mtime > SLACK_S


def experiment_rows(params: Params) -> list[dict]:
    rows = []
    scoring = load_scoring(params)
    for name, cfg in params.configs().items():
        seeds, problem = read_scores(name)
        expected_metrics = metrics_for(cfg, scoring)
        split = cfg.generate.split or cfg.data.test_split
        expected = count_images(Path(cfg.data.root) / cfg.data.dataset / split)
        if cfg.generate.max_images is not None:  # the rehearsal's named deviation
            expected = min(expected, cfg.generate.max_images)
        for seed in cfg.seeds:
            generator = layout.generator_path(layout.run_dir(name, seed))
            images = sorted(layout.generated_dir(name, seed).glob("*"))
            rows.append({
                "experiment": name, "seed": seed,
                "trained": generator.is_file(),
                "generated": f"{count_images(layout.generated_dir(name, seed))}/{expected}",
                "complete": expected > 0 and
                count_images(layout.generated_dir(name, seed)) == expected,
                "scored": f"seed-{seed}" in seeds,
                # a newer generator than its images, newer images than their scores
                "stale": ("generated" if images and older(max(images, key=_mtime), [generator])
                          else "scored" if f"seed-{seed}" in seeds
                          and older(layout.score_metrics(name), images) else None),
                "metrics": seed_metrics(seeds.get(f"seed-{seed}"), expected_metrics),
                "problem": problem,  # why metrics/<name>/scores.json cannot be used
            })
    return rows


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


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


def short_reason(reason, limit: int = 140) -> str:
    """A reason as one short phrase (scores.json from before reasons were cut down)."""
    text = " ".join(str(reason or "no reason given").split())
    if len(text) <= limit:
        return text
    for mark in (" (", "; ", ": "):
        if 0 < text.find(mark) <= limit:
            return text[:text.find(mark)]
    return text[:limit - 3] + "..."
