"""The two networks built from their configs with some settings changed (tests only)."""

from replication.config.schema import DiscriminatorConfig, GeneratorConfig
from replication.models import build_discriminator, build_generator


def generator(arch: str = "unet", size: int = 256, in_channels: int = 3, out_channels: int = 3,
              **settings):
    """build_generator from a GeneratorConfig with `settings` changed (paper defaults)."""
    return build_generator(GeneratorConfig(arch=arch, **settings), size, in_channels, out_channels)


def discriminator(receptive_field: int = 70, conditional: bool = True, **settings):
    return build_discriminator(DiscriminatorConfig(receptive_field=receptive_field, **settings),
                               conditional, 3, 3)
