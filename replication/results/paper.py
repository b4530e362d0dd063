"""The paper's numbers and claims (replication/results/paper_numbers.yaml), read and checked.

The YAML is the only place the paper's values are typed (transcribed from
arXiv:1611.07004v3, docs/results.md); these checks keep it consistent: every row names an
experiment, every claim's order holds in the paper's own numbers.
"""

from __future__ import annotations

from pathlib import Path

from replication.config.params import read_yaml
from replication.core.errors import ConfigError
from replication.results.records import METRIC_NAMES

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


class TablesError(ConfigError):
    """A bad paper-numbers file or argument; the message names it and the fix."""


def load_paper_numbers(path: str | Path = PAPER_NUMBERS) -> dict:
    path = Path(path)
    if not path.is_file():
        raise TablesError(f"{path}: paper numbers file not found (the default is {PAPER_NUMBERS})")
    paper = read_yaml(path) or {}
    if not isinstance(paper.get("tables"), dict):
        raise TablesError(f"{path}: needs a `tables` mapping (see {PAPER_NUMBERS})")
    for table_id, spec in paper["tables"].items():
        _check_table(f"{path}: tables.{table_id}", spec)
    for claim in paper.get("claims") or []:
        _check_claim(f"{path}: claim {claim.get('id')!r}", paper["tables"], claim)
    return paper


def table_rows(spec: dict) -> list[dict]:
    """The table's rows, then its reference row (Table 1's ground truth) if it has one."""
    return list(spec["rows"]) + ([spec["reference"]] if spec.get("reference") else [])


def _check_table(where: str, spec: dict) -> None:
    missing = sorted({"title", "metric", "columns", "rows"} - set(spec))
    if missing:
        raise TablesError(f"{where} lacks {missing}")
    if spec["metric"] not in METRIC_NAMES:
        raise TablesError(f"{where}: metric {spec['metric']!r} is not one of {list(METRIC_NAMES)}")
    task = spec.get("task")
    if task is not None and not (isinstance(task, dict) and task.get("dataset")
                                 and set(task) <= {"dataset", "direction"}):
        raise TablesError(f"{where}: task must be {{dataset: ..., direction: AtoB | BtoA}} "
                          f"(direction optional), got {task!r}")
    for row in table_rows(spec):
        if not {"label", "experiment"} <= set(row):
            raise TablesError(f"{where}: row {row} needs a label and an experiment")
        paper = row.get("paper")
        if paper is not None and len(paper) != len(spec["columns"]):
            raise TablesError(f"{where} row {row['label']!r}: {len(paper)} paper values for "
                              f"the {len(spec['columns'])} columns {spec['columns']}")


def _check_claim(where: str, tables: dict, claim: dict) -> None:
    spec = tables.get(claim.get("table"))
    if spec is None:
        raise TablesError(f"{where} names table {claim.get('table')!r}; known: {sorted(tables)}")
    rows = {row["label"]: row for row in spec["rows"]}
    for side in ("better", "worse"):
        if claim.get(side) not in rows or rows[claim[side]].get("paper") is None:
            raise TablesError(f"{where}: {side}={claim.get(side)!r} is not a row with paper "
                              f"values in {claim['table']}; rows: {sorted(rows)}")
    for column in claim.get("columns") or []:
        if column not in spec["columns"]:
            raise TablesError(f"{where}: column {column!r} is not in {spec['columns']}")
        i = spec["columns"].index(column)
        if not rows[claim["better"]]["paper"][i] > rows[claim["worse"]]["paper"][i]:
            raise TablesError(f"{where}: the paper's own {column} values do not show "
                              f"{claim['better']} > {claim['worse']}; fix the claim or the numbers")
