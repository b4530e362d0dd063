"""The command line: every option explained, input errors as one line, exit codes."""

from __future__ import annotations

import argparse

import pytest

from replication import cli


def subparsers(command: str) -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser([command])
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_option_has_help(command):
    parser = subparsers(command)[command]
    for action in parser._actions:
        if action.dest != "help":
            assert action.help and len(action.help) > 10, f"{command} {action.option_strings}"


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--experiment" in out and "--stop-after" in out and "--set" in out


def test_bad_input_is_one_line_error(tmp_path, capsys):
    code = cli.main(["train", "--data", str(tmp_path / "nowhere"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err
    assert "nowhere" in err


def test_bad_setting_is_one_line_error(toy_dataset, capsys):
    code = cli.main(["train", "--data", str(toy_dataset), "--set", "train.lr_policy=cosine"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "train.lr_policy='cosine'" in err and "\n" not in err


def test_config_prints_paper_defaults(capsys):
    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.0002" in out and "receptive_field: 70" in out


def test_a_bug_keeps_its_traceback(monkeypatch):
    # only UserError is an input error; a ValueError from a bug must not become a one-liner
    from replication.stages import config as config_stage
    def buggy(args):
        raise ValueError("internal bug")

    monkeypatch.setattr(config_stage, "run", buggy)
    with pytest.raises(ValueError, match="internal bug"):
        cli.main(["config"])


def test_every_input_error_class_is_a_user_error():
    from replication.core import errors
    from replication.data.cityscapes_build import CityscapesBuildError
    from replication.metrics.fcn import CaffeModelError
    from replication.metrics.fid import WeightsUnavailable
    from replication.results.paper import TablesError
    for cls in (errors.ConfigError, errors.DataError, errors.CheckpointError,
                errors.DownloadError, errors.ScoringError, errors.TrainingDiverged,
                CityscapesBuildError, CaffeModelError, WeightsUnavailable, TablesError):
        assert issubclass(cls, errors.UserError) and not issubclass(cls, ValueError), cls


def test_every_docs_page_the_code_cites_exists():
    import re
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    cited = set()
    for path in [*repo.glob("replication/**/*.py"), repo / "params.yaml", repo / "README.md"]:
        cited |= set(re.findall(r"docs/[a-z_-]+\.md", path.read_text()))
    assert cited and all((repo / page).is_file() for page in cited), sorted(cited)


def test_every_command_the_code_and_docs_tell_a_user_to_run_exists():
    # `replication X ...` in backticks, and `python -m replication X` in dvc.yaml / scripts
    import re
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    texts = [*repo.glob("replication/**/*.py"), *repo.glob("docs/*.md"), repo / "README.md",
             repo / "params.yaml", repo / "dvc.yaml", *repo.glob("scripts/*"),
             *repo.glob("benchmarks/*.md")]
    named = set()
    for path in texts:
        text = path.read_text()
        named |= set(re.findall(r"`replication ([a-z][a-z-]*)", text))
        named |= set(re.findall(r"python3? -m replication ([a-z][a-z-]*)", text))
    assert named and named <= set(cli.COMMANDS), sorted(named - set(cli.COMMANDS))


def test_config_of_a_flat_folder_shows_its_splits(tmp_path, capsys):
    from replication.data.synthetic.toy import write_pairs
    flat = write_pairs(tmp_path / "pairs", {"train": 2}) / "train"
    assert cli.main(["config", "--data", str(flat)]) == 0
    out = capsys.readouterr().out
    assert "train_split: ." in out and "test_split: ." in out and "dataset: train" in out


def test_translate_is_a_command():
    parser = subparsers("translate")["translate"]
    options = {o for a in parser._actions for o in a.option_strings}
    assert {"--checkpoint", "--in", "--out", "--mode", "--sample-seed"} <= options


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_help_starts_with_what_the_command_does_for_a_user(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]  # after the usage line(s)
    assert description.startswith(f"replication {command}: {cli.COMMANDS[command][1]}")
    assert "(cfg" not in out and "def " not in out  # no developer notes


@pytest.mark.parametrize("argv, needle", [
    (["generate", "--checkpoint", "G.pt", "--out", "o", "--batch-size", "-1"], "--batch-size"),
    (["translate", "--checkpoint", "G.pt", "--in", "i", "--out", "o", "--batch-size", "0"],
     "--batch-size"),
    (["train", "--data", "d", "--stop-after", "0"], "--stop-after"),
    (["train", "--data", "d", "--seed", "-1"], "seed -1"),
    (["bench", "--gen-batch", "0"], "--gen-batch"),
])
def test_a_count_below_one_is_refused_in_one_line_before_anything_runs(argv, needle, capsys):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err


def test_an_unsupported_device_is_one_line(toy_dataset, capsys):
    code = cli.main(["train", "--data", str(toy_dataset), "--set", "train.device=bogus"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "train.device='bogus'" in err and "\n" not in err


def test_config_says_where_each_value_comes_from(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    import yaml
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["scale"] = "smoke"
    params["experiments"]["cityscapes-l1-cgan-lr1e-4"] = {"data": {"dataset": "cityscapes"},
                                                          "train": {"lr": 1e-4}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["config", "-e", "cityscapes-l1-cgan-lr1e-4", "--set", "train.beta1=0.9"]) == 0
    notes = {line.split("#")[0].strip(): line.split("#", 1)[1].strip()
             for line in capsys.readouterr().out.splitlines()
             if "#" in line and not line.startswith("#")}
    assert notes["lr: 0.0001"] == "experiment; paper: 0.0002"
    assert notes["beta1: 0.9"] == "command line; paper: 0.5"
    assert notes["ngf: 16"] == "scale smoke; paper: 64"
    assert notes["test_split: val"] == "dataset"  # the paper's for Cityscapes
    assert notes["l1_weight: 100.0"] == "paper"
    # one of epochs / iterations decides the steps, and the output says which
    assert notes["epochs: 200"] == "dataset; not used: train.iterations decides the steps"
    assert notes["iterations: 100"].endswith("decides the steps (overrides epochs)")
    # the baseline the tables infer (the test-time study of cityscapes-l1-cgan is no
    # setting of its runs: only the lr differs)
    assert notes["compare_to: null"] == ("tables use cityscapes-l1-cgan (closest paper "
                                         "experiment (differs in train.lr))")
    assert cli.main(["config", "-e", "cityscapes-l1-cgan-lr1e-4", "--plain"]) == 0
    plain = yaml.safe_load(capsys.readouterr().out)
    assert plain["train"]["lr"] == 1e-4 and plain["compare_to"] is None
