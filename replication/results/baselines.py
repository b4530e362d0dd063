"""Your experiments in the tables: a row beside the paper row each derives from.

An experiment of params.yaml that is no row of the paper's tables (an ablation) gets a
row in every table of its task (paper_numbers.yaml `task`: dataset and direction), right
after the row of its baseline: params.yaml `compare_to`, else the paper experiment of the
same task whose settings differ least; without one, at the end of the task's first table.
"""

from __future__ import annotations

from replication.config.params import Params
from replication.core.errors import ConfigError
from replication.results.claims import compare


def check_compare_to(params: Params) -> None:
    """Every `compare_to` names another experiment of params.yaml (one-line error)."""
    experiments = params.experiments
    for name, entry in experiments.items():
        target = (entry or {}).get("compare_to")
        if target is not None and (target not in experiments or target == name):
            raise ConfigError(f"{params.path}: experiments.{name}.compare_to={target!r} names no other "
                              f"experiment of params.yaml; known: {sorted(set(experiments) - {name})}")


def paper_experiments(tables: dict[str, dict]) -> list[str]:
    """The experiments of the paper's rows (reference rows left out), in table order."""
    return list(dict.fromkeys(r["experiment"] for spec in tables.values() for r in spec["rows"]))


def experiment_task(params: Params, name: str) -> tuple[str, str] | None:
    """(dataset, direction) of an experiment of params.yaml; None if it does not resolve."""
    try:
        data = params.experiment_dict(name)["data"]
    except (ConfigError, KeyError):
        return None
    return data.get("dataset"), data.get("direction")


def _settings(params: Params, name: str) -> dict:
    """An experiment's resolved settings as {"train.lr": ..., ...}, but IGNORED."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out
    settings = flat(params.experiment_dict(name))
    return {k: v for k, v in settings.items() if k not in IGNORED}


# What makes an experiment another run, not other settings, or adds evaluations beside
# the tables' numbers (the test-time study: its tables' numbers stay the paper's mode)
IGNORED = ("name", "seeds", "compare_to", "generate.modes", "generate.samples",
           "generate.study_batch_size")


def baselines(params: Params, paper: list[str]) -> dict[str, tuple[str | None, str]]:
    """Your experiment -> (baseline experiment or None, how it was chosen).

    params.yaml `compare_to` when given; else the paper experiment (a row of the paper's
    tables, in params.yaml) of the same dataset and direction whose resolved settings
    differ in the fewest keys (the first in params.yaml order on a tie)."""
    experiments = params.experiments
    out = {}
    for name, entry in experiments.items():
        if name in paper:
            continue
        if (entry or {}).get("compare_to"):
            out[name] = (entry["compare_to"], "compare_to")
            continue
        task = experiment_task(params, name)
        candidates = [e for e in experiments if e in paper and task is not None
                      and experiment_task(params, e) == task]
        if not candidates:
            out[name] = (None, "no paper experiment of this dataset and direction; "
                               "name one with compare_to")
            continue
        mine = _settings(params, name)
        differ = {}
        for e in candidates:
            theirs = _settings(params, e)
            differ[e] = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        best = min(candidates, key=lambda e: len(differ[e]))  # stable: params order on ties
        keys = differ[best]
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        out[name] = (best, f"closest paper experiment (differs in {shown or 'nothing'})")
    return out


def _task_matches(spec: dict, task: tuple[str, str] | None) -> bool:
    want = spec.get("task")
    if not want or task is None:
        return False
    return want["dataset"] == task[0] and want.get("direction", task[1]) == task[1]


def add_your_rows(tables: dict[str, dict], params: Params,
                  chosen: dict[str, tuple[str | None, str]]) -> dict[str, dict]:
    """Copies of the tables with a row for each of your experiments (see the module
    docstring): after the row of its baseline in every table of its task that has that
    row; where no table of its task and metric has it, at the end of the first one. A
    dataset's FID/KID table lists every experiment of the dataset."""
    tables = {t: {**spec, "rows": list(spec["rows"])} for t, spec in tables.items()}
    for name, (baseline, how) in chosen.items():
        task = experiment_task(params, name)
        matching = [(t, spec) for t, spec in tables.items() if _task_matches(spec, task)]
        placed = set()  # metrics with a table holding the baseline's row
        for table_id, spec in matching:
            if any(r["experiment"] == baseline for r in spec["rows"]):
                placed.add(spec["metric"])
        for table_id, spec in matching:
            rows = spec["rows"]
            at = [i for i, r in enumerate(rows) if baseline and (
                r["experiment"] == baseline or r.get("baseline") == baseline)]
            first = next(t for t, other in matching if other["metric"] == spec["metric"])
            if not (at or spec.get("all_experiments")
                    or (spec["metric"] not in placed and first == table_id)):
                continue  # shown in the task's table that holds its baseline's row
            label = next((r["label"] for r in rows if r["experiment"] == baseline), baseline)
            rows.insert(at[-1] + 1 if at else len(rows), {
                "label": _label(params, name), "experiment": name, "yours": True, "baseline": baseline,
                "baseline_label": label, "baseline_how": how})
    return tables


def _label(params: Params, name: str) -> str:
    released = (params.experiments.get(name) or {}).get("released")
    return f"{name} (the authors' released {released})" if released else name


def with_comparison(ours: dict, base: dict) -> dict:
    """Your experiment's record with its baseline's number beside it, the difference
    with its paired interval and the verdict (claims.compare)."""
    cell = {"base_mean": base["mean"], "base_std": base["std"], "base_n": base["n"]}
    if ours["gap"] or base["gap"]:
        return {**ours, **cell, "base_verdict": "—",
                "base_reason": f"baseline {base['experiment']}: {base['gap']}" if base["gap"]
                else "no number of ours"}
    verdict, reason, d = compare(ours, base)
    return {**ours, **cell, "base_diff": ours["mean"] - base["mean"],
            "base_diff_lo": d.lo if d else None, "base_diff_hi": d.hi if d else None,
            "base_verdict": verdict, "base_reason": reason}
