"""`replication bench`: timings against known sleeps, hand-computed ratios, the report."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from replication.core.errors import ConfigError
from replication.data.paired import TrainingPairs
from replication.grid.bench import measure, runs, timing
from replication.stages import bench as bench_stage
from replication.training import fast
from replication.training.trainer import Trainer

TINY = ["--image-size", "32", "--set", "generator.ngf=8", "--set", "discriminator.ndf=8",
        "--device", "cpu"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_stage.add_arguments(parser)
    return parser.parse_args([*TINY, *argv])


def tiny_config(tmp_path, *argv: str):
    return timing.with_synthetic_data(bench_stage.bench_config(parse(*argv)), tmp_path)


class FakeClock:
    """time.perf_counter that only moves when a stand-in step says it took time."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_block_time_and_data_share_come_from_the_clock(tmp_path, monkeypatch):
    # a batch that takes 10 ms and a step that takes 20 ms on a clock the test drives:
    # 30 ms per step and a data share of 1/3, up to float rounding of the sums
    clock = FakeClock()

    def slow_batch(self, step, device, rows=None):
        clock.now += 0.01
        return None, None

    def slow_step(self, x, y):
        clock.now += 0.02
        self.step += 1
        return {}

    runner = timing.Runner(tiny_config(tmp_path), "faithful", torch.device("cpu"))
    monkeypatch.setattr(timing, "time", clock)
    monkeypatch.setattr(TrainingPairs, "batch", slow_batch)
    monkeypatch.setattr(Trainer, "train_step", slow_step)
    per_step, data_share = runner.train_block(10)
    assert per_step == pytest.approx(0.03, rel=1e-12)
    assert data_share == pytest.approx(1 / 3, rel=1e-12)


def test_ratios_use_medians_and_neighbouring_blocks():
    blocks = {"faithful": [2.0, 6.0, 4.0], "fast": [1.0, 5.0, 1.0]}
    results = {mode: {"steps_per_second": 1 / sorted(b)[1], "blocks_seconds_per_step": b,
                      "images_per_second": None} for mode, b in blocks.items()}
    ratio = measure.ratios(results)["fast"]
    assert ratio["steps_per_second"] == pytest.approx(4.0)  # medians 4 s vs 1 s
    assert ratio["steps_per_second_paired"] == pytest.approx(2.0)  # median of 2, 1.2, 4


def test_block_size_aims_at_the_requested_seconds():
    assert timing.block_steps(0.01, 1.0) == 100
    assert timing.block_steps(5.0, 1.0) == 1
    assert timing.block_steps(1e-9, 1.0) == 1000


def test_bad_mode_and_count_lists_are_refused():
    with pytest.raises(ConfigError, match="turbo"):
        measure.parse_modes("faithful,turbo")
    with pytest.raises(ConfigError, match="positive process counts"):
        measure.parse_counts("1,x")


def test_report_times_both_modes_and_records_equal_fp32_curves(tmp_path, capsys, monkeypatch):
    # fp32 fast mode on the CPU with the reference Adam runs the faithful step's kernels
    # (tests/training/test_fast.py), so the two recorded loss curves must be equal; the table, JSON
    # and markdown must all be written
    monkeypatch.setattr(fast, "adam", lambda params, t, options: torch.optim.Adam(
        params, lr=t.lr, betas=(t.beta1, t.beta2)))
    args = parse("--set", "train.fast_precision=fp32", "--blocks", "2", "--block-seconds",
                 "0.05", "--warmup", "1", "--curves", "4", "--json", str(tmp_path / "b.json"),
                 "--markdown", str(tmp_path / "b.md"))
    assert bench_stage.run(args) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert set(report["modes"]) == {"faithful", "fast"}
    assert report["modes"]["fast"]["options"] == {"bf16": False, "channels_last": False,
                                                  "fused_adam": True, "cudnn_benchmark": True,
                                                  "cuda_graph": False}
    curves = report["curves"]["curves"]
    assert len(curves["faithful"]["loss_G_l1"]) == 4
    for name, values in curves["faithful"].items():
        assert curves["fast"][name] == values, name
    assert "fast/faithful" in capsys.readouterr().out
    assert "| faithful |" in (tmp_path / "b.md").read_text()


@pytest.mark.slow
def test_concurrent_workers_each_report_a_rate(tmp_path):
    args = parse("--concurrent-seconds", "0.5", "--warmup", "0")
    rates = runs.run_workers(bench_stage.worker_command(args), 2, "fast")
    assert len(rates) == 2 and all(rate > 0 for rate in rates)


def test_fused_runs_are_timed_and_each_row_is_a_json_line_at_once(tmp_path, monkeypatch):
    # every fused measurement is appended to --jsonl as it is made: a later count that
    # dies (here: N = 3 raises) loses none of the earlier rows, and the report goes on
    from replication.training import fusion
    real_init = fusion.FusedTrainer.__init__

    def failing(self, cfgs, *args, **kwargs):
        if len(cfgs) == 3:
            raise RuntimeError("CUDA out of memory (simulated)")
        real_init(self, cfgs, *args, **kwargs)

    monkeypatch.setattr(fusion.FusedTrainer, "__init__", failing)
    lines = tmp_path / "runs.jsonl"
    args = parse("--blocks", "0", "--no-gen", "--fused", "1,2,3", "--concurrent-seconds", "0.2",
                 "--json", str(tmp_path / "b.json"), "--jsonl", str(lines))
    assert bench_stage.run(args) == 0
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["runs"] for r in rows] == [1, 2, 3]
    assert all(r["aggregate_steps_per_second"] > 0 and r["fused"] for r in rows[:2])
    assert "out of memory" in rows[2]["error"]
    report = json.loads((tmp_path / "b.json").read_text())
    assert [r["runs"] for r in report["fused"]] == [1, 2, 3]


def test_scale_picks_the_settings_measured(tmp_path, monkeypatch):
    # after `dvc exp run -S scale=smoke`, params.yaml says smoke: -e then measures smoke's
    # 128 px / ngf 16, and --scale paper the paper's settings; the report names the scale
    from pathlib import Path

    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["scale"] = "smoke"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)

    def measured(*argv):
        parser = argparse.ArgumentParser()
        bench_stage.add_arguments(parser)
        args = parser.parse_args(list(argv))
        cfg = bench_stage.bench_config(args)
        return (cfg.data.image_size, cfg.generator.ngf,
                bench_stage.bench_scale(args))
    assert measured("-e", "facades-l1-cgan") == (128, 16, "smoke")
    assert measured("-e", "facades-l1-cgan", "--scale", "paper") == (256, 64, "paper")
    assert measured() == (256, 64, "paper")  # no experiment: the paper's settings
    assert measured("--scale", "smoke") == (128, 16, "smoke")
    with pytest.raises(ConfigError, match="scale='nope' has no profile"):
        measured("-e", "facades-l1-cgan", "--scale", "nope")
