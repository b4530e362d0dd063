"""The test-time study's tables: the ways of running G at test time side by side, per task.

For every experiment of params.yaml that asked for the study (generate.modes /
generate.samples; replication/inference/test_time.py, docs/test_time.md), one line per metric
column: the paper's mode with its interval; each other mode with its interval and its
difference to the paper's mode (paired: the same seeds, the same test images; the
verdict of replication/results/statistics.py); and, with K > 1 dropout draws, the standard
deviation of the score over the draws next to the one over seeds, and the output
diversity (per-pixel standard deviation across the draws).

Read from metrics/<experiment>/scores.json ("test_time") and per_image/test-time/.
"""

from __future__ import annotations

import statistics as stats

import numpy as np
import pandas as pd

from replication.config.params import Params
from replication.config.schema import ExperimentConfig
from replication.core.errors import ConfigError
from replication.inference import test_time
from replication.results.formatting import fmt, interval_text, markdown
from replication.results.records import Workspace, measure
from replication.results.statistics import NO_INTERVAL, difference, intervals

DIVERSITY = "output_diversity"  # score.py: per-pixel std across the K draws, 0-255
FRAME_COLUMNS = ["experiment", "variant", "setting", "metric", "column", "mean", "lo", "hi",
                 "n", "covers", "diff", "diff_lo", "diff_hi", "verdict", "pairing",
                 "sd_over_draws", "draws", "sd_over_seeds", "gap"]


def study_experiments(params: Params) -> dict[str, ExperimentConfig]:
    """The experiments of params.yaml that asked for the test-time study."""
    out = {}
    for name in params.experiments:
        try:
            cfg = params.config(name)
        except ConfigError:
            continue  # the tables report it elsewhere; the study needs a valid config
        if test_time.asked(cfg.generate):
            out[name] = cfg
    return out


def test_time_frames(params: Params, workspace: Workspace, tables: dict) -> dict[str, dict]:
    """Table id (test_time_<dataset>_<direction>) -> {"title", "frame"}: FRAME_COLUMNS,
    one line per (experiment, variant, metric column)."""
    columns = {}  # metric family -> its columns, as the results tables show them
    for spec in tables.values():
        columns.setdefault(spec["metric"], list(spec["columns"]))
    out: dict[str, dict] = {}
    for name, cfg in study_experiments(params).items():
        task = f"test_time_{cfg.data.dataset}_{cfg.data.direction}"
        entry = out.setdefault(task, {"title": f"Test-time study — {cfg.data.dataset} "
                                               f"{cfg.data.direction} (docs/test_time.md)",
                                      "lines": []})
        entry["lines"] += experiment_lines(name, cfg, workspace, columns)
    return {t: {"title": e["title"], "frame": pd.DataFrame(e["lines"], columns=FRAME_COLUMNS)}
            for t, e in out.items()}


def experiment_lines(name: str, cfg: ExperimentConfig, workspace: Workspace,
                     columns: dict[str, list[str]]) -> list[dict]:
    scores, gap = workspace.read_scores(name)
    study = (scores or {}).get("test_time")
    if not study:
        return [{"experiment": name, "variant": "", "gap": gap or (
            "not scored with the test-time study yet (rerun `replication score`)")}]
    variants = study["variants"]
    boot, lines = workspace.bootstrap, []
    for family, names in columns.items():
        for column in names:
            paper = _measure(workspace, name, scores, test_time.PAPER, variants, family, column)
            if paper["sample"] is None:
                continue  # no number for this metric on this task (e.g. FID offline)
            for variant, setting in variants.items():
                cell = paper if variant == test_time.PAPER else _measure(
                    workspace, name, scores, variant, variants, family, column)
                line = {"experiment": name, "variant": variant,
                        "setting": setting["setting"]["description"], "metric": cell["metric"],
                        "column": column, "mean": cell["mean"], "n": cell["n"],
                        "gap": cell["gap"]}
                if cell["sample"] is not None:
                    iv = intervals(cell["sample"], boot)[column]
                    line.update(lo=iv.lo, hi=iv.hi, covers=iv.covers)
                if variant != test_time.PAPER and cell["sample"] is not None:
                    line.update(_versus_paper(cell, paper, column, boot))
                lines.append(line)
            lines += _draws_line(name, scores, study, family, column, paper)
    if study.get("diversity"):
        lines.append(_diversity_line(name, scores, study, workspace))
    return lines


def _measure(workspace: Workspace, name: str, scores: dict, variant: str, variants: dict,
             family: str, column: str) -> dict:
    if variants[variant].get("same_as_tables"):
        return measure(scores, family, column, per_image_file=workspace.per_image_file(name))
    return measure(scores, family, column, seeds=variants[variant]["seeds"],
                   per_image_file=workspace.per_image_file(name, variant))


def _versus_paper(cell: dict, paper: dict, column: str, boot) -> dict:
    if cell["metric"] != paper["metric"] or cell["metric"].startswith("MIXED"):
        return {"verdict": "no verdict", "pairing": f"not one protocol ({cell['metric']} "
                                                    f"vs {paper['metric']})"}
    d = difference(cell["sample"], paper["sample"], column, boot)
    verdict = "no verdict" if d.verdict == NO_INTERVAL else d.verdict
    return {"diff": d.estimate, "diff_lo": d.lo, "diff_hi": d.hi, "verdict": verdict,
            "pairing": d.covers}


