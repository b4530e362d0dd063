"""The training step and its state: G, D, their losses, optimisers and schedules.

`Trainer` holds everything that decides a run's weights besides the data (docs/method.md:
one D step then one G step per batch); `loop.py` drives it, checkpoints and logs it.
`fingerprint` hashes this code's closure (core/codehash.py: WEIGHT_MODULES) and the
dataset's install record: a persisted run is resumed only by the code that made it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from pathlib import Path

import torch

from replication import models
from replication.config.datasets import VERIFIED_MARKER
from replication.config.schema import ExperimentConfig
from replication.core import codehash
from replication.core.errors import CheckpointError
from replication.core.numerics import fp32_exact
from replication.models.losses import discriminator_loss, generator_loss
from replication.training import checkpoints, distributed, fast


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
        exact = fp32_exact() if self.cfg.train.mode == "faithful" \
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
    """What decides the weights besides the config: the code (codehash.weights_digest) and
    the dataset's install record. The pipeline restarts a run whose fingerprint changed."""
    digest = hashlib.sha256(_code_digest().encode())
    marker = Path(cfg.data.root) / cfg.data.dataset / VERIFIED_MARKER
    digest.update(marker.read_bytes() if marker.is_file() else b"no install record")
    return digest.hexdigest()[:16]


@functools.cache
def _code_digest() -> str:  # the code does not change while a process runs
    return codehash.weights_digest()
