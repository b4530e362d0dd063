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

from replication.config.schema import ExperimentConfig, from_dict
from replication.core.errors import CheckpointError, ConfigError
from replication.core.fileio import atomic_path, write_failed
from replication.training import fast

GENERATOR_FORMAT = "pix2pix-replication/generator/v1"
STATE_FORMAT = "pix2pix-replication/train-state/v1"


def save(obj: dict[str, Any], path: str | Path) -> None:
    # through a file object: given a path, torch.save names the zip's root folder after
    # the (random, temporary) file name, so equal tensors would give other bytes and DVC
    # would see a changed output after every rerun
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        try:
            torch.save(obj, out)
        except RuntimeError as err:
            if not any(sign in str(err) for sign in ZIP_WRITE_REFUSED):
                raise  # any other RuntimeError is a bug and keeps its traceback
            raise write_failed(Path(path), err) from None


# How torch's zip writer (inline_container.cc) reports a write the disk refused (full,
# quota, file-size limit): a RuntimeError without an errno, worded one of these ways.
ZIP_WRITE_REFUSED = ("unexpected pos", "file write failed")


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


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """load_state_dict, keeping this run's Adam kernel (fused / capturable are how Adam
    runs here, not training state) and its parameters' memory layout."""
    kernels = [{k: group[k] for k in ("foreach", "fused", "capturable")}
               for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kernel in zip(optimizer.param_groups, kernels):
        group.update(kernel)
    fast.match_layout(optimizer)


def save_generator(G: torch.nn.Module, cfg: ExperimentConfig, seed: int, step: int,
                   path: Path) -> None:
    """The generator snapshot `generate` reads: G's weights and the run's config."""
    save({"format": GENERATOR_FORMAT, "config": cfg.to_dict(), "seed": seed, "step": step,
          "state_dict": G.state_dict()}, path)


def load_weights(module: torch.nn.Module, state_dict: dict, path: str | Path, what: str) -> None:
    """load_state_dict with a one-line error for an architecture mismatch."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{path}: {what} weights do not fit the configured "
                              f"architecture ({detail}); check generator/discriminator "
                              "settings or retrain") from None


# Settings that may change between an interrupted run and its resumption: they decide
# where files go and how often the loop reports, not what the weights become.
RESUMABLE_CHANGES = ("train.log_every", "train.sample_every", "train.checkpoint_every",
                     "train.keep_state",
                     "train.device", "train.runs_per_device", "train.seeds_per_process",
                     "train.seed_processes",
                     "data.root", "data.in_memory", "data.memory_limit_gb",
                     "generate", "seeds", "name", "compare_to")


def check_resumable(state: dict, current: ExperimentConfig, seed: int, path: Path,
                    fingerprint: str, on_code_change: str) -> None:
    """Every rule for resuming `state` as the run `current` / `seed`, in one place: the
    same seed and the same settings but RESUMABLE_CHANGES (architecture included: its
    settings decide every tensor's shape); code or data changed since (`fingerprint`):
    on_code_change "restart" refuses (the pipeline then starts over), "error" warns."""
    if state["seed"] != seed:
        raise CheckpointError(f"{path}: checkpoint is for seed {state['seed']}, not "
                              f"{seed}; use its run folder or --restart")
    a, b = _flatten(config_of(state, path).to_dict()), _flatten(current.to_dict())
    extendable = _schedule_extendable(a, b)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key) and not _resumable(key) \
                and not (extendable and key in SCHEDULE_LENGTH):
            if key in SCHEDULE_LENGTH:
                raise CheckpointError(
                    f"{path}: checkpoint was trained with {key}={a.get(key)!r} under "
                    f"train.lr_policy={a.get('train.lr_policy')!r}, whose lr depends on the "
                    "schedule's length: its steps so far differ from a longer run's; pass "
                    "--restart to start over")
            raise CheckpointError(
                f"{path}: checkpoint was trained with {key}={a.get(key)!r}, config now says "
                f"{b.get(key)!r}; restore the setting or pass --restart to start over")
    if state.get("fingerprint") != fingerprint:
        message = (f"{path}: the training code or the dataset changed since this checkpoint "
                   "was written")
        if on_code_change == "restart":
            raise CheckpointError(message)
        print(f"warning: {message}; resuming anyway (pass --restart to start over)")


# The schedule's length: a run may be extended (or its end moved while it runs) only where
# the lr does not depend on it — the constant policy, the Lua code's and the default —
# since only then are the steps so far exactly those of the longer run (train._train then
# checks that the checkpoint's step is not past the new end).
SCHEDULE_LENGTH = ("train.iterations", "train.epochs")


def _schedule_extendable(a: dict, b: dict) -> bool:
    return a.get("train.lr_policy") == b.get("train.lr_policy") == "constant"


def _resumable(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESUMABLE_CHANGES)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out
