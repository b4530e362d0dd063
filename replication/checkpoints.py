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

from replication.config import ExperimentConfig, from_dict
from replication.errors import CheckpointError, ConfigError
from replication.fileio import atomic_path

GENERATOR_FORMAT = "pix2pix-replication/generator/v1"
STATE_FORMAT = "pix2pix-replication/train-state/v1"


def save(obj: dict[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# What each kind must hold (key -> allowed types); anything else is not our checkpoint.
_DICT, _OPTIONAL_DICT, _INT = (dict,), (dict, type(None)), (int,)
REQUIRED_KEYS = {
    GENERATOR_FORMAT: {"config": _DICT, "state_dict": _DICT, "seed": _INT, "step": _INT},
    STATE_FORMAT: {"config": _DICT, "seed": _INT, "step": _INT, "total_steps": _INT,
                   "G": _DICT, "opt_G": _DICT, "sched_G": _DICT, "D": _OPTIONAL_DICT,
                   "opt_D": _OPTIONAL_DICT, "sched_D": _OPTIONAL_DICT, "rng": _DICT,
                   "meter": _DICT},
}


def load(path: str | Path, expected_format: str) -> dict[str, Any]:
    """The checkpoint at `path`, checked to be a complete `expected_format` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; train first (`replication train`)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a damaged file, some without text
        detail = (str(err).splitlines() or ["empty or truncated file"])[0][:120]
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(err).__name__}: {detail}); "
                              "delete it and retrain") from None
    if not isinstance(obj, dict) or obj.get("format") != expected_format:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: not a {expected_format} file (format {got!r})")
    for key, types in REQUIRED_KEYS[expected_format].items():
        if not isinstance(obj.get(key), types) or isinstance(obj.get(key), bool):
            problem = "lacks" if key not in obj else f"has a {type(obj[key]).__name__} as"
            raise CheckpointError(f"{path}: incomplete {expected_format} file ({problem} "
                                  f"{key!r}); delete it and retrain")
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
