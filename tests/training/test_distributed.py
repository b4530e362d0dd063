"""Data-parallel training: K processes compute what one process computes on the whole batch.

The single-process Trainer (plain BatchNorm2d and Dropout, no collectives) is the
reference. The ranks sum BatchNorm statistics and gradients in another order than one
process does, so the two agree to rounding, not bit for bit. In fp32 a GAN amplifies that
rounding (Adam moves a weight whose gradient is rounding noise next to eps = 1e-8 by up to
lr * |dg| / eps), so the comparisons run in float64, where the same amplification stays
below steps * (lr / eps) * u * max|g| = 6 * 2e4 * 1.1e-16 * O(1) ~ 1e-11: bounds of 1e-9
hold on any CPU, while a wrong statistic, mask or update is off by 1e-4 or more. The RNG
state must match bit for bit (the same dropout draws).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from tests.conftest import tiny_overrides

from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core.errors import ConfigError
from replication.data.paired import TrainingPairs
from replication.training import checkpoints, distributed
from replication.training.loop import train

REPO = Path(__file__).resolve().parents[2]


def test_bounds_split_rows_evenly_larger_slices_first():
    assert [distributed.bounds(10, r, 4) for r in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert [distributed.bounds(2, r, 2) for r in range(2)] == [(0, 1), (1, 2)]
    assert distributed.bounds(5, 0, 1) == (0, 5)


def test_each_rank_gets_its_rows_of_the_global_batch(toy_dataset):
    # 8 pairs, batch 3: batches of 3, 3, 2 per epoch; the ranks' rows must tile the batch
    # one process draws (same pairs, same crops and flips)
    cfg = from_dict(ExperimentConfig, deep_merge(
        {"data": {"root": str(toy_dataset.parent), "dataset": toy_dataset.name}},
        tiny_overrides()))
    data = TrainingPairs(cfg.data, batch_size=3, seed=4)
    cpu = torch.device("cpu")
    for step in range(7):
        x, y = data.batch(step, cpu)
        assert data.schedule.batch_length(step) == len(x) == (2 if step % 3 == 2 else 3)
        shards = [distributed.Shard(rank, 2) for rank in range(2)]
        parts = [data.batch(step, cpu, s.take(len(x))) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
        assert sum(s.weight for s in shards) == pytest.approx(1.0)


def test_a_batch_too_small_to_split_is_refused():
    with pytest.raises(ConfigError, match="cannot be split over 4 processes"):
        distributed.check_slices(distributed.Shard(0, 4), batch_size=10, num_pairs=402)
    distributed.check_slices(distributed.Shard(0, 4), batch_size=10, num_pairs=400)


@pytest.fixture
def one_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_sync_batchnorm_matches_batchnorm(one_process_group, float64):
    # with one rank the global batch is the local one: outputs, gradients and running
    # statistics must be BatchNorm2d's (an independent implementation), up to the order of
    # the 75-term sums per channel: Higham's bound 75 u = 8e-15 of the magnitudes, well
    # under the 1e-12 allowed here
    torch.manual_seed(0)
    plain = torch.nn.BatchNorm2d(4)
    torch.nn.init.normal_(plain.weight, 1.0, 0.2)
    shard = distributed.Shard(0, 1)
    synced = distributed.SyncBatchNorm2d(plain, shard)
    x = torch.randn(3, 4, 5, 5) * 3 + 1
    results = []
    for module, active in ((plain, False), (synced, True)):
        xi = x.clone().requires_grad_()
        shard.take(3)
        shard.active = active
        (module(xi) * torch.arange(75.0).view(3, 1, 5, 5)).sum().backward()
        results.append((xi.grad, module.weight.grad, module.bias.grad,
                        module.running_mean, module.running_var))
    for a, b in zip(*results):
        assert a.dtype == torch.float64 and (a - b).abs().max() <= 1e-12 * a.abs().max()
    assert synced.num_batches_tracked == 1


def test_sharded_dropout_keeps_its_rows_of_the_global_mask():
    # rows 2-3 of a global batch of 5: the mask nn.Dropout draws for all 5, rows 2-3
    x = torch.randn(5, 8, 4, 4)
    torch.manual_seed(3)
    full = torch.nn.Dropout(0.5)(x)
    shard = distributed.Shard(0, 1)
    shard.total, shard.start, shard.stop, shard.active = 5, 2, 4, True
    torch.manual_seed(3)
    part = distributed.ShardedDropout(0.5, shard)(x[2:4])
    assert torch.equal(part, full[2:4])


FLOAT64_CLI = "import sys, torch\ntorch.set_default_dtype(torch.float64)\n" \
              "from replication.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.mark.slow
def test_two_processes_train_like_one_and_resume(toy_dataset, tmp_path, float64):
    # batch 3 over 2 ranks: slices of 2 and 1 (uneven: loss scaling), the epoch's last
    # batch of 2 gives 1 and 1; `replication train` under torchrun (in float64, see the
    # module docstring), stopped after 3 steps and resumed from rank 0's checkpoint
    settings = {"data.image_size": 32, "generator.ngf": 8, "discriminator.ndf": 8,
                "train.iterations": 6, "train.batch_size": 3, "train.log_every": 2,
                "train.checkpoint_every": 5, "train.sample_every": 3}
    cfg = from_dict(ExperimentConfig, deep_merge(
        {"name": "toy", "data": {"root": str(toy_dataset.parent), "dataset": toy_dataset.name}},
        tiny_overrides(train={"iterations": 6, "batch_size": 3, "log_every": 2,
                              "checkpoint_every": 5, "sample_every": 3})))
    train(cfg, 0, tmp_path / "single", progress=False)
    launcher = tmp_path / "float64_cli.py"
    launcher.write_text(FLOAT64_CLI)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", str(launcher), "train", "--data", str(toy_dataset),
                "--no-progress", "--out", str(tmp_path / "ranks")]
    for key, value in settings.items():
        torchrun += ["--set", f"{key}={value}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for extra in (["--stop-after", "3"], []):
        subprocess.run(torchrun + extra, check=True, env=env, cwd=tmp_path, capture_output=True)
    one, two = (checkpoints.load(tmp_path / run / "checkpoints/state.pt",
                                 checkpoints.STATE_FORMAT) for run in ("single", "ranks"))
    assert one["step"] == two["step"] == 6
    for net in ("G", "D"):
        for name, value in one[net].items():
            assert value.dtype in (torch.float64, torch.int64), name
            assert (value.double() - two[net][name].double()).abs().max() <= 1e-9, name
    assert torch.equal(one["rng"]["torch"], two["rng"]["torch"])
    logged = [json.loads((tmp_path / run / "train.json").read_text())
              for run in ("single", "ranks")]
    assert logged[1]["processes"] == 2 and logged[1]["finished"]
    for name, value in logged[0]["last_losses"].items():
        assert abs(logged[1]["last_losses"][name] - value) <= 1e-9, name
