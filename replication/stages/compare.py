"""`replication compare`: your experiments' headline numbers beside their baselines' (after dvc repro).

The command's arguments and run; the work is replication.results.compare's."""

from __future__ import annotations

from pathlib import Path

from replication.config.params import Params
from replication.core import layout
from replication.core.errors import ConfigError
from replication.results.compare import block, chosen_baselines
from replication.stages.arguments import add_params_argument


def add_arguments(parser) -> None:
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help="experiments to show (default: each of yours with a baseline: "
                             "params.yaml entries that are no row of the paper's tables)")
    parser.add_argument("--vs", metavar="BASELINE",
                        help="compare with this experiment instead of the tables' baseline")
    add_params_argument(parser)
    parser.add_argument("--metrics", default=str(layout.METRICS),
                        help=f"the metrics folder (default {layout.METRICS})")


def run(args) -> int:
    params = Params.load(args.params)
    experiments = params.experiments
    chosen = chosen_baselines(params)
    names = args.experiments or [n for n, (base, _) in chosen.items() if base]
    unknown = [n for n in [*names, args.vs] if n and n not in experiments]
    if unknown:
        raise ConfigError(f"{unknown[0]!r} is not an experiment of {args.params}; "
                          f"known: {sorted(experiments)}")
    if not names:
        print(f"no experiment of {args.params} has a baseline to compare with (the paper's "
              "rows have none). Add one (README \"Your own experiments\") or name two: "
              "`replication compare EXPERIMENT --vs BASELINE`")
        return 0
    for i, name in enumerate(names):
        baseline, how = (args.vs, "--vs") if args.vs else chosen.get(
            name, (None, "a row of the paper's tables; give one with --vs"))
        print(("\n" if i else "") + "\n".join(block(name, baseline, how, Path(args.metrics))))
    print("\nintervals and verdicts of these differences: tables/comparisons.csv "
          "(`replication tables`)")
    return 0
