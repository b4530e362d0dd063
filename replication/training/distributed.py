"""Data-parallel training under torchrun: one process per device, one global batch per step.

`torchrun --nproc_per_node=K -m replication train ...` (params.yaml `launcher.train`)
starts K copies, each told RANK / WORLD_SIZE / LOCAL_RANK. A K-process step computes what
one process computes on the whole batch (docs/pitfalls.md: per-rank BatchNorm statistics would
silently change the method):
  - every rank computes the same global batch indices and jitter from the counter-based
    Schedule (data/paired.py) and keeps its slice of rows (`Shard.take`);
  - BatchNorm normalises with the statistics of the whole global batch (SyncBatchNorm2d;
    torch.nn.SyncBatchNorm refuses CPU tensors, and one implementation everywhere is the
    one the CPU tests check);
  - dropout draws the whole batch's mask on every rank and keeps its rows (ShardedDropout):
    the masks of a single process, and every rank's RNG stays in step, so rank 0's
    checkpoint (only rank 0 writes) resumes every rank exactly;
  - gradients are averaged after each backward; with uneven slices (the short last batch
    of an epoch) each rank's loss is scaled so the average is the global-batch mean.
Schedules count optimizer steps of the global batch, as with one process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from replication.core.errors import ConfigError


@dataclass
class Shard:
    """This process's rows of each global batch; the converted modules read it."""

    rank: int
    world: int
    total: int = 0  # rows in this step's global batch
    start: int = 0
    stop: int = 0
    active: bool = False  # off: converted modules act like plain ones (rank 0's samples)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, total: int) -> slice:
        self.total = total
        self.start, self.stop = bounds(total, self.rank, self.world)
        return slice(self.start, self.stop)

    @property
    def weight(self) -> float:
        """This rank's share of the global batch."""
        return (self.stop - self.start) / self.total

    @property
    def loss_scale(self) -> float:
        # gradients are averaged over ranks: scaling by share * world makes the average
        # the gradient of the global-batch mean (1.0 when the slices are even)
        return self.weight * self.world


def bounds(total: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous rows of `total` for `rank`; sizes differ by at most one, larger first."""
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


@contextlib.contextmanager
def active(shard: Shard | None):
    """Within: the converted modules work on the global batch (no-op without a shard)."""
    if shard is None:
        yield
        return
    shard.active = True
    try:
        yield
    finally:
        shard.active = False


def shard_from_environment() -> Shard | None:
    """The Shard torchrun describes (RANK, WORLD_SIZE), or None for a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return None
    try:
        return Shard(rank=int(os.environ["RANK"]), world=world)
    except (KeyError, ValueError):
        raise ConfigError(f"WORLD_SIZE={world} but RANK is not set; start data-parallel "
                          "training with torchrun") from None


def is_main_process() -> bool:
    """Rank 0, or a single process: the one that prints and writes."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(shard: Shard, device: torch.device) -> torch.device:
    """Join the process group (once per process); returns this rank's device."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(dist.destroy_process_group)
    return device


def check_slices(shard: Shard, batch_size: int, num_pairs: int) -> None:
    last = num_pairs % batch_size or batch_size  # the epoch's last batch
    smallest = min(batch_size, last, num_pairs)
    if smallest < shard.world:
        raise ConfigError(f"a batch of {smallest} pairs cannot be split over {shard.world} "
                          f"processes (train.batch_size={batch_size}, {num_pairs} training "
                          "pairs); use fewer processes or a batch size that leaves every "
                          "process at least one pair")


class _SumOverRanks(torch.autograd.Function):
    # d(sum over ranks)/d(this rank's input) = the sum of every rank's output gradient
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def summed_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over all ranks, differentiable (every rank must call it)."""
    return _SumOverRanks.apply(tensor)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d with the statistics of the global batch while `shard.active`."""

    def __init__(self, bn: nn.BatchNorm2d, shard: Shard):
        super().__init__(bn.num_features, bn.eps, bn.momentum, bn.affine,
                         bn.track_running_stats)
        self.load_state_dict(bn.state_dict())
        self.shard = shard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.shard.active):
            return super().forward(x)
        count = self.shard.total * x.shape[2] * x.shape[3]  # values per channel, all ranks
        xf = at_least_fp32(x)  # statistics in fp32 also under bf16 autocast, as cuDNN's
        mean = summed_over_ranks(xf.sum((0, 2, 3))) / count
        centred = xf - mean[:, None, None]
        var = summed_over_ranks(centred.square().sum((0, 2, 3))) / count  # two passes: stable
        if self.track_running_stats:
            self.update_running_stats(mean.detach(), var.detach(), count)
        y = centred * torch.rsqrt(var + self.eps)[:, None, None]
        if self.affine:
            y = y * self.weight[:, None, None] + self.bias[:, None, None]
        return y.to(x.dtype)

    @torch.no_grad()
    def update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        self.num_batches_tracked += 1
        factor = self.momentum if self.momentum is not None \
            else 1.0 / float(self.num_batches_tracked)
        unbiased = var * count / max(count - 1, 1)  # like BatchNorm2d: unbiased running var
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased, factor)


class ShardedDropout(nn.Dropout):
    """Dropout drawing the global batch's mask on every rank and keeping this rank's rows."""

    def __init__(self, p: float, shard: Shard):
        super().__init__(p)
        self.shard = shard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.shard.active and self.p > 0):
            return super().forward(x)
        noise = dropout_noise((self.shard.total, *x.shape[1:]), self.p, x)
        return x * noise[self.shard.start:self.shard.stop]


def dropout_noise(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """The scaled keep-mask single-process dropout would draw for a tensor of `shape`."""
    if like.device.type == "cpu":
        # ATen's CPU dropout: Bernoulli(1 - p) noise of the input's shape, divided by 1 - p
        return torch.empty(shape, dtype=like.dtype).bernoulli_(1 - p).div_(1 - p)
    # on accelerators dropout is the fused native_dropout kernel: same draws, same offsets
    _, keep = torch.native_dropout(torch.ones(shape, dtype=like.dtype, device=like.device),
                                   p, True)
    return keep.to(like.dtype).div_(1 - p)


def convert(net: nn.Module, shard: Shard) -> nn.Module:
    """Swap every BatchNorm2d and Dropout for its global-batch version (same state_dict)."""
    for name, child in net.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(net, name, SyncBatchNorm2d(child, shard))
        elif isinstance(child, nn.Dropout):
            setattr(net, name, ShardedDropout(child.p, shard))
        else:
            convert(child, shard)
    return net


def average_gradients(net: nn.Module, world: int) -> None:
    """One all-reduce of all of `net`'s gradients, divided by the number of ranks."""
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    for grad, part in zip(grads, flat.split([g.numel() for g in grads])):
        grad.copy_(part.view_as(grad))


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """bf16 / fp16 -> fp32; fp32 and fp64 (the tests' reference runs) stay as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def sum_over_ranks(values: list[torch.Tensor]) -> list[torch.Tensor]:
    if not values:
        return []
    total = torch.stack([at_least_fp32(v) for v in values])
    dist.all_reduce(total)
    return list(total.unbind())


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if `flag` is true on any (all ranks must call it together)."""
    value = torch.tensor(float(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()
