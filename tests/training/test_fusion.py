"""Fused runs (train.fuse, fusion.py): N runs as one step equal N separate runs.

The reference is the ordinary Trainer, one per run, each alone in float64: it shares
only the loss code's definition with the fused step (not its per-run means, grouped
convolutions, stacked Adam or per-run dropout generators).

Tolerance (float64, unit roundoff u = 2^-53 = 1.1e-16). The fused step computes every
sum of the separate step in another order (grouped vs plain convolution kernels, per-run
means). Recursive summation of k terms errs by at most k u sum|terms| (Higham, Accuracy
and Stability of Numerical Algorithms, eq. 4.4); the longest reduction in these nets is
k <= 4*4*128 = 2048 (the widest transposed convolution; batch x positions <= 2*32*32
for the weight gradients), with terms of order 1: a gradient differs by at most
~2048 u = 2.3e-13. Adam maps a gradient difference d to an update difference of at most
lr d / eps = 2e-4 * d / 1e-8 = 2e4 d, i.e. <= 4.5e-9 per step, and over STEPS = 4 steps
<= 2e-8 in weights, moments and losses (the losses inherit the weights' difference
times Lipschitz constants of order 1). 1e-7 bounds that; a run given another run's data,
dropout mask, L1 weight or Adam moment moves by ~lr = 2e-4 per step or more, 2000x the
bound. (Measured on the 2-core Xeon: 3e-14.) Larger images lengthen the sums: see
ARCHITECTURES' 128-px case.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml
from tests.conftest import tiny_overrides

from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core import layout
from replication.core.errors import CheckpointError, ConfigError
from replication.training import checkpoints
from replication.training.concurrent import RunFolders
from replication.training.fused_runs import Member, train_group
from replication.training.fusion import FusedTrainer
from replication.training.loop import train
from replication.training.trainer import Trainer

CPU = torch.device("cpu")
STEPS = 4
TOL = 1e-7  # derived in the module docstring


def config(dataset=None, name="toy", l1=100.0, **sections) -> ExperimentConfig:
    base = {"name": name, "loss": {"l1_weight": l1}}
    if dataset is not None:
        base["data"] = {"root": str(dataset.parent), "dataset": dataset.name}
    return from_dict(ExperimentConfig, deep_merge(base, tiny_overrides(**sections)))


def batches(runs: int, batch: int, steps: int = STEPS, seed: int = 5) -> list[list[tuple]]:
    """[step][run] -> (x, y), independent random images per run."""
    gen = torch.Generator().manual_seed(seed)
    return [[tuple(torch.rand(batch, 3, 32, 32, generator=gen) * 2 - 1 for _ in "xy")
             for _ in range(runs)] for _ in range(steps)]


def fused_batch(per_run: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.cat([pair[k] for pair in per_run], dim=1) for k in (0, 1))


def separate_runs(cfgs, seeds, data):
    """Each run's Trainer alone (built and stepped before the next one is built: a run
    alone has the global generator to itself). Its losses per step and final state."""
    out = []
    for i, (cfg, seed) in enumerate(zip(cfgs, seeds)):
        trainer = Trainer(cfg, seed, CPU, 100)
        losses = [{k: float(v) for k, v in trainer.train_step(*step[i]).items()} for step in data]
        out.append((losses, trainer.state_dict({})))
    return out


def worst_difference(a: dict, b: dict) -> float:
    """Largest |a - b| over G, D, BatchNorm buffers and both Adams' moments."""
    worst = 0.0
    for net in ("G", "D"):
        for key, value in (a[net] or {}).items():
            worst = max(worst, float((value.double() - b[net][key].double()).abs().max()))
        for index, state in ((a[f"opt_{net}"] or {}).get("state") or {}).items():
            for key in ("exp_avg", "exp_avg_sq"):
                other = b[f"opt_{net}"]["state"][index][key]
                worst = max(worst, float((state[key] - other).abs().max()))
    return worst


MIXED = [  # (runs' L1 weights, D loss scales), batch size
    pytest.param([100.0, 0.0, 10.0], [0.5, 0.5, 1.0], 1, id="N3-batch1"),
    pytest.param([100.0, 0.0, 10.0, 100.0], [0.5] * 4, 2, id="N4-batch2"),
]


