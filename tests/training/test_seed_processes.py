"""train.seed_processes: the seeds of an experiment as side-by-side processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from tests.conftest import tiny_overrides

from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core.errors import ConfigError
from replication.training import checkpoints, seed_processes
from replication.training.loop import train


def overrides_as_set(sections: dict) -> list[str]:
    return [f"--set={section}.{key}={value}" for section, values in sections.items()
            for key, value in values.items()]


@pytest.mark.slow
def test_each_seed_process_trains_the_run_it_would_be_alone(toy_dataset, tmp_path):
    sections = tiny_overrides(train={"seed_processes": 2})
    command = [sys.executable, "-m", "replication", "train", "--data", str(toy_dataset),
               "--set", "seeds=[0, 1]", "--no-progress", *overrides_as_set(sections)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)  # a hang guard, not a speed bound
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "metrics/toy/train.json").read_text())
    assert sorted(summary) == ["seed-0", "seed-1"]
    # each child ran on cores // 2 threads: on a 2-core machine one, as this process does
    assert seed_processes.threads_per_process(2) == max(1, len(os.sched_getaffinity(0)) // 2)
    threads = seed_processes.threads_per_process(2)
    assert all(s["machine"]["threads"] == threads for s in summary.values())
    torch.set_num_threads(threads)
    base = {"name": "toy", "seeds": [0, 1],
            "data": {"root": str(toy_dataset.parent), "dataset": toy_dataset.name}}
    cfg = from_dict(ExperimentConfig, deep_merge(base, sections))
    for seed in (0, 1):
        train(cfg, seed, tmp_path / f"alone-{seed}", progress=False)
        alone = checkpoints.load(tmp_path / f"alone-{seed}/checkpoints/generator.pt",
                                 checkpoints.GENERATOR_FORMAT)["state_dict"]
        side = checkpoints.load(tmp_path / f"runs/toy/seed-{seed}/checkpoints/generator.pt",
                                checkpoints.GENERATOR_FORMAT)["state_dict"]
        assert all(torch.equal(alone[k], side[k]) for k in alone), f"seed {seed} differs"


def test_seed_processes_and_one_process_settings_exclude_each_other(toy_dataset):
    base = {"name": "toy", "data": {"root": str(toy_dataset.parent), "dataset": "toy"}}
    for other in ({"fuse": True}, {"seeds_per_process": 2}):
        with pytest.raises(ConfigError, match="seed_processes"):
            from_dict(ExperimentConfig, deep_merge(base, {"train": {"seed_processes": 2,
                                                                    **other}}))
