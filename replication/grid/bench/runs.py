"""Several runs sharing one device, as `replication bench --concurrent / --in-process /
--fused` measures them: N separate processes (started together, optionally under CUDA
MPS, which the caller starts), K runs in one process stepped in turn as
train.seeds_per_process steps them (concurrent.py: each its own RNG streams and CUDA
stream), or N runs fused into one step (train.fuse, fusion.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from replication.data.paired import TrainingPairs
from replication.grid.bench.timing import (
    MODES,
    Runner,
    block_steps,
    fast_options,
    progress,
    synchronize,
    with_synthetic_data,
)
from replication.training import concurrent


def concurrency(worker_command: list[str], counts: list[int], mode: str,
                seconds: float) -> list[dict]:
    """Aggregate steps/s of n workers (`worker_command` plus the mode starts one; each
    times itself for `seconds`), for each n in `counts`."""
    rows = []
    for n in counts:
        progress(f"{n} concurrent {mode} run(s), {seconds:g} s")
        try:
            rates = run_workers(worker_command, n, mode)
            rows.append({"runs": n, "mode": mode, "per_run_steps_per_second": rates,
                         "aggregate_steps_per_second": sum(rates)})
        except RuntimeError as err:  # report and go on with the other counts
            rows.append({"runs": n, "mode": mode, "error": str(err)})
    return rows


def run_workers(worker_command: list[str], n: int, mode: str) -> list[float]:
    """Start n workers; each warms up and says "ready"; then all get "go" at once."""
    command = [*worker_command, mode]
    package_root = str(Path(__file__).resolve().parents[3])  # importable from any folder
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=env) for _ in range(n)]
    try:
        for w in workers:
            expect(w, "ready")
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        return [json.loads(expect(w, "{"))["steps_per_second"] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.wait()


def expect(worker: subprocess.Popen, start: str) -> str:
    line = worker.stdout.readline()
    if not line.startswith(start):
        raise RuntimeError(f"a bench worker stopped (exit {worker.poll()}) before saying "
                           f"{start!r}; see its error above")
    return line


def worker(cfg, mode: str, device: torch.device, warmup: int, seconds: float) -> int:
    """One of run_workers' processes: `cfg` (stages/bench.py bench_config) on toy pairs,
    timed for `seconds` after "go" on stdin; prints its rate as a JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(with_synthetic_data(cfg, Path(tmp)), mode, device)
        for _ in range(warmup):
            runner.train_block(1)
        print("ready", flush=True)
        sys.stdin.readline()
        steps, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            chunk = block_steps(runner.step_seconds, 0.25)
            runner.train_block(chunk)
            steps += chunk
        seconds = time.perf_counter() - began
    print(json.dumps({"steps": steps, "seconds": seconds, "steps_per_second": steps / seconds}),
          flush=True)
    return 0


def in_process(cfg, counts: list[int], mode: str, device: torch.device,
               seconds: float) -> list[dict]:
    """Aggregate steps/s of K runs of `mode` (seeds 0..K-1) in this process, in turn, as
    train.seeds_per_process steps them: each built on its own stream and generator, and
    no synchronisation between the two ends of the timed stretch (a sync per step would
    forbid the overlap this measures)."""
    rows = []
    for k in counts:
        progress(f"{k} {mode} run(s) in one process, {seconds:g} s")
        together = concurrent.Interleaved([_forever(cfg, mode, device, seed)
                                           for seed in range(k)])
        together.step()  # builds each run (holding any capture) and takes its first step
        synchronize(device)
        began, steps = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            together.step()
            steps += k
        synchronize(device)
        rate = steps / (time.perf_counter() - began)
        rows.append({"runs": k, "mode": mode, "in_one_process": True,
                     "aggregate_steps_per_second": rate})
        del together
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _forever(cfg, mode: str, device: torch.device, seed: int):
    """A run's loop as concurrent.py drives it: its device first, then steps."""
    yield device
    runner = Runner(cfg, mode, device, seed)
    while True:
        yield
        runner.step()


def fused(cfg, counts: list[int], mode: str, device: torch.device, seconds: float,
          record=lambda row: None) -> list[dict]:
    """Aggregate steps/s of N runs of `mode` fused into one step (seeds 0..N-1, each its
    own batches, as fused_runs steps them), for each N; `record(row)` is called with
    each row as soon as it is measured."""
    from replication.training.fused_runs import run_data
    from replication.training.fusion import FusedTrainer
    rows = []
    options = fast_options(cfg, mode, device)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mode=MODES[mode][0]))
    shared = TrainingPairs(cfg.data, cfg.train.batch_size, 0)
    if cfg.train.mode == "fast":
        shared.folder.to(device)
    for n in counts:
        progress(f"{n} {mode} run(s) fused into one step, {seconds:g} s")
        try:
            row = _time_fused(cfg, shared, n, options, device, seconds, run_data, FusedTrainer)
        except (RuntimeError, MemoryError) as err:  # e.g. out of memory: report, go on
            row = {"runs": n, "error": f"{type(err).__name__}: {str(err)[:200]}"}
        row.update(mode=mode, fused=True)
        rows.append(row)
        record(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _time_fused(cfg, shared, n, options, device, seconds, run_data, FusedTrainer) -> dict:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = FusedTrainer([cfg] * n, list(range(n)), device, 10**9, fast_options=options)
    datas = [run_data(shared, cfg.data, seed) for seed in range(n)]

    def step():
        xs, ys = zip(*(d.batch(trainer.step, device) for d in datas))
        return trainer.train_step(torch.cat(xs, dim=1), torch.cat(ys, dim=1))

    for _ in range(3):  # the first holds any capture
        step()
    synchronize(device)
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        step()
        steps += 1
    synchronize(device)
    elapsed = time.perf_counter() - began
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"runs": n, "ms_per_fused_step": 1e3 * elapsed / steps,
            "aggregate_steps_per_second": n * steps / elapsed, "peak_memory_mb": peak}
