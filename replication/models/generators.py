"""pix2pix generators: U-Net and encoder-decoder (paper §3.2.1 and §6.1, docs/architectures.md).

Notation (paper §6.1): Ck = Conv 4x4 stride 2 - BatchNorm - ReLU with k filters; CDk = the
same with Dropout after BatchNorm. Encoder ReLUs leak (slope 0.2), decoder ReLUs do not.
Both generators share the encoder C64-C128-C256-C512-C512-C512-C512-C512 (256 px -> 1 px);
the U-Net adds a skip from encoder layer i to decoder layer n-i, the encoder-decoder has none.

Each layer starts with the activation of the previous one (as in both official codes), so
the skips carry the pre-activation encoder features and the decoder ReLU also rectifies
them; the PyTorch code's in-place leaky ReLU gives ReLU(leaky(e)) = ReLU(e), the same thing.
"""

from __future__ import annotations

import torch
from torch import nn

from replication.config.schema import GeneratorConfig

# Which decoder layers carry dropout, counted from the bottleneck (0 = first decoder layer).
# paper + Lua code: the first three (outputs 2x2, 4x4, 8x8 at 256 px).
# PyTorch code: its innermost block has none, so the next three (4x4, 8x8, 16x16) at 256 px;
# its UnetGenerator puts dropout on the num_downs - 5 blocks above the innermost one, so
# fewer at smaller sizes (unet_128: 4x4, 8x8) -- see dropout_layers.
# At small sizes a listed layer that would be the output layer does not exist.
DROPOUT_LAYERS = {"paper": (0, 1, 2), "pytorch_code": (1, 2, 3), "none": ()}


def dropout_layers(dropout: str, depth: int) -> tuple[int, ...]:
    """The decoder layers with dropout in a generator of `depth` down-sampling layers."""
    if dropout == "pytorch_code":  # 256 px (depth 8): (1, 2, 3), DROPOUT_LAYERS' value
        return tuple(range(1, depth - 4))
    return DROPOUT_LAYERS[dropout]


def conv_bias(norm: str) -> bool:
    # BatchNorm's beta makes a conv bias redundant. Like the PyTorch code (whose counts,
    # e.g. U-Net-256 = 54,413,955, are the references in docs/architectures.md), a
    # BatchNorm network drops the bias of every U-Net conv but the last, even the first
    # and the innermost, which no BN follows; the Lua code gives every conv a bias (576 more parameters at 256 px).
    # Instance norm here is affine=False (PyTorch code) and the convs keep their bias,
    # as in the PyTorch code, although the per-channel mean subtraction cancels it.
    return norm != "batch"


def norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


