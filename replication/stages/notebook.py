"""`replication notebook`: execute notebooks/results.ipynb (papermill) and render it to HTML.

The command's arguments and run; the work is replication.results.notebook's."""

from __future__ import annotations

import argparse
from pathlib import Path

from replication.core import layout
from replication.results.notebook import execute_notebook
from replication.results.paper import PAPER_NUMBERS
from replication.stages.arguments import add_params_argument, count_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    paths = parser.add_argument_group("inputs (the notebook's parameters)")
    add_params_argument(paths)
    paths.add_argument("--paper-numbers", default=None,
                       help=f"YAML file with the paper's tables and claims (default: the "
                            f"packaged {PAPER_NUMBERS.name})")
    for name, default in (("tables", "tables"), ("metrics", layout.METRICS), ("logs", layout.LOGS),
                          ("generated", layout.GENERATED), ("data", "data")):
        paths.add_argument(f"--{name}", default=str(default),
                           help=f"the {name} folder of the workspace (default: {default})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed whose generated images the grids show (default: 0)")
    parser.add_argument("--images", type=count_option("--images"), default=3,
                        help="test images (rows) per image grid (default: 3)")
    parser.add_argument("--notebook", default="notebooks/results.ipynb",
                        help="the notebook to execute (default: notebooks/results.ipynb)")
    parser.add_argument("--executed", default="notebooks/results.executed.ipynb",
                        help="where the executed notebook goes "
                             "(default: notebooks/results.executed.ipynb)")
    parser.add_argument("--html", default="notebooks/results.html",
                        help="where its HTML rendering goes (default: notebooks/results.html)")
    parser.add_argument("--timeout", type=count_option("--timeout"), default=600,
                        help="seconds one cell may run before it fails (default: 600)")


def run(args: argparse.Namespace) -> int:
    parameters = {"params_path": args.params, "paper_numbers_path": args.paper_numbers,
                  "tables_dir": args.tables, "metrics_dir": args.metrics,
                  "logs_dir": args.logs, "generated_dir": args.generated,
                  "data_dir": args.data, "seed": args.seed, "n_images": args.images,
                  "page_dir": str(Path(args.html).parent)}
    execute_notebook(args.notebook, args.executed, args.html, parameters, args.timeout)
    print(f"{args.notebook} executed -> {args.executed}, {args.html}")
    return 0
