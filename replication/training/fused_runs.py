"""Training a fused group (train.fuse): N runs, one step, N ordinary run folders.

`train_group` is train.train_runs for runs fused into one step (fusion.py): it takes the
runs' folders, resumes or starts them together, and steps them as one. Every run folder
ends as an ordinary one (config.yaml, checkpoints/state.pt and generator.pt, train.json,
the DVCLive logs), so generate, score and tables see no difference; what marks a fused
run is its group, recorded in its config.yaml (`fused_group`), its state.pt (`fusion`),
its fingerprint and its train.json. Resume rules, beyond checkpoints.check_resumable's:
the runs of a group resume together, all at one step, and only in the same group (the
same runs in the same order); anything else is refused with one line (or, with
--on-config-change restart, the group starts over).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from replication.config.schema import DataConfig, ExperimentConfig
from replication.core import layout
from replication.core.devices import resolve_device
from replication.core.errors import CheckpointError
from replication.core.fileio import exclusive, write_text
from replication.core.progress import ProgressLines
from replication.data.paired import (
    TrainingPairs,
    split_direction,
    to_uint8,
    to_unit_range,
)
from replication.models import RGB, build_generator
from replication.training import checkpoints
from replication.training.concurrent import RunFolders
from replication.training.fusion import FusedTrainer, run_slice
from replication.training.fusion_groups import check_fusable, group_record
from replication.training.loop import checkpoint, finish, summarise
from replication.training.monitor import (
    LossMeter,
    check_finite,
    log,
    log_samples,
    open_live,
    samples_due,
    stop_requests,
)
from replication.training.trainer import fingerprint


@dataclass(frozen=True)
class Member:
    cfg: ExperimentConfig
    run: RunFolders


def fused_fingerprint(cfg: ExperimentConfig, record: dict) -> str:
    """The run's fingerprint (code and data) with its group: a run resumed in another
    group would follow another trajectory (on CUDA: other dropout draws)."""
    text = fingerprint(cfg) + json.dumps(record, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunView:
    """Run i of a fused group as train.py's helpers (checkpoint, log, summarise, finish)
    see a Trainer."""

    shard = None

    def __init__(self, trainer: FusedTrainer, i: int, record: dict, fingerprint_: str):
        self.group, self.i, self.record, self.fingerprint = trainer, i, record, fingerprint_
        self.cfg, self.seed = trainer.cfgs[i], trainer.seeds[i]
        self.device, self.total_steps = trainer.device, trainer.total_steps

    @property
    def step(self) -> int:
        return self.group.step

    @property
    def sched_G(self):
        return self.group.sched_G

    @property
    def G(self) -> torch.nn.Module:
        """An ordinary generator holding this run's weights (for generator.pt)."""
        with torch.random.fork_rng(devices=[]):  # its throw-away init draws nothing of ours
            G = build_generator(self.cfg.generator, self.cfg.data.image_size, RGB, RGB)
        G.load_state_dict(run_slice(self.group.G.state_dict(), self.group.runs, self.i))
        return G.to(self.device).train()

    def state_dict(self, meter: dict) -> dict:
        state = self.group.run_state(self.i, meter)
        return {**state, "fingerprint": self.fingerprint, "fusion": self.record}


def run_data(shared: TrainingPairs, cfg: DataConfig, seed: int) -> TrainingPairs:
    """Run `seed`'s batches (its own order and jitter, its own direction) from the pairs
    decoded once for the whole group."""
    data = copy.copy(shared)
    data.cfg = cfg
    data.schedule = dataclasses.replace(shared.schedule, seed=seed)
    return data


def run_meter(meter: LossMeter, i: int) -> LossMeter:
    """Run i's share of the group's meter (each value a (N,) sum)."""
    out = LossMeter()
    out.sums, out.count = {k: v[i] for k, v in meter.sums.items()}, meter.count
    return out


def stacked_meter(states: list[dict]) -> LossMeter:
    meter = LossMeter()
    meter.sums = {k: torch.tensor([s["meter"]["sums"][k] for s in states])
                  for k in states[0]["meter"]["sums"]}
    meter.count = states[0]["meter"]["count"]
    return meter


def describe(record: dict | None) -> str:
    if record is None:
        return "alone (not fused)"
    return f"as run {record['index'] + 1} of the fused group {record['runs']}"


