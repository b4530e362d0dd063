"""Several runs of one experiment in one process, their steps interleaved.

One batch-1 pix2pix run leaves most of a modern GPU idle, and separate processes only
time-slice it. Here K runs (train.seeds_per_process) step in turn: run 1's step, run 2's,
..., each with its own RNG streams (swapped in before its step and out after), so each
run is bit for bit the run it would be alone; on CUDA each also steps on a CUDA stream
of its own, so the device can overlap their kernels and graph replays.
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


def rng_state() -> tuple:
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None


def set_rng_state(state: tuple) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


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
    """Generators stepped in turn, each with its own RNG state and CUDA stream."""

    def __init__(self, loops: list[Generator]):
        self.loops, self.results = loops, [None] * len(loops)
        self.states = [None] * len(loops)
        self.streams = [torch.cuda.Stream() if torch.cuda.is_available() else None
                        for _ in loops]
        self.active = list(range(len(loops)))

    def step(self) -> None:
        """One step of every run still going."""
        for i in list(self.active):
            if self.states[i] is not None:
                set_rng_state(self.states[i])
            stream = self.streams[i]
            try:
                with torch.cuda.stream(stream) if stream else contextlib.nullcontext():
                    next(self.loops[i])
            except StopIteration as done:
                self.results[i] = done.value
                self.active.remove(i)
                continue
            self.states[i] = rng_state()


def _drive(loop: Generator):
    try:
        while True:
            next(loop)
    except StopIteration as done:
        return done.value
