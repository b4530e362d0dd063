"""train.seed_processes: an experiment's seeds trained side by side, one process each.

Why: on a CPU one pix2pix run at batch 1 uses a second thread poorly (its convolutions are
too small to split), while two single-threaded processes keep two cores busy: on the
2-core Xeon, 128 px, ngf 32, one process on 2 threads made 5.7 steps/s, two processes on
1 thread each 10.4 steps/s together (benchmarks/RESULTS.md). Each child is the ordinary
`replication train` of one seed with OMP_NUM_THREADS = cores // N, so every run is the
run it would be alone on that many threads (same arithmetic, same files); the parent
only waits, forwards SIGINT/SIGTERM (each child checkpoints and stops) and writes the
experiment's summary from the children's train.json files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from replication.core import layout

# a child of this launcher: trains its one seed and leaves metrics/<experiment>/ to the parent
CHILD_FLAG = "--one-of-seed-processes"


def threads_per_process(processes: int) -> int:
    """The cores this process may use, shared evenly (at least one thread each)."""
    return max(1, len(os.sched_getaffinity(0)) // processes)


def child_command(args, seed: int) -> list[str]:
    """`replication train` for one seed, with this call's other arguments."""
    command = [sys.executable, "-m", "replication", "train", "--params", args.params,
               "--seed", str(seed), "--no-progress", "--on-config-change",
               args.on_config_change, CHILD_FLAG]
    command += ["--experiment", args.experiment] if args.experiment else ["--data", args.data]
    for override in args.overrides:
        command += ["--set", override]
    if args.restart:
        command.append("--restart")
    if args.stop_after:
        command += ["--stop-after", str(args.stop_after)]
    return command


def train_side_by_side(args, name: str, seeds: list[int], processes: int) -> tuple[dict, int]:
    """Run the seeds `processes` at a time; (summaries by "seed-<k>", exit code)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(processes))}
    summaries, code = {}, 0
    for start in range(0, len(seeds), processes):
        batch = seeds[start:start + processes]
        children = [subprocess.Popen(child_command(args, seed), env=env) for seed in batch]
        codes = _wait_forwarding_signals(children)
        for seed, child_code in zip(batch, codes):
            summary_file = layout.run_dir(name, seed) / "train.json"
            if child_code == 0 and summary_file.is_file():
                summaries[f"seed-{seed}"] = json.loads(summary_file.read_text())
            else:
                print(f"{name} seed {seed}: its process ended with exit code {child_code}",
                      file=sys.stderr)
                code = code or child_code or 1
        if code:
            break  # a stopped or failed batch: the next call resumes from here
    return summaries, code


def _wait_forwarding_signals(children: list[subprocess.Popen]) -> list[int]:
    """Wait for every child; SIGINT/SIGTERM reach each of them (each checkpoints and
    stops, exit code 130), and the parent keeps waiting until all have."""
    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
