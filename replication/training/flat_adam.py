"""Adam over flat buffers, fed bf16 gradients directly: fewer bytes per step.

At batch 1 a fast step's floor is memory traffic, not arithmetic (issue 22): with fp32
weights under bf16 autocast every step casts each weight to bf16 (read 4 B, write 2 B
per parameter and use), writes a bf16 weight gradient and casts it back into an fp32
.grad (2 + 2 + 4 B), and fused Adam reads weight, gradient and both moments and writes
weight and moments (28 B): ~46 B per G parameter. Here the network holds bf16 working
weights, so autograd writes bf16 gradients, and one update reads the bf16 gradient, the
fp32 master weight and both moments and writes master, moments and the bf16 working
weight: 2 + 12 + 12 + 2 = 28 B, ~34 B per parameter with the forward's read and the
backward's write. The update is torch.optim.Adam's capturable single-tensor update
(torch/optim/adam.py, _single_tensor_adam, capturable branch), the same operations in
the same order on flat tensors, so it equals that Adam to the bit given the same
gradients (tests/training/test_flat_adam.py); under torch.compile (CUDA) the operations become
one kernel, eagerly they are a few passes (correct, not yet fewer bytes).

Every parameter becomes a view into one flat buffer of its dtype (keeping its strides,
e.g. channels_last), and so does its .grad: zero_grad zeroes the flat gradient buffer
and autograd accumulates into the views. One dtype and device per optimizer.

Status: measured by scripts/gpu_check.sh (bytes), not yet used by train.mode=fast: that
needs the master weights in the checkpoint format and a GPU check of bf16 convolution
weights with fp32 BatchNorm parameters.
"""

from __future__ import annotations

import torch


def _scalar_dtype() -> torch.dtype:
    # torch.optim's step counters: float64 when the default dtype is, else float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def adam_update(master: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                grad: torch.Tensor, step: torch.Tensor, lr, beta1: float, beta2: float,
                eps: float, weight: torch.Tensor | None = None) -> None:
    """torch.optim.Adam's capturable single-tensor update, in place, on flat tensors
    (`step` already incremented; `grad` in any float dtype, used in the master's), then
    the working copy `weight` (if any) rounded from the master."""
    grad = grad.to(master.dtype)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size_neg = (lr / bias_correction1).neg()
    bias_correction2_sqrt = bias_correction2.sqrt()
    denom = (exp_avg_sq.sqrt() / (bias_correction2_sqrt * step_size_neg)).add_(eps / step_size_neg)
    master.addcdiv_(exp_avg, denom)
    if weight is not None:
        weight.copy_(master)


class FlatAdam(torch.optim.Optimizer):
    """Adam (no weight decay, no amsgrad) over flat buffers; bf16 parameters are
    working copies of fp32 master weights kept here. `compiled`: the update as one
    torch.compile'd function (CUDA: one fused kernel)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 compiled: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        params = [p for group in self.param_groups for p in group["params"]]
        if len(self.param_groups) != 1 or len({(p.dtype, p.device) for p in params}) != 1:
            raise ValueError("FlatAdam takes one parameter group of one dtype and device")
        first = params[0]
        total = sum(p.numel() for p in params)
        self.weight = torch.empty(total, dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.weight)
        offset = 0
        for p in params:  # every parameter and gradient a view of the flat buffers
            if not (p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)):
                raise ValueError("FlatAdam needs dense parameters (contiguous or channels_last)")
            view = self.weight.as_strided(p.shape, p.stride(), offset)
            view.copy_(p.detach())
            p.data = view
            p.grad = self.grad.as_strided(p.shape, p.stride(), offset)
            offset += p.numel()
        fp32 = first.dtype in (torch.float32, torch.float64)
        self.master = self.weight if fp32 else self.weight.float()
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.master), torch.zeros_like(self.master)
        self.step_count = torch.zeros((), dtype=_scalar_dtype(), device=first.device)
        offset = 0
        for p in params:  # the ordinary Adam state, as views (state_dict reads them)
            self.state[p] = {"step": self.step_count,
                             **{key: flat.as_strided(p.shape, p.stride(), offset)
                                for key, flat in (("exp_avg", self.exp_avg),
                                                  ("exp_avg_sq", self.exp_avg_sq))}}
            offset += p.numel()
        self.update = torch.compile(adam_update, fullgraph=True) if compiled else adam_update

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.grad.zero_()  # the .grad views must stay: zeroed, never set to None

    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        self.step_count += 1
        working = None if self.master is self.weight else self.weight  # bf16: rounded
        self.update(self.master, self.exp_avg, self.exp_avg_sq, self.grad, self.step_count,
                    group["lr"], beta1, beta2, group["eps"], working)
