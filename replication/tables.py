"""Results tables and claims, rendered from the metrics files only.

`replication tables` reads params.yaml (the experiment grid and its scale), the paper's
numbers (replication/paper_numbers.yaml) and metrics/<experiment>/scores.json, and writes
into --out one Markdown and one CSV file per table (the paper's Tables 1, 2, 3, 4, 6 and
the Fig. 7d colour statistics, FID/KID per dataset), claims.md/.csv (the paper's
orderings judged over seeds, with Spearman rank correlations) and a README on how each
number was produced. No number is typed here: the paper's come from paper_numbers.yaml,
ours from the metrics files. A missing input is a gap (—) in the table with its reason
stated once under the table, never a crash.

Your experiments (params.yaml experiments that are no row of the paper's tables, e.g. an
ablation) get a row in every table of their task (paper_numbers.yaml `task`: dataset and
direction): right after the row of the experiment they are compared with (params.yaml
`compare_to`, else the paper experiment of the same task whose settings differ least),
or at the end of the task's first table without one; the row shows the difference to
that baseline and whether it is outside the seed spread (the claims' interval rule).

Our numbers are read into records by replication/records.py; the README's text is
replication/tables_readme.py; the results notebook (`replication notebook`) is
replication/report.py.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from replication import layout
from replication.errors import ConfigError
from replication.fileio import atomic_dir, atomic_path, write_text
from replication.layout import GROUND_TRUTH
from replication.params import experiment_dict, load_params, read_yaml, scale_data
from replication.records import (BESIDE, METRIC_NAMES, NOT_COMPARABLE_WITH_PAPER, RECORD_COLUMNS,
                                 Workspace, row_records)
from replication.tables_readme import README_TEMPLATE

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")

NUMBER_FORMATS = {"fid": "{:.2f}", "kid_mean": "{:.4f}"}  # others: 3 decimals

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
HIGHER, LOWER, WITHIN = "higher", "lower", "within spread"  # your experiment vs its baseline
VERDICT_RULE = (
    "A claim 'A beats B' on one column is judged on our mean ± sample std over seeds: "
    "**inconclusive** when either side has fewer than 2 seeds, when the two sides were "
    "not all scored with one protocol, or when the intervals [mean − std, mean + std] "
    "overlap; otherwise **reproduced** if A's mean is higher, **not reproduced** if "
    "lower. A side with no numbers at all is a gap (—), not a verdict.")
COMPARISON_RULE = (
    "Your experiment against its baseline, per column, by the same rule: **higher** / "
    "**lower** when the intervals [mean − std, mean + std] separate (outside the seed "
    "spread), **within spread** when they overlap, **inconclusive** when either side has "
    "fewer than 2 seeds or the two were not scored with one protocol.")


class TablesError(ConfigError):
    """A bad paper-numbers file or argument; the message names it and the fix."""


# --- the paper's numbers ----------------------------------------------------------------

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


def fid_kid_tables(params: dict, yours: frozenset[str] = frozenset()) -> dict[str, dict]:
    """One FID/KID table per dataset over every experiment on it (not in the paper);
    `yours` are left for add_your_rows to place (after their baseline)."""
    tables: dict[str, dict] = {}
    for name, entry in (params.get("experiments") or {}).items():
        dataset = ((entry or {}).get("data") or {}).get("dataset", "?")
        spec = tables.setdefault(f"fid_kid_{dataset}", {
            "title": f"FID / KID — {dataset} test images (not in the paper; docs/protocols.md)",
            "metric": "fid_kid", "columns": ["fid", "kid_mean"], "rows": [],
            "task": {"dataset": dataset}, "all_experiments": True})
        if name not in yours:
            spec["rows"].append({"label": name, "experiment": name})
    return tables


# --- your experiments: a row beside the paper row each derives from -----------------------

def check_compare_to(params: dict, where: str | Path) -> None:
    """Every `compare_to` names another experiment of params.yaml (one-line error)."""
    experiments = params.get("experiments") or {}
    for name, entry in experiments.items():
        target = (entry or {}).get("compare_to")
        if target is not None and (target not in experiments or target == name):
            raise ConfigError(f"{where}: experiments.{name}.compare_to={target!r} names no other "
                              f"experiment of params.yaml; known: {sorted(set(experiments) - {name})}")


def paper_experiments(tables: dict[str, dict]) -> list[str]:
    """The experiments of the paper's rows (reference rows left out), in table order."""
    return list(dict.fromkeys(r["experiment"] for spec in tables.values() for r in spec["rows"]))


