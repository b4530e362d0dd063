"""`replication status`: what the pipeline has produced, experiment by experiment.

For every experiment and seed in params.yaml: is the generator trained, is every test
image generated, is it scored; then the tables and the executed notebook. With --check
it exits 1 when anything is missing (CI runs it after the smoke pipeline).
"""

from __future__ import annotations

import json
from pathlib import Path

from replication import layout
from replication.params import load_experiment, load_params
from replication.data.paired import IMAGE_SUFFIXES

PIPELINE_PRODUCTS = (Path("tables/README.md"), Path("notebooks/results.html"))


def count_images(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def experiment_rows(params_path: str) -> list[dict]:
    rows = []
    for name in load_params(params_path).get("experiments") or {}:
        cfg = load_experiment(params_path, name)
        split = cfg.generate.split or cfg.data.test_split
        expected = count_images(Path(cfg.data.root) / cfg.data.dataset / split)
        if cfg.generate.max_images is not None:  # the rehearsal's named deviation
            expected = min(expected, cfg.generate.max_images)
        for seed in cfg.seeds:
            rows.append({
                "experiment": name, "seed": seed,
                "trained": layout.generator_path(layout.run_dir(name, seed)).is_file(),
                "generated": f"{count_images(layout.generated_dir(name, seed))}/{expected}",
                "complete": expected > 0 and
                count_images(layout.generated_dir(name, seed)) == expected,
                "scored": seed_scored(name, seed),
            })
    return rows


def seed_scored(name: str, seed: int) -> bool:
    path = layout.score_metrics(name)
    if not path.is_file():
        return False
    return f"seed-{seed}" in json.loads(path.read_text()).get("seeds", {})


def add_arguments(parser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 if any experiment, table or notebook is missing")


def run(args) -> int:
    rows = experiment_rows(args.params)
    print(f"{'experiment':34} seed  trained  generated  scored")
    missing = []
    for r in rows:
        print(f"{r['experiment']:34} {r['seed']:>4}  {'yes' if r['trained'] else 'NO':>7}  "
              f"{r['generated']:>9}  {'yes' if r['scored'] else 'NO':>6}")
        if not (r["trained"] and r["complete"] and r["scored"]):
            missing.append(f"{r['experiment']} seed {r['seed']}")
    for product in PIPELINE_PRODUCTS:
        print(f"{str(product):34}       {'present' if product.is_file() else 'MISSING'}")
        if not product.is_file():
            missing.append(str(product))
    if missing:
        print(f"missing: {len(missing)} ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    return 1 if (args.check and missing) else 0
