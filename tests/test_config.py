"""Configuration: paper defaults, resolution order, loud failures on bad keys and values."""

from __future__ import annotations

import pytest
import yaml

from replication.config import ExperimentConfig, from_dict
from replication.errors import ConfigError
from replication.params import load_experiment, parse_overrides


def test_defaults_are_the_papers_settings():
    # docs/method.md, docs/architectures.md: Adam 2e-4 (0.5, 0.999), lambda 100, 70x70 D, U-Net, batch 1, 200
    # epochs, constant lr (Lua code), dropout on at test time, no bottleneck BN.
    cfg = ExperimentConfig()
    assert (cfg.train.lr, cfg.train.beta1, cfg.train.beta2) == (2e-4, 0.5, 0.999)
    assert cfg.loss.l1_weight == 100 and cfg.loss.gan == "conditional"
    assert cfg.loss.d_loss_scale == 0.5
    assert cfg.discriminator.receptive_field == 70 and cfg.generator.arch == "unet"
    assert cfg.train.batch_size == 1 and cfg.train.epochs == 200
    assert cfg.train.lr_policy == "constant" and cfg.generate.mode == "train"
    assert cfg.generator.bottleneck_norm is False and cfg.generator.dropout == "paper"
    assert cfg.data.jitter_size == 286 and cfg.data.flip


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
    cfg = load_experiment(write_params(tmp_path, params), "cs")
    assert cfg.name == "cs" and cfg.seeds == (0, 1)
    assert cfg.data.test_split == "val" and cfg.data.direction == "BtoA"  # registry (docs/datasets.md)
    assert cfg.train.lr == 3e-4  # experiment beats defaults
    assert cfg.train.batch_size == 10  # experiment beats the dataset's paper setting
    assert cfg.data.image_size == 64 and cfg.train.iterations == 50  # scale profile last
    assert cfg.data.jitter_size == 72  # 64 * 286/256 = 71.5 -> 72


def test_maps_paper_direction_and_split(tmp_path):
    params = {"experiments": {"m": {"data": {"dataset": "maps"}}}, "datasets": ["maps"]}
    cfg = load_experiment(write_params(tmp_path, params), "m")
    assert (cfg.data.direction, cfg.data.test_split) == ("AtoB", "val")


@pytest.mark.parametrize("entry, needle", [
    ({"train": {"lrr": 1}}, "train.lrr"),
    ({"discriminator": {"receptive_field": 34}}, "discriminator.receptive_field=34"),
    ({"train": {"batch_size": "ten"}}, "train.batch_size must be an integer"),
    ({"data": {"image_size": 100}}, "power of two"),
    ({"train": {"lr": -1.0}}, "train.lr"),
    ({"loss": {"gan": "none", "l1_weight": 0}}, "no objective"),
    ({"generator": {"bottleneck_norm": "yes"}}, "true or false"),
])
def test_bad_values_fail_with_the_key(tmp_path, entry, needle):
    entry = {**entry, "data": {"dataset": "facades", **entry.get("data", {})}}
    path = write_params(tmp_path, {"experiments": {"x": entry}})
    with pytest.raises(ConfigError) as info:
        load_experiment(path, "x")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unknown_experiment_and_scale(tmp_path):
    path = write_params(tmp_path, {"experiments": {"a": {"data": {"dataset": "maps"}}},
                                   "scale": "tiny"})
    with pytest.raises(ConfigError, match="'b' is not in"):
        load_experiment(path, "b")
    with pytest.raises(ConfigError, match="scale='tiny'"):
        load_experiment(path, "a")


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
        load_experiment(path, "a")
    with pytest.raises(ConfigError, match="not in params `datasets`"):
        load_experiment(path, "b")


def test_shipped_params_resolve_for_every_experiment_and_scale():
    import copy

    from replication.params import experiment_dict, load_params
    params = load_params("params.yaml")
    for scale in ("paper", "smoke"):
        for name in params["experiments"]:
            merged = experiment_dict({**copy.deepcopy(params), "scale": scale}, name)
            cfg = from_dict(ExperimentConfig, merged)
            assert cfg.name == name
            if scale == "smoke":
                assert cfg.data.image_size == 128 and cfg.seeds == (0,)
            else:
                assert cfg.data.image_size == 256 and cfg.train.iterations is None


def one_line_config_error(run) -> str:
    with pytest.raises(ConfigError) as err:
        run()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("scale: smoke\nexperiments:\n  cs: {data: {dataset: cityscapes}\n")
    message = one_line_config_error(lambda: load_experiment(path, "cs"))
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
    message = one_line_config_error(lambda: load_experiment(path, "cs"))
    assert str(path) in message and "must be a" in message


def test_inactive_scale_profiles_are_checked_too(tmp_path):
    params = {"scale": "paper", "experiments": {"cs": {"data": {"dataset": "cityscapes"}}},
              "scales": {"smoke": {"train": {"iteratons": 5}}}}
    message = one_line_config_error(lambda: load_experiment(write_params(tmp_path, params), "cs"))
    assert "scales.smoke.train.iteratons" in message or "iteratons" in message


