"""`replication plots` (stage `plots`): the loss curves of every table, drawn offline.

One chart per table and loss, overlaying the table's experiments (each experiment's
first seed: logs/<experiment>/seed-<k>/plots/metrics/train/<loss>.tsv, DVCLive's step
series), one colour per experiment (the same in every chart), its name in the legend.
A table whose experiments all have charts already (Fig. 7d, the per-dataset FID/KID and
PSNR/SSIM tables) gets none; the lr (constant under the paper's policy) and the GAN
losses of L1-only runs (no D) are left out. The charts follow params.yaml: a new
experiment is on them after the next `dvc repro` (this stage depends on `experiments`
and on logs/), and one without curves yet is named under its chart, never left off.

Writes `<out>/index.html`, a page with the charts as PNG images inside it (matplotlib;
no script, no network), and `<out>/data/<table>-<loss>.csv` (step, value, experiment),
what dvc.yaml's top-level `plots` hands `dvc plots show` (its page loads the Vega
libraries from a CDN: it needs a network, this page does not).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from replication.config.params import Params
from replication.core.errors import ConfigError
from replication.core.fileio import atomic_dir
from replication.results.baselines import check_compare_to
from replication.results.paper import PAPER_NUMBERS, load_paper_numbers
from replication.results.tables import table_specs

LOSSES = ("loss_D", "loss_G_gan", "loss_G_l1", "D_real", "D_fake")  # DVCLive series, lr left out
GAN_ONLY = {"loss_D", "loss_G_gan", "D_real", "D_fake"}  # not logged (or 0) without a D
# Points per line in the data files and charts: a paper-scale run logs ~12,000 steps per
# series; beyond this many, consecutive logged values are averaged in equal bins (a
# chart is a few hundred pixels wide; the full series stays in logs/).
MAX_POINTS = 1000


@dataclass
class Chart:
    key: str  # "<table>-<loss>": the data file's name
    title: str
    loss: str
    series: dict[str, Path] = field(default_factory=dict)  # experiment -> its TSV
    without: dict[str, str] = field(default_factory=dict)  # experiment -> why no curve


def series_file(params: Params, experiment: str, loss: str, logs: Path) -> tuple[Path | None, str]:
    """(the TSV of an experiment's first seed, "") or (None, why it has no such curve)."""
    try:
        cfg = params.experiment_dict(experiment)
    except ConfigError as err:
        return None, str(err)
    if cfg.get("released"):
        return None, "the authors' released network, not trained here"
    if loss in GAN_ONLY and (cfg.get("loss") or {}).get("gan") == "none":
        return None, ""  # L1 only: no D, nothing to draw (not worth a note)
    seed = (cfg.get("seeds") or [0])[0]
    return logs / experiment / f"seed-{seed}" / "plots" / "metrics" / "train" / f"{loss}.tsv", ""


def charts(params: Params, paper: dict, logs: Path) -> list[Chart]:
    """The charts of the module docstring, in table order."""
    experiments = params.experiments
    charted: set[str] = set()
    out = []
    for table_id, spec in table_specs(params, paper).items():
        names = list(dict.fromkeys(r["experiment"] for r in spec["rows"]
                                   if r["experiment"] in experiments))
        if not names or set(names) <= charted:
            continue
        charted |= set(names)
        head = spec["task"]["dataset"] if spec.get("all_experiments") \
            else spec["title"].split(" — ")[0]
        for loss in LOSSES:
            chart = Chart(f"{table_id}-{loss}", f"{loss} — {head}", loss)
            for name in names:
                path, why = series_file(params, name, loss, logs)
                if path is not None and path.is_file():
                    chart.series[name] = path
                elif path is not None:
                    chart.without[name] = f"not trained yet ({path} missing)"
                elif why:
                    chart.without[name] = why
            if chart.series or chart.without:
                out.append(chart)
    return out


def read_series(path: Path, loss: str) -> pd.DataFrame:
    """(step, value) of one DVCLive TSV, binned to at most MAX_POINTS rows."""
    frame = pd.read_csv(path, sep="\t")[["step", loss]].rename(columns={loss: "value"})
    if len(frame) > MAX_POINTS:
        bins = pd.Series(range(len(frame))) * MAX_POINTS // len(frame)
        frame = frame.groupby(bins.values).agg({"step": "last", "value": "mean"})
    return frame.reset_index(drop=True)


def chart_data(chart: Chart) -> pd.DataFrame:
    frames = [read_series(path, chart.loss).assign(experiment=name)
              for name, path in chart.series.items()]
    return pd.concat(frames, ignore_index=True) if frames else \
        pd.DataFrame(columns=["step", "value", "experiment"])


def colours(experiments: list[str]) -> dict[str, tuple]:
    """One colour per experiment of params.yaml, the same in every chart."""
    from matplotlib import colormaps
    palette = colormaps["tab20"].colors
    return {name: palette[(2 * i) % 20 + (2 * i // 20) % 2] for i, name in enumerate(experiments)}


def draw(chart: Chart, data: pd.DataFrame, colour: dict[str, tuple]) -> bytes:
    """The chart as a PNG: a line per experiment, the legend outside the axes."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name, part in data.groupby("experiment", sort=False):
        ax.plot(part["step"], part["value"], lw=1.2, color=colour.get(name), label=name)
    ax.set_title(chart.title, fontsize=10)
    ax.set_xlabel("step", fontsize=9)
    if chart.series:
        fig.legend(loc="outside right upper", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
            "margin:1.5em}} img{{max-width:100%}} .note{{color:#555;font-size:90%}}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(sections)
            + "\n</body></html>\n")


def write_plots(params: Params, logs: str | Path, out: str | Path,
                paper_path: str | Path = PAPER_NUMBERS) -> list[Chart]:
    paper = load_paper_numbers(paper_path)
    check_compare_to(params)
    found = charts(params, paper, Path(logs))
    colour = colours(list(params.experiments))
    sections = [f"<p class=\"note\">Scale {html.escape(params.scale)}; each "
                "experiment's first seed (every seed: notebooks/results.html); data: "
                "<a href=\"data/\">data/*.csv</a>. Written by <code>replication plots"
                "</code>.</p>"]
    with atomic_dir(out, "plots", inputs=[logs]) as tmp:
        (tmp / "data").mkdir()
        for chart in found:
            data = chart_data(chart)
            data.to_csv(tmp / "data" / f"{chart.key}.csv", index=False)
            image = base64.b64encode(draw(chart, data, colour)).decode()
            alt = f"{chart.title}: {', '.join(chart.series) or 'no curves'}"  # the legend, as text
            notes = "".join(f"<li>{html.escape(n)}: {html.escape(why)}</li>"
                            for n, why in chart.without.items())
            sections.append(
                f"<h2 id=\"{chart.key}\">{html.escape(chart.title)}</h2>"
                f"<img alt=\"{html.escape(alt)}\" src=\"data:image/png;base64,{image}\">"
                + (f"<ul class=\"note\">no curve: {notes}</ul>" if notes else ""))
        (tmp / "index.html").write_text(page("Loss curves", sections))
    return found
