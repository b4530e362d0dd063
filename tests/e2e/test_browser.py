"""What a reader sees, offline: the plots page, the notebook page and generate's results
page rendered by a real browser (headless Chromium from Debian's `chromium` package, which
.ci/run installs) with every host name unresolvable, so that a page needing a CDN would
show up blank here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")]

# matplotlib's first line/bar colour (tab10 blue, #1f77b4): the colour of the first
# experiment's curve and of our bars
BLUE = (31, 119, 180)


def browse(page: Path, tmp_path: Path, what: str, height: int = 1400) -> str:
    """Render `page` offline: a screenshot into tmp_path/<what>.png; returns the DOM."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host name resolves
             "--hide-scrollbars", f"--window-size=1000,{height}", "--virtual-time-budget=5000"]
    url = page.resolve().as_uri()
    subprocess.run([*flags, f"--screenshot={tmp_path / what}.png", url], check=True,
                   capture_output=True, timeout=120)
    return subprocess.run([*flags, "--dump-dom", url], check=True, capture_output=True,
                          text=True, timeout=120).stdout


def pixels_near(png: Path, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(image - np.array(colour)).max(axis=2) <= tolerance).sum())


def test_the_plots_page_draws_its_curves_offline(tmp_path):
    from tests.results.test_plots import write_tsv

    from replication.results import plots
    params = {"scale": "smoke", "datasets": ["facades"], "scales": {"smoke": {"seeds": [0]}},
              "experiments": {"facades-a": {"data": {"dataset": "facades"}},
                              "facades-b": {"data": {"dataset": "facades"}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for name, scale in (("facades-a", 1.0), ("facades-b", 0.5)):
        for loss in plots.LOSSES:
            write_tsv(tmp_path / "logs", name, loss, [scale * v for v in (0.9, 0.6, 0.5, 0.4)])
    from replication.config.params import Params
    plots.write_plots(Params.load(tmp_path / "params.yaml"), tmp_path / "logs", tmp_path / "plots")
    dom = browse(tmp_path / "plots" / "index.html", tmp_path, "plots")
    assert dom.count("<img") == len(plots.LOSSES)
    # a blank page (a chart library that never loaded) has no curve colour at all
    assert pixels_near(tmp_path / "plots.png", BLUE) > 200


def test_the_notebook_page_draws_its_charts_offline(tmp_path):
    from tests.results.test_notebook import execute, write_smoke
    _, html = execute(write_smoke(tmp_path / "ws"))
    page = tmp_path / "ws" / "out.html"
    dom = browse(page, tmp_path, "notebook", height=9000)
    assert "Bar charts" in dom and dom.count('src="data:image/png;base64,') >= 5
    assert pixels_near(tmp_path / "notebook.png", BLUE) > 500  # the bars of ours


def test_the_results_page_lists_the_file_names_and_shows_the_images(toy_dataset, tmp_path):
    from tests.training.test_train import make_config

    from replication.inference.generate import generate
    from replication.training.loop import train
    train(make_config(toy_dataset, train={"iterations": 2}), 0, tmp_path / "run", progress=False)
    generate(tmp_path / "run" / "checkpoints" / "generator.pt", tmp_path / "out")
    dom = browse(tmp_path / "out" / "index.html", tmp_path, "results")
    names = sorted(p.name for p in (toy_dataset / "test").iterdir())
    assert all(f'<td class="name">{n}</td>' in dom for n in names)
    # input, output and target of every row drawn: the page is far from blank
    image = np.asarray(Image.open(tmp_path / "results.png").convert("L"))
    assert (image < 200).mean() > 0.05
