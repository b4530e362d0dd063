"""`replication plan`: what the experiment grid costs before a GPU-hour is spent.

For every experiment of params.yaml at the active scale (or --scale NAME): the dataset,
its training images, batch size, epochs, pix2pix steps per run (TrainConfig.total_steps:
ceil(images / batch) x epochs, or train.iterations), seeds and runs x steps; then
total_steps, the training steps of every run of the grid.

With a measured rate — --bench FILE (a `replication bench --json` report, the rate of
--mode or of each experiment's own train.mode) or --steps-per-second X — it estimates
the hours per experiment and in total, on one GPU and on --gpus N. The runs are
independent and none is split: N GPUs take the makespan of a greedy longest-first
assignment of the runs (at least total / N). A rate holds for the batch size and image
size it was measured at; rows at another batch size or image size say so, and
--steps-per-second-at-batch B=X gives the rate for batch size B. Training only:
generation and scoring are not counted. --json FILE writes the same numbers.

Fused runs (train.fuse, fusion.py): --fuse seeds plans each experiment's seeds as one
fused group, --fuse experiments also groups the experiments that may share a step
(fusion_groups.py); by default an experiment's own train.fuse decides (its seeds). A
group of N runs of S steps takes S x N / R(N) seconds, R(N) the aggregate steps/s of N
fused runs at batch 1 (--fused-rate N=X, or the `fused` rows of a `replication bench
--fused` report); between measured sizes the seconds per fused step are interpolated
linearly; groups at another batch size, or of one run, use the unfused rate. A group
is indivisible: N GPUs take the makespan of the groups.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replication.config.datasets import DATASETS
from replication.config.params import Params
from replication.config.schema import ExperimentConfig
from replication.core.errors import ConfigError
from replication.data.images import IMAGE_SUFFIXES
from replication.training.fusion_groups import group_by_key

MODES = ("faithful", "fast")  # TrainConfig.mode


@dataclass(frozen=True)
class PlanRequest:
    """What `replication plan` was asked, as given on its command line (checked here)."""
    params: str  # the params file planned, for the record
    scale: str | None = None  # None: params `scale`
    mode: str | None = None  # None: each experiment's own train.mode
    bench: str | None = None  # a `replication bench --json` report
    steps_per_second: str | None = None
    steps_per_second_at_batch: tuple[str, ...] = ()  # "B=X"
    gpus: str = "1"
    fuse: str | None = None  # None: each experiment's own train.fuse
    fused_rate: tuple[str, ...] = ()  # "N=X"


# --- the grid ------------------------------------------------------------------------

def resolve_grid(params: Params, scale: str | None = None) -> tuple[str, list[ExperimentConfig]]:
    """(scale, every experiment's resolved config) at the active scale or at `scale`."""
    if not params.experiments:
        raise ConfigError(f"{params.path}: no experiments to plan; add entries under "
                          "`experiments`")
    params = params.at_scale(scale) if scale is not None else params
    return params.scale, list(params.configs().values())  # an unknown scale names the known


def training_images(cfg: ExperimentConfig) -> tuple[int | None, str]:
    """(train split size or None, where it came from)."""
    data = cfg.data
    info = DATASETS.get(data.dataset)
    if data.source == "upstream" and info is not None and data.train_split in info.splits:
        return info.splits[data.train_split], "registry"
    folder = Path(data.root) / data.dataset / data.train_split
    if folder.is_dir():
        count = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return count, str(folder)
    return None, f"{folder} not found"


def plan_rows(configs: list[ExperimentConfig], mode: str | None = None) -> list[dict]:
    rows = []
    for cfg in configs:
        images, images_from = training_images(cfg)
        train = cfg.train
        steps = train.total_steps(images) if (images is not None or train.iterations is not None) \
            else None
        if cfg.released:  # the authors' network, fetched: nothing to train
            steps = 0
        rows.append({
            "experiment": cfg.name, "dataset": cfg.data.dataset, "source": cfg.data.source,
            "training_images": images, "images_from": images_from,
            "image_size": cfg.data.image_size, "batch_size": train.batch_size,
            "epochs": None if train.iterations is not None else train.epochs,
            "iterations": train.iterations, "mode": mode or train.mode,
            "steps_per_run": steps, "seeds": list(cfg.seeds), "runs": len(cfg.seeds),
            "steps": None if steps is None else steps * len(cfg.seeds),
        })
    return rows


# --- rates ---------------------------------------------------------------------------

def read_bench(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--bench {path}: file not found; write one with "
                          f"`replication bench --json {path}` on the training GPU")
    try:
        report = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"--bench {path}: not a JSON file ({err}); give the --json file "
                          "`replication bench` wrote") from None
    if not isinstance(report, dict) or not isinstance(report.get("modes"), dict):
        raise ConfigError(f"--bench {path}: no `modes` section; give the --json file "
                          "`replication bench` wrote")
    setup = report.get("setup") if isinstance(report.get("setup"), dict) else {}
    if str(setup.get("device", "")).startswith("cpu"):
        # the hours below are GPU hours: a CPU rate is some 100x off (README "Speed")
        raise ConfigError(f"--bench {path} was measured on the CPU ({setup.get('device_name')}); "
                          "GPU hours need a GPU's rate: run `replication bench --scale paper "
                          f"--json {path}` on the training GPU (or give --steps-per-second X)")
    return report


