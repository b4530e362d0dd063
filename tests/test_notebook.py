"""notebooks/results.ipynb runs top to bottom with papermill on a small smoke workspace and on
an empty one; the image-grid helper puts input, runs and target where Figure 4 has them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from PIL import Image

from replication import report, tables

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "results.ipynb"
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
    report.add_arguments(parser)
    folders = [f"--{n}={root / n}" for n in ("tables", "metrics", "logs", "generated", "data")]
    args = parser.parse_args([f"--params={root / 'params.yaml'}", *folders, "--images=2",
                              f"--notebook={NOTEBOOK}", f"--executed={root / 'out.ipynb'}",
                              f"--html={root / 'out.html'}"])
    assert report.run(args) == 0
    return nbformat.read(root / "out.ipynb", as_version=4), (root / "out.html").read_text()


def outputs(nb, mime: str) -> list[str]:
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if mime in o.get("data", {})]


@pytest.mark.slow
def test_notebook_runs_on_a_smoke_workspace(tmp_path):
    nb, html = execute(write_smoke(tmp_path))
    markdown = "\n".join(outputs(nb, "text/markdown"))
    assert "SMOKE scale — synthetic data, not a paper result" in markdown
    assert "cGAN (cityscapes-cgan) skipped: no images" in markdown
    # bar charts for tables 1, 2, 3, 6 and colour, 3 loss-curve figures, 2 image grids
    assert len(outputs(nb, "image/png")) == 5 + 3 + 2
    assert "0.300 (n=1)" in html and "SMOKE scale" in html


@pytest.mark.slow
def test_notebook_runs_on_an_empty_workspace(tmp_path):
    nb, html = execute(write_empty(tmp_path / "empty"))
    markdown = "\n".join(outputs(nb, "text/markdown"))
    assert "cityscapes-l1: no loss curves" in markdown
    assert "nothing to show" in markdown
    assert "holds no rendered tables yet" in markdown
    assert "not run: " in html
    assert len(outputs(nb, "image/png")) == 5  # only the paper's bars


def test_figure4_grid_columns_and_orientation(tmp_path):
    root = write_smoke(tmp_path)
    columns = [("L1", "cityscapes-l1"), ("cGAN", "cityscapes-cgan"),
               ("L1+cGAN", "cityscapes-l1-cgan")]
    fig, notes = report.figure4_grid(columns, root / "params.yaml", root / "generated",
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
    with pytest.raises(tables.TablesError, match="nowhere.ipynb: notebook not found"):
        report.execute_notebook(tmp_path / "nowhere.ipynb", tmp_path / "x.ipynb",
                                tmp_path / "x.html", {})
