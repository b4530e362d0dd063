"""`replication config`: an experiment's resolved settings, each with where it comes from.

The resolution itself is config/params.py's (Params.layers); this command prints its layers
to name, for every setting, the last one that set it — paper (config.py's default),
dataset (the paper's per-dataset setting, datasets.py), defaults / experiment / scale
(params.yaml) or the command line (--set) — with the paper's value where it differs, which
of epochs and iterations decides the steps, and the baseline the tables compare with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from replication.config.params import Params, dataset_settings, parse_overrides
from replication.config.schema import ExperimentConfig, dump_yaml, from_dict
from replication.results.compare import (
    chosen_baselines,  # the tables' rule (baselines.py)
)
from replication.stages.arguments import (
    add_experiment_arguments,
    config_from_args,
    folder_settings,
)


def layers(args, params: Params | None) -> list[tuple[str, dict]]:
    """(source, settings) in resolution order (later wins), as config_from_args merges them."""
    overrides = parse_overrides(args.overrides)
    if args.experiment:
        return params.layers(args.experiment, overrides=overrides)
    if args.data:
        folder = Path(args.data)
        return [("dataset", dataset_settings(folder.name)),
                ("--data", {"name": folder.name, **folder_settings(folder)}),
                ("command line", overrides)]
    return []


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}.") if isinstance(value, dict)
                   else {f"{prefix}{key}": value})
    return out


# what names a run rather than sets it: no paper value to compare with
NOT_PAPER_SETTINGS = ("name", "data.dataset", "compare_to", "released")


def annotated(cfg: ExperimentConfig, sources: list[tuple[str, dict]],
              baseline: tuple[str | None, str] | None = None) -> str:
    """The resolved settings as YAML, each line commented with its source (paper =
    config.py's default, dataset = the paper's per-dataset setting) and, where it differs,
    the paper's value; compare_to with the baseline the tables use."""
    where = {key: source for source, tree in sources for key in flatten(tree)}
    paper = flatten(from_dict(ExperimentConfig, dataset_settings(cfg.data.dataset)).to_dict())
    values = flatten(cfg.to_dict())
    lines, parents = [], []
    for key, value in values.items():
        *path, leaf = key.split(".")
        shared = 0
        while shared < min(len(path), len(parents)) and path[shared] == parents[shared]:
            shared += 1
        for depth in range(shared, len(path)):
            lines.append(("  " * depth + f"{path[depth]}:", ""))
        parents = path
        note = where.get(key, "paper")
        if key not in NOT_PAPER_SETTINGS and value != paper.get(key):
            note += f"; paper: {_flow(paper.get(key))}"
        if key == "train.epochs" and cfg.train.iterations is not None:
            note += "; not used: train.iterations decides the steps"
        if key == "train.iterations":
            note += ("; decides the steps (overrides epochs)" if value is not None
                     else "; null: train.epochs decides the steps")
        if key == "compare_to" and value is None and baseline is not None:
            note = (f"tables use {baseline[0]} ({baseline[1]})" if baseline[0]
                    else f"no baseline: {baseline[1]}")
        lines.append(("  " * len(path) + f"{leaf}: {_flow(value)}", note))
    width = max(len(text) for text, _ in lines) + 2
    return "".join(f"{text:{width}}# {note}\n" if note and key_line else f"{text}\n"
                   for text, note in lines for key_line in [not text.endswith(":")])


def _flow(value: Any) -> str:
    """A value as one YAML flow token (lists in brackets, null, true)."""
    return yaml.safe_dump([value], default_flow_style=True, width=1000).strip()[1:-1]


def add_arguments(parser) -> None:
    add_experiment_arguments(parser)
    parser.add_argument("--plain", action="store_true",
                        help="plain YAML, without the comments saying where each value comes from")


def run(args) -> int:
    """`replication config`: print the resolved configuration, paper values by default,
    each value with its source (paper / dataset / defaults / experiment / scale /
    command line) and the paper's value where it differs."""
    params = Params.load(args.params) if args.experiment else None
    cfg = config_from_args(args, params) if (args.experiment or args.data) else ExperimentConfig()
    if args.plain:
        print(dump_yaml(cfg), end="")
        return 0
    baseline = None
    if args.experiment:
        baseline = chosen_baselines(params).get(
            args.experiment, (None, "a row of the paper's tables"))
    print("# every setting, with where its value comes from (later wins): paper = config.py's\n"
          "# default; dataset = the paper's setting for the dataset (datasets.py); defaults,\n"
          "# experiment, scale = params.yaml; command line = --set. `; paper: X` where it differs.")
    print(annotated(cfg, layers(args, params), baseline), end="")
    return 0