def experiment_task(params: dict, name: str) -> tuple[str, str] | None:
    """(dataset, direction) of an experiment of params.yaml; None if it does not resolve."""
    try:
        data = experiment_dict(params, name)["data"]
    except (ConfigError, KeyError):
        return None
    return data.get("dataset"), data.get("direction")


def _settings(params: dict, name: str) -> dict:
    """An experiment's resolved settings as {"train.lr": ..., ...}, but its name, seeds
    and compare_to (what makes it another run, not other settings)."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out
    settings = flat(experiment_dict(params, name))
    return {k: v for k, v in settings.items() if k not in ("name", "seeds", "compare_to")}


def baselines(params: dict, paper: list[str]) -> dict[str, tuple[str | None, str]]:
    """Your experiment -> (baseline experiment or None, how it was chosen).

    params.yaml `compare_to` when given; else the paper experiment (a row of the paper's
    tables, in params.yaml) of the same dataset and direction whose resolved settings
    differ in the fewest keys (the first in params.yaml order on a tie)."""
    experiments = params.get("experiments") or {}
    out = {}
    for name, entry in experiments.items():
        if name in paper:
            continue
        if (entry or {}).get("compare_to"):
            out[name] = (entry["compare_to"], "compare_to")
            continue
        task = experiment_task(params, name)
        candidates = [e for e in experiments if e in paper and task is not None
                      and experiment_task(params, e) == task]
        if not candidates:
            out[name] = (None, "no paper experiment of this dataset and direction; "
                               "name one with compare_to")
            continue
        mine = _settings(params, name)
        differ = {}
        for e in candidates:
            theirs = _settings(params, e)
            differ[e] = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        best = min(candidates, key=lambda e: len(differ[e]))  # stable: params order on ties
        keys = differ[best]
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        out[name] = (best, f"closest paper experiment (differs in {shown or 'nothing'})")
    return out


def _task_matches(spec: dict, task: tuple[str, str] | None) -> bool:
    want = spec.get("task")
    if not want or task is None:
        return False
    return want["dataset"] == task[0] and want.get("direction", task[1]) == task[1]


def add_your_rows(tables: dict[str, dict], params: dict,
                  chosen: dict[str, tuple[str | None, str]]) -> dict[str, dict]:
    """Copies of the tables with a row for each of your experiments (see the module
    docstring): after the row of its baseline in every table of its task that has that
    row; where no table of its task and metric has it, at the end of the first one. A
    dataset's FID/KID table lists every experiment of the dataset."""
    tables = {t: {**spec, "rows": list(spec["rows"])} for t, spec in tables.items()}
    for name, (baseline, how) in chosen.items():
        task = experiment_task(params, name)
        matching = [(t, spec) for t, spec in tables.items() if _task_matches(spec, task)]
        placed = set()  # metrics with a table holding the baseline's row
        for table_id, spec in matching:
            if any(r["experiment"] == baseline for r in spec["rows"]):
                placed.add(spec["metric"])
        for table_id, spec in matching:
            rows = spec["rows"]
            at = [i for i, r in enumerate(rows) if baseline and (
                r["experiment"] == baseline or r.get("baseline") == baseline)]
            first = next(t for t, other in matching if other["metric"] == spec["metric"])
            if not (at or spec.get("all_experiments")
                    or (spec["metric"] not in placed and first == table_id)):
                continue  # shown in the task's table that holds its baseline's row
            label = next((r["label"] for r in rows if r["experiment"] == baseline), baseline)
            rows.insert(at[-1] + 1 if at else len(rows), {
                "label": name, "experiment": name, "yours": True, "baseline": baseline,
                "baseline_label": label, "baseline_how": how})
    return tables


# --- all results ---------------------------------------------------------------------------

