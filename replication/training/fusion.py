"""N same-architecture pix2pix runs as one model and one step (train.fuse).

One batch-1 run gives every GPU kernel one image's worth of work; a fused step gives each
kernel N runs' worth. This is the horizontal fusion of HFTA (Wang et al., "Horizontally
Fused Training Array", MLSys 2021), applied to pix2pix:

  Conv2d / ConvTranspose2d   one grouped convolution, groups = N, the N weights stacked on
                             dim 0: group i sees only run i's channels
  BatchNorm2d(C)             BatchNorm2d(N*C): statistics are per channel, hence per run,
                             at any batch size (Torch7BatchNorm2d likewise)
  InstanceNorm, ReLU, LeakyReLU, Tanh   per channel or per element: unchanged
  Dropout                    each run's mask drawn from that run's own generator, in the
                             order and shape the run alone draws it (FusedDropout)
  U-Net skips, D's [x, y]    joined run by run, so run i's channels stay one block
  losses                     each run's own mean (its own L1 weight and D loss scale); the
                             step minimises their sum, whose gradient w.r.t. run i's
                             weights is run i's gradient alone
  Adam                       over the stacked tensors: element-wise, so each run's update
                             is the update it gets alone; one scheduler (same lr, schedule)

Activations are (B, N*C, H, W) with run i's channels the i-th block of C, and every
parameter, buffer and Adam moment holds run i's slice as the i-th block of dim 0: that is
how a run is exported to (and imported from) the ordinary checkpoint format, so each run
ends as an ordinary run folder. fusion_groups.py says which runs may be fused.

Exactness: on the CPU the fused step is each run's own arithmetic with other kernels
(grouped instead of plain convolutions: another summation order), so it equals separate
runs to rounding (tests/training/test_fusion.py, float64), with the same dropout masks. On CUDA
the per-run masks come from per-run Philox generators through bernoulli_, not the fused
dropout kernel a run alone uses: same distribution, other draws. The paper's runs are
trained separately (train.fuse: false); fusion is a speed switch.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from replication import models
from replication.config.schema import ExperimentConfig
from replication.core.errors import CheckpointError
from replication.models.discriminators import Discriminator
from replication.models.generators import Generator
from replication.training import checkpoints, distributed
from replication.training.fusion_groups import check_fusable
from replication.training.trainer import Trainer


def blocks(t: torch.Tensor, n: int, dim: int = 0) -> torch.Tensor:
    """Split dim into (n runs, the rest): run i's slice is [..., i, ...] of the result."""
    return t.unflatten(dim, (n, -1))


def join_runs(tensors: list[torch.Tensor] | tuple[torch.Tensor, ...], n: int) -> torch.Tensor:
    """Concatenate on channels run by run: [a_0, b_0, a_1, b_1, ...] for (B, N*C_k, H, W)."""
    return torch.cat([blocks(t, n, 1) for t in tensors], dim=2).flatten(1, 2)


def run_means(t: torch.Tensor, n: int) -> torch.Tensor:
    """(B, N*C, ...) -> (N,): each run's mean over its batch, channels and positions."""
    per_run = blocks(t, n, 1)
    return per_run.mean(dim=[d for d in range(per_run.ndim) if d != 1])


def run_bce(logits: torch.Tensor, label: float, n: int) -> torch.Tensor:
    """models.losses.bce_against, averaged per run: (N,)."""
    loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label),
                                              reduction="none")
    return run_means(loss, n)


# --- the fused networks ---------------------------------------------------------------

