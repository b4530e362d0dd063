"""pix2pix discriminators: PatchGANs with receptive field 1, 16, 70 or 286.

Paper §3.2.2 and §6.1.2, docs/architectures.md.

A PatchGAN classifies each NxN patch as real or fake; it returns the map of patch logits
(N, 1, H', W') and no sigmoid: the loss applies it (losses.py). All 4x4 kernels, padding 1,
leaky ReLU 0.2, no norm on the first layer. The paper says stride 2 everywhere, but the
official codes (which produced the numbers) use stride 1 in the last two convs:

    receptive field  layers                                         output at 256 px
    1 ("PixelGAN")   1x1 convs 64 -> 128 (norm) -> 1                256x256
    16               C64(s2)-C128(s1)-conv1(s1)                     126x126
    70 (default)     C64-C128-C256(s2)-C512(s1)-conv1(s1)           30x30
    286 ("ImageGAN") C64-C128-C256-C512-C512(s2)-C512(s1)-conv1(s1) 6x6
"""

from __future__ import annotations

import torch
from torch import nn

from replication.config.schema import DiscriminatorConfig
from replication.models.generators import conv_bias, init_weights, norm_layer

# the PyTorch code's n_layers for each PatchGAN. Its n_layers=0 is NOT the PixelGAN (docs/architectures.md
# pitfall): the 1x1 discriminator is built separately by pixel_layers().
N_LAYERS = {16: 1, 70: 3, 286: 5}


def patch_layers(c_in: int, ndf: int, n_layers: int, norm: str) -> list[nn.Module]:
    # first and last convs keep their bias, the others drop it under BatchNorm (PyTorch
    # code; this gives the reference count 2,768,705 for the 70x70 D)
    layers = [nn.Conv2d(c_in, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
    c = ndf
    for n in range(1, n_layers + 1):
        c_out = ndf * min(2**n, 8)
        stride = 2 if n < n_layers else 1  # the code's stride-1 penultimate conv
        layers += [nn.Conv2d(c, c_out, 4, stride=stride, padding=1, bias=conv_bias(norm)),
                   norm_layer(norm, c_out), nn.LeakyReLU(0.2)]
        c = c_out
    layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
    return layers


def pixel_layers(c_in: int, ndf: int, norm: str) -> list[nn.Module]:
    # PyTorch code's PixelDiscriminator: only the first conv keeps its bias under
    # BatchNorm (reference count 9,024)
    return [nn.Conv2d(c_in, ndf, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=conv_bias(norm)), norm_layer(norm, 2 * ndf),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * ndf, 1, 1, bias=conv_bias(norm))]


class Discriminator(nn.Module):
    """Called as D(x, y) when conditional (cGAN, paper eq. 1), as D(y) when not (eq. 2)."""

    def __init__(self, layers: list[nn.Module], conditional: bool, in_channels: int):
        super().__init__()
        self.model = nn.Sequential(*layers)
        self.conditional = conditional  # the training loop reads this to pick the call
        self.in_channels = in_channels  # channels after concatenating x and y

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        if self.conditional and len(images) != 2:
            raise TypeError(f"a conditional discriminator is called as D(x, y) with the input "
                            f"and a real or generated output; got {len(images)} tensor(s)")
        if not self.conditional and len(images) != 1:
            raise TypeError(f"an unconditional discriminator is called as D(y) and never sees "
                            f"the input x; got {len(images)} tensors")
        # cGAN: D sees x and y stacked on channels (6 channels for RGB -> RGB)
        d_input = self.stack(images)
        if d_input.ndim != 4 or d_input.shape[1] != self.in_channels:
            raise ValueError(f"discriminator expects {self.in_channels} channels in total, "
                             f"got images of shapes {[tuple(t.shape) for t in images]}")
        return self.model(d_input)

    def stack(self, images: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """D's input: [x, y] on channels (fusion.py stacks them run by run)."""
        return torch.cat(images, dim=1)


def build_discriminator(d: DiscriminatorConfig, conditional: bool, in_channels: int,
                        out_channels: int) -> Discriminator:
    """The PatchGAN `d` describes, conditional (D(x, y), paper eq. 1) or not (D(y)),
    initialised per docs/method.md."""
    c_in = in_channels + out_channels if conditional else out_channels
    if d.receptive_field == 1:
        layers = pixel_layers(c_in, d.ndf, d.norm)
    else:
        layers = patch_layers(c_in, d.ndf, N_LAYERS[d.receptive_field], d.norm)
    return init_weights(Discriminator(layers, conditional, c_in))
