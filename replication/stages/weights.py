"""`replication weights`: find or download the authors' FCN-8s and pytorch-fid's Inception weights.

The command's arguments and run; the work is replication.metrics.weights's."""

from __future__ import annotations

import argparse

from replication.config.params import Params
from replication.config.scoring import load_scoring
from replication.core import fetch
from replication.metrics import fid
from replication.metrics.weights import FCN_FILE, run_stage
from replication.stages.arguments import add_params_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_argument(parser, "the `scoring` section")
    parser.add_argument("--mirror", default=None,
                        help=f"base URL serving {FCN_FILE} and {fid.WEIGHTS_FILE} (or set "
                             f"${fetch.MIRROR_ENV})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    record = run_stage(load_scoring(Params.load(args.params)), args.mirror,
                       progress=not args.no_progress)
    for name, entry in record.items():
        print(f"{name}: {entry['path'] if entry['available'] else 'missing: ' + entry['reason']}")
    return 0
