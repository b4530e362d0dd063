"""The paper's claims judged on our runs, your experiments against their baselines, and
Spearman rank correlations with the paper's values: frames built from the records.
Every verdict is replication/results/statistics.py's rule (docs/statistics.md)."""

from __future__ import annotations

import pandas as pd
from scipy.stats import spearmanr

from replication.results.statistics import (
    HIGHER,
    LOWER,
    NO_INTERVAL,
    WITHIN_NOISE,
    Bootstrap,
    Interval,
    difference,
)

REPRODUCED, CONTRADICTED, NO_VERDICT = "reproduced", "contradicted", "no verdict"
VERDICT_RULE = (
    "A claim 'A beats B' on one column is judged on the difference A − B of our numbers "
    "(means over seeds) and its interval (docs/statistics.md): the difference is "
    "resampled by a hierarchical bootstrap — seeds, then test images — with the same "
    "draw for both sides where they share seeds and test images (paired). "
    "**reproduced** when the interval lies above zero (the paper's direction), "
    "**contradicted** when it lies below, **within noise** when it holds zero; "
    "**no verdict** when the two sides were not scored with one protocol or nothing "
    "could be resampled (one seed each of a set-level metric). The interval printed "
    "says what it accounts for: with one seed, test images only (training randomness "
    "not included); for FID/KID and the colour histograms (one number per image set), "
    "seeds only. A side with no numbers at all is a gap (—), not a verdict.")
COMPARISON_RULE = (
    "Your experiment against its baseline, per column, by the same rule: the difference "
    "(yours − baseline) with its paired bootstrap interval; **higher** / **lower** when "
    "the interval excludes zero, **within noise** when it holds zero, **no verdict** "
    "when the two were not scored with one protocol or nothing could be resampled.")
# a claim's verdict from the order of its difference (better − worse)
CLAIM_VERDICTS = {HIGHER: REPRODUCED, LOWER: CONTRADICTED, WITHIN_NOISE: WITHIN_NOISE,
                  NO_INTERVAL: NO_VERDICT}


def cell(records: pd.DataFrame, table_id: str, label: str, column: str) -> pd.Series:
    match = records[(records.table == table_id) & (records.label == label)
                    & (records.column == column)]
    return match.iloc[0]


def compare(a, b, boot: Bootstrap = Bootstrap()) -> tuple[str, str, Interval | None]:
    """(HIGHER | LOWER | WITHIN_NOISE | NO_VERDICT, reason, the interval of a − b): two
    records (dicts or Series) with numbers, by statistics.difference; the reason says
    how the two were paired and what the interval accounts for."""
    if a["protocol"] != b["protocol"] or a["protocol"].startswith("MIXED"):
        return NO_VERDICT, f"not one protocol ({a['protocol']} vs {b['protocol']})", None
    d = difference(a["sample"], b["sample"], a["column"], boot)
    return (NO_VERDICT if d.verdict == NO_INTERVAL else d.verdict), d.covers, d


def judge(better: pd.Series, worse: pd.Series,
          boot: Bootstrap = Bootstrap()) -> tuple[str, str, Interval | None]:
    """(verdict, reason, interval of better − worse) for 'better beats worse'."""
    for side in (better, worse):
        if side.gap:
            return f"— ({side.experiment}: {side.gap})", "missing input", None
    order, reason, d = compare(better, worse, boot)
    return CLAIM_VERDICTS.get(order, order), reason, d


def claims_frame(records: pd.DataFrame, claims: list[dict],
                 boot: Bootstrap = Bootstrap()) -> pd.DataFrame:
    rows = []
    for claim in claims:
        for column in claim["columns"]:
            better = cell(records, claim["table"], claim["better"], column)
            worse = cell(records, claim["table"], claim["worse"], column)
            verdict, reason, d = judge(better, worse, boot)
            rows.append({"claim": claim["id"], "statement": claim["statement"],
                         "table": claim["table"], "column": column,
                         "better": claim["better"], "worse": claim["worse"],
                         **{f"better_{k}": better[k]
                            for k in ("mean", "lo", "hi", "std", "n", "paper")},
                         **{f"worse_{k}": worse[k]
                            for k in ("mean", "lo", "hi", "std", "n", "paper")},
                         "diff": d.estimate if d else None, "diff_lo": d.lo if d else None,
                         "diff_hi": d.hi if d else None, "verdict": verdict, "reason": reason})
    return pd.DataFrame(rows)


COMPARISON_COLUMNS = ["experiment", "baseline", "how", "metric", "table", "column", "mean",
                      "lo", "hi", "std", "n", "base_mean", "base_std", "base_n", "diff",
                      "diff_lo", "diff_hi", "protocol", "verdict", "reason"]


def comparisons_frame(records: pd.DataFrame, tables: dict) -> pd.DataFrame:
    """Your experiments against their baselines, once per (experiment, metric, column)."""
    part = records[records.yours & records.baseline.notna() & records["mean"].notna()]
    rows = []
    for r in part.itertuples(index=False):
        rows.append({"experiment": r.experiment, "baseline": r.baseline, "how": r.baseline_how,
                     "metric": tables[r.table]["metric"], "table": r.table, "column": r.column,
                     "mean": r.mean, "lo": r.lo, "hi": r.hi, "std": r.std, "n": r.n,
                     "base_mean": r.base_mean, "base_std": r.base_std, "base_n": r.base_n,
                     "diff": r.base_diff, "diff_lo": r.base_diff_lo, "diff_hi": r.base_diff_hi,
                     "protocol": r.protocol, "verdict": r.base_verdict,
                     "reason": r.base_reason})
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    return frame.drop_duplicates(["experiment", "metric", "column"]).reset_index(drop=True)


def spearman(ours: list[float], paper: list[float]) -> tuple[float | None, str]:
    """Spearman's rho of our row means against the paper's; 'n/a' below 3 rows."""
    n = len(ours)
    if n < 3:
        return None, f"n/a (n = {n}; needs 3 rows with our numbers)"
    if len(set(ours)) == 1 or len(set(paper)) == 1:  # spearmanr would warn and give nan
        return None, f"n/a (n = {n}; a constant column has no ranks)"
    rho = float(spearmanr(ours, paper).statistic)
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
