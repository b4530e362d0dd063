"""pix2pix networks (pure nn.Modules), built from their config, and the objective
(losses.py): docs/method.md, docs/architectures.md."""

from torch import nn

from replication.config.schema import ExperimentConfig
from replication.models.discriminators import Discriminator, build_discriminator
from replication.models.generators import Generator, build_generator, init_weights
from replication.models.losses import discriminator_loss, generator_loss

RGB = 3  # channels of every image the paper's tasks translate


def build(cfg: ExperimentConfig) -> tuple[Generator, Discriminator | None]:
    """G and D as the experiment describes them; no D for the L1-only objective."""
    G = build_generator(cfg.generator, cfg.data.image_size, RGB, RGB)
    if cfg.loss.gan == "none":
        return G, None
    return G, build_discriminator(cfg.discriminator, cfg.loss.gan == "conditional", RGB, RGB)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["Discriminator", "Generator", "build", "build_discriminator", "build_generator",
           "count_parameters", "discriminator_loss", "generator_loss", "init_weights"]
