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

import argparse
import contextlib
import functools
import hashlib
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from replication import (checkpoints, concurrent, distributed, fast, layout, models,
                         released, seed_processes)
from replication.concurrent import RunFolders
from replication.config import ExperimentConfig, check_count, dump_yaml
from replication.data.paired import TrainingPairs
from replication.datasets import VERIFIED_MARKER
from replication.devices import machine, resolve_device
from replication.errors import CheckpointError, ConfigError
from replication.fileio import exclusive, write_json, write_text
from replication.models.losses import discriminator_loss, generator_loss
from replication.monitor import (LossMeter, ProgressLines, check_finite, log, log_samples,
                                 open_live, sample_grid, samples_due, stop_requests)

def lr_factor(policy: str, total_steps: int):
    """Multiplier of the base lr for optimizer step s (0-based)."""
    if policy == "constant":  # Lua code (produced the paper's numbers); paper is silent
        return lambda step: 1.0
    half = total_steps // 2  # PyTorch code: constant, then linear decay to 0

    def linear(step: int) -> float:
        return 1.0 - max(0, step - half) / max(1, total_steps - half)
    return linear


class Trainer:
    """G, D, their optimisers and schedulers, the step counter — the whole training state.

    `compute` is the step's arithmetic. train.mode "faithful" runs it eagerly in fp32 (the
    reference); "fast" runs the same `compute` through fast.FastStep. With a `shard`
    (data-parallel training) BatchNorm and dropout see the global batch and gradients are
    averaged over the ranks (distributed.py).
    """

    def __init__(self, cfg: ExperimentConfig, seed: int, device: torch.device, total_steps: int,
                 *, fast_options: fast.FastOptions | None = None,
                 shard: distributed.Shard | None = None):
        self.cfg, self.seed, self.device, self.total_steps = cfg, seed, device, total_steps
        self.shard = shard
        G, D = self.build_networks()
        if shard is not None:
            G, D = distributed.convert(G, shard), D and distributed.convert(D, shard)
        self.G = G.to(device).train()
        self.D = D.to(device).train() if D is not None else None
        self.fast = None
        options = fast_options or step_options(cfg, device, distributed=shard is not None)
        if options is not None:
            self.fast = fast.FastStep(self, options)
        factor = lr_factor(cfg.train.lr_policy, total_steps)
        self.opt_G = self.adam(self.G)
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, factor)
        self.opt_D = self.sched_D = None
        if self.D is not None:
            self.opt_D = self.adam(self.D)
            self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, factor)
        self.step = 0

    def build_networks(self) -> tuple[torch.nn.Module, torch.nn.Module | None]:
        torch.manual_seed(self.seed)  # weight init and dropout draw from the global generator
        return models.build(self.cfg)

    def adam(self, net: torch.nn.Module) -> torch.optim.Adam:
        t = self.cfg.train
        if self.fast is not None:
            return fast.adam(net.parameters(), t, self.fast.options)
        # on CUDA the capturable form (step counts on the device), as the captured
        # faithful step needs it: eager and graph faithful then share the arithmetic
        return torch.optim.Adam(net.parameters(), lr=t.lr, betas=(t.beta1, t.beta2),
                                capturable=self.device.type == "cuda")

    def networks(self) -> list[torch.nn.Module]:
        return [net for net in (self.G, self.D) if net is not None]

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [opt for opt in (self.opt_G, self.opt_D) if opt is not None]

    def autocast(self):
        return self.fast.autocast() if self.fast is not None else contextlib.nullcontext()

    def discriminate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.D(x, y) if self.D.conditional else self.D(y)

    def update(self, optimizer: torch.optim.Optimizer, net: torch.nn.Module,
               loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        scale = 1.0 if self.shard is None else self.shard.loss_scale
        (loss if scale == 1.0 else loss * scale).backward()
        if self.shard is not None:
            distributed.average_gradients(net, self.shard.world)
        optimizer.step()

    def d_step(self, x, y, fake) -> dict[str, torch.Tensor]:
        # Lua code order: real pair first, then the fake pair (G's output detached)
        with self.autocast():
            real_logits = self.discriminate(x, y)
            fake_logits = self.discriminate(x, fake.detach())
            loss = discriminator_loss(real_logits, fake_logits, scale=self.cfg.loss.d_loss_scale)
        self.update(self.opt_D, self.D, loss)
        # bf16 logits (fast mode) averaged in fp32; a no-op in fp32
        return {"loss_D": loss.detach(),
                "D_real": torch.sigmoid(distributed.at_least_fp32(real_logits)).mean().detach(),
                "D_fake": torch.sigmoid(distributed.at_least_fp32(fake_logits)).mean().detach()}

    def g_step(self, x, y, fake) -> dict[str, torch.Tensor]:
        fake_logits = None
        with self.autocast():
            if self.D is not None:
                self.D.requires_grad_(False)  # G's step needs no D gradients
                fake_logits = self.discriminate(x, fake)
            losses = generator_loss(fake_logits, fake, y, l1_weight=self.cfg.loss.l1_weight)
        self.update(self.opt_G, self.G, losses["total"])
        if self.D is None:  # the L1 objective has no GAN term: no GAN curve is logged
            return {"loss_G_l1": losses["l1"].detach()}
        self.D.requires_grad_(True)
        return {"loss_G_gan": losses["gan"].detach(), "loss_G_l1": losses["l1"].detach()}

    def compute(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D step then one G step on a batch (docs/method.md), both updates included."""
        with self.autocast():
            fake = self.G(x)
        out = self.d_step(x, y, fake) if self.D is not None else {}
        out.update(self.g_step(x, y, fake))
        return out

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        # faithful: true fp32 (the Lua code ran fp32; cuDNN would use TF32), eager or graph
        exact = fast.fp32_exact() if self.cfg.train.mode == "faithful" \
            else contextlib.nullcontext()
        with distributed.active(self.shard), exact:
            losses = self.fast(x, y) if self.fast is not None else self.compute(x, y)
        self.sched_G.step()
        if self.sched_D is not None:
            self.sched_D.step()
        self.step += 1
        return losses

    # --- exact resume ---------------------------------------------------------------
    def state_dict(self, meter: dict) -> dict:
        cuda = self.device.type == "cuda"
        states = {name: fast.float_lrs(obj.state_dict()) if obj is not None else None
                  for name, obj in (("opt_G", self.opt_G), ("sched_G", self.sched_G),
                                    ("opt_D", self.opt_D), ("sched_D", self.sched_D))}
        return {
            "format": checkpoints.STATE_FORMAT, "config": self.cfg.to_dict(),
            "seed": self.seed, "step": self.step, "total_steps": self.total_steps,
            "G": self.G.state_dict(), "opt_G": states["opt_G"], "sched_G": states["sched_G"],
            "D": self.D.state_dict() if self.D is not None else None,
            "opt_D": states["opt_D"], "sched_D": states["sched_D"],
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if cuda else None},
            "meter": meter, "fingerprint": fingerprint(self.cfg),
        }

    def load_state_dict(self, state: dict, path: Path) -> dict:
        try:  # a hand-edited or foreign file fails here: one line, not a traceback
            self._load_tensors(state, path)
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as err:
            detail = " ".join(str(err).split())[:160]
            raise CheckpointError(f"{path}: training state does not fit this run "
                                  f"({type(err).__name__}: {detail}); delete it and "
                                  "retrain") from None
        self.step = state["step"]
        return state["meter"]

    def _load_tensors(self, state: dict, path: Path) -> None:
        checkpoints.load_weights(self.G, state["G"], path, "generator")
        checkpoints.load_optimizer(self.opt_G, state["opt_G"])
        self.sched_G.load_state_dict(state["sched_G"])
        if self.D is not None:
            checkpoints.load_weights(self.D, state["D"], path, "discriminator")
            checkpoints.load_optimizer(self.opt_D, state["opt_D"])
            self.sched_D.load_state_dict(state["sched_D"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)


def step_options(cfg: ExperimentConfig, device: torch.device,
                 distributed: bool) -> fast.FastOptions | None:
    """How the step runs: None = eager (faithful); else fast.FastStep's options."""
    if cfg.train.mode == "fast":
        return fast.options_for(device, cfg.train.fast_precision, distributed=distributed)
    if cfg.train.faithful_cuda_graph and device.type == "cuda" and not distributed:
        return fast.FAITHFUL_GRAPH
    return None


def fingerprint(cfg: ExperimentConfig) -> str:
    """Hash of the training code and the dataset's install record: what else decides
    the weights besides the config. The pipeline restarts a run whose fingerprint changed."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for entry in layout.TRAIN_CODE:
        for path in sorted((package / entry).rglob("*.py")) if (package / entry).is_dir() \
                else [package / entry]:
            digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
    marker = Path(cfg.data.root) / cfg.data.dataset / VERIFIED_MARKER
    digest.update(marker.read_bytes() if marker.is_file() else b"no install record")
    return digest.hexdigest()[:16]


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


# --- command line -------------------------------------------------------------------

def add_arguments(parser) -> None:
    from replication.params import add_experiment_arguments, count_option, seed_option
    add_experiment_arguments(parser)
    parser.add_argument("--seed", type=seed_option, action="append",
                        help="train only this seed (repeatable); default: every seed the "
                             "experiment lists (`seeds`, 0 for --data)")
    parser.add_argument("--out", metavar="DIR",
                        help="run folder for a single seed (default runs/<experiment>/seed-<k>)")
    parser.add_argument("--restart", action="store_true",
                        help="ignore and delete an existing checkpoint; start from step 0")
    parser.add_argument("--on-config-change", choices=("error", "restart"), default="error",
                        help="when the checkpoint was made with other settings: stop with an "
                             "error (default) or start over (what the DVC stages use)")
    parser.add_argument("--stop-after", type=count_option("--stop-after"), metavar="STEPS",
                        help="checkpoint and stop after this many steps (>= 1) in this call; "
                             "the next call resumes exactly (for time-limited cluster jobs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(seed_processes.CHILD_FLAG, action="store_true",
                        help=argparse.SUPPRESS)  # a child of train.seed_processes
    parser.add_argument("--fuse-with", action="append", default=[], metavar="EXPERIMENT",
                        help="with train.fuse: also train this experiment's seeds in the same "
                             "fused step (same networks, dataset and schedule; repeatable)")


def run(args) -> int:
    from replication.params import config_from_args
    cfg = config_from_args(args)
    seeds = args.seed or list(cfg.seeds)
    if args.out and len(seeds) > 1:
        raise ConfigError("--out names one run folder; pass a single --seed with it")
    if not args.out:  # runs/<name>/: a --data folder's name must be a safe one too
        layout.check_experiment_name(cfg.name, "--data folder (or give --out DIR)"
                                     if args.data else "experiment")
    if cfg.released:
        return released.install_stage(cfg, Path(args.out) if args.out else None,
                                      progress=not args.no_progress)
    if cfg.train.fuse or args.fuse_with:  # several runs as one fused step (fusion.py)
        from replication import fused_runs  # it builds on this module's loop pieces
        return fused_runs.run(args, cfg, args.seed)
    if cfg.train.seed_processes > 1 and len(seeds) > 1 and not args.out:
        summaries, code = seed_processes.train_side_by_side(args, cfg.name, seeds,
                                                            cfg.train.seed_processes)
        if not code:
            write_train_metrics(cfg.name, summaries)
        return code
    summaries, main, k = {}, distributed.is_main_process(), cfg.train.seeds_per_process
    for group in [seeds[i:i + k] for i in range(0, len(seeds), k)]:
        runs = [RunFolders(seed, Path(args.out), Path(args.out) / "dvclive") if args.out
                else RunFolders(seed, layout.run_dir(cfg.name, seed), layout.log_dir(cfg.name, seed))
                for seed in group]
        results = train_runs(cfg, runs, restart=args.restart, on_mismatch=args.on_config_change,
                             stop_after=args.stop_after, progress=not args.no_progress)
        for run, summary in zip(runs, results):
            summaries[f"seed-{run.seed}"] = summary
            state = "finished" if summary["finished"] else "stopped (run again to resume)"
            if main:
                print(f"{cfg.name} seed {run.seed}: {state} at step {summary['step']}/"
                      f"{summary['total_steps']} -> {run.out}")
        if any(summary.get("stopped_by_signal") for summary in results):
            return 130
    if main and not args.out and not getattr(args, "one_of_seed_processes", False):
        write_train_metrics(cfg.name, summaries)
    return 0


def write_train_metrics(name: str, summaries: dict[str, dict]) -> None:
    write_json(layout.train_metrics(name), summaries)

