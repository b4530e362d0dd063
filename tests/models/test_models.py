"""Generator and discriminator checked against independent facts: the reference parameter
counts (docs/architectures.md, PyTorch code), receptive fields measured by back-propagation, and the
architectural properties the paper's experiments rely on."""

import pytest
import torch
from torch import nn

from replication.config.schema import (
    DiscriminatorConfig,
    ExperimentConfig,
    GeneratorConfig,
    from_dict,
)
from replication.core.errors import ConfigError
from replication.models import build_discriminator, build_generator, count_parameters


def generator(arch: str = "unet", size: int = 256, in_channels: int = 3, out_channels: int = 3,
              **settings):
    """build_generator from a GeneratorConfig with `settings` changed (paper defaults)."""
    return build_generator(GeneratorConfig(arch=arch, **settings), size, in_channels, out_channels)


def discriminator(receptive_field: int = 70, conditional: bool = True, **settings):
    return build_discriminator(DiscriminatorConfig(receptive_field=receptive_field, **settings),
                               conditional, 3, 3)


def test_unet_256_parameter_count():
    assert count_parameters(generator("unet", 256)) == 54_413_955


def test_bottleneck_norm_adds_one_batchnorm_on_512_channels():
    plain = count_parameters(generator("unet", 256))
    with_bn = count_parameters(generator("unet", 256, bottleneck_norm=True))
    assert with_bn - plain == 2 * 512  # gamma and beta of a 512-channel BatchNorm


@pytest.mark.parametrize("receptive_field, count", [(1, 9_024), (16, 139_585), (70, 2_768_705),
                                                    (286, 11_159_361)])
def test_discriminator_parameter_counts(receptive_field, count):
    assert count_parameters(discriminator(receptive_field, conditional=True)) == count


def test_initialisation_follows_spec():
    # docs/method.md: conv weights ~ N(0, 0.02), biases 0; BatchNorm gamma ~ N(1, 0.02), beta 0.
    # Bounds are sampling error, not rounding: with n draws the mean's std is 0.02 / sqrt(n)
    # and the sample std's relative std 1 / sqrt(2n). Conv, n = 2,097,152: mean within
    # 1e-3 = 70 sigma, std within 1% = 140 sigma. Gammas, n = 2,880: mean within 2e-3 =
    # 5 sigma, std within 10% = 7.6 sigma. A wrong init (std 1, or 0.2) is far outside.
    g = generator("unet", 64, ngf=64)
    conv = g.encoder[3][1].weight  # 256 -> 512 channels, 2M samples
    assert abs(conv.mean().item()) < 1e-3 and conv.std().item() == pytest.approx(0.02, rel=0.01)
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    gammas = torch.cat([bn.weight.detach() for bn in bns])
    assert gammas.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert gammas.std().item() == pytest.approx(0.02, rel=0.1)
    assert all(bn.bias.abs().max() == 0 for bn in bns)
    assert g.decoder[-1][1].bias.abs().max() == 0


def measured_receptive_field(d: nn.Module, size: int) -> tuple[int, int]:
    """Input pixels along each axis with non-zero gradient for one central output unit."""
    # eval(): BatchNorm then uses fixed running statistics; in train mode the batch mean and
    # variance would couple every pixel to every output and the whole image would light up.
    d.eval()
    x = torch.randn(1, 3, size, size, requires_grad=True)
    y = torch.randn(1, 3, size, size)
    out = d(x, y)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) != 0
    return int(touched.any(dim=1).sum()), int(touched.any(dim=0).sum())


@pytest.mark.parametrize("receptive_field, size", [(1, 256), (16, 256), (70, 256), (286, 320)])
def test_receptive_field_measured(receptive_field, size):
    # widths do not change the geometry: ndf=8 keeps this fast. 286 > 256, so the 286 D is
    # measured on 320 px, where its central unit's field lies inside the image.
    d = discriminator(receptive_field, ndf=8)
    assert measured_receptive_field(d, size) == (receptive_field, receptive_field)


@pytest.mark.parametrize("receptive_field, side", [(1, 256), (16, 126), (70, 30), (286, 6)])
def test_discriminator_output_map_at_256(receptive_field, side):
    d = discriminator(receptive_field, ndf=8).eval()
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert d(x, x).shape == (1, 1, side, side)


