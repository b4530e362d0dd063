"""`replication plan`: steps and GPU-hours of the params.yaml grid before training (--bench for rates).

The command's arguments and run; the work is replication.grid.plan's."""

from __future__ import annotations

from replication.config.params import Params
from replication.core.fileio import write_json
from replication.grid.plan import FUSE_CHOICES, MODES, PlanRequest, build_plan, render
from replication.stages.arguments import add_params_argument


def add_arguments(parser) -> None:
    add_params_argument(parser, "the experiment grid")
    parser.add_argument("--mode", choices=MODES,
                        help="training mode to plan for (faithful | fast); default: each "
                             "experiment's own train.mode")
    parser.add_argument("--scale", metavar="NAME",
                        help="plan this scale's profile (paper, rehearsal, smoke, ...) instead "
                             "of params `scale`")
    parser.add_argument("--bench", metavar="FILE",
                        help="a `replication bench --json` report: its steps/s for the mode "
                             "planned gives the hours")
    parser.add_argument("--steps-per-second", metavar="X",
                        help="instead of --bench: a measured training rate, steps per second")
    parser.add_argument("--steps-per-second-at-batch", action="append", default=[],
                        metavar="B=X",
                        help="the rate at batch size B, e.g. 10=17.9 (repeatable); wins over "
                             "--bench / --steps-per-second for experiments at that batch")
    parser.add_argument("--gpus", default="1", metavar="N",
                        help="GPUs to share the independent runs (default 1); reports the "
                             "greedy longest-first makespan")
    parser.add_argument("--fuse", choices=FUSE_CHOICES,
                        help="plan fused runs (train.fuse): off, each experiment's seeds as "
                             "one group, or also the experiments that may share a step; "
                             "default: each experiment's own train.fuse")
    parser.add_argument("--fused-rate", action="append", default=[], metavar="N=X",
                        help="aggregate steps/s of N fused runs at batch 1, e.g. 12=800 "
                             "(repeatable; a `replication bench --fused` report gives them too)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the plan's numbers to this JSON file (atomically)")


def run(args) -> int:
    request = PlanRequest(
        params=str(args.params), scale=args.scale, mode=args.mode, bench=args.bench,
        steps_per_second=args.steps_per_second,
        steps_per_second_at_batch=tuple(args.steps_per_second_at_batch), gpus=args.gpus,
        fuse=args.fuse, fused_rate=tuple(args.fused_rate))
    plan = build_plan(request, Params.load(args.params))
    print(render(plan))
    if args.json:
        write_json(args.json, plan)
    return 0