@pytest.mark.parametrize("l1_weights, d_scales, batch", MIXED)
def test_fused_step_equals_separate_trainers(float64, l1_weights, d_scales, batch):
    # dropout is on (paper placement: 3 decoder layers) and every run draws its own masks
    n = len(l1_weights)
    cfgs = [config(l1=w, loss={"d_loss_scale": s}, train={"batch_size": batch})
            for w, s in zip(l1_weights, d_scales)]
    seeds = list(range(10, 10 + n))
    data = batches(n, batch)
    alone = separate_runs(cfgs, seeds, data)
    fused = FusedTrainer(cfgs, seeds, CPU, 100)
    assert next(fused.G.parameters()).dtype == torch.float64
    for step, per_run in enumerate(data):
        losses = fused.train_step(*fused_batch(per_run))
        for i, (separate_losses, _) in enumerate(alone):
            for name, value in separate_losses[step].items():
                assert abs(float(losses[name][i]) - value) <= TOL, (step, i, name)
    for i, (_, state) in enumerate(alone):
        mine = fused.run_state(i, {})
        assert worst_difference(state, mine) <= TOL, i
        # the same dropout draws, and no more: the run's generator ends where the run's does
        assert torch.equal(state["rng"]["torch"], mine["rng"]["torch"]), i
        assert mine["step"] == state["step"] == STEPS
    # the runs do differ from each other (so the checks above could fail)
    assert worst_difference(alone[0][1], fused.run_state(1, {})) > 1e3 * TOL


ARCHITECTURES = [  # every network the grid uses, two runs each, 2 steps
    pytest.param({"generator": {"arch": "encoder_decoder"}, "train": {"batch_size": 2}},
                 id="encdec-D70-cgan"),
    pytest.param({"generator": {"norm": "instance"}, "discriminator": {"norm": "instance",
                  "receptive_field": 16}, "loss": {"gan": "unconditional"}},
                 id="instance-D16-gan"),
    pytest.param({"generator": {"norm": "none", "dropout": "pytorch_code"},
                  "discriminator": {"norm": "none", "receptive_field": 1}}, id="none-D1-cgan"),
    pytest.param({"loss": {"gan": "none"}, "generator": {"bottleneck_norm": True}},
                 id="L1-only-bottleneck-BN"),
    # the 286x286 D needs >= 128 px (its map would be empty below): weight-gradient sums
    # of up to 128*128 = 16384 terms, so 2 steps * 2e4 * 16384 u = 7.3e-8 <= TOL
    pytest.param({"discriminator": {"receptive_field": 286}, "data": {"image_size": 128}},
                 id="D286-128px"),
    # fast mode on the CPU in fp32: fused Adam in both, the same FusedStep wrapper
    pytest.param({"train": {"mode": "fast", "fast_precision": "fp32"}}, id="fast-fp32"),
]


@pytest.mark.parametrize("sections", ARCHITECTURES)
def test_fused_step_equals_separate_trainers_for_every_architecture(float64, sections):
    cfgs = [config(l1=w, **sections) for w in (100.0, 10.0)]
    size, batch = cfgs[0].data.image_size, cfgs[0].train.batch_size
    gen = torch.Generator().manual_seed(7)
    data = [[tuple(torch.rand(batch, 3, size, size, generator=gen) * 2 - 1 for _ in "xy")
             for _ in cfgs] for _ in range(2)]
    alone = separate_runs(cfgs, [0, 1], data)
    fused = FusedTrainer(cfgs, [0, 1], CPU, 100)
    for per_run in data:
        fused.train_step(*fused_batch(per_run))
    for i, (_, state) in enumerate(alone):
        assert worst_difference(state, fused.run_state(i, {})) <= TOL, i
        assert torch.equal(state["rng"]["torch"], fused.run_state(i, {})["rng"]["torch"])


def test_a_runs_gradients_do_not_see_the_other_runs_data(float64):
    # grouped convolutions, per-run BatchNorm statistics and per-run losses: changing run
    # 2's images changes nothing in runs 0 and 1, to the bit (no cross-run arithmetic)
    cfgs = [config(l1=w) for w in (100.0, 0.0, 10.0)]
    data = batches(3, 2, steps=1)[0]
    changed = list(data)
    changed[2] = tuple(t.flip(-1) * 0.5 for t in changed[2])
    grads = []
    for per_run in (data, changed):
        trainer = FusedTrainer(cfgs, [0, 1, 2], CPU, 100)
        trainer.train_step(*fused_batch(per_run))
        nets = (("G", trainer.G), ("D", trainer.D))
        grads.append({f"{net}.{name}": p.grad for net, module in nets
                      for name, p in module.named_parameters()})
    for name, grad in grads[0].items():
        a, b = (g.unflatten(0, (3, -1)) for g in (grad, grads[1][name]))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), name
    assert any(not torch.equal(g.unflatten(0, (3, -1))[2], grads[1][k].unflatten(0, (3, -1))[2])
               for k, g in grads[0].items())


