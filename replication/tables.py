"""Results tables and claims, rendered from the metrics files only.

`replication tables` reads params.yaml (the experiment grid and its scale), the paper's
numbers (replication/paper_numbers.yaml) and metrics/<experiment>/scores.json, and writes
into --out one Markdown and one CSV file per table (the paper's Tables 1, 2, 3, 4, 6 and
the Fig. 7d colour statistics, FID/KID per dataset), claims.md/.csv (the paper's
orderings judged over seeds, with Spearman rank correlations) and a README on how each
number was produced. No number is typed here: the paper's come from paper_numbers.yaml,
ours from the metrics files. A missing input is a marked gap in the table, never a crash.

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
from replication.params import load_params, read_yaml, scale_data
from replication.records import BESIDE, METRIC_NAMES, RECORD_COLUMNS, Workspace, row_records
from replication.tables_readme import README_TEMPLATE

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")

NUMBER_FORMATS = {"fid": "{:.2f}", "kid_mean": "{:.4f}"}  # others: 3 decimals

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
VERDICT_RULE = (
    "A claim 'A beats B' on one column is judged on our mean ± sample std over seeds: "
    "**inconclusive** when either side has fewer than 2 seeds, when the two sides were "
    "not all scored with one protocol, or when the intervals [mean − std, mean + std] "
    "overlap; otherwise **reproduced** if A's mean is higher, **not reproduced** if "
    "lower. A side with no numbers at all is a gap (—), not a verdict.")


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


def fid_kid_tables(params: dict) -> dict[str, dict]:
    """One FID/KID table per dataset over every experiment on it (not in the paper)."""
    tables: dict[str, dict] = {}
    for name, entry in (params.get("experiments") or {}).items():
        dataset = ((entry or {}).get("data") or {}).get("dataset", "?")
        spec = tables.setdefault(f"fid_kid_{dataset}", {
            "title": f"FID / KID — {dataset} test images (not in the paper; docs/protocols.md)",
            "metric": "fid_kid", "columns": ["fid", "kid_mean"], "rows": []})
        spec["rows"].append({"label": name, "experiment": name})
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


def load_results(params_path: str | Path = "params.yaml",
                 metrics_dir: str | Path = layout.METRICS,
                 paper_path: str | Path = PAPER_NUMBERS) -> Results:
    params, paper = load_params(params_path), load_paper_numbers(paper_path)
    workspace = Workspace(params, Path(metrics_dir))
    tables = {**paper["tables"], **fid_kid_tables(params)}
    records = []
    for table_id, spec in tables.items():
        for row in spec["rows"]:
            records += row_records(table_id, spec, row, workspace)
        if spec.get("reference"):  # scored with the protocol of the table's rows if it can
            used = {r["metric"] for r in records if r["table"] == table_id}
            records += row_records(table_id, spec, spec["reference"], workspace,
                                   reference=True, prefer=used)
    records = pd.DataFrame.from_records(records, columns=RECORD_COLUMNS)
    for column in ("mean", "std", "paper", "diff", "amt_percent_real", "beside"):
        records[column] = pd.to_numeric(records[column]).astype(float)
    records["gap"] = records.gap.astype(object).where(records.gap.notna(), None)
    return Results(workspace.scale, scale_data(params).source,
                   list(params.get("experiments") or {}), tables, records,
                   claims_frame(records, paper.get("claims") or []),
                   spearman_frame(records, tables))


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

def judge(better: pd.Series, worse: pd.Series) -> tuple[str, str]:
    """(verdict, reason) for 'better beats worse' under VERDICT_RULE."""
    for side in (better, worse):
        if side.gap:
            return f"— ({side.experiment}: {side.gap})", "missing input"
    if min(better.n, worse.n) < 2:
        return INCONCLUSIVE, f"fewer than 2 seeds (n = {better.n} vs {worse.n})"
    if better.protocol != worse.protocol or better.protocol.startswith("MIXED"):
        return INCONCLUSIVE, f"not one protocol ({better.protocol} vs {worse.protocol})"
    if (better["mean"] - better["std"] <= worse["mean"] + worse["std"]
            and worse["mean"] - worse["std"] <= better["mean"] + better["std"]):
        return INCONCLUSIVE, "mean ± std intervals overlap"
    if better["mean"] > worse["mean"]:
        return REPRODUCED, "intervals separate, in the paper's order"
    return NOT_REPRODUCED, "intervals separate, in the opposite order"


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
        return f"— ({record.gap})"
    spread = f" ± {fmt(record['std'], record.column)}" if record.n >= 2 else ""
    return f"{fmt(record['mean'], record.column)}{spread} (n={record.n})"


def wide_table(results: Results, table_id: str, numeric: bool = False) -> pd.DataFrame:
    """One line per table row: ours, paper and Δ per column, then provenance.

    numeric=False: the display strings (Markdown, notebook); True: numbers (CSV)."""
    spec, records = results.tables[table_id], results.records
    part = records[records.table == table_id]
    with_paper = {c for c in spec["columns"] if part[part.column == c].paper.notna().any()}
    lines = []
    for (label, experiment), group in part.groupby(["label", "experiment"], sort=False):
        line = {"Row": label, "Experiment": experiment}
        gaps_shown: set[str] = set()
        for record in group.itertuples(index=False):
            line.update(_numeric_cells(record, with_paper) if numeric
                        else _display_cells(record, with_paper, gaps_shown))
        if spec.get("amt_column"):
            line[f"paper: {spec['amt_column']}"] = group.amt_percent_real.iloc[0]
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


def _numeric_cells(record, with_paper: set) -> dict:
    c = record.column
    cells = {f"{c}_mean": record.mean, f"{c}_std": record.std, f"{c}_n": record.n}
    if c in with_paper:
        cells.update({f"{c}_paper": record.paper, f"{c}_diff": record.diff})
    return cells


def _display_cells(record, with_paper: set, gaps_shown: set) -> dict:
    c = record.column
    if record.gap and record.gap in gaps_shown:
        ours = "—"  # the reason is already given in an earlier column of this row
    else:
        ours = ours_text(pd.Series(record._asdict()))
        gaps_shown.add(record.gap)
    cells = {f"{c} (ours)": ours}
    if c in with_paper:
        cells.update({f"{c} (paper)": fmt(record.paper, c), f"{c} Δ": fmt(record.diff, c, True)})
    return cells


def markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"
    safe = frame.astype(str).map(lambda s: s.replace("|", "\\|").replace("\n", " "))
    return safe.to_markdown(index=False, disable_numparse=True) + "\n"


def table_markdown(results: Results, table_id: str) -> str:
    part = results.records[results.records.table == table_id]
    protocols = "; ".join(dict.fromkeys(p for p in part.protocol if p)) or "— (no numbers yet)"
    diff = "Δ = ours − paper. " if part.paper.notna().any() else ""
    return (f"# {table_title(results, table_id)}\n\n"
            f"Ours: mean ± sample std over seeds (n = seeds with a number). {diff}"
            "Produced from metrics/<experiment>/scores.json by `replication tables`; "
            "see README.md.\n\n"
            f"Protocols in this table: {protocols}\n\n{markdown(wide_table(results, table_id))}")


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
            f"{markdown(results.spearman[['table', 'column', 'spearman', 'rows_in_paper']])}")


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
