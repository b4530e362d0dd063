"""The test-time study (replication/inference/test_time.py): its settings, each mode's behaviour,
and the whole path train -> generate -> score -> tables on the synthetic stand-in."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from PIL import Image

from replication.config.schema import ExperimentConfig, GenerateConfig, from_dict
from replication.core.errors import ConfigError
from replication.data.synthetic import make_synthetic
from replication.inference import generate as generate_module
from replication.inference import test_time
from replication.inference.generate import generate
from replication.metrics import fcn_score, per_image
from replication.stages import generate as generate_stage
from replication.stages import score as score_stage
from replication.stages import tables as tables_stage
from replication.stages import train as train_stage
from replication.training import loop as train_module


def read_folder(folder) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


# --- settings ------------------------------------------------------------------------------

def test_the_paper_mode_alone_is_the_default_and_asks_for_nothing():
    g = GenerateConfig()
    assert g.modes == ("paper",) and g.samples == 1
    assert not test_time.asked(g) and test_time.variants(g) == []


def test_variants_and_which_one_is_the_tables_own_generation():
    g = GenerateConfig(modes=("paper", "eval", "no_dropout", "batch"), study_batch_size=4,
                       samples=3)
    got = {v.name: (v.mode, v.batch_size, v.sample_seed) for v in test_time.variants(g)}
    assert got == {"paper": ("train", 1, 0), "eval": ("eval", 1, 0),
                   "no_dropout": ("no_dropout", 1, 0), "batch": ("train", 4, 0),
                   "sample-1": ("train", 1, 1), "sample-2": ("train", 1, 2)}
    main = [v.name for v in test_time.variants(g) if test_time.is_main(v, g)]
    assert main == ["paper"]  # generated/<experiment>/seed-<k>/: not generated twice
    assert test_time.sample_names(g) == ["paper", "sample-1", "sample-2"]
    # generate.mode: eval makes the eval variant the tables' own, the paper's its own folder
    eval_main = GenerateConfig(mode="eval", modes=("paper", "eval"))
    assert [v.name for v in test_time.variants(eval_main) if test_time.is_main(v, eval_main)] \
        == ["eval"]


@pytest.mark.parametrize("generate_settings, message", [
    ({"modes": ["eval"]}, '"paper" among them'),
    ({"modes": ["paper", "dropout"]}, "must list distinct modes of"),
    ({"modes": ["paper", "paper"]}, "must list distinct modes of"),
    ({"modes": ["paper", "batch"], "study_batch_size": 1}, "would repeat"),
    ({"samples": 0}, "generate.samples=0 must be an integer >= 1"),
])
def test_bad_study_settings_are_one_line_errors(generate_settings, message):
    with pytest.raises(ConfigError, match=message) as info:
        from_dict(ExperimentConfig, {"generate": generate_settings})
    assert "\n" not in str(info.value)


# --- each mode's behaviour ------------------------------------------------------------------

@pytest.fixture
def trained(toy_dataset, tmp_path):
    from tests.training.test_train import make_config
    train_module.train(make_config(toy_dataset, train={"iterations": 3}), 0, tmp_path / "run",
                       progress=False)
    return tmp_path / "run" / "checkpoints" / "generator.pt"


def test_no_dropout_keeps_test_batch_statistics(trained, tmp_path):
    for name, mode, batch, seed in (("a", "no_dropout", 1, 0), ("b", "no_dropout", 1, 1),
                                    ("c", "no_dropout", 3, 0), ("e", "eval", 1, 0)):
        generate(trained, tmp_path / name, mode=mode, batch_size=batch, seed=seed)
    a, b, c, e = (read_folder(tmp_path / n) for n in "abce")
    assert all(np.array_equal(a[k], b[k]) for k in a)  # no dropout: the draw seed is moot
    assert any(not np.array_equal(a[k], c[k]) for k in a)  # batch statistics: batch mates
    assert any(not np.array_equal(a[k], e[k]) for k in a)  # not the running statistics


def test_set_test_mode_switches_only_dropout():
    G = nn.Sequential(nn.BatchNorm2d(2), nn.Dropout(0.5))
    generate_module.set_test_mode(G, "no_dropout")
    assert G[0].training and not G[1].training
    generate_module.set_test_mode(G, "eval")
    assert not G[0].training and not G[1].training
    generate_module.set_test_mode(G, "train")
    assert G[0].training and G[1].training


# --- the whole path on the synthetic stand-in ---------------------------------------------

class Brightness(nn.Module):
    """Stand-in segmenter: road where the mean of RGB is < 128, car elsewhere."""

    def forward(self, x):
        ids = torch.where(x.mean(1) >= 128, 13, 0)
        return F.one_hot(ids, 19).permute(0, 3, 1, 2).float()


STUDY = {"modes": ["paper", "eval", "no_dropout", "batch"], "study_batch_size": 3, "samples": 3}


def run(module, *argv) -> None:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert module.run(parser.parse_args(list(argv))) == 0


@pytest.mark.slow
def test_study_end_to_end_on_the_synthetic_stand_in(tmp_path, monkeypatch, capsys):
    # ~15 s on the 2-core machine: 2 seeds of a 32 px network trained 4 steps
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    monkeypatch.setattr(fcn_score, "load_fallback_segmenter",
                        lambda: (Brightness(), {"segmenter": "brightness stand-in"}))
    make_synthetic("cityscapes", "data", size=32, counts={"train": 4, "val": 6})
    tiny = {"generator": {"ngf": 4}, "discriminator": {"ndf": 4},
            "train": {"iterations": 4, "log_every": 2, "sample_every": 4, "checkpoint_every": 4}}
    params = {"scale": "smoke", "datasets": ["cityscapes"],
              "scales": {"smoke": {"seeds": [0, 1],
                                   "data": {"source": "synthetic", "image_size": 32}, **tiny}},
              "experiments": {"cityscapes-l1-cgan": {"data": {"dataset": "cityscapes"},
                                                     "generate": STUDY},
                              "cityscapes-l1": {"data": {"dataset": "cityscapes"},
                                                "loss": {"gan": "none"}}},
              "scoring": {"device": "cpu", "inception_weights": str(tmp_path / "none.pth")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for name in params["experiments"]:
        run(train_stage, "--params", "params.yaml", "-e", name, "--no-progress")
        run(generate_stage, "--params", "params.yaml", "-e", name)
        run(score_stage, "--params", "params.yaml", "-e", name)
    printed = capsys.readouterr().out
    # the cost, stated before it is spent: eval, no_dropout, batch, sample-1, sample-2
    assert ("5 extra variant(s) x 2 seed(s) x 6 images = 60 more generated images"
            in printed)

    generated = tmp_path / "generated" / "cityscapes-l1-cgan"
    assert sorted(p.name for p in (generated / "test-time").iterdir() if p.is_dir()) == [
        "batch", "eval", "no_dropout", "sample-1", "sample-2"]
    assert len(read_folder(generated / "test-time" / "eval" / "seed-1")) == 6
    assert not (tmp_path / "generated" / "cityscapes-l1" / "test-time").exists()

    record = json.loads((tmp_path / "metrics/cityscapes-l1-cgan/scores.json").read_text())
    study = record["test_time"]
    assert study["variants"]["paper"] == {"setting": study["variants"]["paper"]["setting"],
                                          "same_as_tables": True}
    assert set(study["variants"]["eval"]["seeds"]) == {"seed-0", "seed-1"}
    assert study["samples"] == ["paper", "sample-1", "sample-2"]
    # diversity by hand from the three draws' PNGs of seed 0
    draws = [read_folder(generated / "seed-0")] + [
        read_folder(generated / "test-time" / f"sample-{j}" / "seed-0") for j in (1, 2)]
    stack = np.stack([[d[k] for k in sorted(draws[0])] for d in draws]).astype(float)
    expected = stack.std(axis=0, ddof=1).mean()
    assert study["diversity"]["seed-0"]["output_diversity"]["diversity"] == \
        pytest.approx(expected)
    images, arrays = per_image.load(
        tmp_path / "metrics/cityscapes-l1-cgan/per_image/test-time/eval/seed-0.npz")
    assert len(images) == 6 and set(arrays) == {"fcn_score_fallback", "psnr_ssim"}

    run(tables_stage, "--params", "params.yaml", "--metrics", "metrics", "--out", "tables")
    frame = pd.read_csv(tmp_path / "tables" / "test_time_cityscapes_BtoA.csv")
    assert set(frame.experiment) == {"cityscapes-l1-cgan"}  # only the one that asked
    iou = frame[(frame.column == "class_iou")].set_index("variant")
    assert {"paper", "eval", "no_dropout", "batch", "sample-1", "sample-2",
            "3 dropout draws"} <= set(iou.index)
    # the paper's mode is the tables' own number for this experiment
    table1 = pd.read_csv(tmp_path / "tables" / "table1.csv").set_index("Experiment")
    assert iou.loc["paper", "mean"] == pytest.approx(
        table1.loc["cityscapes-l1-cgan", "class_iou_mean"])
    assert iou.loc["eval", "verdict"] in ("higher", "lower", "within noise")
    assert iou.loc["eval", "pairing"] == ("seeds paired by name (2); test images paired by "
                                          "name (6)")
    markdown = (tmp_path / "tables" / "test_time_cityscapes_BtoA.md").read_text()
    header = next(l for l in markdown.splitlines() if l.startswith("| Experiment"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "Experiment", "Metric", "Column", "paper", "eval", "no_dropout", "batch",
        "3 dropout draws"]  # the modes side by side; the draws summarised in one column
    assert "- **eval**: dropout off, running BN statistics, test batch 1" in markdown
    assert "output_diversity" in markdown
