"""The PatchGAN discriminators checked against independent facts: the reference parameter
counts (docs/architectures.md, PyTorch code), receptive fields measured by
back-propagation, output map sizes, and what the conditional and unconditional D see."""

import pytest
import torch
from torch import nn

from replication.models import count_parameters
from tests.helpers.networks import discriminator


@pytest.mark.parametrize("receptive_field, count", [(1, 9_024), (16, 139_585), (70, 2_768_705),
                                                    (286, 11_159_361)])
def test_discriminator_parameter_counts(receptive_field, count):
    assert count_parameters(discriminator(receptive_field, conditional=True)) == count


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
