"""What `replication bench` prints and writes: the table, the Markdown section for
benchmarks/RESULTS.md, and the record of the machine and code that were measured."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import torch

from replication.config.schema import ExperimentConfig
from replication.core.devices import device_name


def commit() -> str:
    """REPLICATION_COMMIT (a copied tree may have no .git), else git's HEAD."""
    if os.environ.get("REPLICATION_COMMIT"):
        return os.environ["REPLICATION_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cells(r: dict) -> tuple[str, ...]:
    """s/step, steps/s, data share, generation images/s and peak MB of one mode."""
    gen = f"{r['images_per_second']:.1f}" if r["images_per_second"] else "-"
    peak = f"{r['peak_memory_mb']:.0f}" if r["peak_memory_mb"] is not None else "-"
    return (f"{r['seconds_per_step']:.4f}", f"{r['steps_per_second']:.2f}",
            f"{r['data_share']:.1%}", gen, peak)


def table(report: dict) -> str:
    lines = [f"{'mode':<16}{'s/step':>10}{'steps/s':>10}{'data':>8}{'gen img/s':>11}"
             f"{'peak MB':>9}"]
    for mode, r in report["modes"].items():
        step, rate, share, gen, peak = _cells(r)
        lines.append(f"{mode:<16}{step:>10}{rate:>10}{share:>8}{gen:>11}{peak:>9}")
    for mode, ratio in report["ratios"].items():
        gen = f", {ratio['images_per_second']:.2f}x images/s" if ratio["images_per_second"] else ""
        lines.append(f"{mode}/faithful: {ratio['steps_per_second']:.2f}x steps/s (paired "
                     f"blocks {ratio['steps_per_second_paired']:.2f}x){gen}")
    for row in report.get("concurrency", []):
        lines.append(f"{row['runs']} concurrent {row['mode']}: " + (
            f"{row['aggregate_steps_per_second']:.2f} steps/s in total" if "error" not in row
            else f"FAILED ({row['error']})"))
    lines += [fused_line(row) for row in report.get("fused", [])]
    lines += [adam_line(row) for row in report.get("adam", [])]
    return "\n".join(lines)


def adam_line(row: dict) -> str:
    if "error" in row:
        return f"Adam {row['optimizer']}: failed: {row['error']}"
    return (f"Adam {row['optimizer']} over {row['parameters']:,} parameters: "
            f"{row['ms_per_step']:.3f} ms, {row['gb_per_s']:.0f} GB/s at "
            f"{row['bytes_per_parameter']} B/parameter")


def fused_line(row: dict) -> str:
    if "error" in row:
        return f"{row['runs']} fused {row['mode']} run(s): failed: {row['error']}"
    return (f"{row['runs']} fused {row['mode']} run(s): {row['aggregate_steps_per_second']:.2f} "
            f"steps/s in total ({row['ms_per_fused_step']:.2f} ms a fused step)")


def markdown(report: dict) -> str:
    s = report["setup"]
    head = (f"### {s['device_name']}, {s['image_size']} px, batch {s['batch_size']}\n\n"
            f"- date: {s['date']}, commit {s['commit']}, torch {s['torch']}\n"
            f"- command: `{s['command']}`\n"
            f"- model: {s['model']}\n\n")
    rows = ["| mode | s/step | steps/s | data share | generation img/s | peak MB |",
            "|---|---:|---:|---:|---:|---:|"] if report["modes"] else []
    for mode, r in report["modes"].items():
        rows.append(f"| {mode} | " + " | ".join(_cells(r)) + " |")
    tail = [f"\n{mode}/faithful: **{r['steps_per_second']:.2f}x** steps/s (paired blocks "
            f"{r['steps_per_second_paired']:.2f}x)" for mode, r in report["ratios"].items()]
    for row in report.get("concurrency", []):
        tail.append(f"\n{row['runs']} concurrent {row['mode']} run(s): " + (
            f"{row['aggregate_steps_per_second']:.2f} steps/s in total"
            if "error" not in row else f"failed: {row['error']}"))
    tail += [f"\n{fused_line(row)}" for row in report.get("fused", [])]
    tail += [f"\n{adam_line(row)}" for row in report.get("adam", [])]
    return head + "\n".join(rows) + "\n" + "\n".join(tail) + "\n"


def setup_record(cfg: ExperimentConfig, device: torch.device, experiment: str,
                 scale: str) -> dict:
    g, d, loss = cfg.generator, cfg.discriminator, cfg.loss
    return {"device": str(device), "device_name": device_name(device),
            "scale": scale,
            "torch": torch.__version__, "image_size": cfg.data.image_size,
            "batch_size": cfg.train.batch_size, "experiment": experiment, "model": f"{g.arch} ngf {g.ngf}, D {d.receptive_field}x"
            f"{d.receptive_field} ndf {d.ndf}, gan {loss.gan}, L1 weight {loss.l1_weight}",
            "fast_precision": cfg.train.fast_precision, "date": datetime.date.today().isoformat(),
            "commit": commit(), "command": "replication bench " + " ".join(sys.argv[2:])}
