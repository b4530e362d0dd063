"""Training: one D step then one G step per batch (docs/method.md), exact resume, DVCLive logs.

`train(cfg, seed, out_dir)` is the whole entry point. The loop is made of named steps
(`d_step`, `g_step`, `log`, `checkpoint`); the networks know nothing of losses.
train.mode "fast" runs the same step with less overhead (fast.py); under torchrun the
run is data-parallel over the processes, one global batch per step (distributed.py).
Outputs under `out_dir`:
    config.yaml                 the resolved configuration of this run
    checkpoints/state.pt        full training state (exact resume), every N steps and at the end
    checkpoints/generator.pt    G snapshot for `generate`, written once training finishes
    train.json                  summary: steps, time, steps/s, last losses
and under `log_dir` (default out_dir/dvclive; the pipeline uses logs/<experiment>/seed-<k>):
    plots/metrics/train/*.tsv   DVCLive step series of every loss and the lr
    plots/images/samples.png    latest sample grid (input | output | target)
    plots/images/samples/step-<N>.png  the grids kept (train.keep_samples_every)
    loss_log.txt                the logged losses as plain lines
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from replication.config.schema import ExperimentConfig, check_count, dump_yaml
from replication.core import layout
from replication.core.devices import machine, resolve_device
from replication.core.errors import CheckpointError, ConfigError
from replication.core.fileio import exclusive, write_json, write_text
from replication.core.progress import ProgressLines
from replication.data.paired import TrainingPairs
from replication.training import checkpoints, concurrent, distributed
from replication.training.concurrent import RunFolders
from replication.training.monitor import (
    LossMeter,
    check_finite,
    log,
    log_samples,
    open_live,
    sample_grid,
    samples_due,
    stop_requests,
)
from replication.training.trainer import Trainer, fingerprint

# --- the loop -----------------------------------------------------------------------

def checkpoint(trainer: Trainer, meter: LossMeter, state_path: Path) -> None:
    """Check the losses since the last log, then (rank 0) write the full training state:
    a checkpoint never holds weights made after a NaN."""
    check_finite(meter.collect(trainer.shard), trainer.step, state_path, steps=max(meter.count, 1))
    if is_main(trainer):
        checkpoints.save(trainer.state_dict(meter.state()), state_path)


def is_main(trainer: Trainer) -> bool:
    return trainer.shard is None or trainer.shard.is_main


def next_batch(trainer: Trainer, data: TrainingPairs) -> tuple[torch.Tensor, torch.Tensor]:
    if trainer.shard is None:
        return data.batch(trainer.step, trainer.device)
    rows = trainer.shard.take(data.schedule.batch_length(trainer.step))
    return data.batch(trainer.step, trainer.device, rows)


def signalled(stop: dict, trainer: Trainer, at_log: bool) -> bool:
    if trainer.shard is None:
        return stop["signal"] is not None
    # all ranks must stop after the same step: they agree at log steps (a tiny all-reduce)
    return at_log and distributed.any_rank(stop["signal"] is not None, trainer.device)


def train(cfg: ExperimentConfig, seed: int, out_dir: str | Path, *,
          log_dir: str | Path | None = None, restart: bool = False,
          on_mismatch: str = "error", stop_after: int | None = None,
          progress: bool = True) -> dict:
    """Train one (config, seed) run into `out_dir`, resuming from its checkpoint if any.

    on_mismatch: what to do when the checkpoint was made with other settings —
    "error" (the CLI default) or "restart" (the pipeline: changed params retrain).
    Under torchrun (WORLD_SIZE > 1) every rank calls this; only rank 0 writes, and it
    holds the run folder's lock: a second process on the same folder stops at once.
    """
    out_dir = Path(out_dir)
    run = RunFolders(seed, out_dir, Path(log_dir) if log_dir else out_dir / "dvclive")
    return train_runs(cfg, [run], restart=restart, on_mismatch=on_mismatch,
                      stop_after=stop_after, progress=progress)[0]


def train_runs(cfg: ExperimentConfig, runs: list[RunFolders], *, restart: bool = False,
               on_mismatch: str = "error", stop_after: int | None = None,
               progress: bool = True) -> list[dict]:
    """Several seeds of one experiment in this process (train.seeds_per_process), their
    steps interleaved (concurrent.py); one run is the same thing without the interleaving."""
    if stop_after is not None:
        check_count("stop_after", stop_after)  # 0 would mean "no limit" below: refused
    if len(runs) > 1 and distributed.shard_from_environment() is not None:
        raise ConfigError("train.seeds_per_process > 1 is one process per GPU; under torchrun "
                          "(data-parallel) set it to 1")
    with contextlib.ExitStack() as held, stop_requests() as stop:
        if distributed.is_main_process():
            for run in runs:
                held.enter_context(exclusive(run.out))
        loops = [_train(cfg, run, restart, on_mismatch, stop_after, progress, stop)
                 for run in runs]
        return concurrent.interleave(loops)


def _train(cfg: ExperimentConfig, run: RunFolders, restart: bool, on_mismatch: str,
           stop_after: int | None, progress: bool, stop: dict):
    """One run as a generator that yields its device once chosen, then after every step
    (concurrent.interleave drives it), and returns its train.json summary."""
    seed, out_dir, log_dir = run.seed, run.out, run.logs
    state_path, generator_path = layout.state_path(out_dir), layout.generator_path(out_dir)
    shard = distributed.shard_from_environment()
    device = resolve_device(cfg.train.device, cfg.train.runs_per_device)
    if shard is not None:
        device = distributed.setup(shard, device)
    yield device  # concurrent.py makes this run's stream and generator there
    data = TrainingPairs(cfg.data, cfg.train.batch_size, seed)
    if shard is not None:
        distributed.check_slices(shard, cfg.train.batch_size, len(data))
    if cfg.train.mode == "fast":
        data.folder.to(device)  # decoded pixels uploaded once; jitter runs on the device
    total = cfg.train.total_steps(len(data))
    make_trainer = functools.partial(Trainer, cfg, seed, device, total, shard=shard)
    trainer, meter = make_trainer(), LossMeter()
    if state_path.exists() and not restart:
        try:
            state = checkpoints.load(state_path, checkpoints.STATE_FORMAT)
            checkpoints.check_resumable(state, cfg, seed, state_path, fingerprint(cfg),
                                        on_code_change=on_mismatch)
            meter = LossMeter(trainer.load_state_dict(state, state_path))
            if trainer.step > total:  # a shortened schedule (checkpoints.SCHEDULE_LENGTH)
                raise CheckpointError(f"{state_path}: checkpoint is at step {trainer.step}, "
                                      f"past this schedule's end ({total} steps); raise "
                                      "train.iterations or pass --restart")
            if not is_main(trainer):  # rank 0 carries the sums so far (LossMeter.collect)
                meter.sums = {k: torch.zeros_like(v) for k, v in meter.sums.items()}
        except CheckpointError as err:
            if on_mismatch != "restart":
                raise
            print(f"warning: {err} -> starting over")
            trainer, restart = make_trainer(), True
    distributed.barrier()  # every rank has read the checkpoint before rank 0 touches it
    main = is_main(trainer)
    if restart and main:
        state_path.unlink(missing_ok=True)
        generator_path.unlink(missing_ok=True)
    if trainer.step >= total and generator_path.exists() and (out_dir / "train.json").exists():
        return json.loads((out_dir / "train.json").read_text())  # finished earlier: no-op
    if main:
        write_text(out_dir / "config.yaml", dump_yaml(cfg))
    summary = yield from run_loop(trainer, data, meter, out_dir, log_dir, stop,
                                  stop_after=stop_after, progress=progress)
    distributed.barrier()  # rank 0's files exist when any rank returns
    return summary


def run_loop(trainer: Trainer, data: TrainingPairs, meter: LossMeter, out_dir: Path,
             log_dir: Path, stop: dict, *, stop_after: int | None, progress: bool):
    """The steps of one run, yielding after each; returns the run's summary."""
    cfg, total, start = trainer.cfg.train, trainer.total_steps, trainer.step
    state_path = layout.state_path(out_dir)
    main = is_main(trainer)
    # eager faithful, one process: every step's losses are checked (the reference
    # behaviour). A captured step (fast, faithful_cuda_graph) and data-parallel runs: their
    # sums, at log steps and before each checkpoint, so no step waits for the device and no
    # checkpoint is written after a NaN.
    every_step = trainer.fast is None and trainer.shard is None
    live = open_live(log_dir, start) if main else None
    last, began, by_signal = {}, time.perf_counter(), False
    bar = tqdm(total=total, initial=start, disable=not (progress and main), unit="step",
               desc=trainer.cfg.name, mininterval=1.0, dynamic_ncols=True)
    lines = ProgressLines(f"train {trainer.cfg.name} seed {trainer.seed}", total, start) \
        if main and not progress else None
    with bar:
        while trainer.step < total:
            losses = trainer.train_step(*next_batch(trainer, data))
            step = trainer.step
            if every_step:
                check_finite(losses, step, state_path)
            shard = trainer.shard
            meter.add(losses if shard is None else {k: v * shard.weight for k, v in losses.items()})
            bar.update(1)
            if lines is not None:
                lines.update(step)
            at_log = step % cfg.log_every == 0 or step == total
            if at_log:
                last = log(live, bar, trainer, meter, step, state_path)
            draw, keep = samples_due(cfg, step, total)
            if live is not None and draw:
                log_samples(live, sample_grid(trainer, data), step, keep)
            if step % cfg.checkpoint_every == 0 and step < total:
                checkpoint(trainer, meter, state_path)
            by_signal = signalled(stop, trainer, at_log)
            if step < total and (by_signal or (stop_after and step - start >= stop_after)):
                break  # checkpointed below; a later call resumes exactly here
            yield
    checkpoint(trainer, meter, state_path)
    summary = summarise(trainer, start, time.perf_counter() - began, last, by_signal)
    if main:
        finish(trainer, summary, out_dir)
    return summary


