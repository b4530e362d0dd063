"""`replication bench --adam`: what one optimizer step over G's parameters costs.

At batch 1 the fast step is bound by memory traffic (issue 22), and Adam is its largest
single item: every step reads and writes every weight and both moments. Timed here,
over the parameters of the benched generator with random gradients:

  fused        torch.optim.Adam(fused=True) on fp32 weights (today's fast mode)
  foreach      torch.optim.Adam(foreach=True), capturable (the faithful step on CUDA)
  flat-bf16    flat_adam.FlatAdam on bf16 working weights (fp32 masters), eager
  flat-bf16-compiled  the same update as one torch.compile'd kernel (CUDA only)

Each row: ms per step and the bandwidth at ADAM_BYTES per parameter (the bytes the
update must move at least; a slower row moves more, or moves them slower).
"""

from __future__ import annotations

import time

import torch

from replication.grid.bench.timing import progress, synchronize
from replication.models import RGB, build_generator
from replication.training.flat_adam import FlatAdam

# per parameter and step: fp32 fused/foreach read weight, grad, 2 moments (16 B) and write
# weight and moments (12 B); flat-bf16 reads a bf16 grad (2), master and moments (12),
# writes them (12) and the bf16 working weight (2)
ADAM_BYTES = {"fused": 28, "foreach": 28, "flat-bf16": 28, "flat-bf16-compiled": 28}


def optimizers(device: torch.device) -> list[str]:
    names = ["fused", "foreach", "flat-bf16"]
    return names + ["flat-bf16-compiled"] if device.type == "cuda" else names


def make(name: str, params: list[torch.nn.Parameter], lr: float, betas) -> torch.optim.Optimizer:
    cuda = params[0].device.type == "cuda"
    if name == "fused":
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True, capturable=cuda)
    if name == "foreach":
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True, capturable=cuda)
    for p in params:
        p.data = p.data.bfloat16()
    return FlatAdam(params, lr=lr, betas=betas, compiled=name.endswith("compiled"))


def adam_bandwidth(cfg, device: torch.device, seconds: float,
                   record=lambda row: None) -> list[dict]:
    rows = []
    for name in optimizers(device):
        progress(f"Adam step over G's parameters: {name}")
        G = params = opt = None
        try:
            G = build_generator(cfg.generator, cfg.data.image_size, RGB, RGB).to(device)
            params = list(G.parameters())
            opt = make(name, params, cfg.train.lr, (cfg.train.beta1, cfg.train.beta2))
            for p in params:
                if p.grad is None:
                    p.grad = torch.randn_like(p)
                else:
                    p.grad.normal_()
            count = sum(p.numel() for p in params)
            for _ in range(3):  # warm-up (and the compile)
                opt.step()
            synchronize(device)
            began, steps = time.perf_counter(), 0
            while time.perf_counter() - began < seconds:
                opt.step()
                steps += 1
            synchronize(device)
            ms = 1e3 * (time.perf_counter() - began) / steps
            row = {"optimizer": name, "parameters": count, "ms_per_step": ms,
                   "gb_per_s": count * ADAM_BYTES[name] / ms / 1e6,
                   "bytes_per_parameter": ADAM_BYTES[name]}
        except Exception as err:  # noqa: BLE001 (e.g. no compiler on the node): report it
            row = {"optimizer": name, "error": f"{type(err).__name__}: {str(err)[:200]}"}
        rows.append(row)
        record(row)
        G = params = opt = None  # free the device memory before the next one
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows
