"""`replication inputs`: record what datasets/ (manual inputs: zips, weights) holds, with hashes.

The command's arguments and run; the work is replication.data.inputs's."""

from __future__ import annotations

from pathlib import Path

from replication.core import layout
from replication.core.fileio import write_json
from replication.data.inputs import describe


def add_arguments(parser) -> None:
    parser.add_argument("--folder", default=str(layout.INPUTS),
                        help=f"the manual-inputs folder (default {layout.INPUTS})")
    parser.add_argument("--out", default=str(layout.MANUAL_INPUTS_RECORD),
                        help=f"record to write (default {layout.MANUAL_INPUTS_RECORD})")


def run(args) -> int:
    record = describe(Path(args.folder))
    write_json(args.out, {"folder": args.folder, "files": record})
    print(f"{args.folder}: {len(record)} input file(s) -> {args.out}")
    return 0
