"""`replication segmenter`: train the fallback FCN-score segmenter; write the ground-truth rows.

The command's arguments and run; the work is replication.metrics.segmenter's."""

from __future__ import annotations

import argparse
import dataclasses

from replication.config.params import Params
from replication.config.scoring import load_scoring
from replication.metrics.segmenter import cityscapes_config, run_stage
from replication.stages.arguments import add_params_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_argument(parser, "the `scoring` section")
    parser.add_argument("--device", help="overrides scoring.device: auto | cpu | cuda | cuda:N")


def run(args: argparse.Namespace) -> int:
    params = Params.load(args.params)
    scoring = load_scoring(params)
    if args.device:
        scoring = dataclasses.replace(scoring, device=args.device)
    scores = run_stage(cityscapes_config(params, scoring), scoring, params.scale)
    summary = scores["summary"]
    print("ground truth: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in summary.items()
                                       if k.endswith(("per_pixel_acc", "class_iou"))))
    return 0
