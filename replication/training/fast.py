"""The fast training step (train.mode = "fast"): the faithful step's arithmetic, less overhead.

A batch-1 pix2pix step is ~94 GFLOP in ~700 small kernels: on a GPU it is bound by
launch and Python overhead, not arithmetic. The fast step runs the same computation as
`Trainer.compute` (one D step then one G step, docs/method.md) and changes only how it runs:

  everywhere  fused Adam (one pass over all parameters instead of ~10; CPU, 54M
              parameters: 0.33 s -> 0.035 s); bf16 autocast of the forwards where the
              device has native bf16 (train.fast_precision); no host synchronisation in
              the step: the loop reads the summed losses every log_every steps and before
              each checkpoint (train.py)
  CUDA        channels_last (cuDNN's tensor-core layout), cudnn.benchmark, and the whole
              step - G forward, D step, G step, both Adam updates - captured once as a
              CUDA graph and replayed: one launch instead of hundreds
  CPU         channels_last and torch.compile were measured slower (benchmarks/README.md)

Dropout draws: the fp32 CPU fast step calls the same dropout kernels in the same order as
the faithful step, so it draws the same masks (tests/training/test_fast.py). A replayed CUDA graph
advances the Philox offset exactly as the eager step does (PyTorch's graph-safe RNG), so
saved RNG states stay valid and resume is exact; channels_last changes which element gets
which draw, so CUDA fast masks differ from faithful ones (same distribution).
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from dataclasses import dataclass

import torch

from replication.core.errors import ConfigError
from replication.core.numerics import backend_flags

WARMUP_STEPS = 3  # eager steps before capture (PyTorch's CUDA-graph recipe); rewound after


@dataclass(frozen=True)
class FastOptions:
    bf16: bool  # autocast the forwards to bfloat16 (backwards follow the forward's dtypes)
    channels_last: bool  # NHWC weights and activations
    cuda_graph: bool  # capture the whole step once, then replay it
    fused_adam: bool = True  # one fused Adam kernel (faithful: the reference foreach Adam)
    cudnn_benchmark: bool = True  # autotuned convolutions (faithful: cuDNN's defaults)


# The faithful step captured as a CUDA graph (train.faithful_cuda_graph): nothing changes
# but how it is launched: fp32 (under fp32_exact: no TF32), NCHW, cuDNN's default
# algorithms, the foreach Adam of the eager faithful step (capturable on CUDA in both).
FAITHFUL_GRAPH = FastOptions(bf16=False, channels_last=False, cuda_graph=True,
                             fused_adam=False, cudnn_benchmark=False)


def has_native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8  # Ampere and later
    # oneDNN runs bf16 convolutions natively on AVX512-BF16 / AMX (this Zen 4: 1.45x
    # faster than fp32 for U-Net forward + backward; benchmarks/README.md)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def options_for(device: torch.device, precision: str = "auto",
                distributed: bool = False) -> FastOptions:
    """What the fast step does on `device` (precision = train.fast_precision)."""
    if precision == "bf16" and device.type == "cuda" and not has_native_bf16(device):
        raise ConfigError(f"train.fast_precision='bf16' but {torch.cuda.get_device_name(device)} "
                          "has no native bf16 (needs compute capability >= 8); use 'auto'")
    bf16 = precision == "bf16" or (precision == "auto" and has_native_bf16(device))
    cuda = device.type == "cuda"
    # data-parallel steps split a different batch size per step and all-reduce between
    # backward and update: they run eagerly
    return FastOptions(bf16=bf16, channels_last=cuda, cuda_graph=cuda and not distributed)


def adam(params, train_cfg, options: FastOptions) -> torch.optim.Adam:
    """Adam with the paper's settings, fused into one kernel in fast mode; a captured step
    needs its step counter on the device (capturable)."""
    t = train_cfg
    return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2),
                            fused=options.fused_adam or None, capturable=options.cuda_graph)


def cudnn_benchmark():
    # autotune convolutions for the fast step only; the faithful step keeps the defaults
    return backend_flags({"cudnn.benchmark": True})


class FastStep:
    """`trainer.compute(x, y)`, run the fast way; Trainer.train_step calls it."""

    def __init__(self, trainer, options: FastOptions):
        # the Trainer owns this step; a weak reference back avoids a cycle that would keep
        # a captured graph's memory until the next garbage collection
        self.trainer, self.options = weakref.proxy(trainer), options
        self.memory_format = torch.channels_last if options.channels_last \
            else torch.contiguous_format
        for net in trainer.networks():
            net.to(memory_format=self.memory_format)
        self.graph = None
        self.stale_grads = False

    def autocast(self):
        # cache off: D's weights change between its uses within one step, and graph
        # capture needs it off (PyTorch CUDA-graph notes)
        return torch.autocast(self.trainer.device.type, dtype=torch.bfloat16,
                              enabled=self.options.bf16, cache_enabled=False)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        with cudnn_benchmark() if self.options.cudnn_benchmark else contextlib.nullcontext():
            # the last, shorter batch of an epoch does not fit the captured shapes
            if not self.options.cuda_graph or x.shape[0] != self.trainer.cfg.train.batch_size:
                self.stale_grads = self.graph is not None
                return self.trainer.compute(self.layout(x), self.layout(y))
            if self.graph is None:
                self.capture(x, y)
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
        if self.stale_grads:  # an eager step re-bound .grad; show the graph's grads again
            for p, grad in self.graph_grads:
                p.grad = grad
            self.stale_grads = False
        return dict(zip(self.loss_names, self.static_losses.clone().unbind()))

    def layout(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=self.memory_format)

    def capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        trainer, device = self.trainer, self.trainer.device
        self.static_x, self.static_y = self.layout(x).clone(), self.layout(y).clone()
        for optimizer in trainer.optimizers():
            tensor_lr(optimizer, device)
        # warm-up on a side stream (lazy initialisation must not happen during capture),
        # then put every tensor it changed back: the first replay is the real step
        snapshot = Snapshot(trainer)
        side, main = torch.cuda.Stream(device), torch.cuda.current_stream(device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                trainer.compute(self.static_x, self.static_y)
        main.wait_stream(side)
        snapshot.restore()
        self.graph = torch.cuda.CUDAGraph()
        # generators of their own (fused runs' dropout, fusion.py) must be registered, or
        # the replay would not advance them; the default generator always is (its current
        # state: a run's own when concurrent.py has swapped it in)
        for generator in getattr(trainer, "generators", ()):
            self.graph.register_generator_state(generator)
        with torch.cuda.graph(self.graph):
            losses = trainer.compute(self.static_x, self.static_y)
            self.loss_names = list(losses)
            self.static_losses = torch.stack(list(losses.values()))
        self.graph_grads = [(p, p.grad) for net in trainer.networks() for p in net.parameters()]


def tensor_lr(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """A captured Adam reads lr from device memory; LambdaLR then fill_s it each step."""
    for group in optimizer.param_groups:
        group["lr"] = torch.tensor(float(group["lr"]), device=device)


class Snapshot:
    """Every tensor of the training state, to put back after the capture's warm-up steps."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.tensors = [(t, t.detach().clone()) for net in trainer.networks()
                        for t in itertools.chain(net.parameters(), net.buffers())]
        self.optimizer_state = {p: {k: v.clone() for k, v in state.items()}
                                for opt in trainer.optimizers() for p, state in opt.state.items()}
        cuda = trainer.device.type == "cuda"
        self.rng = torch.get_rng_state(), torch.cuda.get_rng_state(trainer.device) if cuda else None
        self.generators = [(g, g.get_state()) for g in getattr(trainer, "generators", ())]

    @torch.no_grad()
    def restore(self) -> None:
        for tensor, saved in self.tensors:
            tensor.copy_(saved)  # in place: the graph records these addresses
        for opt in self.trainer.optimizers():
            for p, state in opt.state.items():
                saved = self.optimizer_state.get(p)
                for key, value in state.items():
                    # no state before the warm-up: Adam's fresh state is all zeros (step 0)
                    value.copy_(saved[key]) if saved is not None else value.zero_()
        torch.set_rng_state(self.rng[0])
        if self.rng[1] is not None:
            torch.cuda.set_rng_state(self.rng[1], self.trainer.device)
        for generator, state in self.generators:
            generator.set_state(state)


def float_lrs(state: dict) -> dict:
    """An Adam or LambdaLR state_dict with its learning rates as floats - the checkpoint
    format - also when a captured step keeps them as device tensors (tensor_lr)."""
    for group in state.get("param_groups", []):
        group["lr"] = float(group["lr"])
    if "_last_lr" in state:
        state["_last_lr"] = [float(lr) for lr in state["_last_lr"]]
    return state


def match_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give loaded Adam moments their parameter's memory layout: fused Adam walks both in
    memory order and silently mixes elements when the layouts differ."""
    for p, state in optimizer.state.items():
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state and state[key].stride() != p.stride():
                state[key] = torch.empty_like(p).copy_(state[key])
