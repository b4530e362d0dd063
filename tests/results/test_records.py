"""Our number for one table cell (replication/results/records.py), computed by hand from a
constructed scores.json: which metric counts per seed, the sample statistics over seeds,
and the reason a cell has no number."""

from __future__ import annotations

import math

import pytest

from replication.results.records import (
    measure,
    read_scores_file,
    shape_problem,
    summary_stats,
)


def seed(metric: str, value=None, **extra) -> dict:
    return {metric: {"acc": value, "protocol": metric, **extra}}


def test_summary_stats_are_the_mean_and_the_sample_std():
    # 0.5 and 0.7: mean 0.6; squared deviations 0.01 + 0.01 over n - 1 = 1
    assert summary_stats([0.5, 0.7]) == pytest.approx(
        {"mean": 0.6, "std": math.sqrt(0.02), "n": 2})
    assert summary_stats([0.5]) == {"mean": 0.5, "std": None, "n": 1}
    assert summary_stats([]) == {"mean": None, "std": None, "n": 0}


def test_the_exact_protocol_counts_before_the_fallback_on_each_seed():
    scores = {"seeds": {"seed-0": {**seed("fcn_score_fallback", 0.1),
                                   **seed("fcn_score_official", 0.5)},
                        "seed-1": seed("fcn_score_official", 0.7)}}
    cell = measure(scores, "fcn_score", "acc")
    assert (cell["mean"], cell["n"], cell["metric"]) == (pytest.approx(0.6), 2,
                                                        "fcn_score_official")
    assert cell["sample"].without_images == "no per-image scores"


def test_seeds_scored_by_different_protocols_are_marked_mixed():
    scores = {"seeds": {"seed-0": seed("fcn_score_fallback", 0.1),
                        "seed-1": seed("fcn_score_official", 0.7)}}
    cell = measure(scores, "fcn_score", "acc")
    assert cell["protocol"] == "MIXED: fcn_score_fallback + fcn_score_official"


def test_a_seed_without_a_number_is_a_note_and_no_seed_a_gap():
    scores = {"seeds": {"seed-0": seed("fcn_score_official", 0.5),
                        "seed-1": {"fcn_score_official": {"available": False,
                                                          "reason": "no FCN weights"}}}}
    cell = measure(scores, "fcn_score", "acc")
    assert cell["n"] == 1 and cell["gap"] is None
    assert cell["note"] == "1 seed(s) without a number: fcn_score_official: no FCN weights"
    empty = measure({"seeds": {"seed-1": scores["seeds"]["seed-1"]}}, "fcn_score", "acc")
    assert empty["mean"] is None and empty["gap"] == "fcn_score_official: no FCN weights"


@pytest.mark.parametrize("scores, problem", [
    ([], "not a mapping but a list"),
    ({"task": {}}, "no `seeds` mapping"),
    ({"seeds": {}, "scale": 3}, "`scale` is a int, not a str"),
    ({"seeds": {"seed-0": [1]}}, "seeds.seed-0 is a list, not a mapping of metrics"),
    ({"seeds": {"seed-0": {"fid_kid": 2.5}}}, "seeds.seed-0.fid_kid is a float, not a mapping"),
    ({"seeds": {"seed-0": {"fid_kid": {}}}, "task": {}, "scale": "smoke"}, None),
])
def test_the_shape_of_scores_json(scores, problem):
    assert shape_problem(scores) == problem


def test_a_truncated_scores_file_is_a_reason_not_a_traceback(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text('{"seeds": {"seed-0": ')
    scores, why = read_scores_file(path)
    assert scores is None
    assert why.startswith(f"unreadable: {path}: ") and why.endswith("; rerun its score stage")
    assert "\n" not in why
