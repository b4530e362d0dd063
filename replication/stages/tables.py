"""`replication tables`: render the results tables, claims and README from the metrics files.

The command's arguments and run; the work is replication.results.tables's."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from replication.config.params import Params
from replication.core import layout
from replication.core.fileio import (
    atomic_dir,
    atomic_path,
    check_replaceable,
    write_text,
)
from replication.core.layout import GROUND_TRUTH
from replication.results.paper import PAPER_NUMBERS
from replication.results.tables import (
    Results,
    claims_markdown,
    load_results,
    readme,
    scale_marker,
    table_markdown,
    wide_table,
)
from replication.results.test_time_tables import markdown_text as test_time_markdown
from replication.stages.arguments import add_params_argument


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_tables(results: Results, out_dir: str | Path, inputs: tuple = ()) -> None:
    """The whole folder is replaced at once: readers never see a mix of two renders. It
    must be absent, empty or an earlier `tables` output, and not hold its `inputs`."""
    with atomic_dir(out_dir, "tables", inputs=inputs) as tmp:
        for table_id in results.tables:
            write_text(tmp / f"{table_id}.md", table_markdown(results, table_id))
            write_csv(tmp / f"{table_id}.csv", wide_table(results, table_id, numeric=True))
        for table_id, study in (results.test_time or {}).items():
            write_text(tmp / f"{table_id}.md", test_time_markdown(
                study["title"], study["frame"], scale_marker(results),
                results.bootstrap.describe()))
            write_csv(tmp / f"{table_id}.csv", study["frame"])
        write_text(tmp / "claims.md", claims_markdown(results))
        write_csv(tmp / "claims.csv", results.claims)
        write_csv(tmp / "spearman.csv", results.spearman)
        write_csv(tmp / "comparisons.csv", results.comparisons)
        write_text(tmp / "README.md", readme(results))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_argument(parser, "the experiment grid and its scale")
    parser.add_argument("--metrics", default=str(layout.METRICS),
                        help="folder holding <experiment>/scores.json and train.json "
                             "(default: metrics)")
    parser.add_argument("--paper-numbers", default=str(PAPER_NUMBERS),
                        help="YAML file with the paper's tables and claims (default: the packaged "
                             "replication/results/paper_numbers.yaml)")
    parser.add_argument("--out", default="tables",
                        help="output folder, replaced as a whole (default: tables)")


def run(args: argparse.Namespace) -> int:
    inputs = (args.params, args.metrics, args.paper_numbers)
    check_replaceable(args.out, "tables", inputs=inputs)  # before the work: fail early
    results = load_results(Params.load(args.params), args.metrics, args.paper_numbers)
    write_tables(results, args.out, inputs)
    verdicts = results.claims.verdict.map(lambda v: v if not v.startswith("—") else "gap")
    counts = ", ".join(f"{n} {v}" for v, n in verdicts.value_counts().items())
    scored = len(set(results.records[results.records.gap.isna()].experiment) - {GROUND_TRUTH})
    print(f"{len(results.tables)} tables -> {args.out} "
          f"({scale_marker(results)}); "
          f"{scored} experiments with numbers; claims: {counts or 'none'}")
    return 0
