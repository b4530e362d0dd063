"""notebooks/results.ipynb runs top to bottom with papermill on a small smoke workspace and on
an empty one; the image-grid helper puts input, runs and target where Figure 4 has them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from replication.config.params import Params
from replication.results import notebook, paper, tables
from replication.stages import notebook as notebook_stage

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "results.ipynb"
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)

PARAMS = {
    "scale": "smoke",
    "scales": {"smoke": {"seeds": [0], "data": {"source": "synthetic"}}},
    "datasets": ["cityscapes"],
    "experiments": {
        "cityscapes-l1": {"data": {"dataset": "cityscapes"}, "loss": {"gan": "none"}},
        "cityscapes-cgan": {"data": {"dataset": "cityscapes"}, "loss": {"l1_weight": 0}},
        "cityscapes-l1-cgan": {"data": {"dataset": "cityscapes"}},
    },
}


def solid(colour, size=16) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def write_empty(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return root


def write_smoke(root: Path) -> Path:
    """Scores, loss curves and images for L1 and L1+cGAN; cGAN trained but not generated."""
    write_empty(root)
    for name, pp in (("cityscapes-l1", 0.3), ("cityscapes-cgan", 0.4), ("cityscapes-l1-cgan", 0.5)):
        scores = {"experiment": name, "scale": "smoke", "task": {}, "timing": {}, "summary": {},
                  "seeds": {"seed-0": {
                      "fcn_score_fallback": {"per_pixel_acc": pp, "per_class_acc": 0.1,
                                             "class_iou": 0.05, "protocol": "fallback",
                                             "segmenter": "tiny", "frames": 2},
                      "color_hist": {"L": 0.8, "a": 0.7, "b": 0.6},
                      "fid_kid": {"available": False, "reason": "no Inception weights"}}}}
        (root / "metrics" / name).mkdir(parents=True)
        (root / "metrics" / name / "scores.json").write_text(json.dumps(scores))
        train = root / "logs" / name / "seed-0" / "plots" / "metrics" / "train"
        train.mkdir(parents=True)
        for series in ("loss_D", "loss_G_l1"):
            (train / f"{series}.tsv").write_text(f"step\t{series}\n10\t0.9\n20\t0.5\n")
    for name in ("cityscapes-l1", "cityscapes-l1-cgan"):
        out = root / "generated" / name / "seed-0"
        out.mkdir(parents=True)
        for image in ("1", "2", "10"):
            solid(GREEN).save(out / f"{image}.png")
    val = root / "data" / "cityscapes" / "val"
    val.mkdir(parents=True)
    for image in ("1", "2", "10"):  # A (photo, left) red | B (labels, right) blue
        pair = Image.new("RGB", (32, 16))
        pair.paste(solid(RED), (0, 0))
        pair.paste(solid(BLUE), (16, 0))
        pair.save(val / f"{image}.jpg", quality=100)
    return root


def execute(root: Path) -> tuple[nbformat.NotebookNode, str]:
    parser = argparse.ArgumentParser()
    notebook_stage.add_arguments(parser)
    folders = [f"--{n}={root / n}" for n in ("tables", "metrics", "logs", "generated", "data")]
    args = parser.parse_args([f"--params={root / 'params.yaml'}", *folders, "--images=2",
                              f"--notebook={NOTEBOOK}", f"--executed={root / 'out.ipynb'}",
                              f"--html={root / 'out.html'}"])
    assert notebook_stage.run(args) == 0
    return nbformat.read(root / "out.ipynb", as_version=4), (root / "out.html").read_text()


def outputs(nb, mime: str) -> list[str]:
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if mime in o.get("data", {})]


@pytest.mark.slow
def test_notebook_runs_on_a_smoke_workspace(tmp_path, capfd):
    nb, html = execute(write_smoke(tmp_path))
    markdown = "\n".join(outputs(nb, "text/markdown"))
    assert "SMOKE scale — synthetic data; not a paper result" in markdown
    assert "cGAN (cityscapes-cgan) skipped: no images" in markdown
    # bar charts for tables 1, 2, 3, 6 and colour, 3 loss-curve figures, 2 image grids
    assert len(outputs(nb, "image/png")) == 5 + 3 + 2
    assert "0.300 (n=1)" in html and "SMOKE scale" in html
    # the page shows no parameter cell (papermill's defaults and injected values), and
    # so no path of the machine it ran on (the packaged paper numbers are the default)
    assert "Parameters (papermill)" not in html and "injected" not in html.lower()
    assert str(paper.PAPER_NUMBERS) not in html
    assert "without encryption" not in capfd.readouterr().err  # the kernel talks over IPC


@pytest.mark.slow
def test_notebook_runs_on_an_empty_workspace(tmp_path):
    nb, html = execute(write_empty(tmp_path / "empty"))
    markdown = "\n".join(outputs(nb, "text/markdown"))
    assert "cityscapes-l1: no loss curves" in markdown
    assert "nothing to show" in markdown
    assert "holds no rendered tables yet" in markdown
    assert "not run yet" in html
    assert len(outputs(nb, "image/png")) == 5  # only the paper's bars


def test_figure4_grid_columns_and_orientation(tmp_path):
    root = write_smoke(tmp_path)
    columns = [("L1", "cityscapes-l1"), ("cGAN", "cityscapes-cgan"),
               ("L1+cGAN", "cityscapes-l1-cgan")]
    fig, notes = notebook.figure4_grid(columns, Params.load(root / "params.yaml"), root / "generated",
                                     root / "data", seed=0, n_images=2)
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == ["Input", "L1", "L1+cGAN", "Target"]  # cGAN has no images: skipped
    assert [ax.get_ylabel() for ax in fig.axes[::4]] == ["1", "2"]  # natural order, 2 rows
    assert len(fig.axes) == 2 * 4 and len(notes) == 1 and "cGAN" in notes[0]
    centre = [ax.get_images()[0].get_array()[8, 8] for ax in fig.axes[:4]]
    # labels -> photo (BtoA): the input is the right half B (blue), the target A (red)
    np.testing.assert_allclose(centre[0], BLUE, atol=8)
    np.testing.assert_allclose(centre[1], GREEN, atol=0)
    np.testing.assert_allclose(centre[3], RED, atol=8)


def test_notebook_has_a_papermill_parameters_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    for name in ("params_path", "tables_dir", "metrics_dir", "logs_dir", "generated_dir",
                 "data_dir", "seed", "n_images"):
        assert f"{name} = " in cell.source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stored clean


def test_missing_notebook_is_a_one_line_error(tmp_path):
    with pytest.raises(paper.TablesError, match="nowhere.ipynb: notebook not found"):
        notebook.execute_notebook(tmp_path / "nowhere.ipynb", tmp_path / "x.ipynb",
                                tmp_path / "x.html", {})


def load(root: Path) -> tables.Results:
    return tables.load_results(Params.load(root / "params.yaml"), root / "metrics")


def official_workspace(root: Path) -> Path:
    """tests/results/test_tables.py's workspace: the paper's FCN protocol, FID unavailable on maps."""
    from tests.results import test_tables
    root.mkdir(parents=True, exist_ok=True)
    return test_tables.write_workspace(root)


def test_no_delta_colour_for_a_protocol_not_comparable_with_the_paper(tmp_path):
    fallback = notebook.style_table(load(write_smoke(tmp_path / "smoke")), "table1").to_html()
    assert "background-color" not in fallback  # our fallback segmenter: Δ shown, not judged
    official = notebook.style_table(load(official_workspace(tmp_path / "exact")), "table1").to_html()
    assert "background-color" in official
    markdown = tables.table_markdown(load(write_smoke(tmp_path / "smoke2")), "table1")
    assert "Rows scored with fcn_score_fallback are not comparable" in markdown


def test_table4_paper_values_print_as_in_the_paper(tmp_path):
    html = notebook.style_table(load(official_workspace(tmp_path)), "table4").to_html()
    assert ">2.8<" in html and ">18.9<" in html and "2.800000" not in html


def test_legends_sit_outside_the_bars_and_curves(tmp_path):
    results = load(write_smoke(tmp_path))
    fig = notebook.bar_chart(results, "table1")
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    fig, _ = notebook.loss_curves(tmp_path / "logs", "cityscapes-l1")
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)


def test_bar_charts_caveat_fallback_scores_and_draw_no_zero_spread(tmp_path):
    from matplotlib.collections import LineCollection
    results = load(write_smoke(tmp_path / "smoke"))
    fig = notebook.bar_chart(results, "table1")
    assert "not comparable with the paper's bars" in fig._suptitle.get_text()
    ax = fig.axes[0]
    rows = results.records[(results.records.table == "table1")
                           & (results.records.column == ax.get_title())]
    rows = rows[rows.paper.notna() | rows.yours]
    fallback = ["//" if m == "fcn_score_fallback" else "" for m in rows.metric]
    assert "//" in fallback and [p.get_hatch() or "" for p in ax.patches[len(rows):]] == fallback
    # an error bar (its two caps' stem) exactly where the row has an interval
    with_interval = int((rows.lo.notna() & rows.hi.notna() & rows["mean"].notna()).sum())
    stems = sum(len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection))
    assert stems == with_interval
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["n/a" if pd.isna(m) else f"n={n}" for m, n in zip(rows["mean"], rows.n)]
    official = notebook.bar_chart(load(official_workspace(tmp_path / "exact")), "table1")
    assert "not comparable" not in official._suptitle.get_text()
    assert not any(p.get_hatch() for p in official.axes[0].patches)


def test_no_empty_gan_or_constant_lr_panels(tmp_path):
    train = tmp_path / "logs" / "cityscapes-l1" / "seed-0" / "plots" / "metrics" / "train"
    train.mkdir(parents=True)
    series = {"loss_G_l1": (0.9, 0.5), "loss_G_gan": (0.0, 0.0), "lr": (2e-4, 2e-4)}
    for name, (a, b) in series.items():  # an L1-only run: its GAN loss is logged as 0
        (train / f"{name}.tsv").write_text(f"step\t{name}\n10\t{a}\n20\t{b}\n")
    fig, note = notebook.loss_curves(tmp_path / "logs", "cityscapes-l1")
    assert note is None and [ax.get_title() for ax in fig.axes] == ["loss_G_l1"]


def test_sample_grids_for_facades_maps_and_your_experiments(tmp_path):
    write_smoke(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"] = ["cityscapes", "maps", "facades"]
    params["experiments"].update({
        "facades-l1-cgan": {"data": {"dataset": "facades"}},
        "maps-photo2map-l1": {"data": {"dataset": "maps", "direction": "AtoB"},
                              "loss": {"gan": "none"}},
        "maps-map2photo-l1": {"data": {"dataset": "maps", "direction": "BtoA"},
                              "loss": {"gan": "none"}},
        "cityscapes-l1-cgan-lr1e-4": {"data": {"dataset": "cityscapes"}, "train": {"lr": 1e-4},
                                      "compare_to": "cityscapes-l1-cgan"}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    groups = dict(notebook.sample_grid_groups(load(tmp_path), Params.load(tmp_path / "params.yaml")))
    assert groups == {
        "Cityscapes labels → photo: your experiments": [
            ("L1+cGAN", "cityscapes-l1-cgan"),
            ("cityscapes-l1-cgan-lr1e-4", "cityscapes-l1-cgan-lr1e-4")],
        "Facades labels → photo": [("facades-l1-cgan", "facades-l1-cgan")],
        "Maps photo → map (Table 4)": [("L1, photo → map", "maps-photo2map-l1")],
        "Maps map → photo (Table 4)": [("L1, map → photo", "maps-map2photo-l1")]}
    out = tmp_path / "generated" / "facades-l1-cgan" / "seed-0"
    out.mkdir(parents=True)
    for image in ("1", "2"):
        solid(GREEN).save(out / f"{image}.png")
    fig, notes = notebook.figure4_grid(groups["Facades labels → photo"], Params.load(tmp_path / "params.yaml"),
                                     tmp_path / "generated", tmp_path / "data", n_images=2)
    assert fig is not None and [ax.get_title() for ax in fig.axes[:1]] == ["facades-l1-cgan"]
    assert any("input and target skipped" in n for n in notes)  # no facades test pairs here


def test_rendered_tables_are_linked_from_the_page(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "table1.md").write_text("# Table 1")
    (tmp_path / "notebooks").mkdir()
    links = notebook.rendered_links(tmp_path / "tables", tmp_path / "notebooks")
    assert links == "- [table1.md](../tables/table1.md)"
    assert (tmp_path / "notebooks" / "../tables/table1.md").is_file()


def test_constant_columns_are_said_once_above_the_table(tmp_path):
    results = load(write_smoke(tmp_path))
    html = notebook.style_table(results, "table1").to_html()
    shown = tables.wide_table(results, "table1")
    # the smoke workspace: one segmenter (rows without a number have none)
    assert shown.Segmenter[shown.Segmenter != ""].nunique() == 1
    assert f"<caption>" in html and f"Segmenter: {shown.Segmenter.iloc[0]}" in html
    assert ">Segmenter</th>" not in html  # no column of its own