def two_outputs(arch: str, zero_bottleneck: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """G's outputs for two different inputs; deterministic since dropout is off."""
    # train mode: BatchNorm uses batch statistics and keeps activations O(1); with the
    # untrained running statistics of eval mode the N(0, 0.02) weights shrink them to ~0
    torch.manual_seed(0)
    g = generator(arch, 64, ngf=16, dropout="none")
    if zero_bottleneck:  # replace the innermost encoder layer's output by zeros
        g.encoder[-1].register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    with torch.no_grad():
        return g(torch.randn(1, 3, 64, 64)), g(torch.randn(1, 3, 64, 64))


def test_encoder_decoder_output_depends_only_on_bottleneck():
    a, b = two_outputs("encoder_decoder", zero_bottleneck=False)
    assert (a - b).abs().max() > 1e-3  # control: the input does matter normally
    a, b = two_outputs("encoder_decoder", zero_bottleneck=True)
    assert torch.equal(a, b)


def test_unet_skips_carry_detail_past_zeroed_bottleneck():
    a, b = two_outputs("unet", zero_bottleneck=True)
    assert (a - b).abs().max() > 1e-3


def test_unconditional_discriminator_takes_only_y():
    d = discriminator(70, conditional=False, ndf=8)
    assert d.conditional is False
    assert d.model[0].in_channels == 3  # the first conv sees y's 3 channels, no room for x
    y = torch.randn(1, 3, 64, 64)
    assert d(y).shape == (1, 1, 6, 6)
    with pytest.raises(TypeError, match="never sees"):
        d(y, y)


def test_conditional_discriminator_output_depends_on_x():
    torch.manual_seed(0)
    d = discriminator(70, conditional=True, ndf=8).eval()
    assert d.conditional is True
    y = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(d(torch.randn(1, 3, 64, 64), y), d(torch.randn(1, 3, 64, 64), y))
    with pytest.raises(TypeError, match=r"D\(x, y\)"):
        d(y)


def dropout_input_sides(dropout: str) -> list[int]:
    # widths do not change spatial sizes: ngf=2 makes a 256-px forward pass cheap
    g = generator("unet", 256, ngf=2, dropout=dropout).eval()
    sides = []
    for m in g.modules():
        if isinstance(m, nn.Dropout):
            m.register_forward_hook(lambda mod, inputs, out: sides.append(inputs[0].shape[-1]))
    with torch.no_grad():
        g(torch.randn(1, 3, 256, 256))
    return sides


@pytest.mark.parametrize("dropout, sides", [("paper", [2, 4, 8]), ("pytorch_code", [4, 8, 16]),
                                            ("none", [])])
def test_dropout_placement(dropout, sides):
    assert dropout_input_sides(dropout) == sides


def test_dropout_is_random_in_train_mode_only():
    g = generator("unet", 16, ngf=8)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        g.train()
        assert not torch.equal(g(x), g(x))
        g.eval()
        assert torch.equal(g(x), g(x))


@pytest.mark.parametrize("arch", ["unet", "encoder_decoder"])
@pytest.mark.parametrize("size", [16, 64, 128])
@pytest.mark.parametrize("in_channels, out_channels", [(1, 3), (3, 1)])
def test_generator_keeps_spatial_shape(arch, size, in_channels, out_channels):
    g = generator(arch, size, in_channels, out_channels, ngf=8)
    with torch.no_grad():
        y = g(torch.randn(2, in_channels, size, size))
    assert y.shape == (2, out_channels, size, size)
    assert y.abs().max() <= 1  # Tanh output, the [-1, 1] pixel range


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


def test_generator_rejects_mismatched_input():
    g = generator("unet", 16, ngf=8)
    with pytest.raises(ValueError, match="divisible by 16"):
        g(torch.randn(1, 3, 24, 24))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        g(torch.randn(1, 1, 16, 16))


def test_bottleneck_batchnorm_trains_at_batch_1_as_torch7_did():
    # errata: the paper's nets had BN on the 1x1 bottleneck; at batch 1 it sees one value
    # per channel. Torch7: x - mean = 0, output = beta, zero gradient to x and gamma
    # (PyTorch's BatchNorm2d raises "Expected more than 1 value per channel").
    torch.manual_seed(0)
    g = generator("unet", 32, ngf=8, bottleneck_norm=True).train()
    bottleneck = g.encoder[-1][-1]
    with torch.no_grad():
        bottleneck.bias.normal_()
    seen = {}
    bottleneck.register_forward_hook(lambda m, i, out: seen.update(x=i[0], y=out))
    x = torch.randn(1, 3, 32, 32)
    g(x).sum().backward()
    assert seen["y"].shape == (1, 64, 1, 1)
    assert torch.equal(seen["y"].flatten(), bottleneck.bias.detach())
    assert torch.count_nonzero(bottleneck.weight.grad) == 0  # gamma multiplies zero
    assert torch.count_nonzero(bottleneck.bias.grad) > 0
    assert torch.count_nonzero(g.encoder[-1][1].weight.grad) == 0  # no gradient below it
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(64).train()(seen["x"].detach())


def test_bottleneck_batchnorm_is_plain_batchnorm_above_batch_1():
    torch.manual_seed(0)
    g = generator("unet", 32, ngf=8, bottleneck_norm=True).train()
    bottleneck = g.encoder[-1][-1]
    plain = nn.BatchNorm2d(64)
    plain.load_state_dict(bottleneck.state_dict())
    x = torch.randn(2, 64, 1, 1)
    assert torch.equal(bottleneck(x), plain(x))
    assert torch.equal(bottleneck.running_var, plain.running_var)


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
