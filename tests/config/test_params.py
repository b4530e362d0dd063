"""params.yaml read once (`Params`): the merge order, the file's shape, experiment names,
keys given twice, --set overrides."""

from __future__ import annotations

import pytest
import yaml

from replication.config.params import Params, parse_overrides
from replication.config.schema import ExperimentConfig, from_dict
from replication.core.errors import ConfigError


def one_line_config_error(run) -> str:
    with pytest.raises(ConfigError) as err:
        run()
    message = str(err.value)
    assert "\n" not in message
    return message


def write_params(tmp_path, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_resolution_order(tmp_path):
    params = {
        "scale": "smoke",
        "defaults": {"train": {"lr": 1e-4}},
        "experiments": {"cs": {"data": {"dataset": "cityscapes"},
                               "train": {"batch_size": 10, "lr": 3e-4}, "seeds": [0, 1]}},
        "scales": {"smoke": {"data": {"image_size": 64}, "train": {"iterations": 50}}},
    }
    cfg = Params.load(write_params(tmp_path, params)).config("cs")
    assert cfg.name == "cs" and cfg.seeds == (0, 1)
    assert cfg.data.test_split == "val" and cfg.data.direction == "BtoA"  # registry (docs/datasets.md)
    assert cfg.train.lr == 3e-4  # experiment beats defaults
    assert cfg.train.batch_size == 10  # experiment beats the dataset's paper setting
    assert cfg.data.image_size == 64 and cfg.train.iterations == 50  # scale profile last
    assert cfg.data.jitter_size == 72  # 64 * 286/256 = 71.5 -> 72


def test_maps_paper_direction_and_split(tmp_path):
    params = {"experiments": {"m": {"data": {"dataset": "maps"}}}, "datasets": ["maps"]}
    cfg = Params.load(write_params(tmp_path, params)).config("m")
    assert (cfg.data.direction, cfg.data.test_split) == ("AtoB", "val")


def test_unknown_experiment_and_scale(tmp_path):
    path = write_params(tmp_path, {"experiments": {"a": {"data": {"dataset": "maps"}}},
                                   "scale": "tiny"})
    with pytest.raises(ConfigError, match="'b' is not in"):
        Params.load(path).config("b")
    with pytest.raises(ConfigError, match="scale='tiny'"):
        Params.load(path).config("a")


def test_overrides_parse_as_yaml():
    assert parse_overrides(["train.lr=0.5", "loss.gan=none", "seeds=[1, 2]"]) == {
        "train": {"lr": 0.5}, "loss": {"gan": "none"}, "seeds": [1, 2]}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["train.lr"])
    # PyYAML reads "1e-4" (no dot) as a string; float fields still accept it
    cfg = from_dict(ExperimentConfig, parse_overrides(["train.lr=1e-4", "seeds=[1, 2]"]))
    assert cfg.train.lr == 1e-4 and cfg.seeds == (1, 2)


def test_experiment_must_name_a_listed_dataset(tmp_path):
    path = write_params(tmp_path, {"experiments": {"a": {}, "b": {"data": {"dataset": "maps"}}},
                                   "datasets": ["facades"]})
    with pytest.raises(ConfigError, match="must name its dataset"):
        Params.load(path).config("a")
    with pytest.raises(ConfigError, match="not in params `datasets`"):
        Params.load(path).config("b")


def test_shipped_params_resolve_for_every_experiment_and_scale():

    params = Params.load("params.yaml")
    for scale in ("paper", "smoke"):
        for name in params.experiments:
            cfg = params.at_scale(scale).config(name)
            assert cfg.name == name
            if scale == "smoke":
                assert cfg.data.image_size == 128 and cfg.seeds == (0,)
            else:
                assert cfg.data.image_size == 256 and cfg.train.iterations is None


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scale: smoke\nexperiments:\n  cs: {data: {dataset: cityscapes}\n")
    message = one_line_config_error(lambda: Params.load(path).config("cs"))
    assert f"{path}:" in message and "not valid YAML" in message
    line = int(message.split(f"{path}:")[1].split(":")[0])
    assert line in (3, 4)  # the unclosed flow mapping: PyYAML marks where it noticed


def test_override_that_is_not_yaml_names_the_override():
    message = one_line_config_error(lambda: parse_overrides(["train.lr=[1"]))
    assert "train.lr=[1" in message and "not valid YAML" in message


@pytest.mark.parametrize("params", [
    {"experiments": ["cs", "maps"]},
    {"experiments": {"cs": ["data", "cityscapes"]}},
    {"scales": {"smoke": [1, 2]}},
    {"defaults": [1]},
    {"datasets": "cityscapes"},
])
def test_sections_of_the_wrong_kind_are_refused(tmp_path, params):
    path = write_params(tmp_path, params)
    message = one_line_config_error(lambda: Params.load(path).config("cs"))
    assert str(path) in message and "must be a" in message


def test_inactive_scale_profiles_are_checked_too(tmp_path):
    params = {"scale": "paper", "experiments": {"cs": {"data": {"dataset": "cityscapes"}}},
              "scales": {"smoke": {"train": {"iteratons": 5}}}}
    message = one_line_config_error(lambda: Params.load(write_params(tmp_path, params)).config("cs"))
    assert "scales.smoke.train.iteratons" in message or "iteratons" in message


# --- experiment names and duplicate keys ----------------------------------------------

@pytest.mark.parametrize("name, needle", [
    ("../../escape", "not a safe folder name"), ("x$(touch F)", "not a safe folder name"),
    ("a b", "not a safe folder name"), (".hidden", "not a safe folder name"),
    ("-rf", "not a safe folder name"), ("x/y", "not a safe folder name"),
    ("ground-truth", "reserved"), ("segmenter", "reserved"), ("metrics", "reserved"),
    ("x" * 101, "101 characters"),
])
def test_unsafe_experiment_names_are_refused(tmp_path, name, needle):
    path = write_params(tmp_path, {"experiments": {name: {"data": {"dataset": "facades"}},
                                                   "ok": {"data": {"dataset": "facades"}}}})
    message = one_line_config_error(lambda: Params.load(path).config("ok"))
    assert str(path) in message and needle in message


@pytest.mark.parametrize("name", ["facades-l1-cgan", "cs_lr1e-4.b10", "0seed", "x" * 100])
def test_safe_experiment_names_are_taken(tmp_path, name):
    path = write_params(tmp_path, {"experiments": {name: {"data": {"dataset": "facades"}}}})
    assert Params.load(path).config(name).name == name


def test_an_experiment_given_twice_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiments:\n  x:\n    data: {dataset: facades}\n"
                    "  y:\n    data: {dataset: maps}\n"
                    "  x:\n    data: {dataset: cityscapes}\n")
    message = one_line_config_error(lambda: Params.load(path).config("x"))
    assert f"{path}:6" in message and "'x' appears twice" in message


