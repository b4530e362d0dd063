"""Results tables, claims and the results notebook, rendered from the metrics files only.

`replication tables` reads params.yaml (the experiment grid and its scale), the paper's
numbers (replication/paper_numbers.yaml) and metrics/<experiment>/scores.json, and writes
into --out one Markdown and one CSV file per table (the paper's Tables 1, 2, 3, 4, 6 and
the Fig. 7d colour statistics, FID/KID per dataset), claims.md/.csv (the paper's
orderings judged over seeds, with Spearman rank correlations) and a README on how each
number was produced. No number is typed here: the paper's come from paper_numbers.yaml,
ours from the metrics files. A missing input is a marked gap in the table, never a crash.

`replication notebook` executes notebooks/results.ipynb with papermill and converts it to
HTML; the notebook's plots and image grids are the helpers at the end of this module.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.stats import spearmanr

from replication import layout
from replication.params import active_scale, experiment_dict, load_params, read_yaml, scale_data
from replication.errors import ConfigError
from replication.fileio import atomic_dir, atomic_path, write_text

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")
GROUND_TRUTH = "ground-truth"  # metrics/ground-truth/scores.json: real photos, same protocol

# Metric family (paper_numbers.yaml) -> metric names in scores.json, preferred first: the
# paper's FCN-score arithmetic on the paper's inputs before the colour-decoded fallback.
METRIC_NAMES = {
    "fcn_score": ("fcn_score_official", "fcn_score_fallback"),
    "labels_score": ("labels_score",),
    "color_hist": ("color_hist",),
    "fid_kid": ("fid_kid",),
}
# Shown beside a family's numbers, in one extra column: the same FCN predictions scored
# with the official code's quirks removed (docs/protocols.md).
BESIDE = {"fcn_score": "fcn_score_corrected"}
NUMBER_FORMATS = {"fid": "{:.2f}", "kid_mean": "{:.4f}"}  # others: 3 decimals

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
VERDICT_RULE = (
    "A claim 'A beats B' on one column is judged on our mean ± sample std over seeds: "
    "**inconclusive** when either side has fewer than 2 seeds, when the two sides were "
    "not all scored with one protocol, or when the intervals [mean − std, mean + std] "
    "overlap; otherwise **reproduced** if A's mean is higher, **not reproduced** if "
    "lower. A side with no numbers at all is a gap (—), not a verdict.")

RECORD_COLUMNS = ["table", "label", "experiment", "column", "reference", "mean", "std", "n",
                  "paper", "diff", "amt_percent_real", "metric", "protocol", "segmenter",
                  "images", "scale", "source", "beside", "gap", "note"]


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


# --- our numbers: one record per (table, row, column) ------------------------------------

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
        if not path.is_file():
            return None, f"not run: {path} missing"
        try:
            scores = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            return None, f"unreadable: {path}: {err}"
        if not isinstance(scores, dict) or not isinstance(scores.get("seeds"), dict):
            return None, f"unreadable: {path} has no `seeds` mapping"
        return scores, None

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
            gaps.append(f"{name} unavailable: {result.get('reason', 'no reason given')}")
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
                        "note": note})
    return records


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


README_TEMPLATE = """\
# Results tables ({scale})

