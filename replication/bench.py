"""`replication bench`: how fast training and generation run, faithful vs fast mode.

For one experiment's networks (--experiment / --data / --set, or the paper's default
model) at a given image size, batch size and device it times
  training    s/step and steps/s: the median over timed blocks, warm-up excluded (the
              warm-up holds the fast step's CUDA-graph capture); the share of each block
              the host spends producing batches (data.batch)
  generation  images/s of G as `generate` runs it (train mode, no gradients)
  memory      peak device memory of each mode (CUDA)
The modes run in one process in alternating blocks, so a shared machine slows all of
them alike, and the table ends with each mode's speed relative to faithful. Options add
the aggregate steps/s of N runs sharing the device (separate processes) and the loss
curves of the modes over a short run. It only measures: the checks that the fast step
computes the faithful one on a GPU are tests (`pytest -m gpu tests/test_gpu.py`).
Synthetic pairs stand in for the dataset (smooth colour blobs, the target a channel
permutation of the input: learnable, so the L1 curves fall), so no download is needed.
Prints a table; writes everything to --json (and --markdown for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from replication import fast
from replication.bench_report import markdown, setup_record, table
from replication.config import ExperimentConfig, from_dict
from replication.params import parse_overrides
from replication.data.paired import TrainingPairs
from replication.errors import ConfigError
from replication.fileio import write_json, write_text
from replication.devices import resolve_device
from replication.monitor import LossMeter, check_finite
from replication.train import Trainer

# what each mode name runs: None = faithful; a dict = fast mode with these FastOptions
# changed from what train.mode=fast picks on the device (to measure each ingredient)
MODES = {
    "faithful": None,
    "fast": {},
    "fast-fp32": {"bf16": False},
    "fast-eager": {"cuda_graph": False},
    "fast-nchw": {"channels_last": False},
}
SYNTHETIC_PAIRS = 16


# --- set-up -------------------------------------------------------------------------

def bench_config(args) -> ExperimentConfig:
    """The experiment's settings with the bench's image and batch size, mode left faithful."""
    from replication.params import config_from_args
    cfg = config_from_args(args) if (args.experiment or args.data) else \
        from_dict(ExperimentConfig, parse_overrides(args.overrides))
    data = dict(image_size=args.image_size or cfg.data.image_size, in_memory="always")
    train = dict(batch_size=args.batch_size or cfg.train.batch_size, mode="faithful")
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **data),
                               train=dataclasses.replace(cfg.train, **train))


def with_synthetic_data(cfg: ExperimentConfig, root: Path) -> ExperimentConfig:
    """<root>/synthetic/train/<i>.png: toy pairs (A smooth colour blobs, B A's channels
    permuted) at the jitter size, and cfg pointed at them."""
    from replication.data.synthetic.toy import write_pairs
    write_pairs(root / "synthetic", {"train": max(SYNTHETIC_PAIRS, 2 * cfg.train.batch_size)},
                cfg.data.jitter_size)
    data = dataclasses.replace(cfg.data, root=str(root), dataset="synthetic", train_split="train")
    return dataclasses.replace(cfg, data=data)


def fast_options(cfg: ExperimentConfig, mode: str, device: torch.device):
    changes = MODES[mode]
    if changes is None:
        return None
    return dataclasses.replace(fast.options_for(device, cfg.train.fast_precision), **changes)


def build(cfg: ExperimentConfig, mode: str, device: torch.device, seed: int = 0):
    """A Trainer and its data for `mode`, as train() would set them up."""
    options = fast_options(cfg, mode, device)
    train_mode = "faithful" if options is None else "fast"
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mode=train_mode))
    data = TrainingPairs(cfg.data, cfg.train.batch_size, seed)
    if options is not None:
        data.folder.to(device)
    return Trainer(cfg, seed, device, 10**9, fast_options=options), data


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- timing -------------------------------------------------------------------------

class Runner:
    """One mode's trainer, stepped as the training loop steps it (train.run_loop)."""

    def __init__(self, cfg: ExperimentConfig, mode: str, device: torch.device):
        self.mode, self.device = mode, device
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        self.trainer, self.data = build(cfg, mode, device)
        self.meter = LossMeter()
        self.state_path = Path(os.devnull)
        self.step_seconds = self.train_block(1)[0]  # the first step (holds any capture)
        self.peak_mb = (torch.cuda.max_memory_allocated(device) - before) / 2**20 if cuda else None

    def train_block(self, steps: int) -> tuple[float, float]:
        """(seconds per step, share of the time spent in data.batch) over `steps` steps."""
        trainer, data_seconds = self.trainer, 0.0
        synchronize(self.device)
        began = time.perf_counter()
        for _ in range(steps):
            t = time.perf_counter()
            x, y = self.data.batch(trainer.step, self.device)
            data_seconds += time.perf_counter() - t
            losses = trainer.train_step(x, y)
            if trainer.fast is None:  # the faithful loop checks every step (a host sync)
                check_finite(losses, trainer.step, self.state_path)
            self.meter.add(losses)
        synchronize(self.device)
        seconds = time.perf_counter() - began
        self.meter.reset()
        return seconds / steps, data_seconds / seconds

    @torch.no_grad()
    def generate_block(self, images: int, batch: int) -> float:
        """Seconds per image of G's forward as `generate` runs it (train mode)."""
        G, trainer = self.trainer.G, self.trainer
        x = torch.rand(batch, 3, *(2 * [trainer.cfg.data.image_size]), device=self.device) * 2 - 1
        if trainer.fast is not None:
            x = trainer.fast.layout(x)
        synchronize(self.device)
        began = time.perf_counter()
        with trainer.autocast(), fast.cudnn_benchmark() if trainer.fast else nullcontext():
            for _ in range(-(-images // batch)):
                G(x)
        synchronize(self.device)
        return (time.perf_counter() - began) / (-(-images // batch) * batch)


def block_steps(seconds_per_step: float, block_seconds: float) -> int:
    return max(1, min(1000, round(block_seconds / max(seconds_per_step, 1e-6))))


def measure(cfg: ExperimentConfig, modes: list[str], device: torch.device, args) -> dict:
    """Build every mode, warm it up, then time alternating blocks; medians per mode."""
    runners = {}
    for mode in modes:
        progress(f"building and warming up {mode}")
        runner = runners[mode] = Runner(cfg, mode, device)
        for _ in range(args.warmup):
            runner.step_seconds = runner.train_block(1)[0]
        runner.generate_block(args.gen_batch, args.gen_batch)
    steps = {m: block_steps(r.step_seconds, args.block_seconds) for m, r in runners.items()}
    images = {m: max(args.gen_batch, block_steps(r.step_seconds / 3, args.block_seconds))
              for m, r in runners.items()}  # a forward is about a third of a step
    timings = {m: {"train": [], "data": [], "gen": []} for m in modes}
    for block in range(args.blocks):
        progress(f"timed block {block + 1}/{args.blocks}")
        for mode, runner in runners.items():
            per_step, data_share = runner.train_block(steps[mode])
            timings[mode]["train"].append(per_step)
            timings[mode]["data"].append(data_share)
        if args.gen:
            for mode, runner in runners.items():
                timings[mode]["gen"].append(runner.generate_block(images[mode], args.gen_batch))
    return {mode: summarise(timings[mode], runners[mode], steps[mode]) for mode in modes}


def summarise(timing: dict, runner: Runner, steps: int) -> dict:
    per_step = statistics.median(timing["train"])
    per_image = statistics.median(timing["gen"]) if timing["gen"] else None
    return {"seconds_per_step": per_step, "steps_per_second": 1 / per_step,
            "best_seconds_per_step": min(timing["train"]),
            "data_share": statistics.median(timing["data"]),
            "images_per_second": 1 / per_image if per_image else None,
            "peak_memory_mb": runner.peak_mb, "steps_per_block": steps,
            "blocks_seconds_per_step": timing["train"],
            "options": dataclasses.asdict(runner.trainer.fast.options)
            if runner.trainer.fast else None}


def ratios(results: dict) -> dict:
    """Speed relative to faithful: of the medians, and the median of the ratios of
    neighbouring blocks (on a shared machine neighbours see about the same load)."""
    base = results.get("faithful")
    if base is None:
        return {}
    out = {}
    for mode, r in results.items():
        if mode != "faithful":
            gen = r["images_per_second"] / base["images_per_second"] \
                if r["images_per_second"] and base["images_per_second"] else None
            paired = statistics.median(a / b for a, b in zip(base["blocks_seconds_per_step"],
                                                             r["blocks_seconds_per_step"]))
            out[mode] = {"steps_per_second": r["steps_per_second"] / base["steps_per_second"],
                         "steps_per_second_paired": paired, "images_per_second": gen}
    return out


# --- concurrency: N runs sharing the device ------------------------------------------

def concurrency(args, counts: list[int], mode: str) -> list[dict]:
    rows = []
    for n in counts:
        progress(f"{n} concurrent {mode} run(s), {args.concurrent_seconds:g} s")
        try:
            rates = run_workers(args, n, mode)
            rows.append({"runs": n, "mode": mode, "per_run_steps_per_second": rates,
                         "aggregate_steps_per_second": sum(rates)})
        except RuntimeError as err:  # report and go on with the other counts
            rows.append({"runs": n, "mode": mode, "error": str(err)})
    return rows


def run_workers(args, n: int, mode: str) -> list[float]:
    """Start n workers; each warms up and says "ready"; then all get "go" at once."""
    command = [sys.executable, "-m", "replication.bench", *config_argv(args), "--worker", mode]
    package_root = str(Path(__file__).resolve().parents[1])  # importable from any folder
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=env) for _ in range(n)]
    try:
        for w in workers:
            expect(w, "ready")
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        return [json.loads(expect(w, "{"))["steps_per_second"] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.wait()


def expect(worker: subprocess.Popen, start: str) -> str:
    line = worker.stdout.readline()
    if not line.startswith(start):
        raise RuntimeError(f"a bench worker stopped (exit {worker.poll()}) before saying "
                           f"{start!r}; see its error above")
    return line


def config_argv(args) -> list[str]:
    """The options that decide what a worker measures, as command-line arguments."""
    argv = ["--params", args.params, "--device", args.device,
            "--concurrent-seconds", str(args.concurrent_seconds), "--warmup", str(args.warmup)]
    for flag, value in (("--experiment", args.experiment), ("--data", args.data),
                        ("--image-size", args.image_size), ("--batch-size", args.batch_size)):
        if value:
            argv += [flag, str(value)]
    for override in args.overrides:
        argv += ["--set", override]
    return argv


def worker(args) -> int:
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(with_synthetic_data(bench_config(args), Path(tmp)), args.worker, device)
        for _ in range(args.warmup):
            runner.train_block(1)
        print("ready", flush=True)
        sys.stdin.readline()
        steps, began = 0, time.perf_counter()
        while time.perf_counter() - began < args.concurrent_seconds:
            chunk = block_steps(runner.step_seconds, 0.25)
            runner.train_block(chunk)
            steps += chunk
        seconds = time.perf_counter() - began
    print(json.dumps({"steps": steps, "seconds": seconds, "steps_per_second": steps / seconds}),
          flush=True)
    return 0


# --- loss curves: do the modes learn alike? ------------------------------------------

def loss_curves(cfg: ExperimentConfig, modes: list[str], device: torch.device,
                steps: int) -> dict:
    """Per-step losses of every mode from the same seed and batches (read each step)."""
    curves = {}
    for mode in modes:
        progress(f"loss curve: {mode}, {steps} steps")
        trainer, data = build(cfg, mode, device)
        series = {}
        for _ in range(steps):
            losses = trainer.train_step(*data.batch(trainer.step, device))
            for name, value in check_finite(losses, trainer.step, Path(os.devnull)).items():
                series.setdefault(name, []).append(value)
        curves[mode] = series
    return {"steps": steps, "curves": curves, "summary": curve_summary(curves, steps)}


def curve_summary(curves: dict, steps: int) -> dict:
    """Mean of each loss over the first and the last tenth of the run, per mode."""
    window = max(1, steps // 10)
    return {mode: {name: {"first": statistics.fmean(v[:window]),
                          "last": statistics.fmean(v[-window:])}
                   for name, v in series.items() if name.startswith("loss_")}
            for mode, series in curves.items()}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] bench: {message}", file=sys.stderr, flush=True)


# --- command line -------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from replication.params import add_experiment_arguments
    add_experiment_arguments(parser)
    parser.add_argument("--image-size", type=int,
                        help="image size in pixels (default: the experiment's, paper 256)")
    parser.add_argument("--batch-size", type=int,
                        help="training batch size (default: the experiment's, paper 1)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--modes", default="faithful,fast",
                        help=f"comma-separated modes to compare, from {list(MODES)} "
                             "(default faithful,fast)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per mode after the first (default 3)")
    parser.add_argument("--blocks", type=int, default=5,
                        help="timed blocks per mode, alternating between modes (default 5; "
                             "0 = no timing, e.g. for --curves or --concurrent alone)")
    parser.add_argument("--block-seconds", type=float, default=1.0,
                        help="about how long one timed block runs (default 1.0)")
    parser.add_argument("--no-gen", dest="gen", action="store_false",
                        help="skip the generation timing")
    parser.add_argument("--gen-batch", type=int, default=1,
                        help="generation batch size (default 1, as the paper tests)")
    parser.add_argument("--concurrent", default="",
                        help="also measure N runs sharing the device, e.g. 1,2,4 (separate "
                             "processes; aggregate steps/s)")
    parser.add_argument("--concurrent-mode", default="fast", choices=list(MODES),
                        help="the mode the concurrent runs use (default fast)")
    parser.add_argument("--concurrent-seconds", type=float, default=10.0,
                        help="how long the concurrent runs are timed (default 10)")
    parser.add_argument("--curves", type=int, default=0, metavar="STEPS",
                        help="also train faithful and fast STEPS steps from one seed and "
                             "record their loss curves (e.g. 200)")
    parser.add_argument("--json", default="bench.json", help="results file (default bench.json)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="also write the table as a benchmarks/RESULTS.md section")
    parser.add_argument("--worker", choices=list(MODES), help=argparse.SUPPRESS)


def parse_modes(text: str) -> list[str]:
    modes = [m for m in text.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ConfigError(f"--modes {text!r}: unknown mode {unknown[0] if unknown else ''!r}; "
                          f"choose from {list(MODES)}")
    return modes


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",") if n]
    except ValueError:
        counts = [0]
    if any(n < 1 for n in counts):
        raise ConfigError(f"--concurrent {text!r} must list positive process counts, e.g. 1,2,4")
    return counts


def run(args: argparse.Namespace) -> int:
    if args.worker:
        return worker(args)
    modes, counts = parse_modes(args.modes), parse_counts(args.concurrent)
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = with_synthetic_data(bench_config(args), Path(tmp))
        report = {"setup": setup_record(cfg, device, args)}
        progress(f"{report['setup']['model']}, {cfg.data.image_size} px, batch "
                 f"{cfg.train.batch_size}, {report['setup']['device_name']}")
        report["modes"] = measure(cfg, modes, device, args) if args.blocks else {}
        report["ratios"] = ratios(report["modes"])
        if device.type == "cuda":
            torch.cuda.empty_cache()  # leave the device to the concurrent runs
        if counts:
            report["concurrency"] = concurrency(args, counts, args.concurrent_mode)
        if args.curves:  # does fast mode learn as faithful does?
            report["curves"] = loss_curves(cfg, ["faithful", "fast"], device, args.curves)
    print(table(report))
    write_json(args.json, report)
    if args.markdown:
        write_text(args.markdown, markdown(report))
    return 0


if __name__ == "__main__":  # `python -m replication.bench` (the concurrent workers use it)
    cli = argparse.ArgumentParser(prog="python -m replication.bench", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