def test_separate_states_imported_continue_as_the_separate_runs(float64):
    # export/import: K separate steps, the runs' ordinary states imported into a fused
    # group, M fused steps == K + M separate steps; and a fused group exported and
    # imported again gives back the same tensors, to the bit
    cfgs = [config(l1=w) for w in (100.0, 1.0, 0.0)]
    seeds = [3, 4, 5]
    data = batches(3, 1, steps=5)
    k = 2
    straight = separate_runs(cfgs, seeds, data)
    started = separate_runs(cfgs, seeds, data[:k])
    fused = FusedTrainer(cfgs, seeds, CPU, 100)
    fused.load_run_states([state for _, state in started], "memory")
    assert fused.step == k
    for per_run in data[k:]:
        fused.train_step(*fused_batch(per_run))
    exported = [fused.run_state(i, {}) for i in range(3)]
    for (_, state), mine in zip(straight, exported):
        assert worst_difference(state, mine) <= TOL
        assert torch.equal(state["rng"]["torch"], mine["rng"]["torch"])
    again = FusedTrainer(cfgs, seeds, CPU, 100)
    again.load_run_states(exported, "memory")
    for i, before in enumerate(exported):
        after = again.run_state(i, {})
        assert worst_difference(before, after) == 0.0
        assert torch.equal(before["rng"]["torch"], after["rng"]["torch"])
        assert after["opt_G"]["param_groups"] == before["opt_G"]["param_groups"]


# --- the loop: run folders, resume, groups ----------------------------------------------

def members(dataset, tmp_path, specs, folder="runs", **train_settings) -> list[Member]:
    """specs: (experiment name, L1 weight, direction, seed)."""
    out = []
    for name, l1, direction, seed in specs:
        cfg = config(dataset, name=name, l1=l1, data={"direction": direction},
                     train={"fuse": True, **train_settings})
        out.append(Member(cfg, RunFolders(seed, tmp_path / folder / name / f"seed-{seed}",
                                          tmp_path / "logs" / folder / name / f"seed-{seed}")))
    return out


GROUP = [("a", 100.0, "BtoA", 0), ("a", 100.0, "BtoA", 1), ("b", 0.0, "AtoB", 0)]


def state(member: Member) -> dict:
    return checkpoints.load(layout.state_path(member.run.out), checkpoints.STATE_FORMAT)


def test_k_plus_m_fused_steps_with_a_checkpoint_equal_k_plus_m_straight(toy_dataset, tmp_path):
    straight = members(toy_dataset, tmp_path, GROUP, "straight", iterations=9)
    resumed = members(toy_dataset, tmp_path, GROUP, "resumed", iterations=9)
    train_group(straight, progress=False)
    first = train_group(resumed, stop_after=4, progress=False)
    assert [s["step"] for s in first] == [4, 4, 4] and not first[0]["finished"]
    summaries = train_group(resumed, progress=False)
    assert all(s["finished"] and s["step"] == 9 for s in summaries)
    for a, b in zip(straight, resumed):
        sa, sb = state(a), state(b)
        for net in ("G", "D"):
            assert all(torch.equal(v, sb[net][k]) for k, v in sa[net].items()), (a.run, net)
        assert torch.equal(sa["rng"]["torch"], sb["rng"]["torch"])
        assert sa["meter"] == sb["meter"]


def test_each_fused_run_ends_as_an_ordinary_run_folder(toy_dataset, tmp_path, float64):
    # the fused runs' generator.pt files hold what separate train() calls give (to the
    # derived bound, over 6 steps here: 1.5x the 4-step bound's budget is still far
    # below a step's ~2e-4), with the ordinary formats; the group is recorded
    group = members(toy_dataset, tmp_path, GROUP, iterations=STEPS)
    train_group(group, progress=False)
    for i, member in enumerate(group):
        cfg = dataclasses.replace(member.cfg, train=dataclasses.replace(member.cfg.train,
                                                                        fuse=False))
        alone = tmp_path / "alone" / f"{i}"
        train(cfg, member.run.seed, alone, progress=False)
        mine = checkpoints.load(layout.generator_path(member.run.out), checkpoints.GENERATOR_FORMAT)
        ref = checkpoints.load(layout.generator_path(alone), checkpoints.GENERATOR_FORMAT)
        assert mine["seed"] == member.run.seed and mine["step"] == STEPS
        assert mine["config"] == member.cfg.to_dict()
        for key, value in ref["state_dict"].items():
            assert (value.double() - mine["state_dict"][key].double()).abs().max() <= TOL, key
        text = (member.run.out / "config.yaml").read_text()
        assert "fused_group:" in text and "b/seed-0" in text
        assert (member.run.logs / "plots" / "metrics" / "train" / "loss_G_l1.tsv").is_file()
    assert state(group[2])["fusion"] == {"runs": ["a/seed-0", "a/seed-1", "b/seed-0"],
                                         "index": 2}


