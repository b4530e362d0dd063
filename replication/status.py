"""`replication status`: what the pipeline has produced, experiment by experiment.

For every experiment and seed in params.yaml: is the generator trained, is every test
image generated, is it scored, and WHAT was scored: the metrics with numbers, those
without (each reason stated once, below the table) and those the rule
(`registry.metrics_for`) names but scores.json lacks; then the tables and the executed
notebook. With --check it exits 1 when a seed is untrained, ungenerated or unscored, or
a table, the plots page or the notebook is missing (CI runs it after the smoke pipeline),
each with what is missing and why; a metric without a number (FID/KID offline) is
listed, not an error. It shows the active scale, marks outputs older than what they are
made from as stale (by file times: scores older than their generated images, tables
than a scores.json, the plots page than a loss log, the notebook than the tables), and
ends with the command to run next.
"""

from __future__ import annotations

from pathlib import Path

from replication import layout
from replication.params import active_scale, load_experiment, load_params, scale_data
from replication.records import read_scores_file
from replication.datasets import IMAGE_SUFFIXES
from replication.metrics.registry import metrics_for
from replication.metrics.settings import load_scoring

TABLES, PLOTS, NOTEBOOK = Path("tables/README.md"), Path("plots/index.html"), \
    Path("notebooks/results.html")
PIPELINE_PRODUCTS = (TABLES, PLOTS, NOTEBOOK)
# the DVC stage writing each product (dvc.yaml), for the hints
PRODUCT_STAGES = {TABLES: "tables", PLOTS: "plots", NOTEBOOK: "notebooks"}
# Clock slack when comparing file times: a git checkout or `dvc exp run` writing a
# product and its inputs in one go may order them within this; a real change is later.
SLACK_S = 2.0


def count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def newest(paths) -> float:
    """The latest modification time among `paths` (0 when there are none)."""
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def older(product: Path, inputs) -> bool:
    """`product` exists and is older than the newest of `inputs`, beyond SLACK_S."""
    return product.is_file() and newest(inputs) - product.stat().st_mtime > SLACK_S


def experiment_rows(params_path: str) -> list[dict]:
    rows = []
    params = load_params(params_path)
    scoring = load_scoring(params)
    for name in params.get("experiments") or {}:
        cfg = load_experiment(params_path, name)
        seeds, problem = read_scores(name)
        expected_metrics = metrics_for(cfg, scoring)
        split = cfg.generate.split or cfg.data.test_split
        expected = count_images(Path(cfg.data.root) / cfg.data.dataset / split)
        if cfg.generate.max_images is not None:  # the rehearsal's named deviation
            expected = min(expected, cfg.generate.max_images)
        for seed in cfg.seeds:
            generator = layout.generator_path(layout.run_dir(name, seed))
            images = sorted(layout.generated_dir(name, seed).glob("*"))
            rows.append({
                "experiment": name, "seed": seed,
                "trained": generator.is_file(),
                "generated": f"{count_images(layout.generated_dir(name, seed))}/{expected}",
                "complete": expected > 0 and
                count_images(layout.generated_dir(name, seed)) == expected,
                "scored": f"seed-{seed}" in seeds,
                # a newer generator than its images, newer images than their scores
                "stale": ("generated" if images and older(max(images, key=_mtime), [generator])
                          else "scored" if f"seed-{seed}" in seeds
                          and older(layout.score_metrics(name), images) else None),
                "metrics": seed_metrics(seeds.get(f"seed-{seed}"), expected_metrics),
                "problem": problem,  # why metrics/<name>/scores.json cannot be used
            })
    return rows


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


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


def scored_seeds(name: str) -> dict:
    """metrics/<name>/scores.json `seeds` ({"seed-<k>": {metric: record}}), {} if none."""
    return read_scores(name)[0]


def read_scores(name: str) -> tuple[dict, str | None]:
    """(`seeds` of metrics/<name>/scores.json, None), ({}, None) when there is none, or
    ({}, why it cannot be used): unreadable or of another shape (records.py's reading)."""
    path = layout.score_metrics(name)
    if not path.is_file():
        return {}, None
    scores, problem = read_scores_file(path)
    return (scores["seeds"], None) if scores else ({}, problem)


def seed_scored(name: str, seed: int) -> bool:
    return f"seed-{seed}" in scored_seeds(name)


def seed_metrics(records: dict | None, expected: list[str]) -> dict:
    """What one seed's scores say: {"numbers": [metric, ...], "unavailable": {metric:
    reason}, "not_run": [metric the rule names, absent from scores.json]}."""
    records = records if isinstance(records, dict) else {}
    numbers, unavailable = [], {}
    for metric, record in records.items():
        if isinstance(record, dict) and record.get("available") is False:
            unavailable[metric] = short_reason(record.get("reason"))
        else:
            numbers.append(metric)
    not_run = [m for m in expected if m not in records] if records else []
    return {"numbers": numbers, "unavailable": unavailable, "not_run": not_run}


def short_reason(reason, limit: int = 140) -> str:
    """A reason as one short phrase (scores.json from before reasons were cut down)."""
    text = " ".join(str(reason or "no reason given").split())
    if len(text) <= limit:
        return text
    for mark in (" (", "; ", ": "):
        if 0 < text.find(mark) <= limit:
            return text[:text.find(mark)]
    return text[:limit - 3] + "..."


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
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if any experiment, table, plots page or "
                             "notebook is missing (and say what and why)")


def run(args) -> int:
    params = load_params(args.params)
    source = scale_data(params).source
    print(f"scale: {active_scale(params)} (params.yaml `scale`; data: {source})")
    rows = experiment_rows(args.params)
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
