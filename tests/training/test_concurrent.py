"""Several seeds in one process (train.seeds_per_process): each run bit for bit the run it
is alone, and the GPU pool of `train.device: auto` with simulated devices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.conftest import tiny_overrides

from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core import devices, layout
from replication.training import checkpoints
from replication.training.concurrent import RunFolders
from replication.training.loop import train, train_runs

REPO = Path(__file__).resolve().parents[2]


def config(dataset: Path, **train_settings) -> ExperimentConfig:
    base = {"name": "toy", "data": {"root": str(dataset.parent), "dataset": dataset.name}}
    return from_dict(ExperimentConfig, deep_merge(base, tiny_overrides(train=train_settings)))


def state(run: Path) -> dict:
    return checkpoints.load(layout.state_path(run), checkpoints.STATE_FORMAT)


@pytest.mark.parametrize("mode", ["faithful", "fast"])
def test_interleaved_seeds_equal_the_same_seeds_one_after_another(mode, toy_dataset, tmp_path):
    # dropout draws from the global RNG: without the swap, run 2's masks would follow run
    # 1's draws; with it, every tensor and the RNG state end as in a run of its own
    cfg = config(toy_dataset, mode=mode, iterations=9, checkpoint_every=4)
    alone = {seed: train(cfg, seed, tmp_path / f"alone-{seed}", progress=False)
             for seed in (0, 1, 2)}
    runs = [RunFolders(seed, tmp_path / f"together-{seed}", tmp_path / f"logs-{seed}")
            for seed in (0, 1, 2)]
    together = train_runs(cfg, runs, progress=False)
    for run, summary in zip(runs, together):
        a, b = state(tmp_path / f"alone-{run.seed}"), state(run.out)
        for net in ("G", "D"):
            for name, value in a[net].items():
                assert torch.equal(value, b[net][name]), (run.seed, net, name)
        assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
        assert summary["last_losses"] == alone[run.seed]["last_losses"]
    g0, g1 = state(runs[0].out)["G"], state(runs[1].out)["G"]
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)  # the seeds do differ


def test_the_cli_trains_the_seeds_of_an_experiment_together(toy_dataset, tmp_path,
                                                            monkeypatch):
    from replication import cli
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", str(toy_dataset), "--no-progress", "--set", "seeds=[0, 1]",
            "--set", "data.image_size=32", "--set", "generator.ngf=8",
            "--set", "discriminator.ndf=8", "--set", "train.iterations=3"]
    assert cli.main([*argv, "--set", "train.seeds_per_process=2"]) == 0
    together = [state(layout.run_dir("toy", s)) for s in (0, 1)]
    assert cli.main([*argv, "--restart"]) == 0  # one after another, same folders
    for s, t in zip((0, 1), together):
        assert all(torch.equal(v, state(layout.run_dir("toy", s))["G"][k])
                   for k, v in t["G"].items())


# --- the GPU pool, with simulated devices ---------------------------------------------

def test_slots_spread_runs_over_the_gpus_before_sharing_one():
    assert devices.slots(3, 2) == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


HOLDER = """
import sys, time
from pathlib import Path
from replication.core import devices
device = devices.claim(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), wait_s=0.05)
print(device, flush=True)
time.sleep(60)
"""


def hold(count: int, per_device: int, folder: Path) -> tuple[subprocess.Popen, str]:
    """A process holding a slot of the pool, and the device it was given."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(count), str(per_device),
                             str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_each_process_takes_a_free_gpu_and_a_freed_one_is_taken_again(tmp_path):
    # 2 simulated GPUs x 1 run each: two processes get cuda:0 and cuda:1; a third waits
    # until one exits, then gets that one
    pool = tmp_path / "pool"
    first, second = hold(2, 1, pool), hold(2, 1, pool)
    try:
        assert {first[1], second[1]} == {"cuda:0", "cuda:1"}
        third = subprocess.Popen([sys.executable, "-c", HOLDER, "2", "1", str(pool)], cwd=REPO,
                                 stdout=subprocess.PIPE, text=True)
        assert third.stdout.readline().startswith("waiting for a free GPU slot")
        first[0].kill()
        first[0].wait()
        assert third.stdout.readline().strip() == first[1]
        third.kill()
    finally:
        for proc, _ in (first, second):
            proc.kill()


def test_two_runs_per_gpu_share_it(tmp_path):
    pool = tmp_path / "pool"
    held = [hold(1, 2, pool) for _ in range(2)]
    try:
        assert [device for _, device in held] == ["cuda:0", "cuda:0"]
    finally:
        for proc, _ in held:
            proc.kill()


def test_auto_is_the_cpu_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: auto claims a GPU slot")
    assert devices.resolve_device("auto") == torch.device("cpu")


# --- what each interleaved run owns -----------------------------------------------------

def test_each_run_gets_its_stream_and_generator_on_the_device_it_chose(monkeypatch):
    # the GPU pool picks a run's device inside its loop, so its stream and CUDA generator
    # can only be made once the loop has said where it runs (made before, they would sit
    # on the current device, cuda:0, whatever the run chose)
    from replication.training import concurrent
    made = []
    monkeypatch.setattr(concurrent, "stream_on", lambda device: made.append(("stream", device)))
    monkeypatch.setattr(concurrent, "generator_on", lambda device: made.append(("rng", device)))
    steps = []

    def loop(name: str, device: str):
        yield torch.device(device)
        for step in range(2):
            steps.append((name, step, list(made)))
            yield

    together = concurrent.Interleaved([loop("a", "cuda:1"), loop("b", "cuda:0")])
    assert made == []  # nothing is made before a run has chosen its device
    together.step()
    a, b = torch.device("cuda:1"), torch.device("cuda:0")
    assert made == [("stream", a), ("rng", a), ("stream", b), ("rng", b)]
    assert steps[0] == ("a", 0, made[:2])  # run a's first step ran after its placing
    assert [c.device for c in together.contexts] == [a, b]


def test_interleaved_runs_keep_their_own_cpu_random_streams():
    from replication.training import concurrent
    draws = {}

    def loop(name: str, seed: int):
        yield torch.device("cpu")
        torch.manual_seed(seed)
        for _ in range(3):
            draws.setdefault(name, []).append(torch.rand(1).item())
            yield

    together = concurrent.Interleaved([loop("a", 0), loop("b", 1)])
    for _ in range(3):
        together.step()
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        assert draws[name] == [torch.rand(1).item() for _ in range(3)]


def test_the_in_process_bench_does_not_synchronise_every_step(tmp_path, monkeypatch):
    # a host-device synchronisation per step would serialise the runs' streams: the timed
    # stretch must sync only at its two ends, however many steps it takes
    from replication.grid.bench import runs, timing
    from replication.grid.bench.timing import with_synthetic_data
    calls = []
    monkeypatch.setattr(runs, "synchronize", lambda device: calls.append("timed"))
    monkeypatch.setattr(timing, "synchronize", lambda device: calls.append("block"))
    steps = []
    real_step = timing.Runner.step
    monkeypatch.setattr(timing.Runner, "step",
                        lambda self: steps.append(1) or real_step(self))
    cfg = with_synthetic_data(from_dict(ExperimentConfig, tiny_overrides(
        train={"batch_size": 1})), tmp_path)
    rows = runs.in_process(cfg, [2], "fast", torch.device("cpu"), seconds=0.3)
    assert rows[0]["aggregate_steps_per_second"] > 0
    assert len(steps) >= 4  # several timed steps per run ...
    assert calls.count("timed") == 2  # ... and one sync at each end of the timed stretch
    assert calls.count("block") == 2 * 2  # each Runner's first (capturing) block: before timing
