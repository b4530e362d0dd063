"""Which device a run computes on: `auto` is CUDA where it exists, else the CPU."""

from __future__ import annotations

import torch

from replication.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` | `cpu` | `cuda` | `cuda:N` -> a device that exists here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} but CUDA is not available; use 'cpu' or 'auto'")
    return device
