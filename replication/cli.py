"""`replication <command>`: one subcommand per pipeline stage (see dvc.yaml).

Set REPLICATION_DEBUG=1 to see the traceback behind an error message.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from replication.core.errors import UserError

# command -> (module exposing add_arguments(parser) and run(args), one-line help)
COMMANDS = {
    "download": ("replication.stages.download",
                 "fetch, verify and install a dataset (a synthetic stand-in where data.source says so)"),
    "synth": ("replication.stages.synth",
              "write the deterministic synthetic stand-ins for facades, cityscapes, maps"),
    "inputs": ("replication.stages.inputs",
               "record what datasets/ (manual inputs: zips, weights) holds, with hashes"),
    "train": ("replication.stages.train", "train pix2pix runs (G and D) with exact resume"),
    "generate": ("replication.stages.generate",
                 "write G's output for every test image (paper test-time behaviour)"),
    "translate": ("replication.stages.translate",
                  "run a generator on a folder of new single images (no targets)"),
    "weights": ("replication.stages.weights",
                "find or download the authors' FCN-8s and pytorch-fid's Inception weights"),
    "segmenter": ("replication.stages.segmenter",
                  "train the fallback FCN-score segmenter; write the ground-truth rows"),
    "score": ("replication.stages.score",
              "score generated images: FCN-score, label scores, FID/KID, PSNR/SSIM, Lab colour"),
    "plots": ("replication.stages.plots",
              "draw every table's loss curves into plots/index.html (offline, one colour per experiment)"),
    "tables": ("replication.stages.tables",
               "render the results tables, claims and README from the metrics files"),
    "notebook": ("replication.stages.notebook",
                 "execute notebooks/results.ipynb (papermill) and render it to HTML"),
    "bench": ("replication.stages.bench",
              "time training and generation: faithful vs fast mode, several runs per GPU"),
    "status": ("replication.stages.status",
               "what the pipeline has produced so far (--check: fail when incomplete)"),
    "compare": ("replication.stages.compare",
                "your experiments' headline numbers beside their baselines' (after dvc repro)"),
    "config": ("replication.stages.config",
               "print an experiment's resolved configuration (paper settings by default)"),
    "plan": ("replication.stages.plan",
             "steps and GPU-hours of the params.yaml grid before training (--bench for rates)"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """Only the chosen command's module is imported (`download` needs no torch)."""
    parser = argparse.ArgumentParser(prog="replication", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            mod = importlib.import_module(module)
            # written for users: the command's help (module docstrings are for developers)
            sub_parser.description = f"replication {name}: {help_text}"
            mod.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    try:  # parsing too: an option's type (e.g. a count >= 1) may refuse its value
        args = parser.parse_args(argv)
        return args._run(args) or 0
    except UserError as err:  # bad input: one line; anything else is a bug (traceback)
        if os.environ.get("REPLICATION_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
