"""Several runs of one experiment in one process, their steps interleaved.

One batch-1 pix2pix run leaves most of a modern GPU idle, and separate processes only
time-slice it. Here K runs (train.seeds_per_process) step in turn: run 1's step, run 2's,
..., each with its own random streams, so each run is bit for bit the run it would be
alone; on CUDA each also steps on a CUDA stream of its own, so the device can overlap
their kernels and graph replays.

A run's loop is a generator: it first yields the torch.device it chose (the GPU pool
decides it inside the loop), then yields None after every training step. Its CUDA
stream and CUDA generator are made on that device once it is known.

Random streams: the CPU generator's state is swapped by value around each run's step
(no graph reads it). A captured CUDA graph reads its generator's seed and offset from
device memory when replayed, so on CUDA each run gets a generator of its own, put in
place of the default one by pointer (Generator.graphsafe_set_state, the mechanism
PyTorch's graph-safe RNG functionalisation uses): every graph a run captures registers
the run's generator (CUDAGraph.capture_begin registers the default generator's current
state), and a replay on one run's stream never touches another run's seed or offset.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

import torch


@dataclass(frozen=True)
class RunFolders:
    seed: int
    out: Path  # runs/<experiment>/seed-<k>: checkpoints, config.yaml, train.json
    logs: Path  # logs/<experiment>/seed-<k>: DVCLive curves and samples


def stream_on(device: torch.device):
    """A CUDA stream on the run's device (None elsewhere)."""
    return torch.cuda.Stream(device) if device.type == "cuda" else None


def generator_on(device: torch.device):
    """A CUDA generator of the run's own on its device (None elsewhere)."""
    return torch.Generator(device) if device.type == "cuda" else None


class RunContext:
    """One interleaved run's random streams and, on CUDA, its stream."""

    def __init__(self):
        self.cpu_state = None  # the CPU generator's state after this run's last step
        self.device = self.stream = self.cuda_generator = None

    def place(self, device: torch.device) -> None:
        self.device = device
        self.stream, self.cuda_generator = stream_on(device), generator_on(device)

    @contextlib.contextmanager
    def active(self):
        if self.cpu_state is not None:
            torch.set_rng_state(self.cpu_state)
        with contextlib.ExitStack() as stack:
            if self.stream is not None:
                stack.enter_context(torch.cuda.stream(self.stream))
            if self.cuda_generator is not None:
                stack.enter_context(swapped_in(self.cuda_generator, self.device))
            yield
        self.cpu_state = torch.get_rng_state()


@contextlib.contextmanager
def swapped_in(generator: torch.Generator, device: torch.device):
    """The device's default CUDA generator points at `generator`'s state for the block
    (manual_seed, get/set_rng_state, dropout and graph capture all use it)."""
    default = torch.cuda.default_generators[device.index or 0]
    saved = default.graphsafe_get_state()
    default.graphsafe_set_state(generator)
    try:
        yield
    finally:
        default.graphsafe_set_state(saved)


def interleave(loops: list[Generator]) -> list:
    """Drive generators that yield after every step until each returns; their return
    values in order. A single loop runs as it is, with nothing swapped."""
    if len(loops) == 1:
        return [_drive(loops[0])]
    together = Interleaved(loops)
    while together.active:
        together.step()
    return together.results


class Interleaved:
    """Generators stepped in turn, each with its own RunContext."""

    def __init__(self, loops: list[Generator]):
        self.loops, self.results = loops, [None] * len(loops)
        self.contexts = [RunContext() for _ in loops]
        self.active = list(range(len(loops)))

    def step(self) -> None:
        """One step of every run still going."""
        for i in list(self.active):
            context = self.contexts[i]
            try:
                while True:  # a yielded device is no step: place the run, then step it
                    with context.active():
                        value = next(self.loops[i])
                    if not isinstance(value, torch.device):
                        break
                    context.place(value)
            except StopIteration as done:
                self.results[i] = done.value
                self.active.remove(i)


def _drive(loop: Generator):
    try:
        while True:
            next(loop)
    except StopIteration as done:
        return done.value