Rendered by `replication tables` from `params.yaml`, `replication/paper_numbers.yaml` (the
paper's numbers, docs/protocols.md, docs/results.md) and `metrics/<experiment>/scores.json` — no number in these
files is typed by hand. {scored} of {total} experiments in params.yaml have numbers; none
yet for: {missing}. Plots, loss curves and image grids:
[notebooks/results.html](../notebooks/results.html) (source:
[notebooks/results.ipynb](../notebooks/results.ipynb), `replication notebook`).

{files}
- [claims.md](claims.md) ([csv](claims.csv), [spearman.csv](spearman.csv)): the paper's
  orderings judged on our runs, and rank correlations with the paper's numbers.

## How each number was produced

- **Ours** = mean ± sample standard deviation (n − 1) over the seeds listed in
  params.yaml; `n` = seeds that produced a number. **Δ** = ours − paper. The paper
  reports single runs and notes large run-to-run variation (docs/results.md).
- **FCN-score (Tables 1-3)**, one confusion matrix pooled over all val frames (docs/protocols.md).
  `fcn_score_official` is the paper's protocol: the authors' FCN-8s, the original `gtFine`
  labelIds at 1024×2048, each generated photo upsampled to that size, and the official
  code's arithmetic with its quirks (a prediction of the FCN's 20th output counted as
  "road" of the next class, frames with a bicycle pixel predicted so dropped). The
  column `fcn_score_corrected` beside it scores the same predictions without the
  quirks (docs/protocols.md). Without those
  inputs the scorer uses `fcn_score_fallback`: a segmenter of our own and labels decoded
  from the colour label images by nearest palette colour — its numbers are comparable
  only with each other and with the ground-truth row scored the same way, not with the
  paper's values. Every row names the protocol and segmenter that produced it (rows
  mixing protocols are marked MIXED), and the number of frames.
- **Segmenter calibration**: the ground-truth row of Table 1 scores the real val photos
  with the same protocol; its difference from the paper's ground-truth row measures how
  far our segmenter and protocol are from the authors', independent of any generator
  (read a method row's Δ against the ground-truth row's Δ, not against zero).
  Ours: {calibration}
- **Table 6 (photo → labels)**: generated label maps decoded to the nearest Cityscapes
  label colour, same confusion-matrix scores.
- **Table 4** was a human (AMT) study and cannot be reproduced by a program: its table
  shows the paper's "% labelled real" next to our FID/KID on the same runs.
- **FID/KID** (not in the paper): pytorch-fid InceptionV3 pool3 features. With fewer than
  2048 images FID is biased, so every row states the image counts; KID (unbiased) is
  shown as the mean over seeds of each run's subset-mean KID.
- **Colour statistics (Fig. 7d)**: histogram intersection of generated vs real Lab
  colour distributions per channel, 1 Lab unit per bin.
- A gap "— (reason)" marks an experiment that was not run, a missing metrics file, or a
  metric that could not be computed (e.g. FID without Inception weights), with the reason.

## Claims

