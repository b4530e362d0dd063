"""`replication bench`: how fast training and generation run, faithful vs fast mode.

For one experiment's networks (--experiment / --data / --set, or the paper's default
model) at a given image size, batch size and device it times
  training    s/step and steps/s: the median over timed blocks, warm-up excluded (the
              warm-up holds the fast step's CUDA-graph capture); the share of each block
              the host spends producing batches (data.batch)
  generation  images/s of G as `generate` runs it (train mode, no gradients)
  memory      peak device memory of each mode (CUDA)
The modes run in one process in alternating blocks, so a shared machine slows all of
them alike, and the table ends with each mode's speed relative to faithful. Options add
the aggregate steps/s of N runs sharing the device (separate processes) and the loss
curves of the modes over a short run. It only measures: the checks that the fast step
computes the faithful one on a GPU are tests (`pytest -m gpu tests/e2e/test_gpu.py`).
Synthetic pairs stand in for the dataset (smooth colour blobs, the target a channel
permutation of the input: learnable, so the L1 curves fall), so no download is needed.
Prints a table; writes everything to --json (and --markdown for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from replication.config.schema import ExperimentConfig
from replication.core.errors import ConfigError
from replication.grid.bench.timing import MODES, Runner, block_steps, build, progress
from replication.training.monitor import check_finite


@dataclass(frozen=True)
class Blocks:
    """How the modes are timed (`replication bench` --warmup, --blocks, ...)."""
    warmup: int = 3  # untimed steps per mode after the first
    blocks: int = 5  # timed blocks per mode, alternating between modes
    block_seconds: float = 1.0  # about how long one timed block runs
    gen: bool = True  # also time generation
    gen_batch: int = 1  # generation batch size (the paper tests at 1)


def measure(cfg: ExperimentConfig, modes: list[str], device: torch.device, timed: Blocks,
            record=lambda row: None) -> dict:
    """Build every mode, warm it up, then time alternating blocks; medians per mode;
    `record(row)` is called with each block's timing as soon as it is measured."""
    runners = {}
    for mode in modes:
        progress(f"building and warming up {mode}")
        runner = runners[mode] = Runner(cfg, mode, device)
        for _ in range(timed.warmup):
            runner.step_seconds = runner.train_block(1)[0]
        runner.generate_block(timed.gen_batch, timed.gen_batch)
    steps = {m: block_steps(r.step_seconds, timed.block_seconds) for m, r in runners.items()}
    images = {m: max(timed.gen_batch, block_steps(r.step_seconds / 3, timed.block_seconds))
              for m, r in runners.items()}  # a forward is about a third of a step
    timings = {m: {"train": [], "data": [], "gen": []} for m in modes}
    for block in range(timed.blocks):
        progress(f"timed block {block + 1}/{timed.blocks}")
        for mode, runner in runners.items():
            per_step, data_share = runner.train_block(steps[mode])
            timings[mode]["train"].append(per_step)
            timings[mode]["data"].append(data_share)
            record({"mode": mode, "block": block, "seconds_per_step": per_step,
                    "steps_per_second": 1 / per_step})
        if timed.gen:
            for mode, runner in runners.items():
                timings[mode]["gen"].append(runner.generate_block(images[mode], timed.gen_batch))
    return {mode: summarise(timings[mode], runners[mode], steps[mode]) for mode in modes}


def summarise(timing: dict, runner: Runner, steps: int) -> dict:
    per_step = statistics.median(timing["train"])
    per_image = statistics.median(timing["gen"]) if timing["gen"] else None
    return {"seconds_per_step": per_step, "steps_per_second": 1 / per_step,
            "best_seconds_per_step": min(timing["train"]),
            "data_share": statistics.median(timing["data"]),
            "images_per_second": 1 / per_image if per_image else None,
            "peak_memory_mb": runner.peak_mb, "steps_per_block": steps,
            "blocks_seconds_per_step": timing["train"],
            "options": dataclasses.asdict(runner.trainer.fast.options)
            if runner.trainer.fast else None}


def ratios(results: dict) -> dict:
    """Speed relative to faithful: of the medians, and the median of the ratios of
    neighbouring blocks (on a shared machine neighbours see about the same load)."""
    base = results.get("faithful")
    if base is None:
        return {}
    out = {}
    for mode, r in results.items():
        if mode != "faithful":
            gen = r["images_per_second"] / base["images_per_second"] \
                if r["images_per_second"] and base["images_per_second"] else None
            paired = statistics.median(a / b for a, b in zip(base["blocks_seconds_per_step"],
                                                             r["blocks_seconds_per_step"]))
            out[mode] = {"steps_per_second": r["steps_per_second"] / base["steps_per_second"],
                         "steps_per_second_paired": paired, "images_per_second": gen}
    return out


# --- loss curves: do the modes learn alike? ------------------------------------------

def loss_curves(cfg: ExperimentConfig, modes: list[str], device: torch.device,
                steps: int) -> dict:
    """Per-step losses of every mode from the same seed and batches (read each step)."""
    curves = {}
    for mode in modes:
        progress(f"loss curve: {mode}, {steps} steps")
        trainer, data = build(cfg, mode, device)
        series = {}
        for _ in range(steps):
            losses = trainer.train_step(*data.batch(trainer.step, device))
            for name, value in check_finite(losses, trainer.step, Path(os.devnull)).items():
                series.setdefault(name, []).append(value)
        curves[mode] = series
    return {"steps": steps, "curves": curves, "summary": curve_summary(curves, steps)}


def curve_summary(curves: dict, steps: int) -> dict:
    """Mean of each loss over the first and the last tenth of the run, per mode."""
    window = max(1, steps // 10)
    return {mode: {name: {"first": statistics.fmean(v[:window]),
                          "last": statistics.fmean(v[-window:])}
                   for name, v in series.items() if name.startswith("loss_")}
            for mode, series in curves.items()}


# --- command line -------------------------------------------------------------------


def append_line(path: str | None, setup: dict, row: dict) -> None:
    """One measurement as a JSON line, flushed at once (None: no file)."""
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({**row, "device_name": setup["device_name"],
                                  "image_size": setup["image_size"],
                                  "batch_size": setup["batch_size"],
                                  "commit": setup["commit"]}) + "\n")


def parse_modes(text: str) -> list[str]:
    modes = [m for m in text.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ConfigError(f"--modes {text!r}: unknown mode {unknown[0] if unknown else ''!r}; "
                          f"choose from {list(MODES)}")
    return modes


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",") if n]
    except ValueError:
        counts = [0]
    if any(n < 1 for n in counts):
        raise ConfigError(f"--concurrent {text!r} must list positive process counts, e.g. 1,2,4")
    return counts
