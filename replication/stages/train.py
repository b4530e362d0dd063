"""`replication train`: train pix2pix runs (G and D) with exact resume.

The command's arguments and run; the work is replication.training.loop's."""

from __future__ import annotations

import argparse
from pathlib import Path

from replication.config.schema import ExperimentConfig
from replication.core import layout
from replication.core.errors import ConfigError
from replication.core.fileio import write_json
from replication.inference import released
from replication.stages.arguments import (
    add_experiment_arguments,
    config_from_args,
    count_option,
    seed_option,
)
from replication.training import distributed, seed_processes
from replication.training.concurrent import RunFolders
from replication.training.fused_runs import Member, train_group
from replication.training.fusion_groups import check_fusable
from replication.training.loop import train_runs


def add_arguments(parser) -> None:
    add_experiment_arguments(parser)
    parser.add_argument("--seed", type=seed_option, action="append",
                        help="train only this seed (repeatable); default: every seed the "
                             "experiment lists (`seeds`, 0 for --data)")
    parser.add_argument("--out", metavar="DIR",
                        help="run folder for a single seed (default runs/<experiment>/seed-<k>)")
    parser.add_argument("--restart", action="store_true",
                        help="ignore and delete an existing checkpoint; start from step 0")
    parser.add_argument("--on-config-change", choices=("error", "restart"), default="error",
                        help="when the checkpoint was made with other settings: stop with an "
                             "error (default) or start over (what the DVC stages use)")
    parser.add_argument("--stop-after", type=count_option("--stop-after"), metavar="STEPS",
                        help="checkpoint and stop after this many steps (>= 1) in this call; "
                             "the next call resumes exactly (for time-limited cluster jobs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(seed_processes.CHILD_FLAG, action="store_true",
                        help=argparse.SUPPRESS)  # a child of train.seed_processes
    parser.add_argument("--fuse-with", action="append", default=[], metavar="EXPERIMENT",
                        help="with train.fuse: also train this experiment's seeds in the same "
                             "fused step (same networks, dataset and schedule; repeatable)")


def run(args) -> int:
    cfg = config_from_args(args)
    seeds = args.seed or list(cfg.seeds)
    if args.out and len(seeds) > 1:
        raise ConfigError("--out names one run folder; pass a single --seed with it")
    if not args.out:  # runs/<name>/: a --data folder's name must be a safe one too
        layout.check_experiment_name(cfg.name, "--data folder (or give --out DIR)"
                                     if args.data else "experiment")
    if cfg.released:
        return released.install_stage(cfg, Path(args.out) if args.out else None,
                                      progress=not args.no_progress)
    if cfg.train.fuse or args.fuse_with:  # several runs as one fused step (fusion.py)
        return run_fused(args, cfg, args.seed)
    if cfg.train.seed_processes > 1 and len(seeds) > 1 and not args.out:
        summaries, code = seed_processes.train_side_by_side(args, cfg.name, seeds,
                                                            cfg.train.seed_processes)
        if not code:
            write_train_metrics(cfg.name, summaries)
        return code
    summaries, main, k = {}, distributed.is_main_process(), cfg.train.seeds_per_process
    for group in [seeds[i:i + k] for i in range(0, len(seeds), k)]:
        runs = [RunFolders(seed, Path(args.out), Path(args.out) / "dvclive") if args.out
                else RunFolders(seed, layout.run_dir(cfg.name, seed), layout.log_dir(cfg.name, seed))
                for seed in group]
        results = train_runs(cfg, runs, restart=args.restart, on_mismatch=args.on_config_change,
                             stop_after=args.stop_after, progress=not args.no_progress)
        for run, summary in zip(runs, results):
            summaries[f"seed-{run.seed}"] = summary
            state = "finished" if summary["finished"] else "stopped (run again to resume)"
            if main:
                print(f"{cfg.name} seed {run.seed}: {state} at step {summary['step']}/"
                      f"{summary['total_steps']} -> {run.out}")
        if any(summary.get("stopped_by_signal") for summary in results):
            return 130
    if main and not args.out and not getattr(args, "one_of_seed_processes", False):
        write_train_metrics(cfg.name, summaries)
    return 0


def write_train_metrics(name: str, summaries: dict[str, dict]) -> None:
    write_json(layout.train_metrics(name), summaries)


# --- several runs as one fused step (train.fuse or --fuse-with; training/fusion.py) ----

def members_of(args, cfg: ExperimentConfig, seeds: list[int] | None) -> list[Member]:
    configs = [cfg] + [config_from_args(argparse.Namespace(**{**vars(args), "experiment": name}))
                       for name in args.fuse_with]
    for c in configs:
        if not c.train.fuse:
            raise ConfigError(f"experiment {c.name!r} has train.fuse false; a fused group needs "
                              "it true in every experiment (params.yaml, or --set train.fuse=true "
                              "for all of them)")
    check_fusable(configs)
    members = []
    for c in configs:
        for seed in seeds or list(c.seeds):
            run = RunFolders(seed, Path(args.out), Path(args.out) / "dvclive") if args.out \
                else RunFolders(seed, layout.run_dir(c.name, seed), layout.log_dir(c.name, seed))
            members.append(Member(c, run))
    if args.out and len(members) > 1:
        raise ConfigError("--out names one run folder; a fused group of several runs uses "
                          "runs/<experiment>/seed-<k>")
    return members


def run_fused(args, cfg: ExperimentConfig, seeds: list[int] | None) -> int:
    """`replication train` for a fused group: print each run's outcome and write each
    experiment's metrics/<experiment>/train.json as train.run does."""
    if args.fuse_with and not args.experiment:
        raise ConfigError("--fuse-with names experiments of params.yaml; use it with "
                          "--experiment")
    if distributed.shard_from_environment() is not None:
        raise ConfigError("train.fuse is one process per GPU; under torchrun (data-parallel) "
                          "set it to false")
    members = members_of(args, cfg, seeds)
    summaries = train_group(members, restart=args.restart, on_mismatch=args.on_config_change,
                            stop_after=args.stop_after, progress=not args.no_progress)
    per_experiment: dict[str, dict] = {}
    for member, summary in zip(members, summaries):
        per_experiment.setdefault(member.cfg.name, {})[f"seed-{member.run.seed}"] = summary
        state = "finished" if summary["finished"] else "stopped (run again to resume)"
        print(f"{member.cfg.name} seed {member.run.seed}: {state} at step {summary['step']}/"
              f"{summary['total_steps']} (fused, {len(members)} runs) -> {member.run.out}")
    if any(s.get("stopped_by_signal") for s in summaries):
        return 130
    if not args.out:
        for name, runs in per_experiment.items():
            write_json(layout.train_metrics(name), runs)
    return 0
