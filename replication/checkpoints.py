"""The two checkpoint kinds (EDM/nanoGPT habit): plain state_dicts plus the config.

- generator snapshot (`generator.pt`): what `generate` needs — G weights and the config.
- training state (`state.pt`): everything exact resume needs — G, D, both optimisers,
  both schedulers, every RNG state and the step counter (the data order is a pure
  function of seed and step, see data/paired.py).
Both are written atomically; a reader never sees a half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from replication.config import ConfigError, ExperimentConfig, from_dict
from replication.fileio import atomic_path

GENERATOR_FORMAT = "pix2pix-replication/generator/v1"
STATE_FORMAT = "pix2pix-replication/train-state/v1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message names the file and the fix."""


def save(obj: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load(path: str | Path, expected_format: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train first (`replication train`)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:120]}); delete it and retrain") from None
    if not isinstance(obj, dict) or obj.get("format") != expected_format:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: not a {expected_format} file (format {got!r})")
    return obj


def config_of(obj: dict[str, Any], path: str | Path) -> ExperimentConfig:
    try:
        return from_dict(ExperimentConfig, obj["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path}: stored config is invalid for this version ({err})") from None


def load_weights(module: torch.nn.Module, state_dict: dict, path: str | Path, what: str) -> None:
    """load_state_dict with a one-line error for an architecture mismatch."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{path}: {what} weights do not fit the configured "
                              f"architecture ({detail}); check generator/discriminator "
                              "settings or retrain") from None


def architecture_keys(cfg: ExperimentConfig) -> dict[str, Any]:
    """The settings that decide tensor shapes; two configs must agree on them to share weights."""
    return {"generator": cfg.generator, "discriminator": cfg.discriminator,
            "loss.gan": cfg.loss.gan, "data.image_size": cfg.data.image_size}


def check_same_architecture(stored: ExperimentConfig, current: ExperimentConfig, path) -> None:
    a, b = architecture_keys(stored), architecture_keys(current)
    diff = [k for k in a if a[k] != b[k]]
    if diff:
        raise CheckpointError(f"{path}: checkpoint architecture differs in {diff[0]} "
                              f"({a[diff[0]]} vs configured {b[diff[0]]}); use a matching "
                              "config or delete the checkpoint")