@dataclass
class Results:
    scale: str  # params.yaml `scale`
    source: str  # the active scale's data.source: upstream | synthetic
    experiments: list[str]  # params.yaml `experiments`, in order
    tables: dict[str, dict]  # table id -> spec (paper_numbers.yaml, plus FID/KID per dataset)
    records: pd.DataFrame  # RECORD_COLUMNS: one row per (table, row, column)
    claims: pd.DataFrame  # one row per (claim, column)
    spearman: pd.DataFrame  # one row per (table, column) with paper values
    comparisons: pd.DataFrame  # one row per (your experiment, metric, column) with a baseline


def load_results(params_path: str | Path = "params.yaml",
                 metrics_dir: str | Path = layout.METRICS,
                 paper_path: str | Path = PAPER_NUMBERS) -> Results:
    params, paper = load_params(params_path), load_paper_numbers(paper_path)
    check_compare_to(params, params_path)
    workspace = Workspace(params, Path(metrics_dir))
    chosen = baselines(params, paper_experiments(paper["tables"]))
    tables = add_your_rows({**paper["tables"], **fid_kid_tables(params, frozenset(chosen))},
                           params, chosen)
    records = []
    for table_id, spec in tables.items():
        for row in spec["rows"]:
            cells = row_records(table_id, spec, row, workspace)
            if row.get("baseline"):
                base = row_records(table_id, spec, {"label": row["baseline"],
                                                    "experiment": row["baseline"]}, workspace)
                cells = [with_comparison(c, b) for c, b in zip(cells, base)]
            records += cells
        if spec.get("reference"):  # scored with the protocol of the table's rows if it can
            used = {r["metric"] for r in records if r["table"] == table_id}
            records += row_records(table_id, spec, spec["reference"], workspace,
                                   reference=True, prefer=used)
    records = pd.DataFrame.from_records(records, columns=RECORD_COLUMNS)
    for column in ("mean", "std", "paper", "diff", "amt_percent_real", "beside",
                   "base_mean", "base_std", "base_diff"):
        records[column] = pd.to_numeric(records[column]).astype(float)
    for column in ("gap", "baseline", "baseline_label", "baseline_how", "base_verdict",
                   "base_reason"):
        records[column] = records[column].astype(object).where(records[column].notna(), None)
    records["yours"] = records.yours.fillna(False).astype(bool)
    records["base_n"] = pd.to_numeric(records.base_n).astype("Int64")
    return Results(workspace.scale, scale_data(params).source,
                   list(params.get("experiments") or {}), tables, records,
                   claims_frame(records, paper.get("claims") or []),
                   spearman_frame(records, tables), comparisons_frame(records, tables))


def with_comparison(ours: dict, base: dict) -> dict:
    """Your experiment's record with its baseline's number beside it and the verdict."""
    cell = {"base_mean": base["mean"], "base_std": base["std"], "base_n": base["n"]}
    if ours["gap"] or base["gap"]:
        return {**ours, **cell, "base_verdict": "—",
                "base_reason": f"baseline {base['experiment']}: {base['gap']}" if base["gap"]
                else "no number of ours"}
    order, reason = compare(ours, base)
    verdict = WITHIN if order == INCONCLUSIVE and "overlap" in reason else order
    return {**ours, **cell, "base_diff": ours["mean"] - base["mean"], "base_verdict": verdict,
            "base_reason": reason}


def cell(records: pd.DataFrame, table_id: str, label: str, column: str) -> pd.Series:
    match = records[(records.table == table_id) & (records.label == label)
                    & (records.column == column)]
    return match.iloc[0]


def scale_marker(results: Results, table_id: str | None = None) -> str:
    """'paper scale', or a marker no reader can take for a paper result (all tables: None)."""
    records = results.records
    if table_id is not None:
        records = records[records.table == table_id]
    scales = {results.scale, *records.scale.dropna()}
    others = sorted(scales - {"paper"})
    if not others:
        return "paper scale"
    synthetic = results.source == "synthetic" or (records.source == "synthetic").any()
    data = " — synthetic data" if synthetic else ""
    return f"{'/'.join(s.upper() for s in others)} scale{data}, not a paper result"


def table_title(results: Results, table_id: str) -> str:
    return f"{results.tables[table_id]['title']} ({scale_marker(results, table_id)})"


# --- claims and rank correlations ----------------------------------------------------------

