"""Results tables and claims, rendered from the metrics files only.

`replication tables` reads params.yaml (the experiment grid and its scale), the paper's
numbers (replication/results/paper_numbers.yaml) and metrics/<experiment>/scores.json, and writes
into --out one Markdown and one CSV file per table (the paper's Tables 1, 2, 3, 4, 6 and
the Fig. 7d colour statistics; per dataset FID/KID, PSNR/SSIM and for maps pixel
accuracy), claims.md/.csv (the paper's orderings judged on paired bootstrap intervals,
with Spearman rank correlations), the test-time study's tables for the experiments that
asked for it (test_time_tables.py) and a README on how each number was produced. No
number is typed here: the paper's come from paper_numbers.yaml, ours from the metrics
files (and their per-image scores, metrics/<experiment>/per_image/). A missing input is a gap (—) in the table with its reason
stated once under the table, never a crash.

Your experiments (params.yaml experiments that are no row of the paper's tables, e.g. an
ablation) get a row in every table of their task (paper_numbers.yaml `task`: dataset and
direction): right after the row of the experiment they are compared with (params.yaml
`compare_to`, else the paper experiment of the same task whose settings differ least),
or at the end of the task's first table without one; the row shows the difference to
that baseline with its interval and verdict (the claims' rule, replication/results/statistics.py).

Our numbers are read into records by replication/results/records.py; the README's text is
replication/results/readme_template.py; the results notebook (`replication notebook`) is
replication/results/notebook.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from replication.config.datasets import DATASETS
from replication.config.params import Params
from replication.config.scoring import load_scoring
from replication.core import layout
from replication.core.layout import GROUND_TRUTH
from replication.metrics.protocols import protocols_for
from replication.results.baselines import (
    add_your_rows,
    baselines,
    check_compare_to,
    paper_experiments,
    with_comparison,
)
from replication.results.claims import (
    COMPARISON_RULE,
    NO_VERDICT,
    VERDICT_RULE,
    claims_frame,
    comparisons_frame,
    spearman_frame,
)
from replication.results.formatting import fmt, fmt_plain, interval_text, markdown
from replication.results.paper import PAPER_NUMBERS, load_paper_numbers
from replication.results.readme_template import README_TEMPLATE
from replication.results.records import (
    BESIDE,
    NOT_COMPARABLE_WITH_PAPER,
    RECORD_COLUMNS,
    Workspace,
    row_records,
)
from replication.results.statistics import Bootstrap
from replication.results.test_time_tables import test_time_frames

# Tables that are not in the paper, one per dataset and metric, over every experiment on
# the dataset that is scored with the metric (replication/metrics/protocols.py).
DATASET_TABLES = {
    "fid_kid": {"title": "FID / KID", "columns": ["fid", "kid_mean"]},
    "psnr_ssim": {"title": "PSNR (dB) / SSIM against the targets", "columns": ["psnr", "ssim"]},
    "pixel_accuracy": {"title": "map pixel accuracy (colour within a tolerance)",
                       "columns": ["pixel_acc"]},
}


def dataset_tables(params: Params, yours: frozenset[str] = frozenset()) -> dict[str, dict]:
    """DATASET_TABLES for every dataset with an experiment scored by their metric (not in
    the paper; docs/protocols.md), one per direction where the dataset's experiments go
    both ways (photo -> labels is another task than labels -> photo); `yours` are left for
    add_your_rows to place (after their baseline)."""
    scoring = load_scoring(params)
    scored = []  # (metric, dataset, direction, experiment)
    for name in params.experiments:
        cfg = params.config(name)
        # the FCN-score's exact or fallback protocol makes no dataset table
        chosen = protocols_for(cfg, scoring, exact_fcn=False)
        scored += [(m, cfg.data.dataset, cfg.data.direction, name)
                   for m in DATASET_TABLES if m in chosen]
    directions: dict[tuple, set] = {}
    for metric, dataset, direction, _ in scored:
        directions.setdefault((metric, dataset), set()).add(direction)
    tables: dict[str, dict] = {}
    for metric, dataset, direction, name in scored:
        kind, task = DATASET_TABLES[metric], {"dataset": dataset}
        table_id, what = f"{metric}_{dataset}", dataset
        if len(directions[metric, dataset]) > 1:
            table_id = f"{table_id}_{direction}"
            what = f"{dataset} {direction_words(dataset, direction)}"
            task = {"dataset": dataset, "direction": direction}
        spec = tables.setdefault(table_id, {
            "title": f"{kind['title']} — {what} test images "
                     "(not in the paper; docs/protocols.md)",
            "metric": metric, "columns": kind["columns"], "rows": [], "task": task,
            "all_experiments": True})
        if name not in yours:
            spec["rows"].append({"label": name, "experiment": name})
    return tables


def direction_words(dataset: str, direction: str) -> str:
    """e.g. "label colours → photo" (the registry's halves), else the direction itself."""
    info = DATASETS.get(dataset)
    if info is None:
        return direction
    a, b = info.a_side, info.b_side
    return f"{a} → {b}" if direction == "AtoB" else f"{b} → {a}"


def table_specs(params: Params, paper: dict) -> dict[str, dict]:
    """Table id -> spec: the paper's tables, then DATASET_TABLES, with your experiments'
    rows placed after their baselines."""
    chosen = baselines(params, paper_experiments(paper["tables"]))
    return add_your_rows({**paper["tables"], **dataset_tables(params, frozenset(chosen))},
                         params, chosen)


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
    machines: list[str]  # what computed the scores: CPU / GPU, torch (scores.json `machine`)
    bootstrap: Bootstrap = Bootstrap()  # how every interval was computed (statistics.py)
    test_time: dict = None  # task -> frame of the test-time study (test_time_tables.py)
    # table id -> what its experiments ran at (image size, steps vs the paper's, seeds)
    schedules: dict = None


def load_results(params: Params, metrics_dir: str | Path = layout.METRICS,
                 paper_path: str | Path = PAPER_NUMBERS) -> Results:
    paper = load_paper_numbers(paper_path)
    check_compare_to(params)
    workspace = Workspace(params, Path(metrics_dir))
    tables = table_specs(params, paper)
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
    for column in ("mean", "std", "lo", "hi", "paper", "diff", "amt_percent_real", "beside",
                   "base_mean", "base_std", "base_diff", "base_diff_lo", "base_diff_hi"):
        records[column] = pd.to_numeric(records[column]).astype(float)
    for column in ("gap", "covers", "baseline", "baseline_label", "baseline_how",
                   "base_verdict", "base_reason"):
        records[column] = records[column].astype(object).where(records[column].notna(), None)
    records["yours"] = records.yours.fillna(False).astype(bool)
    records["base_n"] = pd.to_numeric(records.base_n).astype("Int64")
    return Results(workspace.scale, params.scale_data().source,
                   list(params.experiments), tables, records,
                   claims_frame(records, paper.get("claims") or [], workspace.bootstrap),
                   spearman_frame(records, tables), comparisons_frame(records, tables),
                   machines(workspace, [*params.experiments, GROUND_TRUTH]),
                   workspace.bootstrap, test_time_frames(params, workspace, tables),
                   {table_id: schedule_text(params, table_experiments(spec))
                    for table_id, spec in tables.items()})


def table_experiments(spec: dict) -> list[str]:
    return [row["experiment"] for row in spec["rows"] if row.get("experiment")]


def schedule_text(params: Params, names: list[str]) -> str:
    """'128 px, 2,975 steps = 0.5% of the paper's schedule, 2 seeds' for the experiments
    of one table (each distinct value listed): what a reader must know before reading a
    number that is not the paper scale's. The paper's schedule: its epochs of the dataset's
    training split at the experiment's batch size (docs/datasets.md)."""
    known = params.experiments
    sizes, steps, shares, seeds = set(), set(), set(), set()
    for name in names:
        if name not in known:
            continue
        cfg = params.config(name)
        info = DATASETS.get(cfg.data.dataset)
        sizes.add(f"{cfg.data.image_size} px")
        seeds.add(len(cfg.seeds))
        if info is None or cfg.data.train_split not in info.splits:
            continue
        images = info.splits[cfg.data.train_split]
        total = cfg.train.total_steps(images)
        paper = info.paper_epochs * -(-images // cfg.train.batch_size)
        steps.add(f"{total:,} steps"), shares.add(f"{100 * total / paper:.3g}%")
    parts = [", ".join(sorted(sizes))]
    if steps:
        parts.append(f"{' / '.join(sorted(steps))} = {' / '.join(sorted(shares))} of the "
                     "paper's schedule")
    parts.append(" / ".join(str(n) for n in sorted(seeds)) + " seed(s)")
    return ", ".join(p for p in parts if p)


def machines(workspace: Workspace, experiments: list[str]) -> list[str]:
    """Each distinct machine the experiments' scores were computed on, as one line."""
    seen = {}
    for name in experiments:
        scores, _ = workspace.read_scores(name)
        m = (scores or {}).get("machine")
        if m:
            isa = f", {m['isa']}" if m.get("isa") else ""
            where = m.get("gpu") or f"{m.get('cpu')}{isa}, {m.get('threads')} threads"
            seen.setdefault(f"{where}, torch {m.get('torch')}", []).append(name)
    return [f"{line}: {len(names)} experiment(s)" for line, names in seen.items()]


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
    data = " — synthetic data" if synthetic else " — real data"
    schedule = (results.schedules or {}).get(table_id) if table_id else None
    detail = f": {schedule}" if schedule else ""
    return f"{'/'.join(s.upper() for s in others)} scale{data}{detail}; not a paper result"


def table_title(results: Results, table_id: str) -> str:
    return f"{results.tables[table_id]['title']} ({scale_marker(results, table_id)})"


# --- rendering -----------------------------------------------------------------------------

def ours_text(record: pd.Series) -> str:
    """'0.724 [0.701, 0.748] (n=3)': the mean over seeds, its interval (statistics.py;
    what it accounts for is listed under the table) and the seeds with a number."""
    if record.gap:
        return "—"  # the reason: once, under the table (gap_lines)
    c = record.column
    return f"{fmt(record['mean'], c)}{interval_text(record['lo'], record['hi'], c)} (n={record.n})"


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
    cells = {f"{c}_mean": record.mean, f"{c}_lo": record.lo, f"{c}_hi": record.hi,
             f"{c}_std": record.std, f"{c}_n": record.n, f"{c}_interval": record.covers or ""}
    if c in with_paper:
        cells.update({f"{c}_paper": record.paper, f"{c}_diff": record.diff})
    if yours:
        cells.update({f"{c}_vs_baseline": record.base_diff,
                      f"{c}_vs_baseline_lo": record.base_diff_lo,
                      f"{c}_vs_baseline_hi": record.base_diff_hi,
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
    """'-0.050 [-0.071, -0.030] (lower)': ours − the baseline's ours, the interval of
    the difference and the verdict; '' on paper rows."""
    if not record.yours or not record.baseline:
        return ""
    if record.base_verdict == "—" or record.base_verdict is None:
        return "—"
    verdict = record.base_verdict if record.base_verdict != NO_VERDICT \
        else f"{NO_VERDICT}: {record.base_reason}"
    c = record.column
    return (f"{fmt(record.base_diff, c, True)}"
            f"{interval_text(record.base_diff_lo, record.base_diff_hi, c, True)} ({verdict})")


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


def interval_lines(results: Results, table_id: str) -> list[str]:
    """What each interval of the table accounts for, once: '- covers' (and the rows,
    unless all rows with a number)."""
    part = results.records[(results.records.table == table_id) & results.records.covers.notna()]
    labels = list(dict.fromkeys(part.label))
    covers: dict[str, list[str]] = {}
    for r in part.itertuples(index=False):
        covers.setdefault(r.covers, []).append(r.label)
    lines = []
    for text, rows in covers.items():
        rows = list(dict.fromkeys(rows))
        lines.append(f"- {text}" + ("" if rows == labels else f" — {', '.join(rows)}"))
    return lines


def not_comparable(results: Results, table_id: str) -> list[str]:
    """The table's protocols whose numbers are not comparable with the paper's."""
    part = results.records[(results.records.table == table_id) & results.records.paper.notna()]
    return [m for m in NOT_COMPARABLE_WITH_PAPER if part.metric.str.contains(m, regex=False).any()]


def table_markdown(results: Results, table_id: str) -> str:
    part = results.records[results.records.table == table_id]
    protocols = "; ".join(dict.fromkeys(p for p in part.protocol if p)) or "— (no numbers yet)"
    diff = "Δ = ours − paper. " if part.paper.notna().any() else ""
    text = (f"# {table_title(results, table_id)}\n\n"
            f"Ours: mean over seeds [interval] (n = seeds with a number); "
            f"{results.bootstrap.describe()} (docs/statistics.md; what each interval "
            f"accounts for is listed under the table). {diff}"
            "Produced from metrics/<experiment>/scores.json and per_image/ by "
            "`replication tables`; see README.md.\n\n"
            f"Protocols in this table: {protocols}\n\n"
            f"Computed on: {'; '.join(results.machines) or 'not recorded'}\n\n")
    for metric in not_comparable(results, table_id):
        text += (f"Rows scored with {metric} are not comparable with the paper's values (our "
                 "segmenter and decoded labels, docs/protocols.md): read their Δ against the "
                 "ground-truth row's Δ, not as a verdict.\n\n")
    if part.yours.any():
        text += (f"{YOURS_NOTE} {COMPARISON_RULE}\n\n")
    text += markdown(wide_table(results, table_id))
    covers = interval_lines(results, table_id)
    if covers:
        text += "\nWhat the intervals account for:\n\n" + "\n".join(covers) + "\n"
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
        ours=lambda f: [f"{_mean_interval(r, 'better')} vs {_mean_interval(r, 'worse')}"
                        for r in f.itertuples()],
        difference=lambda f: [f"{fmt(r.diff, signed=True)}"
                              f"{interval_text(r.diff_lo, r.diff_hi, signed=True)}"
                              for r in f.itertuples()],
        paper=lambda f: [f"{fmt(a)} vs {fmt(b)}" for a, b in zip(f.better_paper, f.worse_paper)],
    ) if not results.claims.empty else results.claims
    columns = ["claim", "statement", "column", "better", "worse", "ours", "difference", "paper",
               "verdict", "reason"]
    return (f"# The paper's claims, judged on our runs ({scale_marker(results)})\n\n"
            f"{VERDICT_RULE}\n\n{results.bootstrap.describe()}. 'reason': how the two "
            "sides were paired and what the interval accounts for.\n\n"
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
        ours=[f"{fmt(r.mean)}{interval_text(r.lo, r.hi)} (n={int(r.n)})"
              for r in frame.itertuples()],
        base=[_spread(r.base_mean, r.base_n) for r in frame.itertuples()],
        **{"Δ": [f"{fmt(r.diff, signed=True)}{interval_text(r.diff_lo, r.diff_hi, signed=True)}"
                 for r in frame.itertuples()]})
    columns = ["experiment", "baseline", "metric", "column", "ours", "base", "Δ", "verdict",
               "reason"]
    return ("\n## Your experiments against their baselines\n\n"
            f"{COMPARISON_RULE} Baseline: params.yaml `compare_to`, else the closest paper "
            "experiment of the same dataset and direction (`how` in comparisons.csv).\n\n"
            f"{markdown(shown[columns].rename(columns={'base': 'baseline (ours)'}))}")


def _spread(mean, n) -> str:
    return "—" if mean is None or pd.isna(mean) else f"{fmt(mean)} (n={int(n)})"


def _mean_interval(row, side: str) -> str:
    mean, lo, hi, n = (getattr(row, f"{side}_{k}") for k in ("mean", "lo", "hi", "n"))
    if pd.isna(mean):
        return "—"
    return f"{fmt(mean)}{interval_text(lo, hi)} (n={n})"


def readme(results: Results) -> str:
    records = results.records
    scored = sorted(set(records[records.gap.isna()].experiment) - {GROUND_TRUTH})
    missing = sorted(set(results.experiments) - set(scored))
    titles = {**{t: spec["title"] for t, spec in results.tables.items()},
              **{t: study["title"] for t, study in (results.test_time or {}).items()}}
    files = "\n".join(f"- [{t}.md]({t}.md) ([csv]({t}.csv)): {title}"
                      for t, title in titles.items())
    return README_TEMPLATE.format(
        scale=scale_marker(results), files=files,
        machines="\n".join(f"- {m}" for m in results.machines) or "- not recorded",
        scored=len(scored), total=len(results.experiments),
        missing=f"; none yet for: {', '.join(missing)}" if missing else "",
        calibration=_calibration(results),
        rule=VERDICT_RULE)


def _calibration(results: Results) -> str:
    part = results.records[results.records.reference]
    if part.empty or part.gap.notna().all():
        return "Not available yet: " + "; ".join(dict.fromkeys(part.gap.dropna())) + "."
    return ", ".join(f"{r.column} {fmt(r.mean)} vs paper {fmt(r.paper)} "
                     f"(Δ {fmt(r.diff, signed=True)})" for r in part.itertuples()) + "."
