"""pix2pix networks (pure nn.Modules) and the objective (losses.py), docs/method.md, docs/architectures.md."""

from torch import nn

from replication.models.discriminators import RECEPTIVE_FIELDS, Discriminator, build_discriminator
from replication.models.generators import Generator, build_generator, init_weights
from replication.models.losses import discriminator_loss, generator_loss


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "RECEPTIVE_FIELDS", "Discriminator", "Generator", "build_discriminator", "build_generator",
    "count_parameters", "discriminator_loss", "generator_loss", "init_weights",
]
