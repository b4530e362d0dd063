"""The bench's building blocks: a mode's trainer on toy pairs, timed as the loop runs it.

Synthetic pairs stand in for the dataset (smooth colour blobs, the target a channel
permutation of the input: learnable, so the L1 curves fall), so no download is needed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from replication.config.schema import ExperimentConfig
from replication.data.paired import TrainingPairs
from replication.training import fast
from replication.training.monitor import LossMeter, check_finite
from replication.training.trainer import Trainer

# What each mode name runs: (train.mode, how its step runs). None: eager faithful;
# "graph": the faithful step captured as a CUDA graph (fast.FAITHFUL_GRAPH); a dict: fast
# mode with these FastOptions changed from what train.mode=fast picks (one ingredient off).
MODES = {
    "faithful": ("faithful", None),
    "faithful-graph": ("faithful", "graph"),
    "fast": ("fast", {}),
    "fast-fp32": ("fast", {"bf16": False}),
    "fast-eager": ("fast", {"cuda_graph": False}),
    "fast-nchw": ("fast", {"channels_last": False}),
}
SYNTHETIC_PAIRS = 16


def with_synthetic_data(cfg: ExperimentConfig, root: Path) -> ExperimentConfig:
    """<root>/synthetic/train/<i>.png: toy pairs (A smooth colour blobs, B A's channels
    permuted) at the jitter size, and cfg pointed at them."""
    from replication.data.synthetic.toy import write_pairs
    write_pairs(root / "synthetic", {"train": max(SYNTHETIC_PAIRS, 2 * cfg.train.batch_size)},
                cfg.data.jitter_size)
    data = dataclasses.replace(cfg.data, root=str(root), dataset="synthetic", train_split="train")
    return dataclasses.replace(cfg, data=data)


def fast_options(cfg: ExperimentConfig, mode: str, device: torch.device):
    changes = MODES[mode][1]
    if changes is None:
        return None
    if changes == "graph":  # a CUDA graph needs CUDA: elsewhere it is eager faithful
        return fast.FAITHFUL_GRAPH if device.type == "cuda" else None
    return dataclasses.replace(fast.options_for(device, cfg.train.fast_precision), **changes)


def build(cfg: ExperimentConfig, mode: str, device: torch.device, seed: int = 0):
    """A Trainer and its data for `mode`, as train() would set them up."""
    options = fast_options(cfg, mode, device)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mode=MODES[mode][0]))
    data = TrainingPairs(cfg.data, cfg.train.batch_size, seed)
    if cfg.train.mode == "fast":
        data.folder.to(device)
    return Trainer(cfg, seed, device, 10**9, fast_options=options), data


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)



class Runner:
    """One mode's trainer, stepped as the training loop steps it (train.run_loop)."""

    def __init__(self, cfg: ExperimentConfig, mode: str, device: torch.device, seed: int = 0):
        self.mode, self.device = mode, device
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        self.trainer, self.data = build(cfg, mode, device, seed)
        self.meter = LossMeter()
        self.state_path = Path(os.devnull)
        self.step_seconds = self.train_block(1)[0]  # the first step (holds any capture)
        self.peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20 if cuda else None

    def train_block(self, steps: int) -> tuple[float, float]:
        """(seconds per step, share of the time spent in data.batch) over `steps` steps."""
        data_seconds = 0.0
        synchronize(self.device)
        began = time.perf_counter()
        for _ in range(steps):
            data_seconds += self.step()
        synchronize(self.device)
        seconds = time.perf_counter() - began
        self.meter.reset()
        return seconds / steps, data_seconds / seconds

    def step(self) -> float:
        """One step as the loop runs it, no device synchronisation added (the faithful
        loop's own per-step check is one); returns the seconds spent in data.batch."""
        trainer, began = self.trainer, time.perf_counter()
        x, y = self.data.batch(trainer.step, self.device)
        data_seconds = time.perf_counter() - began
        losses = trainer.train_step(x, y)
        if trainer.fast is None:  # the faithful loop checks every step (a host sync)
            check_finite(losses, trainer.step, self.state_path)
        self.meter.add(losses)
        if self.meter.count >= 1000:  # the loop reads its sums every log_every steps
            self.meter.reset()
        return data_seconds

    @torch.no_grad()
    def generate_block(self, images: int, batch: int) -> float:
        """Seconds per image of G's forward as `generate` runs it (train mode)."""
        G, trainer = self.trainer.G, self.trainer
        x = torch.rand(batch, 3, *(2 * [trainer.cfg.data.image_size]), device=self.device) * 2 - 1
        if trainer.fast is not None:
            x = trainer.fast.layout(x)
        synchronize(self.device)
        began = time.perf_counter()
        with trainer.autocast(), fast.cudnn_benchmark() if trainer.fast else nullcontext():
            for _ in range(-(-images // batch)):
                G(x)
        synchronize(self.device)
        return (time.perf_counter() - began) / (-(-images // batch) * batch)


def block_steps(seconds_per_step: float, block_seconds: float) -> int:
    return max(1, min(1000, round(block_seconds / max(seconds_per_step, 1e-6))))


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] bench: {message}", file=sys.stderr, flush=True)
