"""The claim rule (replication/results/claims.py) on constructed records whose verdict is
known by hand: seeds paired by name, so every bootstrap replicate of a − b is a mean of
the per-seed differences, and its interval lies within their range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replication.results.claims import (
    CONTRADICTED,
    NO_VERDICT,
    REPRODUCED,
    claims_frame,
    judge,
    spearman,
)
from replication.results.statistics import WITHIN_NOISE, Sample

SEEDS = ("seed-0", "seed-1", "seed-2")


def record(label: str, values, protocol: str = "fcn_score_official", gap=None) -> dict:
    values = np.asarray(values, dtype=float)
    return {"table": "table1", "label": label, "experiment": label.lower(), "column": "acc",
            "protocol": protocol, "gap": gap, "paper": None, "lo": None, "hi": None,
            "mean": float(values.mean()) if len(values) else None,
            "std": float(values.std(ddof=1)) if len(values) > 1 else None, "n": len(values),
            "sample": Sample(SEEDS[:len(values)], {"acc": values},
                             without_images="no per-image scores")}


def test_a_gain_on_every_seed_is_reproduced_and_a_loss_contradicted():
    # every per-seed difference is +0.2: every replicate's mean is 0.2, so is the interval
    better, worse = pd.Series(record("A", [.60, .61, .62])), pd.Series(record("B", [.40, .41, .42]))
    verdict, reason, d = judge(better, worse)
    assert verdict == REPRODUCED and d.estimate == pytest.approx(0.2)
    assert d.lo == pytest.approx(0.2) and d.hi == pytest.approx(0.2)
    assert "seeds paired by name (3)" in reason
    assert judge(worse, better)[0] == CONTRADICTED


def test_differences_of_both_signs_are_within_noise():
    # per-seed differences 0, +0.1, -0.1: three equal draws happen with probability
    # 1/27 = 3.7 % > 2.5 %, so the 95 % interval reaches both -0.1 and +0.1
    verdict, _, d = judge(pd.Series(record("A", [.5, .6, .4])), pd.Series(record("B", [.5] * 3)))
    assert verdict == WITHIN_NOISE
    assert d.lo == pytest.approx(-0.1) and d.hi == pytest.approx(0.1)


@pytest.mark.parametrize("protocol", ["fcn_score_fallback", "MIXED: a + b"])
def test_two_protocols_are_never_judged(protocol):
    verdict, reason, d = judge(pd.Series(record("A", [.9] * 3, protocol=protocol)),
                               pd.Series(record("B", [.1] * 3)))
    assert (verdict, d) == (NO_VERDICT, None)
    assert reason == f"not one protocol ({protocol} vs fcn_score_official)"


def test_one_seed_each_of_a_set_level_number_has_no_verdict():
    verdict, _, d = judge(pd.Series(record("A", [.9])), pd.Series(record("B", [.1])))
    assert verdict == NO_VERDICT and d.lo is None
    assert d.estimate == pytest.approx(0.8)


def test_a_side_without_numbers_is_a_gap_not_a_verdict():
    missing = pd.Series(record("B", [], gap="no metrics/b/scores.json"))
    verdict, _, d = judge(pd.Series(record("A", [.9] * 3)), missing)
    assert verdict == "— (b: no metrics/b/scores.json)" and d is None


def test_claims_frame_has_one_row_per_claim_and_column():
    records = pd.DataFrame([record("A", [.60, .61, .62]), record("B", [.40, .41, .42])])
    claim = {"id": "a-beats-b", "statement": "A beats B", "table": "table1", "better": "A",
             "worse": "B", "columns": ["acc"]}
    frame = claims_frame(records, [claim])
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.claim, row.verdict, row.better_n, row.worse_n) == ("a-beats-b", REPRODUCED, 3, 3)
    assert row["diff"] == pytest.approx(0.2) and row.better_mean == pytest.approx(0.61)


@pytest.mark.parametrize("ours, paper, rho", [
    ([.1, .2, .3], [.3, .2, .1], -1.0),
    # ranks differ by one in two places: 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    ([1, 2, 3, 4], [1, 3, 2, 4], 0.8),
])
def test_spearman_by_the_rank_formula(ours, paper, rho):
    value, text = spearman(ours, paper)
    assert value == pytest.approx(rho)
    assert text == f"{rho:+.2f} (n = {len(ours)})"


@pytest.mark.parametrize("ours, paper, why", [
    ([.1, .2], [.2, .1], "needs 3 rows"), ([.5, .5, .5], [.1, .2, .3], "constant column")])
def test_spearman_without_ranks_says_why(ours, paper, why):
    value, text = spearman(ours, paper)
    assert value is None and why in text