class FusedDropout(nn.Module):
    """nn.Dropout of N runs: run i's mask from generators[i], shaped as the run alone
    draws it ((B, C, H, W), contiguous), then scaled as ATen's CPU dropout does
    (mask / (1 - p), input * mask): on the CPU the same draws and the same products."""

    def __init__(self, p: float, generators: list[torch.Generator]):
        super().__init__()
        self.p, self.generators = p, generators  # shared with the trainer, not state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = len(self.generators)
        shape = (x.shape[0], x.shape[1] // n, *x.shape[2:])
        masks = [torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(1 - self.p,
                                                                              generator=g)
                 for g in self.generators]
        return x * torch.cat(masks, dim=1).div_(1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, runs={len(self.generators)}"


def _stacked_tensors(module: nn.Module, copies: list[nn.Module]) -> None:
    """Fill `module`'s parameters and buffers with the copies' stacked on dim 0; 0-d
    tensors (BatchNorm's step counter) must agree and are taken as they are."""
    sources = [dict(c.state_dict()) for c in copies]
    with torch.no_grad():
        for name, target in module.state_dict(keep_vars=True).items():
            parts = [s[name] for s in sources]
            if target.ndim == 0:
                if any(not torch.equal(p, parts[0]) for p in parts):
                    raise ValueError(f"{name} differs between the runs: {parts}")
                target.copy_(parts[0])
            else:
                target.copy_(torch.cat(parts, dim=0))


def fused_layer(copies: list[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    """One leaf module computing N runs' copies of a leaf side by side."""
    first, n = copies[0], len(copies)
    if isinstance(first, nn.Dropout):
        return FusedDropout(first.p, generators)
    if isinstance(first, (nn.Conv2d, nn.ConvTranspose2d)):
        kwargs = dict(stride=first.stride, padding=first.padding, dilation=first.dilation,
                      groups=n * first.groups, bias=first.bias is not None)
        if isinstance(first, nn.ConvTranspose2d):
            kwargs["output_padding"] = first.output_padding
        # skip_init: no random init (it would be overwritten, and draws would be wasted)
        layer = nn.utils.skip_init(type(first), n * first.in_channels, n * first.out_channels,
                                   first.kernel_size, **kwargs)
    elif isinstance(first, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        layer = nn.utils.skip_init(type(first), n * first.num_features, eps=first.eps,
                                   momentum=first.momentum, affine=first.affine,
                                   track_running_stats=first.track_running_stats)
    elif next(iter(first.state_dict()), None) is None and not list(first.children()):
        return copy.deepcopy(first)  # element-wise and stateless: ReLU, LeakyReLU, Tanh, Identity
    else:
        raise TypeError(f"fusion does not know how to fuse a {type(first).__name__}")
    _stacked_tensors(layer, copies)
    return layer


def fused_block(copies: list[nn.Module], generators: list[torch.Generator]) -> nn.Module:
    """A copy of a container (e.g. one U-Net layer's Sequential) whose leaves are fused:
    the same module names, so the state_dict keys are the ordinary network's."""
    fused = copy.deepcopy(copies[0])
    for name, leaf in list(copies[0].named_modules()):
        if list(leaf.children()):
            continue
        new = fused_layer([c.get_submodule(name) for c in copies], generators)
        if name == "":
            return new
        parent, _, attr = name.rpartition(".")
        setattr(fused.get_submodule(parent) if parent else fused, attr, new)
    return fused


class FusedGenerator(Generator):
    """N generators of one architecture as one; input and output (B, N*3, H, W)."""

    def __init__(self, nets: list[Generator], generators: list[torch.Generator]):
        first = nets[0]
        encoder = [fused_block([g.encoder[k] for g in nets], generators)
                   for k in range(len(first.encoder))]
        decoder = [fused_block([g.decoder[k] for g in nets], generators)
                   for k in range(len(first.decoder))]
        super().__init__(encoder, decoder, first.skips, len(nets) * first.in_channels)
        self.runs = len(nets)

    def join(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return join_runs([up, skip], self.runs)


class FusedDiscriminator(Discriminator):
    """N discriminators of one architecture as one: D(X, Y) on (B, N*3, H, W) images,
    logits (B, N, H', W')."""

    def __init__(self, nets: list[Discriminator], generators: list[torch.Generator]):
        first = nets[0]
        layers = list(fused_block([d.model for d in nets], generators))
        super().__init__(layers, first.conditional, len(nets) * first.in_channels)
        self.runs = len(nets)

    def stack(self, images: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return join_runs(images, self.runs)


# --- the fused trainer ----------------------------------------------------------------

class FusedTrainer(Trainer):
    """The Trainer of N runs (configs `cfgs`, seeds `seeds`) fused into one step.

    Built as each run's Trainer would be (seeded, its G and D initialised), then fused.
    Trainer's loop pieces apply as they are (update, train_step, the fast step and its
    CUDA graph); the losses are per run: every value of the step's loss dict is (N,).
    `cfg` is the first run's config (the settings all share, fusion_groups.py).
    """

    def __init__(self, cfgs: list[ExperimentConfig], seeds: list[int], device: torch.device,
                 total_steps: int, *, fast_options=None):
        check_fusable(cfgs)
        self.cfgs, self.seeds, self.runs = list(cfgs), list(seeds), len(cfgs)
        super().__init__(cfgs[0], None, device, total_steps, fast_options=fast_options)
        dtype = torch.get_default_dtype()
        self.l1_weights = torch.tensor([c.loss.l1_weight for c in cfgs], dtype=dtype,
                                       device=device)
        self.d_scales = torch.tensor([c.loss.d_loss_scale for c in cfgs], dtype=dtype,
                                     device=device)

    def build_networks(self):
        nets, self.cpu_generators = [], []
        for cfg, seed in zip(self.cfgs, self.seeds):
            torch.manual_seed(seed)  # as Trainer.build_networks: init, then dropout draws
            nets.append(models.build(cfg))
            gen = torch.Generator()
            gen.set_state(torch.get_rng_state())  # where this run's CPU dropout draws go on
            self.cpu_generators.append(gen)
        # on CUDA a run alone draws its masks from the CUDA generator seeded with its seed
        self.cuda_generators = [torch.Generator(self.device).manual_seed(seed)
                                for seed in self.seeds] if self.device.type == "cuda" else None
        G = FusedGenerator([g for g, _ in nets], self.generators)
        D = FusedDiscriminator([d for _, d in nets], self.generators) \
            if nets[0][1] is not None else None
        return G, D

    @property
    def generators(self) -> list[torch.Generator]:
        """The generators the step's dropout draws from (fast.py snapshots them and
        registers them with a captured graph)."""
        return self.cuda_generators if self.cuda_generators is not None else self.cpu_generators

    def d_step(self, x, y, fake) -> dict[str, torch.Tensor]:
        n = self.runs
        with self.autocast():
            real_logits = self.discriminate(x, y)
            fake_logits = self.discriminate(x, fake.detach())
            loss = self.d_scales * (run_bce(real_logits, 1.0, n) + run_bce(fake_logits, 0.0, n))
        self.update(self.opt_D, self.D, loss.sum())
        # bf16 logits (fast mode) averaged in fp32, as Trainer.d_step
        probability = lambda logits: run_means(  # noqa: E731
            torch.sigmoid(distributed.at_least_fp32(logits)), n).detach()
        return {"loss_D": loss.detach(), "D_real": probability(real_logits),
                "D_fake": probability(fake_logits)}

    def g_step(self, x, y, fake) -> dict[str, torch.Tensor]:
        n = self.runs
        with self.autocast():
            if self.D is not None:
                self.D.requires_grad_(False)  # G's step needs no D gradients
                gan = run_bce(self.discriminate(x, fake), 1.0, n)
            else:
                gan = torch.zeros(n, device=fake.device)
            l1 = run_means((fake - y).abs(), n)
            total = gan + self.l1_weights * l1
        self.update(self.opt_G, self.G, total.sum())
        if self.D is None:  # the L1 objective has no GAN term: no GAN curve (as Trainer)
            return {"loss_G_l1": l1.detach()}
        self.D.requires_grad_(True)
        return {"loss_G_gan": gan.detach(), "loss_G_l1": l1.detach()}

    # --- each run as an ordinary training state -----------------------------------------
    def run_state(self, i: int, meter: dict) -> dict:
        """Run i's training state in the ordinary format (Trainer.state_dict's)."""
        n, cuda = self.runs, self.cuda_generators is not None
        rng_cuda = self.cuda_generators[i].get_state() if cuda else None
        state = {"format": checkpoints.STATE_FORMAT, "config": self.cfgs[i].to_dict(),
                 "seed": self.seeds[i], "step": self.step, "total_steps": self.total_steps,
                 "rng": {"torch": self.cpu_generators[i].get_state(), "cuda": rng_cuda},
                 "meter": meter}
        for name, net, opt, sched in (("G", self.G, self.opt_G, self.sched_G),
                                      ("D", self.D, self.opt_D, self.sched_D)):
            state[name] = run_slice(net.state_dict(), n, i) if net is not None else None
            state[f"opt_{name}"] = run_optimizer_state(opt.state_dict(), n, i) \
                if opt is not None else None
            state[f"sched_{name}"] = sched.state_dict() if sched is not None else None
        return state

    def load_run_states(self, states: list[dict], path) -> None:
        """Resume the group from its runs' ordinary states (one per run, in order, all at
        one step). `path` names the files in errors."""
        try:
            self._load_stacked(states, path)
        except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as err:
            detail = " ".join(str(err).split())[:160]
            raise CheckpointError(f"{path}: the fused runs' training states do not fit this "
                                  f"group ({type(err).__name__}: {detail}); delete them and "
                                  "retrain") from None
        self.step = states[0]["step"]

    def _load_stacked(self, states: list[dict], path) -> None:
        if len(states) != self.runs or len({s["step"] for s in states}) != 1:
            raise ValueError(f"{len(states)} states at steps {[s['step'] for s in states]} "
                             f"for {self.runs} runs")
        for name, net, opt, sched in (("G", self.G, self.opt_G, self.sched_G),
                                      ("D", self.D, self.opt_D, self.sched_D)):
            if net is None:
                continue
            checkpoints.load_weights(net, stack_states([s[name] for s in states]), path,
                                     f"fused {'generator' if name == 'G' else 'discriminator'}")
            checkpoints.load_optimizer(opt, stack_optimizer_states(
                [s[f"opt_{name}"] for s in states]))
            sched.load_state_dict(states[0][f"sched_{name}"])
        for i, state in enumerate(states):
            self.cpu_generators[i].set_state(state["rng"]["torch"])
            if self.cuda_generators is not None and state["rng"]["cuda"] is not None:
                self.cuda_generators[i].set_state(state["rng"]["cuda"])


def run_slice(state_dict: dict, n: int, i: int) -> dict:
    """Run i's tensors of a fused state_dict (0-d tensors are shared: copied)."""
    return {k: (blocks(v, n)[i] if v.ndim else v).clone(memory_format=torch.contiguous_format)
            for k, v in state_dict.items()}


def stack_states(state_dicts: list[dict]) -> dict:
    """The fused state_dict of N runs' ordinary ones (0-d tensors must agree)."""
    out = {}
    for key, first in state_dicts[0].items():
        parts = [sd[key] for sd in state_dicts]
        if first.ndim == 0:
            if any(not torch.equal(p, first) for p in parts):
                raise ValueError(f"{key} differs between the runs")
            out[key] = first.clone()
        else:
            out[key] = torch.cat(parts, dim=0)
    return out


def run_optimizer_state(state: dict, n: int, i: int) -> dict:
    """Run i's Adam state_dict (moments sliced, step counters shared) with float lrs."""
    from replication.training.fast import float_lrs
    return float_lrs({"state": {k: run_slice(v, n, i) for k, v in state["state"].items()},
                      "param_groups": copy.deepcopy(state["param_groups"])})


def stack_optimizer_states(states: list[dict]) -> dict:
    return {"state": {k: stack_states([s["state"][k] for s in states])
                      for k in states[0]["state"]},
            "param_groups": copy.deepcopy(states[0]["param_groups"])}