def test_a_fused_run_resumes_only_in_its_group(toy_dataset, tmp_path):
    train_group(members(toy_dataset, tmp_path, GROUP, iterations=6), stop_after=2,
                progress=False)
    reordered = [GROUP[1], GROUP[0], GROUP[2]]
    with pytest.raises(CheckpointError,
                       match="seed-1.*trained as run 2 of the fused group .* not as run 1"):
        train_group(members(toy_dataset, tmp_path, reordered, iterations=6), progress=False)
    with pytest.raises(CheckpointError, match="seed-2.*not found.*resume together"):
        train_group(members(toy_dataset, tmp_path, GROUP + [("a", 100.0, "BtoA", 2)],
                            iterations=6), progress=False)
    alone = members(toy_dataset, tmp_path, GROUP[:1], iterations=6)[0]
    cfg = dataclasses.replace(alone.cfg, train=dataclasses.replace(alone.cfg.train, fuse=False))
    with pytest.raises(CheckpointError, match="train.fuse=True"):
        train(cfg, 0, alone.run.out, progress=False)
    # a separately trained run is not resumed as a member of a group either
    train(cfg, 0, tmp_path / "single" / "a" / "seed-0", progress=False, stop_after=2)
    with pytest.raises(CheckpointError, match="trained alone"):
        train_group(members(toy_dataset, tmp_path, [GROUP[0]], "single", iterations=6),
                    progress=False)
    # the pipeline's choice: start the group over
    summaries = train_group(members(toy_dataset, tmp_path, reordered, iterations=6),
                            on_mismatch="restart", progress=False)
    assert all(s["finished"] and s["steps_this_run"] == 6 for s in summaries)


def test_only_fusable_experiments_share_a_group():
    with pytest.raises(ConfigError, match="generator.ngf is 8 vs 16"):
        FusedTrainer([config(), config(name="wide", generator={"ngf": 16})], [0, 0], CPU, 10)
    with pytest.raises(ConfigError, match="set one of the two"):
        config(train={"fuse": True, "seeds_per_process": 2})


def test_the_cli_trains_two_experiments_as_one_fused_group(toy_dataset, tmp_path, monkeypatch):
    from replication import cli
    monkeypatch.chdir(tmp_path)
    defaults = deep_merge(tiny_overrides(train={"iterations": 3, "fuse": True}),
                          {"seeds": [0, 1], "data": {"root": str(toy_dataset.parent)}})
    params = {"datasets": [toy_dataset.name], "defaults": defaults,
              "experiments": {"x": {"data": {"dataset": toy_dataset.name}},
                              "y": {"data": {"dataset": toy_dataset.name, "direction": "AtoB"},
                                    "loss": {"l1_weight": 0}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert cli.main(["train", "-e", "x", "--fuse-with", "y", "--no-progress"]) == 0
    for name in ("x", "y"):
        for seed in (0, 1):
            s = checkpoints.load(layout.state_path(layout.run_dir(name, seed)),
                                 checkpoints.STATE_FORMAT)
            assert s["fusion"]["runs"] == ["x/seed-0", "x/seed-1", "y/seed-0", "y/seed-1"]
        assert (tmp_path / layout.train_metrics(name)).is_file()
    assert cli.main(["train", "-e", "x", "--fuse-with", "y", "--set", "train.fuse=false",
                     "--no-progress"]) == 1  # one line: train.fuse is false


def test_fused_sample_grids_are_the_runs_samples_and_change_nothing(toy_dataset, float64):
    # one forward of the fused G gives each run's sample grid (input | output | target)
    # as monitor.sample_grid gives it for the run alone (uint8: rounding may move a pixel
    # by one level), and leaves BatchNorm statistics and dropout generators as they were
    from replication.data.paired import TrainingPairs
    from replication.training.fused_runs import run_data, sample_grids
    from replication.training.monitor import sample_grid
    cfgs = [config(toy_dataset, l1=w, data={"direction": d})
            for w, d in ((100.0, "BtoA"), (0.0, "AtoB"))]
    shared = TrainingPairs(cfgs[0].data, 1, 0)
    datas = [run_data(shared, c.data, seed) for c, seed in zip(cfgs, (0, 1))]
    fused = FusedTrainer(cfgs, [0, 1], CPU, 100)
    for step in range(2):
        xs, ys = zip(*(d.batch(step, CPU) for d in datas))
        fused.train_step(torch.cat(xs, 1), torch.cat(ys, 1))
    before = [fused.run_state(i, {}) for i in range(2)]
    grids = sample_grids(fused, datas)
    for i, (cfg, data) in enumerate(zip(cfgs, datas)):
        alone = Trainer(cfg, i, CPU, 100)
        alone.load_state_dict(before[i], "memory")
        expected = sample_grid(alone, data)
        assert grids[i].shape == expected.shape
        assert abs(grids[i].astype(int) - expected.astype(int)).max() <= 1
        after = fused.run_state(i, {})
        assert worst_difference(before[i], after) == 0.0
        assert torch.equal(before[i]["rng"]["torch"], after["rng"]["torch"])