def compare(a, b) -> tuple[str, str]:
    """(HIGHER | LOWER | INCONCLUSIVE, reason): a against b under VERDICT_RULE (mean ±
    sample std over seeds); a and b are records (dicts or Series) that have numbers."""
    if min(a["n"], b["n"]) < 2:
        return INCONCLUSIVE, f"fewer than 2 seeds (n = {a['n']} vs {b['n']})"
    if a["protocol"] != b["protocol"] or a["protocol"].startswith("MIXED"):
        return INCONCLUSIVE, f"not one protocol ({a['protocol']} vs {b['protocol']})"
    if (a["mean"] - a["std"] <= b["mean"] + b["std"]
            and b["mean"] - b["std"] <= a["mean"] + a["std"]):
        return INCONCLUSIVE, "mean ± std intervals overlap"
    return (HIGHER, "intervals separate") if a["mean"] > b["mean"] \
        else (LOWER, "intervals separate")


def judge(better: pd.Series, worse: pd.Series) -> tuple[str, str]:
    """(verdict, reason) for 'better beats worse' under VERDICT_RULE."""
    for side in (better, worse):
        if side.gap:
            return f"— ({side.experiment}: {side.gap})", "missing input"
    order, reason = compare(better, worse)
    if order == HIGHER:
        return REPRODUCED, "intervals separate, in the paper's order"
    if order == LOWER:
        return NOT_REPRODUCED, "intervals separate, in the opposite order"
    return INCONCLUSIVE, reason


def claims_frame(records: pd.DataFrame, claims: list[dict]) -> pd.DataFrame:
    rows = []
    for claim in claims:
        for column in claim["columns"]:
            better = cell(records, claim["table"], claim["better"], column)
            worse = cell(records, claim["table"], claim["worse"], column)
            verdict, reason = judge(better, worse)
            rows.append({"claim": claim["id"], "statement": claim["statement"],
                         "table": claim["table"], "column": column,
                         "better": claim["better"], "worse": claim["worse"],
                         **{f"better_{k}": better[k] for k in ("mean", "std", "n", "paper")},
                         **{f"worse_{k}": worse[k] for k in ("mean", "std", "n", "paper")},
                         "verdict": verdict, "reason": reason})
    return pd.DataFrame(rows)