def _draws_line(name: str, scores: dict, study: dict, family: str, column: str,
                paper: dict) -> list[dict]:
    """The paper's mode over its K dropout draws: per seed the sample std (ddof 1) of
    the score over the draws, averaged over seeds; the std over seeds beside it."""
    draws = study.get("samples") or []
    if len(draws) < 2:
        return []
    per_seed = []
    for seed in scores["seeds"]:
        values = []
        for variant in draws:
            seeds = scores["seeds"] if study["variants"][variant].get("same_as_tables") \
                else study["variants"][variant]["seeds"]
            cell = measure({"seeds": {seed: seeds.get(seed)}}, family, column)
            if cell["mean"] is not None:
                values.append(cell["mean"])
        if len(values) == len(draws):
            per_seed.append(stats.stdev(values))
    seed_values = paper["sample"].values[column] if paper["sample"] is not None else []
    return [{"experiment": name, "variant": f"{len(draws)} dropout draws",
             "setting": "the paper's mode, sample seeds 0 .. K-1", "metric": paper["metric"],
             "column": column, "draws": len(draws),
             "sd_over_draws": float(np.mean(per_seed)) if per_seed else None,
             "sd_over_seeds": float(np.std(seed_values, ddof=1)) if len(seed_values) > 1
             else None, "n": len(per_seed),
             "gap": None if per_seed else "no number on every draw"}]


def _diversity_line(name: str, scores: dict, study: dict, workspace: Workspace) -> dict:
    seeds = study["diversity"]  # a per-image mean, resampled as PSNR is
    cell = measure({"seeds": seeds}, DIVERSITY, "diversity",
                   per_image_file=workspace.per_image_file(name, "diversity"))
    line = {"experiment": name, "variant": f"{len(study['samples'])} dropout draws",
            "setting": "per-pixel std across the draws (ddof 1), 0-255, mean over pixels",
            "metric": DIVERSITY, "column": "diversity", "mean": cell["mean"], "n": cell["n"],
            "draws": len(study["samples"]), "gap": cell["gap"]}
    if cell["sample"] is not None:
        iv = intervals(cell["sample"], workspace.bootstrap)["diversity"]
        line.update(lo=iv.lo, hi=iv.hi, covers=iv.covers)
    return line



# --- rendering: the modes side by side ------------------------------------------------------

def wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per (experiment, metric column), one column per mode (the K draws of the
    paper's mode summarised in one): 'value [interval]', for the other modes also
    'Δ difference [interval] verdict' against the paper's mode."""
    modes = [v for v in dict.fromkeys(frame.variant) if v and not v.startswith("sample-")]
    lines = []
    for (experiment, metric, column), group in frame[frame.variant != ""].groupby(
            ["experiment", "metric", "column"], sort=False):
        line = {"Experiment": experiment, "Metric": metric, "Column": column}
        by_variant = {r.variant: r for r in group.itertuples(index=False)}
        for mode in modes:
            r = by_variant.get(mode)
            line[mode] = _cell(r, fmt, interval_text) if r is not None else ""
        lines.append(line)
    for r in frame[frame.variant == ""].itertuples(index=False):
        lines.append({"Experiment": r.experiment, "Metric": "—", "Column": r.gap})
    return pd.DataFrame(lines)


def _cell(r, fmt, interval_text) -> str:
    c = r.column
    if r.gap:
        return "—"
    if pd.notna(r.draws) and r.metric != DIVERSITY:
        seeds = f"; over seeds {fmt(r.sd_over_seeds, c)}" if pd.notna(r.sd_over_seeds) else ""
        return f"sd over draws {fmt(r.sd_over_draws, c)}{seeds}"
    text = f"{fmt(r.mean, c)}{interval_text(r.lo, r.hi, c)}"
    if isinstance(r.verdict, str) and r.verdict:
        diff = "" if pd.isna(r.diff) else \
            f"{fmt(r.diff, c, True)}{interval_text(r.diff_lo, r.diff_hi, c, True)} "
        text += f"; Δ {diff}{r.verdict}"
    return text


def markdown_text(title: str, frame: pd.DataFrame, marker: str, boot_text: str) -> str:
    settings: dict[str, str] = {}
    for r in frame.itertuples(index=False):
        if r.variant and not r.variant.startswith("sample-") and r.metric != DIVERSITY:
            settings.setdefault(r.variant, r.setting)
    pairings = list(dict.fromkeys(p for p in frame.pairing if isinstance(p, str) and p))
    covers = list(dict.fromkeys(c for c in frame.covers if isinstance(c, str) and c))
    return (f"# {title} ({marker})\n\n"
            "How G runs at test time, side by side for the experiments that asked for it "
            "(params `generate.modes`, `generate.samples`). Each cell: the mean over seeds "
            f"[interval]; other modes also Δ = mode − the paper's mode [interval] and the "
            f"verdict (higher / lower / within noise). {boot_text}.\n\n"
            "Modes:\n\n" + "\n".join(f"- **{v}**: {s}" for v, s in settings.items())
            + "\n\n" + markdown(wide(frame))
            + ("\nPairing of the differences:\n\n" + "\n".join(f"- {p}" for p in pairings)
               + "\n" if pairings else "")
            + ("\nWhat the intervals account for:\n\n" + "\n".join(f"- {c}" for c in covers)
               + "\n" if covers else ""))
