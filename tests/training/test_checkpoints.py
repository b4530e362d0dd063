"""Damaged, empty and hand-built checkpoints: one line naming the file, and restart recovers."""

from __future__ import annotations

import pytest
import torch

from replication import cli
from replication.training import checkpoints

TINY = ["--set", "data.image_size=32", "--set", "generator.ngf=8", "--set", "discriminator.ndf=8",
        "--no-progress"]


def bad_checkpoints():
    """(name, writer) of files that are not usable training states."""
    return {
        "zero-byte": lambda p: p.write_bytes(b""),
        "text": lambda p: p.write_text("not a checkpoint"),
        "format only": lambda p: torch.save({"format": checkpoints.STATE_FORMAT}, p),
        "config only": lambda p: torch.save({"format": checkpoints.STATE_FORMAT, "config": {}}, p),
        "wrong type": lambda p: torch.save({"format": checkpoints.STATE_FORMAT, "config": {},
                                            "seed": 0, "step": "3"}, p),
    }


@pytest.mark.parametrize("kind", ["zero-byte", "text", "format only", "config only", "wrong type"])
def test_unusable_state_is_one_line_naming_the_file(kind, tmp_path):
    path = tmp_path / "state.pt"
    bad_checkpoints()[kind](path)
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load(path, checkpoints.STATE_FORMAT)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_generator_snapshot_without_weights_is_refused(tmp_path):
    path = tmp_path / "generator.pt"
    torch.save({"format": checkpoints.GENERATOR_FORMAT, "config": {}, "seed": 0, "step": 1}, path)
    with pytest.raises(checkpoints.CheckpointError, match="lacks 'state_dict'"):
        checkpoints.load(path, checkpoints.GENERATOR_FORMAT)


@pytest.mark.parametrize("kind", ["zero-byte", "format only"])
def test_train_reports_a_bad_state_and_restart_recovers(kind, toy_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    state = run / "checkpoints" / "state.pt"
    state.parent.mkdir(parents=True)
    bad_checkpoints()[kind](state)
    argv = ["train", "--data", str(toy_dataset), "--out", str(run), *TINY,
            "--set", "train.iterations=2"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(state) in err and "\n" not in err
    assert cli.main([*argv, "--on-config-change", "restart"]) == 0
    assert checkpoints.load(state, checkpoints.STATE_FORMAT)["step"] == 2


def test_state_whose_tensors_do_not_fit_is_one_line(toy_dataset, tmp_path, capsys):
    # a complete-looking state with a foreign optimizer state: the loader's own KeyError /
    # ValueError becomes a CheckpointError naming the file
    run = tmp_path / "run"
    argv = ["train", "--data", str(toy_dataset), "--out", str(run), *TINY,
            "--set", "train.iterations=4"]
    assert cli.main([*argv, "--stop-after", "1"]) == 0
    state_path = run / "checkpoints" / "state.pt"
    state = torch.load(state_path, weights_only=True)
    state["opt_G"] = {"state": {}, "param_groups": []}
    torch.save(state, state_path)
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert str(state_path) in err and "does not fit" in err and "\n" not in err


def test_equal_tensors_give_equal_bytes_wherever_and_whenever_saved(tmp_path):
    # DVC compares outputs by their md5: a rerun that reproduces a checkpoint's tensors
    # must reproduce its bytes, or every stage below reruns for nothing. torch.save given
    # a path names the zip's root folder after the file name (here a random temporary
    # one), so the bytes are compared across two folders and two saves
    state = {"format": checkpoints.STATE_FORMAT, "w": torch.arange(6.0).reshape(2, 3)}
    checkpoints.save(state, tmp_path / "a" / "state.pt")
    checkpoints.save(state, tmp_path / "b" / "state.pt")
    first, second = ((tmp_path / d / "state.pt").read_bytes() for d in "ab")
    assert first == second
    assert torch.equal(torch.load(tmp_path / "a" / "state.pt")["w"], state["w"])
