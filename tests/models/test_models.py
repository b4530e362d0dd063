"""What both builders share: every choice config.validate allows builds, bad settings are
refused by the config (the builders trust it), other norms build and run."""

import pytest
import torch
from torch import nn

from replication.config.schema import ExperimentConfig, from_dict
from replication.core.errors import ConfigError
from tests.helpers.networks import discriminator, generator


@pytest.mark.parametrize("norm", ["instance", "none"])
def test_other_norms_build_and_run(norm):
    g = generator("unet", 16, ngf=8, norm=norm)
    d = discriminator(16, ndf=8, norm=norm)
    x = torch.randn(1, 3, 16, 16)
    assert d(x, g(x)).shape == (1, 1, 6, 6)
    # no BatchNorm, so every conv keeps its bias (PyTorch code's use_bias)
    assert all(m.bias is not None for m in g.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("setting, message", [
    ({"data": {"image_size": 100}}, "image_size=100"), ({"data": {"image_size": 8}}, "image_size=8"),
    ({"discriminator": {"receptive_field": 34}}, "receptive_field=34"),
    ({"generator": {"arch": "resnet"}}, "arch='resnet'"),
    ({"discriminator": {"norm": "group"}}, "norm='group'"),
    ({"generator": {"dropout": "lua"}}, "dropout='lua'"),
])
def test_bad_architecture_settings_are_refused_by_the_config(setting, message):
    # config.validate is the one place values are checked; the builders trust it
    with pytest.raises(ConfigError, match=message):
        from_dict(ExperimentConfig, setting)


def test_every_choice_the_config_allows_builds():
    # config.validate owns the lists of choices; the builders must know every one of them
    from replication.config.schema import _CHOICES
    for arch in _CHOICES["generator.arch"]:
        for dropout in _CHOICES["generator.dropout"]:
            for norm in _CHOICES["generator.norm"]:
                generator(arch, 16, ngf=4, dropout=dropout, norm=norm)
    for field in _CHOICES["discriminator.receptive_field"]:
        for norm in _CHOICES["discriminator.norm"]:
            for conditional in (True, False):
                discriminator(field, conditional, ndf=4, norm=norm)