def comparisons_frame(records: pd.DataFrame, tables: dict) -> pd.DataFrame:
    """Your experiments against their baselines, once per (experiment, metric, column)."""
    part = records[records.yours & records.baseline.notna() & records["mean"].notna()]
    rows = []
    for r in part.itertuples(index=False):
        rows.append({"experiment": r.experiment, "baseline": r.baseline, "how": r.baseline_how,
                     "metric": tables[r.table]["metric"], "table": r.table, "column": r.column,
                     "mean": r.mean, "std": r.std, "n": r.n, "base_mean": r.base_mean,
                     "base_std": r.base_std, "base_n": r.base_n, "diff": r.base_diff,
                     "protocol": r.protocol, "verdict": r.base_verdict, "reason": r.base_reason})
    columns = ["experiment", "baseline", "how", "metric", "table", "column", "mean", "std", "n",
               "base_mean", "base_std", "base_n", "diff", "protocol", "verdict", "reason"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.drop_duplicates(["experiment", "metric", "column"]).reset_index(drop=True)


def spearman(ours: list[float], paper: list[float]) -> tuple[float | None, str]:
    """Spearman's rho of our row means against the paper's; 'n/a' below 3 rows."""
    n = len(ours)
    if n < 3:
        return None, f"n/a (n = {n}; needs 3 rows with our numbers)"
    rho = float(spearmanr(ours, paper).statistic)
    if np.isnan(rho):
        return None, f"n/a (n = {n}; a constant column has no ranks)"
    return rho, f"{rho:+.2f} (n = {n})"


def spearman_frame(records: pd.DataFrame, tables: dict) -> pd.DataFrame:
    rows = []
    for table_id, spec in tables.items():
        for column in spec["columns"]:
            part = records[(records.table == table_id) & (records.column == column)
                           & ~records.reference & records.paper.notna()]
            if part.empty:
                continue  # no paper values (FID/KID, AMT): nothing to correlate with
            have = part[part["mean"].notna()]
            rho, text = spearman(have["mean"].tolist(), have.paper.tolist())
            rows.append({"table": table_id, "column": column, "n": len(have),
                         "rows_in_paper": len(part), "spearman_rho": rho, "spearman": text})
    return pd.DataFrame(rows, columns=["table", "column", "n", "rows_in_paper",
                                       "spearman_rho", "spearman"])


# --- rendering -----------------------------------------------------------------------------

def fmt(value, column: str = "", signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "—"
    text = NUMBER_FORMATS.get(column, "{:.3f}").format(value)
    return f"+{text}" if signed and value >= 0 else text


def ours_text(record: pd.Series) -> str:
    if record.gap:
        return "—"  # the reason: once, under the table (gap_lines)
    spread = f" ± {fmt(record['std'], record.column)}" if record.n >= 2 else ""
    return f"{fmt(record['mean'], record.column)}{spread} (n={record.n})"


def wide_table(results: Results, table_id: str, numeric: bool = False) -> pd.DataFrame:
    """One line per table row: ours, paper and Δ per column, then provenance.

    numeric=False: the display strings (Markdown, notebook); True: numbers (CSV)."""
    spec, records = results.tables[table_id], results.records
    part = records[records.table == table_id]
    with_paper = {c for c in spec["columns"] if part[part.column == c].paper.notna().any()}
    yours = bool(part.yours.any())
    lines = []
    for (label, experiment), group in part.groupby(["label", "experiment"], sort=False):
        line = {"Row": label, "Experiment": experiment}
        if yours:
            line["Compared with"] = _compared_with(group.iloc[0], numeric)
        for record in group.itertuples(index=False):
            line.update(_numeric_cells(record, with_paper, yours) if numeric
                        else _display_cells(record, with_paper, yours))
        if spec.get("amt_column"):
            amt = group.amt_percent_real.iloc[0]
            line[f"paper: {spec['amt_column']}"] = amt if numeric else fmt_plain(amt)
        if part.beside.notna().any():
            name = f"{BESIDE[spec['metric']]} ({' / '.join(spec['columns'])})"
            line[name] = " / ".join(fmt(v) for v in group.beside)
        for name in ("images", "protocol", "segmenter", "note"):
            texts = dict.fromkeys(t for t in group[name] if t)  # unique, in order
            line[name.capitalize() + ("s" if name == "note" else "")] = "; ".join(texts)
        if numeric:
            line["gap"] = "; ".join(dict.fromkeys(g for g in group.gap if g))
        lines.append(line)
    return pd.DataFrame(lines)


def fmt_plain(value) -> str:
    """A paper value as the paper prints it (2.8, not 2.800000); — when there is none."""
    return "—" if value is None or pd.isna(value) else f"{value:g}"


def _compared_with(record: pd.Series, numeric: bool) -> str:
    if not record.yours:
        return ""
    if not record.baseline:
        return "" if numeric else f"— ({record.baseline_how})"
    if numeric:
        return record.baseline
    name = record.baseline if record.baseline_label == record.baseline \
        else f"{record.baseline_label} ({record.baseline})"
    return name if record.baseline_how == "compare_to" else f"{name}; {record.baseline_how}"


def _numeric_cells(record, with_paper: set, yours: bool = False) -> dict:
    c = record.column
    cells = {f"{c}_mean": record.mean, f"{c}_std": record.std, f"{c}_n": record.n}
    if c in with_paper:
        cells.update({f"{c}_paper": record.paper, f"{c}_diff": record.diff})
    if yours:
        cells.update({f"{c}_vs_baseline": record.base_diff,
                      f"{c}_vs_baseline_verdict": record.base_verdict or ""})
    return cells


def _display_cells(record, with_paper: set, yours: bool = False) -> dict:
    c = record.column
    cells = {f"{c} (ours)": ours_text(pd.Series(record._asdict()))}
    if c in with_paper:
        cells.update({f"{c} (paper)": fmt(record.paper, c), f"{c} Δ": fmt(record.diff, c, True)})
    if yours:
        cells[f"{c} Δ vs baseline"] = comparison_text(record)
    return cells


def comparison_text(record) -> str:
    """'-0.050 (lower)': ours − the baseline's ours and the verdict; '' on paper rows."""
    if not record.yours or not record.baseline:
        return ""
    if record.base_verdict == "—" or record.base_verdict is None:
        return "—"
    verdict = record.base_verdict if record.base_verdict != INCONCLUSIVE \
        else f"inconclusive: {record.base_reason}"
    return f"{fmt(record.base_diff, record.column, True)} ({verdict})"


def gap_lines(results: Results, table_id: str) -> list[str]:
    """Each reason for a — in the table, once: '- reason' (and the rows, unless all)."""
    part = results.records[results.records.table == table_id]
    labels = list(dict.fromkeys(part.label))
    reasons: dict[str, list[str]] = {}
    for r in part.itertuples(index=False):
        if r.gap:
            reasons.setdefault(r.gap, []).append(r.label)
        if r.yours and r.base_verdict == "—" and r.base_reason and not r.gap:
            reasons.setdefault(r.base_reason, []).append(r.label)
    lines = []
    for reason, rows in reasons.items():
        rows = list(dict.fromkeys(rows))
        lines.append(f"- {reason}" + ("" if rows == labels else f" — {', '.join(rows)}"))
    return lines


def not_comparable(results: Results, table_id: str) -> list[str]:
    """The table's protocols whose numbers are not comparable with the paper's."""
    part = results.records[(results.records.table == table_id) & results.records.paper.notna()]
    return [m for m in NOT_COMPARABLE_WITH_PAPER if part.metric.str.contains(m, regex=False).any()]


def markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"
    safe = frame.astype(str).map(lambda s: s.replace("|", "\\|").replace("\n", " "))
    return safe.to_markdown(index=False, disable_numparse=True) + "\n"


def table_markdown(results: Results, table_id: str) -> str:
    part = results.records[results.records.table == table_id]
    protocols = "; ".join(dict.fromkeys(p for p in part.protocol if p)) or "— (no numbers yet)"
    diff = "Δ = ours − paper. " if part.paper.notna().any() else ""
    text = (f"# {table_title(results, table_id)}\n\n"
            f"Ours: mean ± sample std over seeds (n = seeds with a number). {diff}"
            "Produced from metrics/<experiment>/scores.json by `replication tables`; "
            "see README.md.\n\n"
            f"Protocols in this table: {protocols}\n\n")
    for metric in not_comparable(results, table_id):
        text += (f"Rows scored with {metric} are not comparable with the paper's values (our "
                 "segmenter and decoded labels, docs/protocols.md): read their Δ against the "
                 "ground-truth row's Δ, not as a verdict.\n\n")
    if part.yours.any():
        text += (f"{YOURS_NOTE} {COMPARISON_RULE}\n\n")
    text += markdown(wide_table(results, table_id))
    gaps = gap_lines(results, table_id)
    if gaps:
        text += "\nNo number (— above):\n\n" + "\n".join(gaps) + "\n"
    return text


YOURS_NOTE = (
    "Your experiments (params.yaml entries that are no row of the paper) follow the row "
    "they are compared with ('Compared with': params.yaml `compare_to`, else the closest "
    "paper experiment of the same task), or close the table without one. Δ vs baseline = "
    "ours − the baseline's ours.")


def claims_markdown(results: Results) -> str:
    shown = results.claims.assign(
        ours=lambda f: [f"{_mean_std(r, 'better')} vs {_mean_std(r, 'worse')}"
                        for r in f.itertuples()],
        paper=lambda f: [f"{fmt(a)} vs {fmt(b)}" for a, b in zip(f.better_paper, f.worse_paper)],
    ) if not results.claims.empty else results.claims
    columns = ["claim", "statement", "column", "better", "worse", "ours", "paper", "verdict",
               "reason"]
    return (f"# The paper's claims, judged on our runs ({scale_marker(results)})\n\n"
            f"{VERDICT_RULE}\n\n"
            f"{markdown(shown[columns] if not shown.empty else shown)}\n"
            "## Spearman rank correlation of our row means with the paper's\n\n"
            "Per table and column, over the rows with both numbers (the ground-truth row "
            "left out); 'n/a' when fewer than 3 rows have our numbers "
            "(scipy.stats.spearmanr).\n\n"
            f"{markdown(results.spearman[['table', 'column', 'spearman', 'rows_in_paper']])}"
            f"{comparisons_markdown(results)}")


def comparisons_markdown(results: Results) -> str:
    frame = results.comparisons
    if frame.empty:
        return ""
    shown = frame.assign(
        ours=[_spread(r.mean, r.std, r.n) for r in frame.itertuples()],
        base=[_spread(r.base_mean, r.base_std, r.base_n) for r in frame.itertuples()],
        **{"Δ": [fmt(d, signed=True) for d in frame["diff"]]})
    columns = ["experiment", "baseline", "metric", "column", "ours", "base", "Δ", "verdict",
               "reason"]
    return ("\n## Your experiments against their baselines\n\n"
            f"{COMPARISON_RULE} Baseline: params.yaml `compare_to`, else the closest paper "
            "experiment of the same dataset and direction (`how` in comparisons.csv).\n\n"
            f"{markdown(shown[columns].rename(columns={'base': 'baseline (ours)'}))}")


def _spread(mean, std, n) -> str:
    if mean is None or pd.isna(mean):
        return "—"
    return f"{fmt(mean)}{f' ± {fmt(std)}' if int(n) >= 2 else ''} (n={int(n)})"


def _mean_std(row, side: str) -> str:
    mean, std, n = (getattr(row, f"{side}_{k}") for k in ("mean", "std", "n"))
    if pd.isna(mean):
        return "—"
    return f"{fmt(mean)}{f' ± {fmt(std)}' if n >= 2 else ''} (n={n})"


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_tables(results: Results, out_dir: str | Path) -> None:
    """The whole folder is replaced at once: readers never see a mix of two renders."""
    with atomic_dir(out_dir) as tmp:
        for table_id in results.tables:
            write_text(tmp / f"{table_id}.md", table_markdown(results, table_id))
            write_csv(tmp / f"{table_id}.csv", wide_table(results, table_id, numeric=True))
        write_text(tmp / "claims.md", claims_markdown(results))
        write_csv(tmp / "claims.csv", results.claims)
        write_csv(tmp / "spearman.csv", results.spearman)
        write_csv(tmp / "comparisons.csv", results.comparisons)
        write_text(tmp / "README.md", readme(results))


def readme(results: Results) -> str:
    records = results.records
    scored = sorted(set(records[records.gap.isna()].experiment) - {GROUND_TRUTH})
    missing = sorted(set(results.experiments) - set(scored))
    files = "\n".join(f"- [{t}.md]({t}.md) ([csv]({t}.csv)): {results.tables[t]['title']}"
                      for t in results.tables)
    return README_TEMPLATE.format(
        scale=scale_marker(results), files=files,
        scored=len(scored), total=len(results.experiments),
        missing=", ".join(missing) or "none", calibration=_calibration(results),
        rule=VERDICT_RULE)


def _calibration(results: Results) -> str:
    part = results.records[results.records.reference]
    if part.empty or part.gap.notna().all():
        return "Not available yet: " + "; ".join(dict.fromkeys(part.gap.dropna())) + "."
    return ", ".join(f"{r.column} {fmt(r.mean)} vs paper {fmt(r.paper)} "
                     f"(Δ {fmt(r.diff, signed=True)})" for r in part.itertuples()) + "."


# --- command line: replication tables -----------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml",
                        help="params file: the experiment grid and its scale "
                             "(default: params.yaml)")
    parser.add_argument("--metrics", default=str(layout.METRICS),
                        help="folder holding <experiment>/scores.json and train.json "
                             "(default: metrics)")
    parser.add_argument("--paper-numbers", default=str(PAPER_NUMBERS),
                        help="YAML file with the paper's tables and claims (default: the packaged "
                             "replication/paper_numbers.yaml)")
    parser.add_argument("--out", default="tables",
                        help="output folder, replaced as a whole (default: tables)")


def run(args: argparse.Namespace) -> int:
    results = load_results(args.params, args.metrics, args.paper_numbers)
    write_tables(results, args.out)
    verdicts = results.claims.verdict.map(lambda v: v if not v.startswith("—") else "gap")
    counts = ", ".join(f"{n} {v}" for v, n in verdicts.value_counts().items())
    scored = len(set(results.records[results.records.gap.isna()].experiment) - {GROUND_TRUTH})
    print(f"{len(results.tables)} tables -> {args.out} "
          f"({scale_marker(results)}); "
          f"{scored} experiments with numbers; claims: {counts or 'none'}")
    return 0