{rule}
Rank agreement with the paper: Spearman's rho of our row means against the paper's
values per table and column; "n/a" with fewer than 3 rows.
"""


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


# --- notebook helpers: highlighted tables, bar charts, loss curves, image grids ------------
# matplotlib is imported inside the plotting helpers: `replication tables` needs none of it.

# the series replication/train.py logs with DVCLive (plots/metrics/train/<name>.tsv)
LOSS_SERIES = ("loss_D", "loss_G_gan", "loss_G_l1", "D_real", "D_fake", "lr")


def style_table(results: Results, table_id: str):
    """The display table with each Δ cell coloured by |ours − paper| / paper:
    green within 10 %, yellow within 25 %, red beyond (pandas Styler)."""
    shown = wide_table(results, table_id)
    part = results.records[results.records.table == table_id]

    def colours(_: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=shown.index, columns=shown.columns)
        for column in results.tables[table_id]["columns"]:
            if f"{column} Δ" in css:
                rows = part[part.column == column]
                css[f"{column} Δ"] = [_diff_css(d, p) for d, p in zip(rows["diff"], rows.paper)]
        return css

    return shown.style.apply(colours, axis=None).hide(axis="index")


def _diff_css(diff: float, paper: float) -> str:
    if pd.isna(diff):
        return ""
    relative = abs(diff) / max(abs(paper), 1e-9)
    colour = "#c8e6c9" if relative <= 0.10 else "#fff3b0" if relative <= 0.25 else "#f4c7c3"
    return f"background-color: {colour}"


def bar_chart(results: Results, table_id: str):
    """Ours (mean, error bar = std over seeds) next to the paper, one panel per column;
    None when the table has no paper values."""
    from matplotlib.figure import Figure
    part = results.records[(results.records.table == table_id) & results.records.paper.notna()]
    columns = list(dict.fromkeys(part.column))
    if not columns:
        return None
    fig = Figure(figsize=(4.2 * len(columns), 3.6), layout="constrained")
    for ax, column in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns):
        rows = part[part.column == column]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, rows.paper, 0.4, label="paper", color="#9e9e9e")
        ax.bar(x + 0.2, rows["mean"].fillna(0), 0.4, yerr=rows["std"].fillna(0),
               label="ours", color="#1f77b4", capsize=3)
        for xi, missing in zip(x, rows["mean"].isna()):
            if missing:
                ax.text(xi + 0.2, 0, "n/a", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, rows.label, rotation=30, ha="right")
        ax.set_title(column)
    fig.axes[0].legend()
    fig.suptitle(table_title(results, table_id), fontsize=9)
    return fig


def read_loss_curves(logs_dir: str | Path, experiment: str) -> dict[str, dict[str, pd.DataFrame]]:
    """seed folder -> series name -> DVCLive TSV (columns step, <name>)."""
    curves = {}
    for seed_dir in sorted((Path(logs_dir) / experiment).glob("seed-*")):
        folder = seed_dir / "plots" / "metrics" / "train"
        series = {name: pd.read_csv(folder / f"{name}.tsv", sep="\t")
                  for name in LOSS_SERIES if (folder / f"{name}.tsv").is_file()}
        if series:
            curves[seed_dir.name] = series
    return curves


def loss_curves(logs_dir: str | Path, experiment: str):
    """(figure, None) with one panel per logged series and one line per seed, or
    (None, note) when the experiment has no logs."""
    from matplotlib.figure import Figure
    curves = read_loss_curves(logs_dir, experiment)
    if not curves:
        return None, (f"— {experiment}: no loss curves "
                      f"({Path(logs_dir) / experiment}/seed-*/plots/metrics/train/*.tsv missing)")
    names = [n for n in LOSS_SERIES if any(n in series for series in curves.values())]
    fig = Figure(figsize=(2.6 * len(names), 2.4), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        for seed, series in curves.items():
            if name in series:
                ax.plot(series[name]["step"], series[name][name], label=seed, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(experiment, fontsize=10)
    return fig, None


def table_columns(results: Results, table_id: str, labels: list[str] | None = None):
    """(label, experiment) of a table's rows, e.g. the columns of an image grid."""
    rows = results.tables[table_id]["rows"]
    return [(r["label"], r["experiment"]) for r in rows if labels is None or r["label"] in labels]


def figure4_grid(columns: list[tuple[str, str]], params_path: str | Path,
                 generated_dir: str | Path, data_dir: str | Path,
                 seed: int = 0, n_images: int = 3):
    """Paper Figure 4 layout: input | one column per run | target, on the same test images.

    Runs without generated images are skipped (with a note). Returns (figure | None, notes).
    """
    params, notes = load_params(params_path), []
    runs = []
    for label, experiment in columns:
        folder = Path(generated_dir) / experiment / f"seed-{seed}"
        names = {p.stem for p in folder.glob("*.png")}
        if names:
            runs.append((label, experiment, folder, names))
        else:
            notes.append(f"{label} ({experiment}) skipped: no images in {folder}")
    names = sorted(set.intersection(*(r[3] for r in runs)), key=_natural)[:n_images] if runs else []
    if not names:
        return None, notes + ["nothing to show: no test image generated by every run shown"]
    pairs, pair_note = _real_pairs(params, runs[0][1], data_dir, names)
    notes += [pair_note] if pair_note else []
    grid_columns = [(label, [Image.open(folder / f"{n}.png").convert("RGB") for n in names])
                    for label, _, folder, _ in runs]
    if pairs:
        grid_columns = [("Input", pairs[0]), *grid_columns, ("Target", pairs[1])]
    return _image_grid(grid_columns, names), notes


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _real_pairs(params: dict, experiment: str, data_dir, names: list[str]):
    """([inputs], [targets]) from data/<dataset>/<test split>/<name>.jpg (A | B halves)."""
    try:
        data = experiment_dict(params, experiment)["data"]
    except ConfigError as err:
        return None, f"input and target skipped: {err}"
    split = data.get("test_split", "test")
    folder = Path(data_dir) / data["dataset"] / split
    files = [next(folder.glob(f"{n}.*"), None) for n in names]
    if None in files:
        return None, f"input and target skipped: the test pairs are not in {folder}"
    halves = [_halves(Image.open(f).convert("RGB")) for f in files]
    a, b = [h[0] for h in halves], [h[1] for h in halves]
    # BtoA (the paper's labels -> photo): the input is the right half B
    return ((b, a) if data.get("direction", "BtoA") == "BtoA" else (a, b)), None