def test_a_setting_given_twice_is_refused_in_params_and_overrides(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiments:\n"
                    "  x: {data: {dataset: facades}, train: {lr: 1.0e-4, lr: 2.0e-4}}\n")
    assert "'lr' appears twice" in one_line_config_error(lambda: Params.load(path).config("x"))
    message = one_line_config_error(lambda: parse_overrides(["train={lr: 1, lr: 2}"]))
    assert "'lr' appears twice" in message


def test_dvc_yaml_quotes_what_it_interpolates_into_commands(tmp_path):
    # the name reaches the command as one argument, whatever shell characters it holds:
    # DVC's own interpolation of the real dvc.yaml, then POSIX shell word splitting
    import shlex
    import shutil
    from pathlib import Path

    from dvc.repo import Repo
    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "dvc.yaml", tmp_path / "dvc.yaml")
    hostile = "x$(touch F); echo `id`"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "scale": "paper", "datasets": ["fac ades;id"], "launcher": {"train": "python -m"},
        "experiments": {hostile: {"data": {"dataset": "facades"}}}}))
    repo = Repo.init(str(tmp_path), no_scm=True)
    commands = {stage.name: stage.cmd for stage in repo.index.stages}
    for stage in ("train", "generate", "score"):
        words = shlex.split(commands[f"{stage}@{hostile}"])
        assert words[words.index("--experiment") + 1] == hostile, stage
    words = shlex.split(commands["download@fac ades;id"])
    assert words[words.index("download") + 1] == "fac ades;id"


def test_each_layer_beats_the_one_below_it(tmp_path):
    # the order README and Params.layers state: the dataset's paper settings (docs/datasets.md:
    # edges2shoes trains at batch 4, paper section 4) < `defaults` < the experiment < the
    # scale profile < the command line. One key per boundary, set on both sides of it.
    params = {"scale": "smoke", "datasets": ["edges2shoes"],
              "defaults": {"train": {"batch_size": 2, "lr": 1e-4}},
              "experiments": {"cs": {"data": {"dataset": "edges2shoes"},
                                     "train": {"lr": 3e-4, "iterations": 7}}},
              "scales": {"smoke": {"train": {"iterations": 5, "beta1": 0.9}}}}
    loaded = Params.load(write_params(tmp_path, params))
    cfg = loaded.config("cs")
    assert cfg.train.batch_size == 2  # defaults over the dataset's batch 4
    assert cfg.train.lr == 3e-4  # the experiment over defaults
    assert cfg.train.iterations == 5  # the scale over the experiment
    set_on_command_line = loaded.config("cs", overrides={"train": {"beta1": 0.7}})
    assert set_on_command_line.train.beta1 == 0.7  # the command line over the scale
    del params["defaults"]
    assert Params.of(params).config("cs").train.batch_size == 4  # the dataset's own


def test_a_config_is_resolved_once_and_overrides_are_never_cached(tmp_path):
    params = {"experiments": {"f": {"data": {"dataset": "facades"}}}, "datasets": ["facades"]}
    loaded = Params.load(write_params(tmp_path, params))
    assert loaded.config("f") is loaded.config("f")
    overridden = loaded.config("f", overrides={"train": {"lr": 0.5}})
    assert overridden.train.lr == 0.5 and loaded.config("f").train.lr == 2e-4


def test_a_top_level_section_nothing_reads_is_refused(tmp_path):
    # e.g. the former `tables:` section, which no code read: accepting it would let a
    # researcher believe a setting took effect
    path = write_params(tmp_path, {"tables": {"digits": 2}})
    message = one_line_config_error(lambda: Params.load(path))
    assert "unknown top-level key 'tables'" in message
