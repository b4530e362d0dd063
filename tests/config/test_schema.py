"""The settings themselves (config/schema.py): paper defaults, loud one-line failures on
bad keys and values, with the dotted key."""

from __future__ import annotations

import pytest
import yaml

from replication.config.params import Params, parse_overrides
from replication.config.schema import ExperimentConfig, from_dict
from replication.core.errors import ConfigError
from tests.config.test_params import one_line_config_error, write_params


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
        Params.load(path).config("x")
    assert needle in str(info.value) and "\n" not in str(info.value)


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
    message = one_line_config_error(lambda: Params.load(path).config("x"))
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
    from replication.config.scoring import ScoringConfig
    for section, needle in (({"device": "mps"}, "scoring.device"),
                            ({"segmenter": {"lr": ".nan"}}, "scoring.segmenter.lr"),
                            ({"segmenter": {"widths": [8, 0, 8, 8, 8]}}, "widths[1]")):
        section = yaml.safe_load(yaml.safe_dump(section).replace("'.nan'", ".nan"))
        message = one_line_config_error(lambda: from_dict(ScoringConfig, section, "scoring"))
        assert needle in message
