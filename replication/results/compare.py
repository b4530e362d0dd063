"""`replication compare`: an experiment's headline numbers beside its baseline's.

The view of the researcher's loop (README "Your own experiments"): after `dvc repro`,
each of your experiments (params.yaml entries that are no row of the paper's tables)
next to the experiment it is compared with — `compare_to`, else the closest paper
experiment (ablations.baselines, the rule the tables use) — one short block each, a
line per headline number (metrics/headline.py), so it fits any terminal. The intervals
and verdicts of these differences are in tables/comparisons.csv (`replication tables`).
`dvc exp show` compares git revisions instead, not the experiments of one grid.
"""

from __future__ import annotations

from pathlib import Path

from replication.config.params import Params
from replication.core import layout
from replication.metrics.headline import headline
from replication.results.baselines import baselines, check_compare_to, paper_experiments
from replication.results.paper import PAPER_NUMBERS, load_paper_numbers
from replication.results.records import read_scores_file


def chosen_baselines(params: Params, paper_path: str | Path = PAPER_NUMBERS) -> dict[str, tuple[str | None, str]]:
    """Your experiment -> (its baseline or None, how it was chosen): what the tables use."""
    check_compare_to(params)
    return baselines(params, paper_experiments(load_paper_numbers(paper_path)["tables"]))


def numbers(experiment: str, metrics_dir: Path) -> tuple[dict[str, float], int, str | None]:
    """(headline numbers, seeds scored, None) of metrics/<experiment>/scores.json, or
    ({}, 0, why there are none)."""
    path = metrics_dir / experiment / layout.score_metrics(experiment).name
    if not path.is_file():
        return {}, 0, f"not scored yet ({path} missing)"
    scores, problem = read_scores_file(path)
    if scores is None:
        return {}, 0, problem
    return headline(scores), len(scores["seeds"]), None


def block(name: str, baseline: str | None, how: str, metrics_dir: Path) -> list[str]:
    """The lines of one experiment beside its baseline."""
    ours, n, why = numbers(name, metrics_dir)
    if baseline is None:
        head = [f"{name}: no baseline ({how})"]
        base, base_n, base_why = {}, 0, None
    else:
        base, base_n, base_why = numbers(baseline, metrics_dir)
        head = [f"{name} vs {baseline} ({how}); seeds {n} vs {base_n}"]
    for label, reason in ((name, why), (baseline, base_why)):
        if reason:
            head.append(f"  {label}: {reason}")
    keys = list(dict.fromkeys([*base, *ours]))
    if not keys:
        return head
    width = max(len(k) for k in keys)
    lines = [f"  {'':{width}}  {'baseline':>9}  {'ours':>9}  {'Δ':>9}"]
    for key in keys:
        b, o = base.get(key), ours.get(key)
        diff = f"{o - b:+9.4f}" if b is not None and o is not None else f"{'—':>9}"
        lines.append(f"  {key:{width}}  {_cell(b)}  {_cell(o)}  {diff}")
    return head + lines


def _cell(value: float | None) -> str:
    return f"{value:9.4f}" if value is not None else f"{'—':>9}"