def bench_rate(report: dict, path: str, mode: str) -> float:
    entry = report["modes"].get(mode)
    if not isinstance(entry, dict):
        raise ConfigError(f"--bench {path} has no {mode!r} mode (it has "
                          f"{sorted(report['modes']) or 'none'}); rerun `replication bench "
                          f"--modes {mode}` or plan with --mode {'/'.join(report['modes'])}")
    return positive_rate(entry.get("steps_per_second"), f"--bench {path} modes.{mode}.steps_per_second")


def positive_rate(value: Any, what: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}={value!r} is not a number; give steps per second, "
                          "e.g. 65") from None
    if not math.isfinite(rate) or rate <= 0:
        raise ConfigError(f"{what}={value!r} must be a positive number of steps per second")
    return rate


def parse_batch_rates(pairs: list[str]) -> dict[int, float]:
    """['10=17.9'] -> {10: 17.9}."""
    out = {}
    for pair in pairs:
        batch, sep, rate = pair.partition("=")
        try:
            size = int(batch)
        except ValueError:
            size = 0
        if not sep or size < 1:
            raise ConfigError(f"--steps-per-second-at-batch {pair!r} must look like "
                              "BATCH=STEPS_PER_SECOND, e.g. 10=17.9")
        out[size] = positive_rate(rate, f"--steps-per-second-at-batch {pair}")
    return out


def parse_gpus(text: str) -> int:
    try:
        gpus = int(text)
    except (TypeError, ValueError):
        gpus = 0
    if gpus < 1:
        raise ConfigError(f"--gpus {text!r} must be a whole number of GPUs >= 1, e.g. --gpus 8")
    return gpus


