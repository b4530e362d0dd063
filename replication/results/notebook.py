"""The results notebook: `replication notebook` and the helpers its cells call.

`replication notebook` executes notebooks/results.ipynb with papermill and converts it to
HTML. The notebook reads the same results `replication tables` renders (replication/results/tables.py)
and shows them with the helpers here: tables with coloured Δ cells, bar charts of ours
against the paper, loss curves and paper-Figure-4 image grids.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from replication.config.params import Params
from replication.core.errors import ConfigError
from replication.core.fileio import atomic_path, write_text
from replication.results.paper import TablesError
from replication.results.records import NOT_COMPARABLE_WITH_PAPER
from replication.results.tables import Results, table_title, wide_table

# --- notebook helpers: highlighted tables, bar charts, loss curves, image grids ------------
# matplotlib is imported inside the plotting helpers, papermill and nbconvert inside
# execute_notebook: `replication notebook --help` needs none of them.

# the series replication/training/loop.py logs with DVCLive (plots/metrics/train/<name>.tsv)
LOSS_SERIES = ("loss_D", "loss_G_gan", "loss_G_l1", "D_real", "D_fake", "lr")


def style_table(results: Results, table_id: str):
    """The display table with each Δ cell coloured by |ours − paper| / paper:
    green within 10 %, yellow within 25 %, red beyond (pandas Styler); no colour where
    the protocol is not comparable with the paper's (records.NOT_COMPARABLE_WITH_PAPER)."""
    shown = wide_table(results, table_id)
    part = results.records[results.records.table == table_id]

    def colours(_: pd.DataFrame) -> pd.DataFrame:
        css = pd.DataFrame("", index=shown.index, columns=shown.columns)
        for column in results.tables[table_id]["columns"]:
            if f"{column} Δ" in css:
                rows = part[part.column == column]
                css[f"{column} Δ"] = [_diff_css(d, p, m)
                                      for d, p, m in zip(rows["diff"], rows.paper, rows.metric)]
        return css

    styled = shown.style.apply(colours, axis=None).hide(axis="index")
    # the same protocol, segmenter and image count in every row: said once, above the
    # table, so that Table 1 fits the page
    values = {c: shown[c][shown[c] != ""].unique() for c in SAID_ONCE if c in shown}
    same = [c for c, v in values.items() if len(v) <= 1]  # rows without a number: ""
    caption = "; ".join(f"{c}: {values[c][0]}" for c in same if len(values[c]))
    styled = styled.hide(same, axis="columns").set_table_styles(
        [{"selector": "", "props": "font-size: 72%"},
         {"selector": "td", "props": "padding: 2px 4px"}])
    return styled.set_caption(caption) if caption else styled


SAID_ONCE = ("Images", "Protocol", "Segmenter", "Notes")  # display columns, often constant


def _diff_css(diff: float, paper: float, metric: str = "") -> str:
    if pd.isna(diff) or any(m in (metric or "") for m in NOT_COMPARABLE_WITH_PAPER):
        return ""
    relative = abs(diff) / max(abs(paper), 1e-9)
    colour = "#c8e6c9" if relative <= 0.10 else "#fff3b0" if relative <= 0.25 else "#f4c7c3"
    return f"background-color: {colour}"


def bar_chart(results: Results, table_id: str):
    """Ours (mean, error bar = its interval, replication/results/statistics.py; none where there is
    no interval, e.g. one seed of a one-number-per-set metric: no bar reads as zero
    spread) next to the paper, one panel per column, the seeds under each bar; None when
    the table has no paper values. Numbers of a protocol not comparable with the paper's
    (the fallback segmenter's FCN-scores) are hatched and the title says so."""
    from matplotlib.figure import Figure
    records = results.records
    part = records[records.table == table_id]
    if not part.paper.notna().any():
        return None
    part = part[part.paper.notna() | part.yours]  # your experiments: ours only
    columns = list(dict.fromkeys(part.column))
    fig = Figure(figsize=(4.2 * len(columns), 3.8), layout="constrained")
    caveat = False
    for ax, column in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns):
        rows = part[part.column == column]
        x = np.arange(len(rows))
        apart = np.array([any(m in (metric or "") for m in NOT_COMPARABLE_WITH_PAPER)
                          for metric in rows.metric])
        caveat |= bool(apart.any())
        ax.bar(x - 0.2, rows.paper, 0.4, label="paper", color="#9e9e9e")
        bars = ax.bar(x + 0.2, rows["mean"].fillna(0), 0.4, color="#1f77b4", label="ours",
                      edgecolor="white")
        for bar, not_comparable in zip(bars, apart):
            bar.set_hatch("//" if not_comparable else "")
        spread = rows["lo"].notna() & rows["hi"].notna() & rows["mean"].notna()
        if spread.any():
            mean = rows["mean"][spread].astype(float)
            ax.errorbar(x[spread.to_numpy()] + 0.2, mean,
                        yerr=[(mean - rows["lo"][spread]).clip(lower=0),
                              (rows["hi"][spread] - mean).clip(lower=0)],
                        fmt="none", ecolor="black", capsize=3, lw=1)
        for xi, mean, n in zip(x, rows["mean"], rows["n"]):
            ax.text(xi + 0.2, 0, "n/a" if pd.isna(mean) else f"n={n}", ha="center",
                    va="bottom", fontsize=7)
        ax.set_xticks(x, rows.label, rotation=30, ha="right")
        ax.set_title(column)
    # one legend for the figure, outside the panels: it covers no bar
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    title = table_title(results, table_id)
    if caveat:
        title += ("\nhatched: our fallback segmenter's FCN-scores, not comparable with the "
                  "paper's bars (docs/protocols.md)")
    fig.suptitle(title, fontsize=9)
    return fig


