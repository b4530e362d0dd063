"""The generators checked against independent facts: the reference parameter count
(docs/architectures.md, PyTorch code), the initialisation of docs/method.md as sampling
statistics, and the properties the paper's experiments rely on (U-Net skips vs the
encoder-decoder's bottleneck, dropout placement, the errata's bottleneck BatchNorm)."""

import pytest
import torch
from torch import nn

from replication.models import count_parameters
from tests.helpers.networks import generator


def test_unet_256_parameter_count():
    assert count_parameters(generator("unet", 256)) == 54_413_955


def test_bottleneck_norm_adds_one_batchnorm_on_512_channels():
    plain = count_parameters(generator("unet", 256))
    with_bn = count_parameters(generator("unet", 256, bottleneck_norm=True))
    assert with_bn - plain == 2 * 512  # gamma and beta of a 512-channel BatchNorm


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
