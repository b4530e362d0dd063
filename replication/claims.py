"""The paper's claims judged on our runs, your experiments against their baselines, and
Spearman rank correlations with the paper's values: frames built from the records."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

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



def cell(records: pd.DataFrame, table_id: str, label: str, column: str) -> pd.Series:
    match = records[(records.table == table_id) & (records.label == label)
                    & (records.column == column)]
    return match.iloc[0]


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