def read_loss_curves(logs_dir: str | Path, experiment: str) -> dict[str, dict[str, pd.DataFrame]]:
    """seed folder -> series name -> DVCLive TSV (columns step, <name>)."""
    curves = {}
    for seed_dir in sorted((Path(logs_dir) / experiment).glob("seed-*")):
        folder = seed_dir / "plots" / "metrics" / "train"
        series = {name: pd.read_csv(folder / f"{name}.tsv", sep="\t")
                  for name in LOSS_SERIES if (folder / f"{name}.tsv").is_file()}
        if series:
            curves[seed_dir.name] = series
    return curves


def loss_curves(logs_dir: str | Path, experiment: str):
    """(figure, None) with one panel per logged series and one line per seed, or
    (None, note) when the experiment has no logs."""
    from matplotlib.figure import Figure
    curves = read_loss_curves(logs_dir, experiment)
    if not curves:
        return None, (f"— {experiment}: no loss curves "
                      f"({Path(logs_dir) / experiment}/seed-*/plots/metrics/train/*.tsv missing)")
    names = [n for n in LOSS_SERIES if any(n in series for series in curves.values())
             and not _flat(curves, n)]
    if not names:
        return None, f"— {experiment}: every logged series is constant"
    fig = Figure(figsize=(2.6 * len(names) + 0.8, 2.4), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        for seed, series in curves.items():
            if name in series:
                ax.plot(series[name]["step"], series[name][name], label=seed, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7)  # off the curves
    fig.suptitle(experiment, fontsize=10)
    return fig, None


def _flat(curves: dict, name: str) -> bool:
    """A series with nothing to show: the GAN loss of an L1-only run (logged as 0, no D
    losses at all), or the lr under the paper's constant policy."""
    values = pd.concat([s[name][name] for s in curves.values() if name in s])
    return bool(values.nunique(dropna=True) <= 1 and (name == "lr" or (values == 0).all()))


def sample_grid_groups(results: Results, params: Params) -> list[tuple[str, list]]:
    """(title, [(label, experiment)]) of the image grids beside Figures 4 and 6: one per
    dataset and direction but Cityscapes labels -> photo (those figures), whose grid
    shows your experiments (with their baselines) only. Labels: the paper's row names."""
    labels = {r["experiment"]: r["label"] for spec in results.tables.values()
              for r in spec["rows"] if not spec.get("all_experiments")}
    yours = set(results.records[results.records.yours].experiment)
    base = dict(zip(results.records.experiment, results.records.baseline))
    groups: dict[tuple, list] = {}
    for name in results.experiments:
        try:
            data = params.experiment_dict(name)["data"]
        except ConfigError:
            continue
        task = (data["dataset"], data.get("direction", "BtoA"))
        if task == ("cityscapes", "BtoA") and name not in yours:
            continue
        group = groups.setdefault(task, [])
        if name in yours and base.get(name) and base[name] not in group:
            group.append(base[name])
        if name not in group:
            group.append(name)
    titles = {("cityscapes", "BtoA"): "Cityscapes labels → photo: your experiments",
              ("cityscapes", "AtoB"): "Cityscapes photo → labels (Table 6)",
              ("maps", "AtoB"): "Maps photo → map (Table 4)",
              ("maps", "BtoA"): "Maps map → photo (Table 4)",
              ("facades", "BtoA"): "Facades labels → photo"}
    return [(titles.get(task, f"{task[0]} {task[1]}"),
             [(labels.get(e, e), e) for e in group]) for task, group in groups.items()]


def table_columns(results: Results, table_id: str, labels: list[str] | None = None):
    """(label, experiment) of a table's rows, e.g. the columns of an image grid."""
    rows = results.tables[table_id]["rows"]
    return [(r["label"], r["experiment"]) for r in rows if labels is None or r["label"] in labels]


def figure4_grid(columns: list[tuple[str, str]], params: Params,
                 generated_dir: str | Path, data_dir: str | Path,
                 seed: int = 0, n_images: int = 3):
    """Paper Figure 4 layout: input | one column per run | target, on the same test images.

    Runs without generated images are skipped (with a note). Returns (figure | None, notes).
    """
    notes = []
    runs = []
    for label, experiment in columns:
        folder = Path(generated_dir) / experiment / f"seed-{seed}"
        names = {p.stem for p in folder.glob("*.png")}
        if names:
            runs.append((label, experiment, folder, names))
        else:
            notes.append(f"{label} ({experiment}) skipped: no images in {folder}")
    names = sorted(set.intersection(*(r[3] for r in runs)), key=_natural)[:n_images] if runs else []
    if not names:
        return None, notes + ["nothing to show: no test image generated by every run shown"]
    pairs, pair_note = _real_pairs(params, runs[0][1], data_dir, names)
    notes += [pair_note] if pair_note else []
    grid_columns = [(label, [Image.open(folder / f"{n}.png").convert("RGB") for n in names])
                    for label, _, folder, _ in runs]
    if pairs:
        grid_columns = [("Input", pairs[0]), *grid_columns, ("Target", pairs[1])]
    return _image_grid(grid_columns, names), notes


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _real_pairs(params: Params, experiment: str, data_dir, names: list[str]):
    """([inputs], [targets]) from data/<dataset>/<test split>/<name>.jpg (A | B halves)."""
    try:
        data = params.experiment_dict(experiment)["data"]
    except ConfigError as err:
        return None, f"input and target skipped: {err}"
    split = data.get("test_split", "test")
    folder = Path(data_dir) / data["dataset"] / split
    files = [next(folder.glob(f"{n}.*"), None) for n in names]
    if None in files:
        return None, f"input and target skipped: the test pairs are not in {folder}"
    halves = [_halves(Image.open(f).convert("RGB")) for f in files]
    a, b = [h[0] for h in halves], [h[1] for h in halves]
    # BtoA (the paper's labels -> photo): the input is the right half B
    return ((b, a) if data.get("direction", "BtoA") == "BtoA" else (a, b)), None


def _halves(pair):
    w, h = pair.size
    return pair.crop((0, 0, w // 2, h)), pair.crop((w // 2, 0, w, h))


def _image_grid(columns: list[tuple[str, list]], names: list[str]):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2.0 * len(columns), 2.0 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), len(columns), squeeze=False)
    for j, (label, images) in enumerate(columns):
        axes[0, j].set_title(label, fontsize=9)
        for i, image in enumerate(images):
            axes[i, j].imshow(np.asarray(image))
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    for i, name in enumerate(names):
        axes[i, 0].set_ylabel(name, fontsize=8)
    return fig


def rendered_files(tables_dir: str | Path) -> list[Path]:
    """The files `replication tables` wrote (empty when it has not run)."""
    folder = Path(tables_dir)
    return sorted(folder.glob("*.md")) + sorted(folder.glob("*.csv")) if folder.is_dir() else []


def rendered_links(tables_dir: str | Path, page_dir: str | Path) -> str:
    """A markdown list linking each rendered table relative to the page that shows it
    (the HTML lies in notebooks/, the tables in tables/: ../tables/...)."""
    files = rendered_files(tables_dir)
    if not files:
        return f"— `{tables_dir}` holds no rendered tables yet (run `replication tables`)"
    return "\n".join(f"- [{f.name}]({Path(os.path.relpath(f, page_dir)).as_posix()})"
                     for f in files)


# --- command line: replication notebook ------------------------------------------------------

# papermill's tags of the cell holding the defaults and of the one it injects: the page
# is for readers (their values are the command line's), not for the machine it ran on
PARAMETER_TAGS = ("parameters", "injected-parameters")


def execute_notebook(notebook: str | Path, executed: str | Path, html: str | Path,
                     parameters: dict, timeout: int = 600) -> None:
    """Run the notebook top to bottom with papermill; write it and its HTML atomically
    (the HTML without the parameter cells)."""
    import nbformat
    import papermill
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    if not Path(notebook).is_file():
        raise TablesError(f"{notebook}: notebook not found (run from the repository root)")
    with tempfile.TemporaryDirectory(prefix="replication-kernel-") as sockets:
        nb = papermill.execute_notebook(str(notebook), None, parameters=parameters,
                                        kernel_name="python3", progress_bar=False,
                                        execution_timeout=timeout,
                                        kernel_manager_class=ipc_kernel_manager(sockets),
                                        # the kernel's own log: at shutdown jupyter_client
                                        # interrupts it, and it may log that as an ERROR;
                                        # a cell's error comes back as papermill's instead
                                        extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    with atomic_path(executed) as tmp:
        nbformat.write(nb, str(tmp))
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = PARAMETER_TAGS
    body, _ = HTMLExporter(config=config).from_notebook_node(nb)
    write_text(html, body)


def ipc_kernel_manager(folder: str):
    """A kernel manager talking to its kernel over Unix sockets in `folder`: the kernel
    runs on this machine, and over TCP it warns that its traffic is unencrypted."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport, self.ip = "ipc", os.path.join(folder, "kernel")
    return IPCKernelManager
