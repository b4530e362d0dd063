"""`replication plots`: which curves go on which chart, the data DVC draws, the offline page."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from replication.config.params import Params
from replication.results import plots
from replication.results.paper import load_paper_numbers

REPO = Path(__file__).resolve().parents[2]
ABLATION = "cityscapes-l1-cgan-lr1e-4"


def write_tsv(logs: Path, experiment: str, loss: str, values: list[float], seed: int = 0) -> None:
    folder = logs / experiment / f"seed-{seed}" / "plots" / "metrics" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{10 * (i + 1)}\t{v}\n" for i, v in enumerate(values))
    (folder / f"{loss}.tsv").write_text(f"step\t{loss}\n{rows}")


@pytest.fixture
def grid(tmp_path):
    """The committed grid plus an ablation of cityscapes-l1-cgan."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["experiments"][ABLATION] = {"data": {"dataset": "cityscapes"}, "train": {"lr": 1e-4},
                                       "compare_to": "cityscapes-l1-cgan"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path, params


def test_a_tables_experiments_share_a_chart_per_loss(grid):
    tmp_path, params = grid
    logs = tmp_path / "logs"
    for name in params["experiments"]:
        for loss in plots.LOSSES:
            write_tsv(logs, name, loss, [1.0, 0.5])
    found = {c.key: c for c in plots.charts(Params.of(params), load_paper_numbers(), logs)}
    assert {k.split("-", 1)[1] for k in found} == set(plots.LOSSES)  # lr left out
    # Table 1's experiments on one chart, the ablation right after its baseline
    assert list(found["table1-loss_G_l1"].series) == [
        "cityscapes-l1", "cityscapes-gan", "cityscapes-cgan", "cityscapes-l1-gan",
        "cityscapes-l1-cgan", ABLATION]
    assert "cityscapes-l1" not in found["table1-loss_D"].series  # L1 only: no D
    assert "cityscapes-l1" not in found["table1-loss_D"].without  # and nothing to say
    # no chart for a table whose experiments are all on earlier charts
    assert not any(k.startswith(("color-", "fid_kid_cityscapes-", "fid_kid_maps-"))
                   for k in found)


def test_an_experiment_without_curves_is_named_not_left_off(grid):
    tmp_path, params = grid
    logs = tmp_path / "logs"
    write_tsv(logs, "cityscapes-l1-cgan", "loss_G_l1", [0.3, 0.2])
    chart = next(c for c in plots.charts(Params.of(params), load_paper_numbers(), logs)
                 if c.key == "table1-loss_G_l1")
    assert list(chart.series) == ["cityscapes-l1-cgan"]
    assert chart.without[ABLATION].startswith("not trained yet (")
    assert f"logs/{ABLATION}/seed-0/plots/metrics/train/loss_G_l1.tsv" in chart.without[ABLATION]


def test_long_series_are_averaged_in_equal_bins(tmp_path):
    n = 3 * plots.MAX_POINTS  # three logged values per bin
    write_tsv(tmp_path, "e", "loss_D", [float(i) for i in range(n)])
    frame = plots.read_series(tmp_path / "e/seed-0/plots/metrics/train/loss_D.tsv", "loss_D")
    assert len(frame) == plots.MAX_POINTS
    # bin k holds the values 3k, 3k+1, 3k+2 (steps 10 (3k+1) ... 10 (3k+3)): mean 3k+1
    assert frame.value.tolist()[:3] == [1.0, 4.0, 7.0]
    assert frame.step.tolist()[:3] == [30, 60, 90]


def test_the_page_and_the_data_files(tmp_path):
    params = {"scale": "smoke", "datasets": ["facades"],
              "scales": {"smoke": {"seeds": [0]}},
              "experiments": {"facades-a": {"data": {"dataset": "facades"}},
                              "facades-b": {"data": {"dataset": "facades"}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    logs = tmp_path / "logs"
    for loss in plots.LOSSES:
        write_tsv(logs, "facades-a", loss, [0.25, 0.5, 0.75])
    plots.write_plots(Params.load(tmp_path / "params.yaml"), logs, tmp_path / "plots")
    data = pd.read_csv(tmp_path / "plots" / "data" / "fid_kid_facades-loss_D.csv")
    assert data.to_dict("list") == {"step": [10, 20, 30], "value": [0.25, 0.5, 0.75],
                                    "experiment": ["facades-a"] * 3}
    page = (tmp_path / "plots" / "index.html").read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', page)) == 5
    assert "http" not in page  # nothing to fetch: it opens offline
    assert page.count("facades-b: not trained yet") == 5  # under each chart
    assert 'alt="loss_D — facades: facades-a"' in page  # the legend as text
