"""What a training run reports while it runs, and the checks behind it.

Losses are summed on the device between log steps (LossMeter: no host sync inside a
step) and checked for NaN/Inf when read (check_finite). DVCLive writes their step series
(and loss_log.txt the same as plain lines) and sample grids (input | output | target:
the latest, and every train.keep_samples_every steps one kept); sampling never changes
the training trajectory. Without a terminal, progress comes as plain lines; SIGINT and
SIGTERM ask the loop to checkpoint and stop at the next step boundary.
"""

from __future__ import annotations

import contextlib
import math
import signal
from pathlib import Path

import numpy as np
import torch

from replication.config.schema import TrainConfig
from replication.core.errors import TrainingDiverged
from replication.core.fileio import write_text
from replication.data.paired import (
    TrainingPairs,
    split_direction,
    to_uint8,
    to_unit_range,
)
from replication.training import distributed


class LossMeter:
    """Sums losses on the device between log steps: no host sync inside the step."""

    def __init__(self, state: dict | None = None):
        self.sums, self.count = {}, 0
        if state:
            self.sums = {k: torch.tensor(v) for k, v in state["sums"].items()}
            self.count = state["count"]

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def collect(self, shard: distributed.Shard | None) -> dict[str, torch.Tensor]:
        """The sums over every rank (data-parallel: each rank adds its share of each batch).
        Afterwards only rank 0 keeps them, so a checkpoint or the next collect counts
        each step once."""
        if shard is None:
            return dict(self.sums)
        totals = dict(zip(self.sums, distributed.sum_over_ranks(list(self.sums.values()))))
        self.sums = totals if shard.is_main else {k: torch.zeros_like(v) for k, v in totals.items()}
        return totals

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def state(self) -> dict:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count}


def check_finite(losses: dict[str, torch.Tensor], step: int, state_path: Path,
                 steps: int = 1) -> dict[str, float]:
    """`losses` of step `step`, or their sums over the `steps` steps ending there (a NaN/Inf
    in any of them shows in the sum); returns them as floats (one host sync)."""
    values = dict(zip(losses, torch.stack(list(losses.values())).tolist())) if losses else {}
    for name, value in values.items():
        if not math.isfinite(value):
            where = f"step {step}" if steps == 1 else f"steps {step - steps + 1}-{step}"
            kept = f"last good checkpoint {state_path} kept" if state_path.exists() \
                else "no checkpoint was written yet"
            raise TrainingDiverged(f"{where}: {name} is {value}; training stopped, "
                                   f"{kept} — lower train.lr or check the data")
    return values


@contextlib.contextmanager
def stop_requests():
    """SIGINT/SIGTERM set a flag; the loop then checkpoints at the step boundary and exits."""
    requested = {"signal": None}

    def handler(signum, _frame):
        requested["signal"] = signum

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: no signal handling
        old = {}
    try:
        yield requested
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def open_live(log_dir: Path, step: int):
    """DVCLive as the step-series logger. Its summary file (metrics.json) is never written:
    train.json is the run's metrics file, and a lone JSON dict inside the plots folder
    would break `dvc plots show` on the whole folder."""
    try:
        from dvclive import Live  # imported here: plain inference needs no DVCLive
    except ImportError:  # e.g. a bare GPU node running scripts/gpu_check.sh
        print("warning: dvclive is not installed; training runs without loss curves or samples")
        return None
    if step > 0:
        truncate_live(log_dir, step)
    return Live(dir=str(log_dir), resume=step > 0, save_dvc_exp=False, dvcyaml=None)