def attach_rates(rows: list[dict], request: PlanRequest) -> str | None:
    """Give every row its rate (steps/s) and hours; return where the rates came from, or
    None when no rate was given (then no hours)."""
    per_batch = parse_batch_rates(request.steps_per_second_at_batch)
    if request.bench and request.steps_per_second is not None:
        raise ConfigError("give either --bench FILE or --steps-per-second X, not both")
    report = read_bench(request.bench) if request.bench else None
    flat = (positive_rate(request.steps_per_second, "--steps-per-second")
            if request.steps_per_second is not None else None)
    if report is None and flat is None and not per_batch:
        return None
    setup = (report or {}).get("setup") or {}
    for row in rows:
        notes = []
        if row["batch_size"] in per_batch:
            rate, measured_batch, size = per_batch[row["batch_size"]], row["batch_size"], None
            notes.append(f"rate given for batch {row['batch_size']}")
        elif report is not None:
            rate = bench_rate(report, request.bench, row["mode"])
            measured_batch, size = setup.get("batch_size"), setup.get("image_size")
        elif flat is not None:
            rate, measured_batch, size = flat, None, None
        else:
            raise ConfigError(f"experiment {row['experiment']!r} trains at batch "
                              f"{row['batch_size']} and no rate covers it; add "
                              f"--steps-per-second-at-batch {row['batch_size']}=X or "
                              "--steps-per-second X")
        if measured_batch is not None and measured_batch != row["batch_size"]:
            notes.append(f"rate measured at batch {measured_batch}, not {row['batch_size']}")
        if size is not None and size != row["image_size"]:
            notes.append(f"rate measured at {size} px, not {row['image_size']}")
        row["steps_per_second"] = rate
        row["hours_per_run"] = (None if row["steps_per_run"] is None
                                else row["steps_per_run"] / rate / 3600)
        row["hours"] = None if row["hours_per_run"] is None else row["hours_per_run"] * row["runs"]
        row["notes"] = notes
    given = ", ".join(f"batch {b}: {x:g} steps/s" for b, x in sorted(per_batch.items()))
    if report is not None:
        modes = sorted({r["mode"] for r in rows if r["batch_size"] not in per_batch})
        where = ", ".join(str(v) for v in (setup.get("device_name"), setup.get("model"),
                                            setup.get("batch_size") and f"batch {setup['batch_size']}",
                                            setup.get("image_size") and f"{setup['image_size']} px")
                          if v)
        source = f"bench {request.bench}" + (f" ({where})" if where else "") + "".join(
            f"{', ' if i else ': '}{m} {bench_rate(report, request.bench, m):g} steps/s"
            for i, m in enumerate(modes))
    elif flat is not None:
        source = f"--steps-per-second {flat:g}"
        batches = sorted({r["batch_size"] for r in rows if r["batch_size"] not in per_batch})
        if len(batches) > 1:
            source += (f" for batch sizes {', '.join(map(str, batches))} alike (a rate holds at "
                       "the batch size it was measured at; --steps-per-second-at-batch B=X "
                       "gives another)")
    else:
        source = ""
    return "; ".join(s for s in (source, given and f"--steps-per-second-at-batch {given}") if s)


# --- fused groups ----------------------------------------------------------------------

FUSE_CHOICES = ("off", "seeds", "experiments")
FUSED_BATCH = 1  # fused rates are measured at batch 1 (replication bench --fused)


def fused_groups(configs: list[ExperimentConfig], fuse: str | None) -> list[list[str]]:
    """Names of the experiments trained as one fused group (each group's runs: every
    seed of every experiment in it); experiments not fused are groups of their own
    with `fused` false in the plan."""
    trained = [c for c in configs if not c.released]
    if fuse == "experiments":
        return [[c.name for c in group] for group in group_by_key(trained)]
    return [[c.name] for c in trained]


def fuses(cfg: ExperimentConfig, fuse: str | None) -> bool:
    return cfg.train.fuse if fuse is None else fuse != "off"


def parse_fused_rates(pairs: list[str], report: dict | None, path: str | None) -> dict[int, float]:
    """{N: aggregate steps/s of N fused runs} from --fused-rate N=X and a bench report."""
    rates = {}
    for row in (report or {}).get("fused") or []:
        if isinstance(row, dict) and "aggregate_steps_per_second" in row:
            rates[int(row["runs"])] = positive_rate(row["aggregate_steps_per_second"],
                                                    f"--bench {path} fused runs={row['runs']}")
    for pair in pairs:
        n, sep, rate = pair.partition("=")
        if not sep or not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--fused-rate {pair!r} must look like RUNS=AGGREGATE_STEPS_PER_"
                              "SECOND, e.g. 12=800")
        rates[int(n)] = positive_rate(rate, f"--fused-rate {pair}")
    return rates


def fused_rate(n: int, rates: dict[int, float]) -> float:
    """Aggregate steps/s of n fused runs: measured, or the seconds per fused step
    (n / rate) interpolated linearly between the nearest measured sizes."""
    if n in rates:
        return rates[n]
    below, above = [k for k in rates if k < n], [k for k in rates if k > n]
    if not below or not above:
        raise ConfigError(f"a fused group of {n} runs, but fused rates are given for "
                          f"{sorted(rates)} runs only; add --fused-rate {n}=X (or measure it: "
                          f"replication bench --fused {n})")
    a, b = max(below), min(above)
    ta, tb = a / rates[a], b / rates[b]
    return n / (ta + (tb - ta) * (n - a) / (b - a))