class Torch7BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that, like Torch7's, also trains on a single value per channel.

    The paper's networks had BatchNorm on the 1x1 bottleneck (errata); at batch 1 that
    layer sees N x H x W = 1 value per channel. Torch7 normalised it anyway: x - mean = 0,
    so the output is beta, and the gradients to x and gamma are exactly zero (PyTorch's
    BatchNorm raises instead). Every other case is nn.BatchNorm2d's own forward.
    Running statistics: the mean is updated as Torch7 did; Torch7's unbiased variance
    0 / 0 would be NaN, so the running variance is left as it is (only eval-mode
    generation reads it).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1):
            return super().forward(x)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)  # = x: the one value of each channel
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean.flatten(), self.momentum)
        normalised = (x - mean) * (self.eps ** -0.5)  # zero, with zero gradient to x
        return normalised * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def init_weights(module: nn.Module) -> nn.Module:
    """docs/method.md: conv/deconv weights ~ N(0, 0.02), biases 0; BN gamma ~ N(1, 0.02), beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def encoder_widths(depth: int, ngf: int) -> list[int]:
    # paper: 64, 128, 256, 512, 512, ... (doubling, capped at 8 * ngf)
    return [min(ngf * 2**i, ngf * 8) for i in range(depth)]


def down_layer(c_in: int, c_out: int, norm: str, *, first: bool, normalised: bool,
               innermost: bool = False) -> nn.Sequential:
    layers = [] if first else [nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=conv_bias(norm)))
    if normalised:
        # the 1x1 bottleneck (bottleneck_norm) sees one value per channel at batch 1
        bottleneck_bn = innermost and norm == "batch"
        layers.append(Torch7BatchNorm2d(c_out) if bottleneck_bn else norm_layer(norm, c_out))
    return nn.Sequential(*layers)


def up_layer(c_in: int, c_out: int, norm: str, dropout_rate: float) -> nn.Sequential:
    layers = [nn.ReLU(),
              nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=conv_bias(norm)),
              norm_layer(norm, c_out)]
    if dropout_rate > 0:
        layers.append(nn.Dropout(dropout_rate))  # paper: CDk = Dropout after BatchNorm
    return nn.Sequential(*layers)


def output_layer(c_in: int, out_channels: int) -> nn.Sequential:
    # paper §6.1.1: "a convolution is applied to map to the number of output channels,
    # followed by a Tanh"; it up-samples like the other decoder layers and keeps its bias.
    return nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_in, out_channels, 4, stride=2, padding=1),
                         nn.Tanh())


def build_encoder(in_channels: int, widths: list[int], norm: str,
                  bottleneck_norm: bool) -> list[nn.Module]:
    layers, c_in = [], in_channels
    for i, c_out in enumerate(widths):
        first, innermost = i == 0, i == len(widths) - 1
        # no norm on the first layer (paper); none on the 1x1 bottleneck either (errata:
        # BN at batch size 1 zeroes it); bottleneck_norm=True restores the v1 paper's BN.
        normalised = not first and (bottleneck_norm or not innermost)
        layers.append(down_layer(c_in, c_out, norm, first=first, normalised=normalised,
                                 innermost=innermost))
        c_in = c_out
    return layers


def build_decoder(widths: list[int], out_channels: int, norm: str, dropout: str,
                  dropout_rate: float, skips: bool) -> list[nn.Module]:
    layers, c_in = [], widths[-1]
    # decoder layer j mirrors encoder layer depth-2-j: output widths 512, ..., 128, 64
    for j, c_out in enumerate(reversed(widths[:-1])):
        rate = dropout_rate if j in dropout_layers(dropout, len(widths)) else 0.0
        layers.append(up_layer(c_in, c_out, norm, rate))
        c_in = 2 * c_out if skips else c_out  # U-Net: the skip doubles the next input
    layers.append(output_layer(c_in, out_channels))
    return layers


class Generator(nn.Module):
    def __init__(self, encoder: list[nn.Module], decoder: list[nn.Module], skips: bool,
                 in_channels: int):
        super().__init__()
        self.encoder = nn.ModuleList(encoder)  # encoder[-1] outputs the bottleneck
        self.decoder = nn.ModuleList(decoder)
        self.skips = skips
        self.in_channels = in_channels

    def check_input(self, x: torch.Tensor) -> None:
        # fully convolutional: any size divisible by 2^depth works (the paper runs its
        # 256-px maps generator on 512-px images), but a remainder would break the skips
        multiple = 2 ** len(self.encoder)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"generator expects (N, {self.in_channels}, H, W) images, "
                             f"got shape {tuple(x.shape)}")
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(f"generator with {len(self.encoder)} down-sampling layers needs H "
                             f"and W divisible by {multiple}, got {tuple(x.shape[2:])}; "
                             f"resize the input")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        features = []
        for down in self.encoder:
            x = down(x)
            features.append(x)
        features.pop()  # the bottleneck feeds the decoder directly, it is no skip
        for up in self.decoder:
            x = up(x)
            if self.skips and features:
                x = self.join(x, features.pop())
        return x

    def join(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """A U-Net skip: [decoder output, encoder feature] on channels (fusion.py joins
        them run by run)."""
        return torch.cat([up, skip], dim=1)


def build_generator(g: GeneratorConfig, image_size: int, in_channels: int,
                    out_channels: int) -> Generator:
    """The generator `g` describes, for square images of side image_size (a power of two,
    checked by config.validate), initialised per docs/method.md."""
    widths = encoder_widths(image_size.bit_length() - 1, g.ngf)  # 256 px: 8 layers to 1 px
    skips = g.arch == "unet"
    encoder = build_encoder(in_channels, widths, g.norm, g.bottleneck_norm)
    decoder = build_decoder(widths, out_channels, g.norm, g.dropout, g.dropout_rate, skips)
    return init_weights(Generator(encoder, decoder, skips, in_channels))