def summarise(trainer: Trainer, start: int, seconds: float, last: dict,
              by_signal: bool) -> dict:
    """The run's train.json: how far it got, how fast, its last logged losses."""
    total = trainer.total_steps
    return {"experiment": trainer.cfg.name, "seed": trainer.seed, "step": trainer.step,
            "total_steps": total, "finished": trainer.step >= total,
            "steps_this_run": trainer.step - start, "seconds_this_run": round(seconds, 2),
            "steps_per_second": round((trainer.step - start) / max(seconds, 1e-9), 3),
            "device": str(trainer.device), "machine": machine(trainer.device),
            "mode": trainer.cfg.train.mode,
            "processes": 1 if trainer.shard is None else trainer.shard.world,
            "last_losses": last, "stopped_by_signal": by_signal}


def finish(trainer: Trainer, summary: dict, out_dir: Path) -> None:
    """(rank 0) The generator snapshot once finished, train.json, and train.keep_state."""
    if summary["finished"]:
        checkpoints.save_generator(trainer.G, trainer.cfg, trainer.seed, trainer.step,
                                   layout.generator_path(out_dir))
    write_json(out_dir / "train.json", summary)
    if summary["finished"] and not trainer.cfg.train.keep_state:
        layout.state_path(out_dir).unlink()  # generator.pt is what generate reads
