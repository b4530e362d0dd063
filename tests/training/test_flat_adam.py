"""flat_adam.FlatAdam: torch.optim.Adam's update over flat buffers, bf16 gradients in.

The reference is torch.optim.Adam itself (its capturable single-tensor update, which
FlatAdam transcribes, and the fused Adam today's fast step uses); the model step is
today's fast step (fp32 weights under bf16 autocast) against bf16 working weights.
"""

from __future__ import annotations

import copy
import importlib

import numpy as np
import pytest
import torch
from torch import nn

from replication.training.flat_adam import FlatAdam

LR, BETAS = 2e-4, (0.5, 0.999)  # the paper's Adam


@pytest.fixture(autouse=True)
def capturable_on_the_cpu(monkeypatch):
    # torch.optim.Adam refuses capturable=True on the CPU by a device guard only: the
    # capturable branch's arithmetic is plain tensor operations, which the CPU runs
    adam_module = importlib.import_module("torch.optim.adam")
    supported = adam_module._get_capturable_supported_devices()
    monkeypatch.setattr(adam_module, "_get_capturable_supported_devices",
                        lambda *args, **kwargs: [*supported, "cpu"])


def reference(params):
    return torch.optim.Adam(params, lr=LR, betas=BETAS, capturable=True, foreach=False)


def gradients(shapes, steps: int, seed: int = 0, dtype=None):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen, dtype=dtype) for s in shapes] for _ in range(steps)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flat_adam_is_the_capturable_adam_to_the_bit(dtype):
    # the same element-wise operations in the same order, on flat tensors instead of
    # per-parameter ones: weights and moments must be equal to the bit; parameters of
    # both layouts (a channels_last 4-D weight included) keep their element order
    gen = torch.Generator().manual_seed(1)
    shapes = [(4, 3, 2, 2), (4,), (2, 4, 3, 3)]
    start = [torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    start[2] = start[2].contiguous(memory_format=torch.channels_last)
    runs = []
    for make in (reference, lambda ps: FlatAdam(ps, lr=LR, betas=BETAS)):
        params = [nn.Parameter(t.clone(memory_format=torch.preserve_format)) for t in start]
        opt = make(params)
        for grads in gradients(shapes, 4, dtype=dtype):
            opt.zero_grad()
            for p, g in zip(params, grads):
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
            opt.step()
        runs.append((params, opt.state_dict()))
    (ref, ref_state), (flat, flat_state) = runs
    for p, q in zip(ref, flat):
        assert torch.equal(p, q)
    for i, state in ref_state["state"].items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(state[key], flat_state["state"][i][key]), (i, key)
    assert flat[2].is_contiguous(memory_format=torch.channels_last)


def test_bf16_gradients_train_the_fp32_masters_as_fused_adam_does():
    # today's fast step: fp32 weights, fused Adam fed the fp32 copies of bf16 gradients.
    # FlatAdam keeps the fp32 masters and takes the bf16 gradients themselves. Fused Adam
    # computes the same formula in another order, so the masters differ by its rounding
    # only (tests/training/test_fast.py's bound: per step half an ulp of the weight plus ~10 fp32
    # roundings of the update, |update| <= lr); the working weights are the masters
    # rounded to bf16 (round to nearest even), exactly
    gen = torch.Generator().manual_seed(2)
    start = torch.randn(1000, generator=gen)
    grads = [torch.randn(1000, generator=gen).bfloat16() for _ in range(10)]
    fp32 = nn.Parameter(start.clone())
    fused = torch.optim.Adam([fp32], lr=LR, betas=BETAS, fused=True)
    working = nn.Parameter(start.clone().bfloat16())
    flat = FlatAdam([working], lr=LR, betas=BETAS)
    flat.master.copy_(start)  # the masters start from the fp32 weights, not their bf16 copy
    for g in grads:
        fp32.grad = g.float()
        fused.step()
        flat.zero_grad()
        working.grad.copy_(g)
        flat.step()
    u = torch.finfo(torch.float32).eps / 2
    ulp = float(np.spacing(np.float32(start.abs().max() + 1)))
    bound = len(grads) * (ulp / 2 + 10 * u * LR)
    assert (flat.master - fp32.detach()).abs().max() <= bound
    assert torch.equal(working.detach(), flat.master.bfloat16())
    assert (flat.master - start).abs().mean() > 1e-4  # the updates did happen


def test_a_bf16_working_copy_step_equals_todays_fast_step():
    # a conv net under bf16 autocast: today's fp32 weights are cast to bf16 in every
    # forward, and their gradient is the bf16 weight gradient cast to fp32; bf16 working
    # weights give the convolution the same bf16 operands and the same bf16 gradient. With
    # the capturable Adam on both sides (the update FlatAdam transcribes) the fp32 weights
    # and FlatAdam's masters stay equal to the bit, step after step
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 2, 3))
    x = torch.rand(2, 3, 8, 8)
    today = list(net.parameters())
    working_net = copy.deepcopy(net).bfloat16()
    ref, flat = reference(today), FlatAdam(list(working_net.parameters()), lr=LR, betas=BETAS)
    flat.master.copy_(torch.cat([p.detach().flatten() for p in today]))
    for _ in range(3):
        for model, opt in ((net, ref), (working_net, flat)):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(x).float().square().mean()
            loss.backward()
            opt.step()
    assert torch.equal(flat.master, torch.cat([p.detach().flatten() for p in today]))
    assert torch.equal(flat.weight, flat.master.bfloat16())
