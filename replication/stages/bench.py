"""`replication bench`: time training and generation: faithful vs fast mode, several runs per GPU.

The command's arguments and run; the work is replication.grid.bench.measure's."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import tempfile
from pathlib import Path

import torch

from replication.config.params import PAPER, Params, parse_overrides
from replication.config.schema import ExperimentConfig, deep_merge, from_dict
from replication.core.devices import resolve_device
from replication.core.fileio import write_json, write_text
from replication.grid.bench.adam import adam_bandwidth
from replication.grid.bench.measure import (
    Blocks,
    append_line,
    loss_curves,
    measure,
    parse_counts,
    parse_modes,
    ratios,
)
from replication.grid.bench.report import markdown, setup_record, table
from replication.grid.bench.runs import concurrency, fused, in_process, worker
from replication.grid.bench.timing import (
    MODES,
    progress,
    with_synthetic_data,
)
from replication.stages.arguments import (
    add_experiment_arguments,
    config_from_args,
    count_option,
)


def bench_config(args) -> ExperimentConfig:
    """The experiment's settings at --scale (default: params.yaml's `scale` for -e, the
    paper's settings without it) with the bench's image and batch size, mode faithful."""
    overrides = parse_overrides(args.overrides)
    if args.experiment and args.scale:
        cfg = Params.load(args.params).at_scale(args.scale).config(args.experiment, overrides)
    elif args.experiment or args.data:
        cfg = config_from_args(args)
    else:
        profile = Params.load(args.params).at_scale(args.scale).scale_profile() \
            if args.scale else {}
        cfg = from_dict(ExperimentConfig, deep_merge(profile, overrides))
    data = dict(image_size=args.image_size or cfg.data.image_size, in_memory="always")
    train = dict(batch_size=args.batch_size or cfg.train.batch_size, mode="faithful")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data),
                               train=dataclasses.replace(cfg.train, **train))


def bench_scale(args) -> str:
    """The scale whose settings the bench measures (bench_config): --scale, else
    params.yaml's `scale` for an experiment (-e), else the paper's."""
    if args.data:
        return "--data"
    if args.scale:
        return args.scale
    return Params.load(args.params).scale if args.experiment else PAPER


def worker_command(args) -> list[str]:
    """This command as a concurrent worker (`--worker MODE` to be appended): the options
    that decide what a worker measures."""
    argv = [sys.executable, "-m", "replication.stages.bench", "--params", args.params,
            "--device", args.device, "--concurrent-seconds", str(args.concurrent_seconds),
            "--warmup", str(args.warmup)]
    for flag, value in (("--experiment", args.experiment), ("--data", args.data),
                        ("--image-size", args.image_size), ("--batch-size", args.batch_size)):
        if value:
            argv += [flag, str(value)]
    for override in args.overrides:
        argv += ["--set", override]
    return [*argv, "--worker"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser)
    parser.add_argument("--scale", metavar="NAME",
                        help="measure at this scale's settings (paper, rehearsal, smoke, ...; "
                             "default: params.yaml `scale` with -e, else the paper's)")
    parser.add_argument("--image-size", type=count_option("--image-size"),
                        help="image size in pixels (default: the experiment's, paper 256)")
    parser.add_argument("--batch-size", type=count_option("--batch-size"),
                        help="training batch size (default: the experiment's, paper 1)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--modes", default="faithful,fast",
                        help=f"comma-separated modes to compare, from {list(MODES)} "
                             "(default faithful,fast)")
    parser.add_argument("--warmup", type=int, default=Blocks.warmup,
                        help="untimed steps per mode after the first (default %(default)s)")
    parser.add_argument("--blocks", type=int, default=Blocks.blocks,
                        help="timed blocks per mode, alternating between modes (default "
                             "%(default)s; 0 = no timing, e.g. for --curves or --concurrent "
                             "alone)")
    parser.add_argument("--block-seconds", type=float, default=Blocks.block_seconds,
                        help="about how long one timed block runs (default %(default)s)")
    parser.add_argument("--no-gen", dest="gen", action="store_false",
                        help="skip the generation timing")
    parser.add_argument("--gen-batch", type=count_option("--gen-batch"), default=Blocks.gen_batch,
                        help="generation batch size (default %(default)s, as the paper tests)")
    for flag, what in (("--concurrent", "N runs sharing the device as separate processes"),
                       ("--in-process", "K runs in ONE process stepped in turn, each on its "
                                        "own CUDA stream (train.seeds_per_process)"),
                       ("--fused", "N runs fused into ONE step (train.fuse)")):
        parser.add_argument(flag, default="", help=f"also measure {what}: their aggregate "
                                                   "steps/s for each count, e.g. 1,2,4,8")
    parser.add_argument("--adam", action="store_true",
                        help="also time one Adam step over G's parameters: fused, foreach and "
                             "the flat bf16 Adam (flat_adam.py), ms and GB/s")
    parser.add_argument("--concurrent-mode", default="fast", choices=list(MODES),
                        help="the mode the concurrent runs use (default fast)")
    parser.add_argument("--concurrent-seconds", type=float, default=10.0,
                        help="how long the concurrent runs are timed (default 10)")
    parser.add_argument("--curves", type=int, default=0, metavar="STEPS",
                        help="also train faithful and fast STEPS steps from one seed and "
                             "record their loss curves (e.g. 200)")
    parser.add_argument("--json", default="bench.json", help="results file (default bench.json)")
    parser.add_argument("--jsonl", metavar="FILE",
                        help="also append each several-runs measurement (--fused, --in-process) "
                             "to FILE as one JSON line as soon as it is made (a run cut short "
                             "keeps what it measured)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the table as a benchmarks/RESULTS.md section")
    parser.add_argument("--worker", choices=list(MODES), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.worker:
        return worker(bench_config(args), args.worker, device, args.warmup,
                      args.concurrent_seconds)
    modes, counts = parse_modes(args.modes), parse_counts(args.concurrent)
    timed = Blocks(warmup=args.warmup, blocks=args.blocks, block_seconds=args.block_seconds,
                   gen=args.gen, gen_batch=args.gen_batch)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = with_synthetic_data(bench_config(args), Path(tmp))
        setup = setup_record(cfg, device, args.experiment or args.data or "default",
                             bench_scale(args))
        report = {"setup": setup}
        progress(f"scale {setup['scale']}: {setup['model']}, {cfg.data.image_size} px, "
                 f"batch {cfg.train.batch_size}, {setup['device_name']}")
        record = functools.partial(append_line, args.jsonl, setup)
        report["modes"] = measure(cfg, modes, device, timed, record) if args.blocks else {}
        report["ratios"] = ratios(report["modes"])
        if device.type == "cuda":
            torch.cuda.empty_cache()  # leave the device to the concurrent runs
        if counts:
            report["concurrency"] = concurrency(worker_command(args), counts,
                                                args.concurrent_mode, args.concurrent_seconds)
        if args.in_process:
            rows = in_process(cfg, parse_counts(args.in_process), args.concurrent_mode, device,
                              args.concurrent_seconds)
            for row in rows:
                record(row)
            report["concurrency"] = report.get("concurrency", []) + rows
        if args.adam:
            report["adam"] = adam_bandwidth(cfg, device, args.concurrent_seconds, record)
        if args.fused:
            report["fused"] = fused(cfg, parse_counts(args.fused), args.concurrent_mode, device,
                                    args.concurrent_seconds, record)
        if args.curves:  # does fast mode learn as faithful does?
            report["curves"] = loss_curves(cfg, ["faithful", "fast"], device, args.curves)
    print(table(report))
    write_json(args.json, report)
    if args.markdown:
        write_text(args.markdown, markdown(report))
    return 0


if __name__ == "__main__":  # `python -m replication.stages.bench` (the concurrent workers use it)
    cli = argparse.ArgumentParser(prog="python -m replication.stages.bench", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
