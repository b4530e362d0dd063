"""`replication compare`: your experiment's headline numbers beside its baseline's."""

import argparse
import json

import pytest
import yaml

from replication.core.errors import ConfigError
from replication.stages import compare as compare_stage


def scores(psnr: list[float], ssim: list[float]) -> dict:
    """scores.json with per-seed PSNR/SSIM and their mean in `summary` (as score.py writes)."""
    seeds = {f"seed-{k}": {"psnr_ssim": {"protocol": "psnr_ssim", "psnr": p, "ssim": s}}
             for k, (p, s) in enumerate(zip(psnr, ssim))}
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {"seeds": seeds, "summary": {"psnr_ssim/psnr": {"mean": mean(psnr)},
                                        "psnr_ssim/ssim": {"mean": mean(ssim)}}}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "datasets": ["facades"],
        "experiments": {"facades-a": {"data": {"dataset": "facades"}},
                        "facades-lr": {"data": {"dataset": "facades"}, "train": {"lr": 1e-4},
                                       "compare_to": "facades-a"},
                        "facades-new": {"data": {"dataset": "facades"}}}}))
    for name, record in (("facades-a", scores([20.0, 22.0], [0.5, 0.7])),
                         ("facades-lr", scores([18.5], [0.55]))):
        (tmp_path / "metrics" / name).mkdir(parents=True)
        (tmp_path / "metrics" / name / "scores.json").write_text(json.dumps(record))
    return tmp_path


def run(capsys, *argv) -> str:
    parser = argparse.ArgumentParser()
    compare_stage.add_arguments(parser)
    assert compare_stage.run(parser.parse_args(list(argv))) == 0
    return capsys.readouterr().out


def test_each_experiment_beside_its_baseline(workspace, capsys):
    out = run(capsys, "facades-lr")
    lines = out.splitlines()
    assert lines[0] == "facades-lr vs facades-a (compare_to); seeds 1 vs 2"
    # baseline mean 21.0 and 0.6 (two seeds), ours 18.5 and 0.55: Δ -2.5 and -0.05
    assert lines[2].split() == ["psnr", "21.0000", "18.5000", "-2.5000"]
    assert lines[3].split() == ["ssim", "0.6000", "0.5500", "-0.0500"]
    assert max(map(len, lines)) <= 100  # fits a narrow terminal


def test_by_default_every_experiment_with_a_baseline(workspace, capsys):
    out = run(capsys)
    assert out.startswith("facades-lr vs facades-a")
    # facades-new has no compare_to and facades has no paper experiment to infer one from
    assert "facades-new" not in out


def test_an_unscored_side_says_why(workspace, capsys):
    out = run(capsys, "facades-new", "--vs", "facades-a")
    assert "facades-new vs facades-a (--vs); seeds 0 vs 2" in out
    assert "facades-new: not scored yet (metrics/facades-new/scores.json missing)" in out
    assert out.splitlines()[3].split() == ["psnr", "21.0000", "—", "—"]


def test_an_unknown_experiment_is_one_line(workspace):
    parser = argparse.ArgumentParser()
    compare_stage.add_arguments(parser)
    with pytest.raises(ConfigError, match="'nope' is not an experiment of params.yaml"):
        compare_stage.run(parser.parse_args(["nope"]))