def resume(trainer: FusedTrainer, members: list[Member], records: list[dict],
           prints: list[str], on_mismatch: str) -> LossMeter:
    """Load every run's state into the group, after every rule is checked."""
    paths = [layout.state_path(m.run.out) for m in members]
    present = [p for p in paths if p.exists()]
    if len(present) != len(paths):
        missing = next(p for p in paths if not p.exists())
        raise CheckpointError(f"{missing}: not found, while {present[0]} exists: the runs of a "
                              "fused group resume together; pass --restart to start the group "
                              "over")
    states = [checkpoints.load(p, checkpoints.STATE_FORMAT) for p in paths]
    for state, member, record, print_, path in zip(states, members, records, prints, paths):
        if state.get("fusion") != record:
            raise CheckpointError(f"{path}: checkpoint was trained {describe(state.get('fusion'))}"
                                  f", not {describe(record)}; train it as it started or pass "
                                  "--restart")
        checkpoints.check_resumable(state, member.cfg, member.run.seed, path, print_,
                                    on_code_change=on_mismatch)
    steps = {s["step"] for s in states}
    if len(steps) != 1:
        raise CheckpointError(f"{paths[0]}: the runs of the fused group are at steps "
                              f"{sorted(steps)}; they resume together, so pass --restart")
    trainer.load_run_states(states, paths[0])
    return stacked_meter(states)


def finished(trainer: FusedTrainer, members: list[Member]) -> bool:
    return trainer.step >= trainer.total_steps and all(
        layout.generator_path(m.run.out).exists() and (m.run.out / "train.json").exists()
        for m in members)


def train_group(members: list[Member], *, restart: bool = False, on_mismatch: str = "error",
                stop_after: int | None = None, progress: bool = True) -> list[dict]:
    """Train the members as one fused step into their run folders, resuming them together
    if they have checkpoints; their train.json summaries, in order."""
    check_fusable([m.cfg for m in members])
    with contextlib.ExitStack() as held, stop_requests() as stop:
        for member in members:
            held.enter_context(exclusive(member.run.out))
        return _train_group(members, restart, on_mismatch, stop_after, progress, stop)


def _train_group(members: list[Member], restart: bool, on_mismatch: str,
                 stop_after: int | None, progress: bool, stop: dict) -> list[dict]:
    cfg = members[0].cfg
    device = resolve_device(cfg.train.device, cfg.train.runs_per_device)
    shared = TrainingPairs(cfg.data, cfg.train.batch_size, members[0].run.seed)
    if cfg.train.mode == "fast":
        shared.folder.to(device)  # decoded once for the group; jitter runs on the device
    datas = [run_data(shared, m.cfg.data, m.run.seed) for m in members]
    total = cfg.train.total_steps(len(shared))
    names = [(m.cfg.name, m.run.seed) for m in members]
    records = [group_record(names, i) for i in range(len(members))]
    prints = [fused_fingerprint(m.cfg, r) for m, r in zip(members, records)]
    make_trainer = functools.partial(FusedTrainer, [m.cfg for m in members],
                                     [m.run.seed for m in members], device, total)
    trainer, meter = make_trainer(), LossMeter()
    if not restart and any(layout.state_path(m.run.out).exists() for m in members):
        try:
            meter = resume(trainer, members, records, prints, on_mismatch)
        except CheckpointError as err:
            if on_mismatch != "restart":
                raise
            print(f"warning: {err} -> starting the fused group over")
            trainer, meter, restart = make_trainer(), LossMeter(), True
    if restart:
        for member in members:
            layout.state_path(member.run.out).unlink(missing_ok=True)
            layout.generator_path(member.run.out).unlink(missing_ok=True)
    if finished(trainer, members):  # finished earlier: a no-op
        return [json.loads((m.run.out / "train.json").read_text()) for m in members]
    for member, record in zip(members, records):
        # the ordinary resolved config, and the group this run is trained in
        text = yaml.safe_dump({**member.cfg.to_dict(), "fused_group": record}, sort_keys=False)
        write_text(member.run.out / "config.yaml", text)
    views = [RunView(trainer, i, r, p) for i, (r, p) in enumerate(zip(records, prints))]
    return group_loop(trainer, views, datas, meter, members, stop, stop_after, progress)


