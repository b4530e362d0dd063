"""Fast mode computes the faithful step: bit for bit with the same optimizer, to rounding
with fused Adam, within bf16 rounding in bf16.

The faithful Trainer (fp32, eager, foreach Adam) is the independent reference: the fast
step shares only the loss code with it. Where the two paths run the same kernels in the
same order they must be bit-identical (compared exactly); where they do not, the bound
is derived from the arithmetic that differs (see each test).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import tiny_overrides

from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core.errors import TrainingDiverged
from replication.training import checkpoints, fast
from replication.training.loop import train
from replication.training.trainer import Trainer

CPU = torch.device("cpu")


def tiny_config(dataset=None, **train_settings) -> ExperimentConfig:
    base = {"name": "toy"}
    if dataset is not None:
        base["data"] = {"root": str(dataset.parent), "dataset": dataset.name}
    return from_dict(ExperimentConfig, deep_merge(base, tiny_overrides(train=train_settings)))


def random_batches(count: int, batch: int = 2, size: int = 32) -> list[tuple]:
    gen = torch.Generator().manual_seed(5)
    return [tuple(torch.rand(batch, 3, size, size, generator=gen) * 2 - 1 for _ in "xy")
            for _ in range(count)]


def trained(cfg: ExperimentConfig, batches) -> tuple[Trainer, dict]:
    trainer = Trainer(cfg, 0, CPU, 100)
    losses = [trainer.train_step(x, y) for x, y in batches][-1]
    return trainer, {k: float(v) for k, v in losses.items()}


def parameters(trainer: Trainer):
    return [p for net in trainer.networks() for p in net.parameters()]


def reference_adam(params, train_cfg, options):
    return torch.optim.Adam(params, lr=train_cfg.lr, betas=(train_cfg.beta1, train_cfg.beta2))


def test_fp32_fast_step_with_the_reference_adam_is_bit_identical(monkeypatch):
    # on the CPU in fp32 the fast step runs the faithful step's kernels in the same order;
    # its only other ingredient is fused Adam. With the reference Adam swapped in, five
    # steps must give the same bits: losses, gradients, weights and BatchNorm statistics.
    batches = random_batches(5)
    ref, ref_losses = trained(tiny_config(mode="faithful"), batches)
    monkeypatch.setattr(fast, "adam", reference_adam)
    fst, fst_losses = trained(tiny_config(mode="fast", fast_precision="fp32"), batches)
    assert fst.fast is not None and not fst.fast.options.bf16
    assert set(fst_losses) == {"loss_D", "D_real", "D_fake", "loss_G_gan", "loss_G_l1"}
    assert fst_losses == ref_losses
    for p, q in zip(parameters(ref), parameters(fst)):
        assert torch.equal(p.grad, q.grad) and torch.equal(p, q)
    for a, b in zip(ref.G.buffers(), fst.G.buffers()):
        assert torch.equal(a, b)


def test_fast_steps_with_fused_adam_follow_the_faithful_trajectory(float64):
    # fused Adam reassociates the update (machine- and ISA-dependent rounding). In fp32 a
    # GAN amplifies that: a gradient that is rounding noise next to Adam's eps = 1e-8 still
    # moves its weight by up to lr * |dg| / eps, and over five steps the runs part in the
    # 5th digit (seen on an Intel Xeon). In float64 (unit roundoff u = 2^-53) the same
    # amplification is at most steps * (lr / eps) * u * max|g| = 5 * 2e4 * 1.1e-16 * O(1)
    # ~ 1e-11, so 1e-9 bounds it with room; a different dropout mask or a skipped update
    # moves losses and weights by ~lr = 2e-4 or more.
    batches = random_batches(5)
    ref, ref_losses = trained(tiny_config(mode="faithful"), batches)
    fst, fst_losses = trained(tiny_config(mode="fast", fast_precision="fp32"), batches)
    assert next(fst.G.parameters()).dtype == torch.float64
    for name, value in ref_losses.items():
        assert abs(fst_losses[name] - value) <= 1e-9, name
    for p, q in zip(parameters(ref), parameters(fst)):
        assert (p - q).abs().max() <= 1e-9
    for a, b in zip(ref.G.buffers(), fst.G.buffers()):
        assert (a.double() - b.double()).abs().max() <= 1e-9


def test_fp32_fast_step_draws_the_same_dropout_masks():
    # dropout is the only random op in a step: equal RNG states after the step mean the
    # same draws were consumed, and equal losses (above) mean the same masks were used
    batches = random_batches(2)
    trained(tiny_config(mode="faithful"), batches)
    after_faithful = torch.get_rng_state()
    trained(tiny_config(mode="fast", fast_precision="fp32"), batches)
    assert torch.equal(after_faithful, torch.get_rng_state())


def test_bf16_fast_step_is_close_to_faithful():
    # bf16 keeps 8 significant bits: every autocast conv rounds its inputs and weights to
    # a relative u = 2^-8 = 3.9e-3 (accumulating in fp32). A loss is a mean over many
    # outputs of a ~10-layer chain; 8u = 3.1% bounds its relative error with room, while a
    # wrong mask or update moves a loss by tens of percent. Gradients: cosine >= 0.98
    # means |dg| / |g| <= 0.2 (cos = 1 - eps^2 / 2), about 50u; a different dropout mask
    # decorrelates them (cosine far below 0.9).
    batches = random_batches(1)
    ref, ref_losses = trained(tiny_config(mode="faithful"), batches)
    fst, fst_losses = trained(tiny_config(mode="fast", fast_precision="bf16"), batches)
    assert fst.fast.options.bf16
    for name, value in ref_losses.items():
        assert fst_losses[name] == pytest.approx(value, rel=8 * 2 ** -8), name
    for net in ("G", "D"):
        a = torch.cat([p.grad.flatten() for p in getattr(ref, net).parameters()])
        b = torch.cat([p.grad.flatten() for p in getattr(fst, net).parameters()])
        assert torch.nn.functional.cosine_similarity(a, b, dim=0) >= 0.98, net


def test_fused_adam_matches_the_reference_adam():
    # torch's single-tensor for-loop Adam is the textbook update; fused computes the same
    # formula in another order. The gradients are given (they do not depend on the
    # weights), so the difference cannot grow beyond rounding: per step at most half an
    # ulp of the weight from the final subtraction, plus ~10 roundings of the update
    # itself (|update| <= lr for Adam's bias-corrected ratio in the first steps).
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(1000, generator=gen)
    grads = [torch.randn(1000, generator=gen) for _ in range(10)]
    cfg = tiny_config().train
    results = []
    for make in (lambda p: torch.optim.Adam([p], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                            foreach=False),
                 lambda p: fast.adam([p], cfg, fast.FastOptions(False, False, False))):
        p = start.clone().requires_grad_()
        opt = make(p)
        for g in grads:
            p.grad = g.clone()
            opt.step()
        results.append(p.detach())
    u = torch.finfo(torch.float32).eps / 2
    ulp = float(np.spacing(np.float32(start.abs().max() + 1)))  # of the largest weight
    bound = len(grads) * (ulp / 2 + 10 * u * cfg.lr)
    assert (results[0] - results[1]).abs().max() <= bound
    assert (results[0] - start).abs().mean() > 1e-4  # the updates did happen


def test_loaded_adam_moments_take_the_parameter_layout():
    # fused Adam walks tensors in memory order: moments stored contiguous but loaded for a
    # channels_last parameter must be re-laid out, or elements silently mix
    gen = torch.Generator().manual_seed(0)
    weight, grad = (torch.randn(2, 3, 4, 4, generator=gen) for _ in range(2))
    options = fast.FastOptions(False, False, False)
    cfg = tiny_config().train
    p = weight.clone().requires_grad_()
    opt = fast.adam([p], cfg, options)
    p.grad = grad.clone()
    opt.step()
    saved = opt.state_dict()
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        q = p.detach().clone().contiguous(memory_format=fmt).requires_grad_()
        opt2 = fast.adam([q], cfg, options)
        opt2.load_state_dict(saved)
        fast.match_layout(opt2)
        q.grad = grad.clone().contiguous(memory_format=fmt)
        opt2.step()
        results.append(q.detach())
    assert torch.equal(results[0], results[1].contiguous())


def test_snapshot_puts_the_training_state_back():
    # graph capture warms up with real steps and rewinds them (fast.Snapshot); with no
    # Adam state yet, rewinding leaves zeros, which must act like a fresh optimizer
    x, y = random_batches(1)[0]
    cfg = tiny_config(mode="fast", fast_precision="fp32")
    fresh, _ = trained(cfg, [(x, y)])
    rewound = Trainer(cfg, 0, CPU, 100)
    snapshot = fast.Snapshot(rewound)
    for _ in range(2):
        rewound.compute(x, y)
    snapshot.restore()
    rewound.train_step(x, y)
    for p, q in zip(parameters(fresh), parameters(rewound)):
        assert torch.equal(p, q)
    for a, b in zip(fresh.G.buffers(), rewound.G.buffers()):
        assert torch.equal(a, b)


def test_checkpoints_store_float_learning_rates(toy_dataset):
    trainer = Trainer(tiny_config(toy_dataset, mode="fast"), 0, CPU, 10)
    for opt in trainer.optimizers():
        fast.tensor_lr(opt, CPU)  # what a captured CUDA step does
    trainer.train_step(*random_batches(1)[0])
    assert torch.is_tensor(trainer.opt_G.param_groups[0]["lr"])
    state = trainer.state_dict({"sums": {}, "count": 0})
    assert type(state["opt_G"]["param_groups"][0]["lr"]) is float
    assert type(state["sched_G"]["_last_lr"][0]) is float


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[net][k], b[net][k]) for net in ("G", "D") for k in a[net]) \
        and torch.equal(a["rng"]["torch"], b["rng"]["torch"]) and a["step"] == b["step"]


def test_fast_mode_resumes_exactly(toy_dataset, tmp_path):
    cfg = tiny_config(toy_dataset, mode="fast")  # auto precision: bf16 where native
    train(cfg, 0, tmp_path / "straight", progress=False)
    first = train(cfg, 0, tmp_path / "resumed", stop_after=7, progress=False)
    assert first["step"] == 7 and not first["finished"]
    summary = train(cfg, 0, tmp_path / "resumed", progress=False)
    assert summary["finished"] and summary["mode"] == "fast"
    a, b = (checkpoints.load(tmp_path / run / "checkpoints/state.pt", checkpoints.STATE_FORMAT)
            for run in ("straight", "resumed"))
    assert same_weights(a, b)


def test_fast_mode_never_checkpoints_after_a_nan(toy_dataset, tmp_path, monkeypatch):
    # no per-step check in fast mode: a NaN at step 7 is caught by the check before the
    # step-10 checkpoint (no log step in between), and the step-5 checkpoint survives
    real = Trainer.compute

    def poisoned(self, x, y):
        losses = real(self, x, y)
        if self.step == 6:  # the 7th step
            losses["loss_G_l1"] = losses["loss_G_l1"] * float("nan")
        return losses

    monkeypatch.setattr(Trainer, "compute", poisoned)
    cfg = tiny_config(toy_dataset, mode="fast", log_every=100, checkpoint_every=5)
    with pytest.raises(TrainingDiverged, match=r"steps 1-10: loss_G_l1 is nan"):
        train(cfg, 0, tmp_path / "run", progress=False)
    assert checkpoints.load(tmp_path / "run/checkpoints/state.pt",
                            checkpoints.STATE_FORMAT)["step"] == 5