def truncate_live(live_dir: Path, step: int) -> None:
    """Drop logged rows after the checkpoint we resume from (they will be logged again)."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        lines = tsv.read_text().splitlines()
        header, rows = lines[:1], lines[1:]
        col = header[0].split("\t").index("step") if header else 0
        kept = [r for r in rows if int(r.split("\t")[col]) <= step]
        write_text(tsv, "\n".join(header + kept) + "\n")
    text_log = live_dir / LOSS_LOG
    if text_log.is_file():
        kept = [line for line in text_log.read_text().splitlines()
                if (_line_step(line) or step + 1) <= step]
        write_text(text_log, "".join(f"{line}\n" for line in kept))


def _line_step(line: str) -> int | None:
    """The step of a loss_log.txt line; None for one a kill cut short (name without value)."""
    words = line.split()
    if len(words) < 4 or len(words) % 2 or words[0] != "step" or not words[1].isdigit():
        return None
    return int(words[1])


def log(live, bar, trainer, meter: LossMeter, step: int,
        state_path: Path) -> dict[str, float]:
    """Mean losses since the last log (all ranks take part; rank 0 writes them)."""
    sums = check_finite(meter.collect(trainer.shard), step, state_path, steps=meter.count)
    means = {name: value / meter.count for name, value in sums.items()}
    meter.reset()
    if live is not None:
        live.step = step
        lr = float(trainer.sched_G.get_last_lr()[0])
        for name, value in means.items():
            live.log_metric(f"train/{name}", value)
        live.log_metric("train/lr", lr)
        append_loss_line(Path(live.dir), step, lr, means)
        bar.set_postfix({k.replace("loss_", ""): f"{v:.3f}" for k, v in means.items()})
    return means


LOSS_LOG = "loss_log.txt"  # beside DVCLive's files, as the reference's checkpoints/<name>/


def append_loss_line(log_dir: Path, step: int, lr: float, means: dict[str, float]) -> None:
    """One plain-text line per log step: "step 100 lr 0.0002 loss_D 0.3429 ..." (the mean
    of each loss since the previous line), for reading a run without DVC or pandas."""
    values = " ".join(f"{name} {value:.6g}" for name, value in means.items())
    with open(log_dir / LOSS_LOG, "a") as f:
        f.write(f"step {step} lr {lr:.6g} {values}\n")


def samples_due(cfg: TrainConfig, step: int, total: int) -> tuple[bool, bool]:
    """(draw a sample grid now, keep it as samples/step-<N>.png) at `step`."""
    keep = cfg.keep_samples_every is not None and (step % cfg.keep_samples_every == 0
                                                   or step == total)
    return keep or step % cfg.sample_every == 0 or step == total, keep


def log_samples(live, grid: np.ndarray, step: int, keep: bool) -> None:
    """The latest grid as plots/images/samples.png and, when kept, samples/step-<N>.png."""
    if live is None:
        return
    live.log_image("samples.png", grid)
    if keep:
        live.log_image(f"samples/step-{step:07d}.png", grid)


@torch.no_grad()
def sample_grid(trainer, data: TrainingPairs, count: int = 4) -> np.ndarray:
    """Rows of input | output | target on the first training pairs (center crop, no flip).

    G runs as at test time (train mode, docs/method.md) without side effects: the global RNG is
    forked and BatchNorm running statistics are restored, so sampling never changes the
    training trajectory.
    """
    cfg = trainer.cfg.data
    indices = torch.arange(min(count, len(data)))
    pairs = data.folder.batch(indices.to(data._index_device()))
    border = (data.folder.size - cfg.image_size) // 2
    pairs = pairs[:, :, border:border + cfg.image_size, border:border + cfg.image_size]
    x, y = split_direction(to_unit_range(pairs.to(trainer.device)), cfg.direction)
    saved = {k: v.clone() for k, v in trainer.G.named_buffers()}
    devices = [trainer.device] if trainer.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        fake = trainer.G(x)
    for name, buf in trainer.G.named_buffers():
        buf.copy_(saved[name])
    rows = torch.cat([x, fake, y], dim=3)  # side by side
    grid = to_uint8(torch.cat(list(rows), dim=1))  # stacked vertically
    return grid.permute(1, 2, 0).cpu().numpy()