def group_loop(trainer: FusedTrainer, views: list[RunView], datas: list[TrainingPairs],
               meter: LossMeter, members: list[Member], stop: dict,
               stop_after: int | None, progress: bool) -> list[dict]:
    """train.run_loop for the group: one step for all, then each run's logs, samples and
    checkpoints as its own loop would write them."""
    cfg, total, start, n = trainer.cfg.train, trainer.total_steps, trainer.step, trainer.runs
    paths = [layout.state_path(m.run.out) for m in members]
    every_step = trainer.fast is None  # eager faithful checks every step, as run_loop
    lives = [open_live(m.run.logs, start) for m in members]
    last, began, by_signal = [{} for _ in members], time.perf_counter(), False
    label = f"{n} fused runs of {', '.join(dict.fromkeys(m.cfg.name for m in members))}"
    bar = tqdm(total=total, initial=start, disable=not progress, unit="step", desc=label,
               mininterval=1.0, dynamic_ncols=True)
    lines = ProgressLines(f"train {label}", total, start) if not progress else None
    with bar:
        while trainer.step < total:
            xs, ys = zip(*(data.batch(trainer.step, trainer.device) for data in datas))
            losses = trainer.train_step(torch.cat(xs, dim=1), torch.cat(ys, dim=1))
            step = trainer.step
            if every_step:
                for i, path in enumerate(paths):
                    check_finite({k: v[i] for k, v in losses.items()}, step, path)
            meter.add(losses)
            bar.update(1)
            if lines is not None:
                lines.update(step)
            if step % cfg.log_every == 0 or step == total:
                last = [log(live, bar, view, run_meter(meter, i), step, path)
                        for i, (live, view, path) in enumerate(zip(lives, views, paths))]
                meter.reset()
            draw, keep = samples_due(cfg, step, total)
            if draw:
                for live, grid in zip(lives, sample_grids(trainer, datas)):
                    log_samples(live, grid, step, keep)
            if step % cfg.checkpoint_every == 0 and step < total:
                checkpoint_all(views, meter, paths)
            by_signal = stop["signal"] is not None
            if step < total and (by_signal or (stop_after and step - start >= stop_after)):
                break  # checkpointed below; a later call resumes exactly here
    checkpoint_all(views, meter, paths)
    seconds = time.perf_counter() - began
    summaries = []
    for view, member, losses in zip(views, members, last):
        summary = {**summarise(view, start, seconds, losses, by_signal),
                   "fused_group": view.record}
        finish(view, summary, member.run.out)
        summaries.append(summary)
    return summaries


@torch.no_grad()
def sample_grids(trainer: FusedTrainer, datas: list[TrainingPairs], count: int = 4) -> list:
    """monitor.sample_grid of every run from ONE forward of the fused G (N generator
    copies would cost seconds at paper size), without side effects: BatchNorm running
    statistics and every run's dropout generator are put back, so sampling never
    changes a trajectory."""
    inputs, targets = [], []
    for data in datas:
        cfg = data.cfg
        pairs = data.folder.batch(torch.arange(min(count, len(data))).to(data._index_device()))
        border = (data.folder.size - cfg.image_size) // 2
        pairs = pairs[:, :, border:border + cfg.image_size, border:border + cfg.image_size]
        x, y = split_direction(to_unit_range(pairs.to(trainer.device)), cfg.direction)
        inputs.append(x)
        targets.append(y)
    buffers = {k: v.clone() for k, v in trainer.G.named_buffers()}
    states = [g.get_state() for g in trainer.generators]
    fakes = trainer.G(torch.cat(inputs, dim=1)).float().chunk(trainer.runs, dim=1)
    for name, buf in trainer.G.named_buffers():
        buf.copy_(buffers[name])
    for generator, state in zip(trainer.generators, states):
        generator.set_state(state)
    grids = []
    for x, fake, y in zip(inputs, fakes, targets):
        rows = torch.cat([x, fake, y], dim=3)  # side by side, stacked vertically
        grids.append(to_uint8(torch.cat(list(rows), dim=1)).permute(1, 2, 0).cpu().numpy())
    return grids


def checkpoint_all(views: list[RunView], meter: LossMeter, paths: list[Path]) -> None:
    for i, (view, path) in enumerate(zip(views, paths)):
        checkpoint(view, run_meter(meter, i), path)
