"""Training: learning happens, exact resume (also after SIGKILL), divergence, lr policy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tests.conftest import tiny_overrides, write_pairs

from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core.errors import TrainingDiverged
from replication.data.paired import TestPairs
from replication.training import checkpoints
from replication.training.loop import train
from replication.training.trainer import lr_factor

REPO = Path(__file__).resolve().parents[2]


def make_config(dataset: Path, **sections) -> ExperimentConfig:
    base = {"name": "toy", "data": {"root": str(dataset.parent), "dataset": dataset.name}}
    return from_dict(ExperimentConfig, deep_merge(base, tiny_overrides(**sections)))


def load_state(run: Path) -> dict:
    return checkpoints.load(run / "checkpoints" / "state.pt", checkpoints.STATE_FORMAT)


def assert_same_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for key in ("G", "D"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    for key in ("opt_G", "opt_D"):
        for idx, state in a[key]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, b[key]["state"][idx][name]), f"{key} {idx} {name}"
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])


@pytest.mark.slow
def test_loss_falls_on_a_learnable_mapping(tmp_path):
    # y is a fixed colour permutation of x: a U-Net can learn it; L1 must fall well
    # below its starting value within a few hundred steps.
    data = write_pairs(tmp_path / "perm", {"train": 16, "test": 4}, size=32)
    cfg = make_config(data, data={"direction": "AtoB"},
                      train={"iterations": 300, "log_every": 300, "sample_every": 1000,
                             "checkpoint_every": 1000, "lr": 1e-3})
    start = mean_test_l1(cfg, None)
    summary = train(cfg, seed=0, out_dir=tmp_path / "run", progress=False)
    end = mean_test_l1(cfg, tmp_path / "run")
    assert summary["finished"] and summary["step"] == 300
    assert end < 0.4 * start, (start, end)


def mean_test_l1(cfg: ExperimentConfig, run: Path | None) -> float:
    from replication.inference.generate import load_generator
    from replication.models import build
    if run is None:
        torch.manual_seed(0)
        G, _ = build(cfg)
    else:
        G, _ = load_generator(run / "checkpoints" / "generator.pt", torch.device("cpu"))
    G.eval()
    pairs = TestPairs(cfg.data, "test")
    with torch.no_grad():
        errors = [(G(x) - y).abs().mean() for _, x, y in pairs.batches(4, torch.device("cpu"))]
    return float(torch.stack(errors).mean())


def test_resume_in_process_is_exact(toy_dataset, tmp_path):
    cfg = make_config(toy_dataset)
    train(cfg, 0, tmp_path / "straight", progress=False)
    first = train(cfg, 0, tmp_path / "resumed", stop_after=7, progress=False)
    assert not first["finished"] and first["step"] == 7
    assert load_state(tmp_path / "resumed")["step"] == 7
    train(cfg, 0, tmp_path / "resumed", progress=False)
    assert_same_state(load_state(tmp_path / "straight"), load_state(tmp_path / "resumed"))
    # the final generator snapshots match too
    a = checkpoints.load(tmp_path / "straight/checkpoints/generator.pt", checkpoints.GENERATOR_FORMAT)
    b = checkpoints.load(tmp_path / "resumed/checkpoints/generator.pt", checkpoints.GENERATOR_FORMAT)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_loss_log_and_kept_samples_survive_a_resume(toy_dataset, tmp_path):
    # 12 steps, logged every 4, a grid every 6, one kept every 8 (and the last): a run
    # stopped at step 7 and resumed writes what the straight run writes
    cfg = make_config(toy_dataset, train={"keep_samples_every": 8})
    train(cfg, 0, tmp_path / "straight", progress=False)
    train(cfg, 0, tmp_path / "resumed", stop_after=7, progress=False)
    train(cfg, 0, tmp_path / "resumed", progress=False)
    for run in ("straight", "resumed"):
        live = tmp_path / run / "dvclive"
        kept = sorted(p.name for p in (live / "plots/images/samples").iterdir())
        assert kept == ["step-0000008.png", "step-0000012.png"], run
        assert (live / "plots/images/samples.png").is_file()
        lines = (live / "loss_log.txt").read_text().splitlines()
        assert [line.split()[:2] for line in lines] == [["step", "4"], ["step", "8"], ["step", "12"]]
        # each line holds what DVCLive logged at that step, name by name
        for name in ("loss_D", "loss_G_l1"):
            tsv = (live / "plots/metrics/train" / f"{name}.tsv").read_text().splitlines()[1:]
            logged = [float(row.split("\t")[-1]) for row in tsv]
            words = [line.split() for line in lines]
            assert [float(w[w.index(name) + 1]) for w in words] == pytest.approx(logged, rel=1e-5)
    straight = (tmp_path / "straight/dvclive/loss_log.txt").read_text()
    assert (tmp_path / "resumed/dvclive/loss_log.txt").read_text() == straight


def test_a_loss_log_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    from replication.training.monitor import LOSS_LOG, truncate_live
    (tmp_path / LOSS_LOG).write_text("step 4 lr 0.0002 loss_D 0.5\nstep 8 lr 0.0002 loss_D 0.4\n"
                                     "step 12 lr 0.0002 loss_\n")
    truncate_live(tmp_path, 12)  # step 12's line lost its value: not kept
    assert (tmp_path / LOSS_LOG).read_text() == ("step 4 lr 0.0002 loss_D 0.5\n"
                                                 "step 8 lr 0.0002 loss_D 0.4\n")
    truncate_live(tmp_path, 5)
    assert (tmp_path / LOSS_LOG).read_text() == "step 4 lr 0.0002 loss_D 0.5\n"


def test_keep_state_false_deletes_only_a_finished_runs_state(toy_dataset, tmp_path):
    """The rehearsal's disk saver: an unfinished run keeps its state (resume needs it); the
    finished run's state goes, and its generator is the one a kept-state run ends with."""
    train(make_config(toy_dataset), 0, tmp_path / "kept", progress=False)
    cfg, run = make_config(toy_dataset, train={"keep_state": False}), tmp_path / "dropped"
    assert not train(cfg, 0, run, stop_after=7, progress=False)["finished"]
    assert load_state(run)["step"] == 7
    assert train(cfg, 0, run, progress=False)["finished"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["generator.pt"]
    kept = load_state(tmp_path / "kept")["G"]
    snapshot = checkpoints.load(run / "checkpoints/generator.pt", checkpoints.GENERATOR_FORMAT)
    assert all(torch.equal(snapshot["state_dict"][k], kept[k]) for k in kept)


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(toy_dataset, tmp_path):
    # A real kill: the process dies at an arbitrary moment after its first checkpoint;
    # resuming from whatever checkpoint survived must end with identical tensors.
    args = ["--data", str(toy_dataset), "--no-progress", "--set", "data.image_size=32",
            "--set", "generator.ngf=8", "--set", "discriminator.ndf=8",
            "--set", "train.iterations=60", "--set", "train.checkpoint_every=10",
            "--set", "train.log_every=5", "--set", "train.sample_every=25"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "replication", "train"]
    subprocess.run(cli + args + ["--out", str(tmp_path / "straight")], check=True, env=env,
                   cwd=tmp_path, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli + args + ["--out", str(killed)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "checkpoints" / "state.pt"
    deadline = time.time() + 600  # a guard against a hung child, not a speed bound
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill_step = load_state(killed)["step"]
    assert 10 <= kill_step < 60, "the kill must land mid-run for this test to mean anything"
    assert not (killed / "checkpoints" / "generator.pt").exists()
    subprocess.run(cli + args + ["--out", str(killed)], check=True, env=env, cwd=tmp_path,
                   capture_output=True)
    assert_same_state(load_state(tmp_path / "straight"), load_state(killed))


def test_sampling_does_not_change_the_trajectory(toy_dataset, tmp_path):
    train(make_config(toy_dataset, train={"sample_every": 1}), 0, tmp_path / "a", progress=False)
    train(make_config(toy_dataset, train={"sample_every": 1000}), 0, tmp_path / "b", progress=False)
    assert_same_state(load_state(tmp_path / "a"), load_state(tmp_path / "b"))
    assert (tmp_path / "a" / "dvclive" / "plots" / "images" / "samples.png").exists()


def test_seeds_differ_and_repeat(toy_dataset, tmp_path):
    cfg = make_config(toy_dataset, train={"iterations": 3})
    runs = {name: train(cfg, seed, tmp_path / name, progress=False)
            for name, seed in (("a", 0), ("b", 0), ("c", 1))}
    assert runs["a"]["finished"]
    a, b, c = (load_state(tmp_path / n)["G"] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_divergence_stops_and_keeps_last_good_checkpoint(toy_dataset, tmp_path, monkeypatch):
    from replication.training import loop as train_module
    real_step = train_module.Trainer.train_step

    def poisoned(self, x, y):
        losses = real_step(self, x, y)
        if self.step == 8:
            losses["loss_G_l1"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(train_module.Trainer, "train_step", poisoned)
    with pytest.raises(TrainingDiverged) as info:
        train(make_config(toy_dataset), 0, tmp_path / "run", progress=False)
    message = str(info.value)
    assert "step 8" in message and "nan" in message and "state.pt" in message
    kept = load_state(tmp_path / "run")
    assert kept["step"] == 5  # checkpoint_every=5: the last one before the NaN
    assert all(torch.isfinite(v).all() for v in kept["G"].values() if v.is_floating_point())


def test_changed_settings_refuse_to_resume(toy_dataset, tmp_path):
    train(make_config(toy_dataset), 0, tmp_path / "run", stop_after=3, progress=False)
    with pytest.raises(checkpoints.CheckpointError, match="train.lr"):
        train(make_config(toy_dataset, train={"lr": 1e-3}), 0, tmp_path / "run", progress=False)
    summary = train(make_config(toy_dataset, train={"lr": 1e-3}), 0, tmp_path / "run",
                    on_mismatch="restart", progress=False)
    assert summary["finished"] and summary["steps_this_run"] == 12


def test_a_finished_run_extends_to_exactly_the_longer_run(toy_dataset, tmp_path):
    # constant lr (the paper's Lua schedule): the first 6 steps of a 12-step run are a
    # 6-step run, so raising train.iterations resumes it without --restart
    train(make_config(toy_dataset), 0, tmp_path / "straight", progress=False)
    short = train(make_config(toy_dataset, train={"iterations": 6}), 0, tmp_path / "run",
                  progress=False)
    assert short["finished"] and short["step"] == 6
    longer = train(make_config(toy_dataset), 0, tmp_path / "run", on_mismatch="error",
                   progress=False)
    assert longer["finished"] and longer["steps_this_run"] == 6
    assert_same_state(load_state(tmp_path / "straight"), load_state(tmp_path / "run"))


def test_schedule_changes_that_alter_the_steps_so_far_are_refused(toy_dataset, tmp_path):
    linear = {"lr_policy": "linear"}
    train(make_config(toy_dataset, train={"iterations": 6, **linear}), 0, tmp_path / "lin",
          progress=False)
    with pytest.raises(checkpoints.CheckpointError, match="lr_policy") as info:
        train(make_config(toy_dataset, train=linear), 0, tmp_path / "lin", progress=False)
    assert "\n" not in str(info.value)
    train(make_config(toy_dataset), 0, tmp_path / "run", stop_after=8, progress=False)
    with pytest.raises(checkpoints.CheckpointError, match="past this schedule's end"):
        train(make_config(toy_dataset, train={"iterations": 6}), 0, tmp_path / "run",
              progress=False)


def test_other_architecture_checkpoint_is_refused(toy_dataset, tmp_path):
    train(make_config(toy_dataset), 0, tmp_path / "run", stop_after=2, progress=False)
    with pytest.raises(checkpoints.CheckpointError, match="discriminator") as info:
        train(make_config(toy_dataset, discriminator={"receptive_field": 16}), 0,
              tmp_path / "run", progress=False)
    assert "\n" not in str(info.value)


def test_l1_only_objective_has_no_discriminator_and_no_gan_curve(toy_dataset, tmp_path):
    summary = train(make_config(toy_dataset, loss={"gan": "none"}), 0, tmp_path / "run",
                    progress=False)
    assert load_state(tmp_path / "run")["D"] is None
    # no GAN term: no loss_G_gan series (a flat 0.0 curve would claim a GAN loss of 0)
    assert set(summary["last_losses"]) == {"loss_G_l1"}
    series = tmp_path / "run" / "dvclive" / "plots" / "metrics" / "train"
    assert (series / "loss_G_l1.tsv").is_file() and not (series / "loss_G_gan.tsv").exists()


def test_linear_policy_matches_pytorch_code_schedule():
    # constant for the first half, then linear to 0: with 10 steps, steps 0-4 use 1.0,
    # step 5 uses 1.0, step 9 uses 1/5 (the last update), and the lr after training is 0.
    f = lr_factor("linear", 10)
    assert [f(s) for s in (0, 4, 5, 6, 9, 10)] == pytest.approx([1, 1, 1, 0.8, 0.2, 0.0])
    assert lr_factor("constant", 10)(9) == 1.0


def test_a_second_process_on_the_same_run_folder_stops_naming_the_holder(toy_dataset, tmp_path,
                                                                          capsys):
    # another process holds the run folder (as a running `replication train` does); this
    # one must stop with one line naming that process, and leave the folder alone
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from replication.core.fileio import exclusive\n"
         "with exclusive(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
         str(run)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = cli_main(["train", "--data", str(toy_dataset), "--out", str(run), "--no-progress",
                         "--set", "data.image_size=32", "--set", "train.iterations=2"])
        err = capsys.readouterr().err.strip()
        assert code == 1 and f"PID {holder.pid}" in err and str(run) in err and "\n" not in err
        assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (the kernel dropped its lock): the folder is usable again
    assert cli_main(["train", "--data", str(toy_dataset), "--out", str(run), "--no-progress",
                     "--set", "data.image_size=32", "--set", "generator.ngf=8",
                     "--set", "discriminator.ndf=8", "--set", "train.iterations=2"]) == 0


def cli_main(argv):
    from replication import cli
    return cli.main(argv)


def test_progress_lines_give_rate_and_eta_from_the_clock(capsys):
    from replication.core.progress import ProgressLines
    now = [0.0]
    lines = ProgressLines("train toy seed 0", total=100, clock=lambda: now[0])
    now[0] = 10.0
    assert lines.update(10) is None  # not due before 30 s
    now[0] = 40.0
    assert lines.update(40) == "train toy seed 0: 40/100 steps, 1 steps/s, ETA 60 s"
    now[0] = 45.0
    assert lines.update(45) is None  # 5 s after the last line
    now[0] = 80.0
    assert lines.update(90) == "train toy seed 0: 90/100 steps, 1.12 steps/s, ETA 9 s"
    assert capsys.readouterr().out.count("\n") == 2


def test_resuming_into_a_read_only_run_folder_is_one_line(toy_dataset, tmp_path, capsys,
                                                          read_only):
    from replication import cli
    run = tmp_path / "run"
    argv = ["train", "--data", str(toy_dataset), "--out", str(run), "--no-progress",
            "--set", "generator.ngf=8", "--set", "discriminator.ndf=8",
            "--set", "data.image_size=32", "--set", "train.iterations=4"]
    assert cli.main([*argv, "--stop-after", "2"]) == 0
    state = (run / "checkpoints" / "state.pt").read_bytes()
    read_only(run)
    read_only(run / "checkpoints")
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {run}") and "\n" not in err and "read-only" in err
    assert (run / "checkpoints" / "state.pt").read_bytes() == state


def test_stop_after_zero_is_refused_not_a_whole_run(toy_dataset, tmp_path):
    from replication.core.errors import ConfigError
    with pytest.raises(ConfigError, match="stop_after=0 must be an integer >= 1"):
        train(make_config(toy_dataset), 0, tmp_path / "run", stop_after=0, progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()