# --- settings that must be finite, counts, seeds, devices --------------------------------

@pytest.mark.parametrize("entry, key", [
    ({"generator": {"dropout_rate": ".nan"}}, "generator.dropout_rate"),
    ({"train": {"lr": ".nan"}}, "train.lr"),
    ({"train": {"beta1": ".nan"}}, "train.beta1"),
    ({"train": {"beta2": "-.inf"}}, "train.beta2"),
    ({"loss": {"l1_weight": ".inf"}}, "loss.l1_weight"),
    ({"loss": {"d_loss_scale": ".nan"}}, "loss.d_loss_scale"),
    ({"data": {"memory_limit_gb": ".nan"}}, "data.memory_limit_gb"),
])
def test_nan_and_infinity_are_refused_where_a_number_must_be_finite(tmp_path, entry, key):
    # written as YAML's own spellings (.nan, .inf), which PyYAML reads as floats
    section, values = next(iter(entry.items()))
    text = (f"experiments:\n  x:\n    data: {{dataset: facades}}\n    {section}: "
            + "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}\n")
    if section == "data":
        text = text.replace("    data: {dataset: facades}\n", "").replace(
            "data: {", "data: {dataset: facades, ")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    message = one_line_config_error(lambda: load_experiment(path, "x"))
    assert key in message


def test_nan_from_the_command_line_is_refused_too():
    message = one_line_config_error(
        lambda: from_dict(ExperimentConfig, parse_overrides(["generator.dropout_rate=nan"])))
    assert "generator.dropout_rate=nan" in message


@pytest.mark.parametrize("override", ["train.batch_size=0", "train.batch_size=-1",
                                      "generate.batch_size=0", "train.checkpoint_every=0",
                                      "generate.max_images=0", "train.iterations=0",
                                      "generator.ngf=0"])
def test_counts_and_sizes_below_one_are_refused(override):
    message = one_line_config_error(
        lambda: from_dict(ExperimentConfig, parse_overrides([override])))
    assert override.split("=")[0] in message and ">= 1" in message


@pytest.mark.parametrize("seeds, needle", [([0, 0], "seed 0 twice"), ([1, 2, 1], "seed 1 twice"),
                                           ([-1], "must be >= 0"), ([], "at least one")])
def test_seeds_are_unique_and_not_negative(seeds, needle):
    message = one_line_config_error(lambda: from_dict(ExperimentConfig, {"seeds": seeds}))
    assert needle in message


@pytest.mark.parametrize("device", ["bogus", "mps", "cuda:x", "gpu", ""])
def test_a_device_this_code_does_not_run_on_is_refused(device):
    message = one_line_config_error(
        lambda: from_dict(ExperimentConfig, {"train": {"device": device}}))
    assert f"train.device={device!r}" in message and "auto, cpu, cuda or cuda:N" in message


def test_scoring_settings_follow_the_same_rules():
    from replication.metrics.settings import ScoringConfig
    for section, needle in (({"device": "mps"}, "scoring.device"),
                            ({"segmenter": {"lr": ".nan"}}, "scoring.segmenter.lr"),
                            ({"segmenter": {"widths": [8, 0, 8, 8, 8]}}, "widths[1]")):
        section = yaml.safe_load(yaml.safe_dump(section).replace("'.nan'", ".nan"))
        message = one_line_config_error(lambda: from_dict(ScoringConfig, section, "scoring"))
        assert needle in message


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
    message = one_line_config_error(lambda: load_experiment(path, "ok"))
    assert str(path) in message and needle in message


@pytest.mark.parametrize("name", ["facades-l1-cgan", "cs_lr1e-4.b10", "0seed", "x" * 100])
def test_safe_experiment_names_are_taken(tmp_path, name):
    path = write_params(tmp_path, {"experiments": {name: {"data": {"dataset": "facades"}}}})
    assert load_experiment(path, name).name == name


def test_an_experiment_given_twice_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiments:\n  x:\n    data: {dataset: facades}\n"
                    "  y:\n    data: {dataset: maps}\n"
                    "  x:\n    data: {dataset: cityscapes}\n")
    message = one_line_config_error(lambda: load_experiment(path, "x"))
    assert f"{path}:6" in message and "'x' appears twice" in message


def test_a_setting_given_twice_is_refused_in_params_and_overrides(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("experiments:\n"
                    "  x: {data: {dataset: facades}, train: {lr: 1.0e-4, lr: 2.0e-4}}\n")
    assert "'lr' appears twice" in one_line_config_error(lambda: load_experiment(path, "x"))
    message = one_line_config_error(lambda: parse_overrides(["train={lr: 1, lr: 2}"]))
    assert "'lr' appears twice" in message


def test_dvc_yaml_quotes_what_it_interpolates_into_commands(tmp_path):
    # the name reaches the command as one argument, whatever shell characters it holds:
    # DVC's own interpolation of the real dvc.yaml, then POSIX shell word splitting
    import shlex
    import shutil
    from pathlib import Path
    from dvc.repo import Repo
    root = Path(__file__).resolve().parents[1]
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
