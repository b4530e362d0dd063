"""`replication plots`: draw every table's loss curves into plots/index.html (offline, one colour per experiment).

The command's arguments and run; the work is replication.results.plots's."""

from __future__ import annotations

from replication.config.params import Params
from replication.core import layout
from replication.results.plots import write_plots
from replication.stages.arguments import add_params_argument


def add_arguments(parser) -> None:
    add_params_argument(parser)
    parser.add_argument("--logs", default=str(layout.LOGS),
                        help=f"the training logs folder (default {layout.LOGS})")
    parser.add_argument("--out", default="plots",
                        help="folder to write index.html and data/ into (default plots)")


def run(args) -> int:
    found = write_plots(Params.load(args.params), args.logs, args.out)
    missing = sorted({n for c in found for n in c.without if "not trained" in c.without[n]})
    print(f"{len(found)} charts -> {args.out}/index.html"
          + (f"; no curves yet: {', '.join(missing)}" if missing else ""))
    return 0