def _halves(pair):
    w, h = pair.size
    return pair.crop((0, 0, w // 2, h)), pair.crop((w // 2, 0, w, h))


def _image_grid(columns: list[tuple[str, list]], names: list[str]):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2.0 * len(columns), 2.0 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), len(columns), squeeze=False)
    for j, (label, images) in enumerate(columns):
        axes[0, j].set_title(label, fontsize=9)
        for i, image in enumerate(images):
            axes[i, j].imshow(np.asarray(image))
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    for i, name in enumerate(names):
        axes[i, 0].set_ylabel(name, fontsize=8)
    return fig


def rendered_files(tables_dir: str | Path) -> list[Path]:
    """The files `replication tables` wrote (empty when it has not run)."""
    folder = Path(tables_dir)
    return sorted(folder.glob("*.md")) + sorted(folder.glob("*.csv")) if folder.is_dir() else []


# --- command line: replication notebook ------------------------------------------------------

def execute_notebook(notebook: str | Path, executed: str | Path, html: str | Path,
                     parameters: dict, timeout: int = 600) -> None:
    """Run the notebook top to bottom with papermill; write it and its HTML atomically."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    if not Path(notebook).is_file():
        raise TablesError(f"{notebook}: notebook not found (run from the repository root)")
    nb = papermill.execute_notebook(str(notebook), None, parameters=parameters,
                                    kernel_name="python3", progress_bar=False,
                                    execution_timeout=timeout)
    with atomic_path(executed) as tmp:
        nbformat.write(nb, str(tmp))
    body, _ = HTMLExporter().from_notebook_node(nb)
    write_text(html, body)


def add_notebook_arguments(parser: argparse.ArgumentParser) -> None:
    paths = parser.add_argument_group("inputs (the notebook's parameters)")
    paths.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    paths.add_argument("--paper-numbers", default=str(PAPER_NUMBERS),
                       help="YAML file with the paper's tables and claims (default: packaged one)")
    for name, default in (("tables", "tables"), ("metrics", layout.METRICS), ("logs", layout.LOGS),
                          ("generated", layout.GENERATED), ("data", "data")):
        paths.add_argument(f"--{name}", default=str(default),
                           help=f"the {name} folder of the workspace (default: {default})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed whose generated images the grids show (default: 0)")
    parser.add_argument("--images", type=int, default=3,
                        help="test images (rows) per image grid (default: 3)")
    parser.add_argument("--notebook", default="notebooks/results.ipynb",
                        help="the notebook to execute (default: notebooks/results.ipynb)")
    parser.add_argument("--executed", default="notebooks/results.executed.ipynb",
                        help="where the executed notebook goes "
                             "(default: notebooks/results.executed.ipynb)")
    parser.add_argument("--html", default="notebooks/results.html",
                        help="where its HTML rendering goes (default: notebooks/results.html)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds one cell may run before it fails (default: 600)")


def run_notebook(args: argparse.Namespace) -> int:
    parameters = {"params_path": args.params, "paper_numbers_path": args.paper_numbers,
                  "tables_dir": args.tables, "metrics_dir": args.metrics,
                  "logs_dir": args.logs, "generated_dir": args.generated,
                  "data_dir": args.data, "seed": args.seed, "n_images": args.images}
    execute_notebook(args.notebook, args.executed, args.html, parameters, args.timeout)
    print(f"{args.notebook} executed -> {args.executed}, {args.html}")
    return 0