def attach_fused(rows: list[dict], groups: list[list[str]], configs: list[ExperimentConfig],
                 fuse: str | None, rates: dict[int, float]) -> list[dict]:
    """Mark fused rows and give them their group's time; return the plan's groups:
    each with its runs, steps per run, rate and hours (None without rates)."""
    by_name = {r["experiment"]: r for r in rows}
    cfg_of = {c.name: c for c in configs}
    out = []
    for names in groups:
        members = [n for n in names if fuses(cfg_of[n], fuse)]
        for n in names:
            by_name[n]["fused"] = n in members
        if not members:
            continue
        runs = sum(by_name[n]["runs"] for n in members)
        steps = by_name[members[0]]["steps_per_run"]
        group = {"experiments": members, "runs": runs, "steps_per_run": steps,
                 "aggregate_steps_per_second": None, "hours": None}
        batch = by_name[members[0]]["batch_size"]
        if rates and runs > 1 and batch == FUSED_BATCH and steps is not None:
            rate = fused_rate(runs, rates)
            group.update(aggregate_steps_per_second=rate, hours=steps * runs / rate / 3600)
            for n in members:
                row = by_name[n]
                row["steps_per_second"] = rate / runs  # each run advances at this rate
                row["hours_per_run"] = group["hours"]  # every run lasts as long as its group
                row["hours"] = group["hours"] * row["runs"] / runs  # its share of the group
                row["notes"] = [f"fused: {runs} runs at {rate:g} steps/s together"]
        elif rates and runs > 1:
            for n in members:
                by_name[n].setdefault("notes", []).append(
                    f"no fused rate at batch {batch}: counted as separate runs")
        out.append(group)
    return out


# --- N GPUs --------------------------------------------------------------------------

def greedy_makespan(durations: list[float], gpus: int) -> tuple[float, list[list[int]]]:
    """Longest-first: each run (index into durations) goes to the least-loaded GPU (the
    lowest-numbered on a tie). Returns (the busiest GPU's hours, the runs per GPU)."""
    loads, assigned = [0.0] * gpus, [[] for _ in range(gpus)]
    for i in sorted(range(len(durations)), key=lambda i: (-durations[i], i)):
        gpu = min(range(gpus), key=lambda g: (loads[g], g))
        loads[gpu] += durations[i]
        assigned[gpu].append(i)
    return max(loads), assigned


def hours_summary(rows: list[dict], gpus: int, groups: list[dict] = ()) -> dict | None:
    """Hours on one GPU and on `gpus`: every run, or fused group (with hours), is one
    unit of work that is never split."""
    if any(r["hours_per_run"] is None for r in rows):
        return None
    timed = [g for g in groups if g["hours"] is not None]
    grouped = {n for g in timed for n in g["experiments"]}
    units = [([f"{r['experiment']}/seed-{seed}"], r["hours_per_run"]) for r in rows
             if r["experiment"] not in grouped for seed in r["seeds"]]
    units += [([f"{n}/seed-{seed}" for n in g["experiments"]
                for seed in next(r for r in rows if r["experiment"] == n)["seeds"]], g["hours"])
              for g in timed]
    total = sum(h for _, h in units)
    makespan, assigned = greedy_makespan([h for _, h in units], gpus)
    return {"one_gpu": total, "gpus": gpus, "makespan": makespan, "lower_bound": total / gpus,
            "assignment": "greedy longest-first, no run (or fused group) split",
            "per_gpu": [{"hours": sum(units[i][1] for i in idx),
                         "runs": [run for i in idx for run in units[i][0]]}
                        for idx in assigned]}


# --- output --------------------------------------------------------------------------

