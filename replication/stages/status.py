"""`replication status`: what the pipeline has produced so far (--check: fail when incomplete).

The command's arguments and run; the work is replication.grid.status's."""

from __future__ import annotations

from pathlib import Path

from replication.config.params import Params
from replication.core import layout
from replication.grid.status import (
    NOTEBOOK,
    PIPELINE_PRODUCTS,
    PLOTS,
    PRODUCT_STAGES,
    TABLES,
    experiment_rows,
    older,
)
from replication.stages.arguments import add_params_argument


def product_states(metrics_dir: Path = layout.METRICS, logs_dir: Path = layout.LOGS) -> dict:
    """{product: "present" | "STALE (older than ...)" | "MISSING"} for PIPELINE_PRODUCTS."""
    made_from = {TABLES: ("a scores.json", list(metrics_dir.glob("*/scores.json"))),
                 PLOTS: ("a loss log", list(logs_dir.glob("*/seed-*/plots/metrics/train/*.tsv"))),
                 NOTEBOOK: ("the tables", [TABLES])}
    out = {}
    for product in PIPELINE_PRODUCTS:
        what, inputs = made_from[product]
        out[product] = ("MISSING" if not product.is_file() else
                        f"STALE (older than {what})" if older(product, inputs) else "present")
    return out


def metrics_column(metrics: dict) -> str:
    """e.g. "fcn_score_fallback psnr_ssim; no number: fid_kid; not run: pixel_accuracy"."""
    parts = [" ".join(metrics["numbers"]) or "no numbers"]
    if metrics["unavailable"]:
        parts.append("no number: " + " ".join(metrics["unavailable"]))
    if metrics["not_run"]:
        parts.append("not run: " + " ".join(metrics["not_run"]))
    return "; ".join(parts)


def scored_column(row: dict) -> str:
    """yes | partial (a metric without a number, or one not run) | NO."""
    if not row["scored"]:
        return "NO"
    metrics = row["metrics"]
    return "partial" if metrics["unavailable"] or metrics["not_run"] else "yes"


def reasons_once(rows: list[dict]) -> list[str]:
    """"<metric>: <reason> (<k> seeds)", once per metric and reason, in table order."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        for metric, reason in row["metrics"]["unavailable"].items():
            counts[metric, reason] = counts.get((metric, reason), 0) + 1
    return [f"{metric}: {reason} ({k} seed{'s' if k > 1 else ''})"
            for (metric, reason), k in counts.items()]


def add_arguments(parser) -> None:
    add_params_argument(parser)
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if any experiment, table, plots page or "
                             "notebook is missing (and say what and why)")


def run(args) -> int:
    params = Params.load(args.params)
    source = params.scale_data().source
    print(f"scale: {params.scale} (params.yaml `scale`; data: {source})")
    rows = experiment_rows(params)
    print(f"{'experiment':34} seed  trained  generated   scored  metrics")
    missing, stale = [], []
    for r in rows:
        metrics = metrics_column(r["metrics"]) if r["scored"] else ""
        scored = "STALE" if r["stale"] == "scored" else scored_column(r)
        generated = f"{r['generated']}{'*' if r['stale'] == 'generated' else ''}"
        print(f"{r['experiment']:34} {r['seed']:>4}  {'yes' if r['trained'] else 'NO':>7}  "
              f"{generated:>9}  {scored:>7}  {metrics}".rstrip())
        why = missing_reason(r)
        if why:
            missing.append((f"{r['experiment']} seed {r['seed']}", why))
        elif r["stale"]:
            stale.append((f"{r['experiment']} seed {r['seed']}",
                          "generated images older than the generator (*)"
                          if r["stale"] == "generated" else "scores older than its images"))
    problems = list(dict.fromkeys(r["problem"] for r in rows if r["problem"]))
    if problems:
        print("not scored, why:")
        for line in problems:
            print(f"  {line}")
    reasons = reasons_once(rows)
    if reasons:
        print("no number, why:")
        for line in reasons:
            print(f"  {line}")
    for product, state in product_states().items():
        print(f"{str(product):34}       {state}")
        if state == "MISSING":
            missing.append((str(product), f"not written yet (stage {PRODUCT_STAGES[product]})"))
        elif state != "present":
            stale.append((str(product), state.split(" ", 1)[1].strip("()")))
    if missing:
        print(f"missing: {len(missing)}")
        for what, why in missing[:10]:
            print(f"  {what}: {why}")
        if len(missing) > 10:
            print(f"  ... and {len(missing) - 10} more")
    if stale:
        print(f"stale: {', '.join(what for what, _ in stale)}")
    print(f"next: {next_command(missing, stale, rows)}")
    return 1 if (args.check and missing) else 0


def missing_reason(row: dict) -> str | None:
    """Why a seed is incomplete, or None: untrained, images missing, or not scored."""
    if not row["trained"]:
        run = layout.run_dir(row["experiment"], row["seed"])
        return f"not trained (no {layout.generator_path(run)})"
    if not row["complete"]:
        return f"generated {row['generated']} test images"
    if not row["scored"]:
        scores = layout.score_metrics(row["experiment"])
        return (f"not scored ({scores} unusable: see \"not scored, why\")" if row["problem"]
                else f"not scored ({scores} has no seed-{row['seed']})")
    return None


def next_command(missing: list, stale: list, rows: list[dict]) -> str:
    """What to run now: the pipeline while anything is missing or stale, else the views."""
    if missing or stale:
        first = next((r for r in rows if missing_reason(r) or r["stale"]), None)
        stage = ("train" if not first["trained"] else "generate"
                 if not first["complete"] or first["stale"] == "generated" else "score") \
            if first else None
        one = f"; one experiment: `dvc repro {stage}@{first['experiment']}`" if first else ""
        return f"`dvc repro` (runs only what is missing or stale){one}"
    return ("`replication compare` (your experiments beside their baselines); open "
            f"{TABLES}, {PLOTS} and {NOTEBOOK}")
