"""`replication <command>`: one subcommand per pipeline stage (see dvc.yaml)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# command -> module exposing add_arguments(parser) and run(args)
COMMANDS = {
    "config": "replication.config",
    "train": "replication.train",
    "generate": "replication.generate",
}

DESCRIPTIONS = {
    "config": "print the resolved configuration of an experiment (paper settings by default)",
    "train": "train pix2pix runs (G and D) with exact resume",
    "generate": "write G's output for every test image (paper test-time behaviour)",
}


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by inputs: printed as one line, no traceback (REPLICATION_DEBUG=1 shows it)."""
    from replication.checkpoints import CheckpointError
    from replication.config import ConfigError
    from replication.data.paired import DataError
    from replication.train import TrainingDiverged
    return (ConfigError, DataError, CheckpointError, TrainingDiverged, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replication", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        sub_parser = sub.add_parser(name, help=DESCRIPTIONS[name], description=mod.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args._run(args) or 0
    except user_errors() as err:
        if os.environ.get("REPLICATION_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