def _n(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _h(hours: float | None) -> str:
    if hours is None:
        return "-"
    return f"{hours:.2f}" if hours >= 0.005 else "<0.01"


def _span(hours: float) -> str:
    """12.71 h (0.5 days); 0.11 h (6.7 min)."""
    return f"{hours:.2f} h" + (f" ({hours / 24:.1f} days)" if hours >= 24 else
                               f" ({hours * 60:.1f} min)" if hours < 1 else "")


def render(plan: dict) -> str:
    rows, hours = plan["experiments"], plan.get("hours")
    rated = plan.get("rate_source") is not None
    w = max(len("experiment"), *(len(r["experiment"]) for r in rows)) + 2
    head = (f"{'experiment':<{w}}{'dataset':<12}{'images':>8}{'batch':>6}{'epochs':>7}"
            f"{'steps/run':>11}  {'seeds':<8}{'runs x steps':>16}")
    if rated:
        head += f"  {'mode':<9}{'steps/s':>8}{'h/run':>8}{'hours':>8}  note"
    lines = [f"plan for {plan['params']} at scale {plan['scale']}: {len(rows)} experiments, "
             f"{plan['runs']} runs", head]
    for r in rows:
        epochs = str(r["epochs"]) if r["epochs"] is not None else "-"
        runs_x = f"{r['runs']} x {_n(r['steps_per_run'])}"
        line = (f"{r['experiment']:<{w}}{r['dataset']:<12}{_n(r['training_images']):>8}"
                f"{r['batch_size']:>6}{epochs:>7}{_n(r['steps_per_run']):>11}  "
                f"{','.join(map(str, r['seeds'])):<8}{runs_x:>16}")
        notes = []
        if r["iterations"] is not None:
            notes.append(f"train.iterations={r['iterations']} overrides epochs")
        if r["steps_per_run"] is None:
            notes.append(f"images unknown: {r['images_from']}")
        if rated:
            line += (f"  {r['mode']:<9}{r['steps_per_second']:>8.1f}"
                     f"{_h(r['hours_per_run']):>8}{_h(r['hours']):>8}")
            notes = r["notes"] + notes
        if notes:
            line += "  " + "; ".join(notes)
        lines.append(line)
    total = plan["total_steps"]
    lines.append(f"total_steps: {_n(total)} (the pix2pix training steps of every run: "
                 "sum over experiments of steps/run x seeds)"
                 + ("" if total is not None else "; some experiments' image counts are unknown"))
    if rated:
        lines.append(f"rates: {plan['rate_source']}")
        if hours is None:
            lines.append("hours: unknown (some experiments' steps are unknown)")
        else:
            lines.append(f"hours on 1 GPU: {_span(hours['one_gpu'])}")
            if hours["gpus"] > 1:
                lines.append(f"hours on {hours['gpus']} GPUs: {_span(hours['makespan'])}, the "
                             f"makespan of a greedy longest-first assignment of the "
                             f"{plan['runs']} independent runs, no run split (total / "
                             f"{hours['gpus']} = {hours['lower_bound']:.2f} h is the floor)")
        for g in plan.get("fused_groups") or []:
            rate = g["aggregate_steps_per_second"]
            lines.append(f"fused group of {g['runs']} runs ({', '.join(g['experiments'])}): "
                         + (f"{rate:.1f} steps/s together, {_span(g['hours'])}" if rate
                            else "no fused rate: counted as separate runs"))
        lines.append("training only; generation and scoring are not counted")
    if plan.get("launcher_note"):
        lines.append(plan["launcher_note"])
    return "\n".join(lines)


def build_plan(request: PlanRequest, params: Params) -> dict:
    gpus = parse_gpus(request.gpus)
    scale, configs = resolve_grid(params, request.scale)
    rows = plan_rows(configs, request.mode)
    rate_source = attach_rates(rows, request)
    report = read_bench(request.bench) if request.bench else None
    rates = parse_fused_rates(request.fused_rate, report, request.bench)
    if rates and rate_source is None:
        raise ConfigError("--fused-rate needs an unfused rate too (--bench FILE or "
                          "--steps-per-second X) for the runs that are not fused")
    groups = attach_fused(rows, fused_groups(configs, request.fuse), configs, request.fuse,
                          rates if rate_source is not None else {})
    steps = [r["steps"] for r in rows]
    plan = {"params": str(request.params), "scale": scale,
            "total_steps": None if None in steps else sum(steps),
            "runs": sum(r["runs"] for r in rows), "experiments": rows,
            "fused_groups": groups}
    if rate_source is not None:
        if rates:
            rate_source += "; fused at batch 1: " + ", ".join(
                f"{n} runs {x:g} steps/s" for n, x in sorted(rates.items()))
        plan["rate_source"] = rate_source
        plan["hours"] = hours_summary(rows, gpus, groups)
    launcher = params.raw_section("launcher").get("train") or "python -m"
    if launcher.strip() != "python -m":
        plan["launcher_note"] = (f"params launcher.train is {launcher!r}: this plan counts "
                                 "one GPU per run")
    return plan
