"""Which runs may share one fused step (train.fuse, fusion.py), and how a group is named.

A fused step computes N runs with one model whose tensors hold the N runs side by side,
so the runs must agree on everything that decides a tensor's shape or the step's
structure (networks, objective terms, image and batch size, optimiser, schedule, mode,
logging cadence) and on the data they are drawn from (one dataset, decoded once). What
may differ is listed in RUN_SETTINGS: the seed, and settings the fused step keeps per
run (each run's own L1 weight, D loss scale and direction of translation), plus the
bookkeeping that never reaches the weights. In the paper's grid this groups, e.g., the
four batch-1 U-Net L1+cGAN-family Cityscapes experiments (cgan, l1-cgan and both
photo2labels) x 3 seeds into one 12-run step.
No torch here: `replication plan` groups the grid with it.
"""

from __future__ import annotations

import hashlib
import json

from replication.config.schema import ExperimentConfig
from replication.core.errors import ConfigError

# Settings that may differ inside a fused group: kept per run by the fused step (loss.*,
# data.direction: each run's own batch) or never used by training (names, generation).
RUN_SETTINGS = ("name", "seeds", "compare_to", "released", "generate",
                "loss.l1_weight", "loss.d_loss_scale", "data.direction")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        out.update(_flatten(value, path + ".") if isinstance(value, dict) else {path: value})
    return out


def _per_run(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RUN_SETTINGS)


def shared_settings(cfg: ExperimentConfig) -> dict:
    """The settings every run of a fused group must share (dotted key -> value)."""
    return {k: v for k, v in _flatten(cfg.to_dict()).items() if not _per_run(k)}


def group_key(cfg: ExperimentConfig) -> str:
    """Equal for two experiments exactly when their runs may be fused."""
    text = json.dumps(shared_settings(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_fusable(configs: list[ExperimentConfig]) -> None:
    """One line naming the first setting two experiments of a group disagree on."""
    first = shared_settings(configs[0])
    for cfg in configs[1:]:
        other = shared_settings(cfg)
        for key in sorted(set(first) | set(other)):
            if first.get(key) != other.get(key):
                raise ConfigError(
                    f"experiments {configs[0].name!r} and {cfg.name!r} cannot be fused: "
                    f"{key} is {first.get(key)!r} vs {other.get(key)!r} (a fused group shares "
                    f"everything but {', '.join(RUN_SETTINGS)})")


def group_by_key(configs: list[ExperimentConfig]) -> list[list[ExperimentConfig]]:
    """The experiments in fusable groups, each in first-seen order."""
    groups: dict[str, list[ExperimentConfig]] = {}
    for cfg in configs:
        groups.setdefault(group_key(cfg), []).append(cfg)
    return list(groups.values())


def run_id(experiment: str, seed: int) -> str:
    return f"{experiment}/seed-{seed}"


def group_record(members: list[tuple[str, int]], index: int) -> dict:
    """What a fused run's checkpoint, config.yaml and train.json say about its group:
    every member (experiment/seed, in step order) and which one this run is."""
    return {"runs": [run_id(e, s) for e, s in members], "index": index}
