"""The fallback segmenter: initialisation facts, learning, the stage's files."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml

from replication.config.params import Params
from replication.config.scoring import SegmenterConfig, load_scoring
from replication.data.synthetic import make_synthetic
from replication.metrics import fcn, segmenter

TINY = {"widths": [4, 8, 8, 8, 8], "fc_width": 16, "iterations": 40, "batch_size": 4,
        "lr": 2e-3, "log_every": 10}


def test_bilinear_kernel_is_the_fcn_upsampling_filter():
    # FCN paper: a 4x4 stride-2 deconvolution initialised to bilinear interpolation has
    # taps (1/4, 3/4, 3/4, 1/4) per axis, one channel to itself only.
    weight = segmenter.bilinear_kernel(torch.Size([3, 3, 4, 4]))
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.allclose(weight[1, 1], taps[:, None] * taps[None, :])
    assert weight[0, 1].abs().sum() == 0


def test_fresh_fallback_predicts_uniformly():
    # zeroed class scoring layers: every pixel gets 19 equal scores, loss ln 19
    model = segmenter.build_fallback(SegmenterConfig(**{k: v for k, v in TINY.items()}))
    logits = model(torch.rand(2, 3, 32, 32) * 255)
    assert logits.shape == (2, 19, 32, 32)
    labels = torch.randint(0, 19, (2, 32, 32))
    assert F.cross_entropy(logits, labels).item() == pytest.approx(math.log(19))


def write_params(root, **segmenter_values):
    params = {"scale": "smoke", "datasets": ["cityscapes"],
              "scales": {"smoke": {"data": {"image_size": 32}}},
              "experiments": {"cs": {"data": {"dataset": "cityscapes"}}},
              "scoring": {"device": "cpu", "segmenter": {**TINY, **segmenter_values}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def run_stage(params: dict) -> dict:
    """What `replication segmenter` runs for this params.yaml content."""
    loaded = Params.of(params)
    scoring = load_scoring(loaded)
    return segmenter.run_stage(segmenter.cityscapes_config(loaded, scoring), scoring,
                               loaded.scale)


def real_photos_config(params: dict):
    loaded = Params.of(params)
    return segmenter.cityscapes_config(loaded, load_scoring(loaded))


def label_entropy(labels: torch.Tensor) -> float:
    """The loss of the best constant prediction: the entropy of the class frequencies."""
    counts = torch.bincount(labels[labels != 255].long().ravel(), minlength=19).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


@pytest.mark.slow
def test_stage_learns_and_writes_its_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic("cityscapes", "data", size=32, counts={"train": 12, "val": 4})
    params = write_params(tmp_path, curve_every=20)
    scores = run_stage(params)

    model = fcn.load_converted("runs/segmenter/fallback.pt")
    photos, labels = segmenter.training_set(real_photos_config(params),
                                            load_scoring(Params.of(params)))
    assert photos.shape == (12, 3, 32, 32)
    with torch.no_grad():
        loss = F.cross_entropy(model(photos.float()), labels.long(), ignore_index=255).item()
    # learned more than the class frequencies (which already beat ln 19 = 2.94)
    assert loss < label_entropy(labels) - 0.1

    report = json.loads((tmp_path / "runs/segmenter/fallback.json").read_text())
    on_disk = json.loads((tmp_path / "metrics/ground-truth/scores.json").read_text())
    assert on_disk == scores
    # the ground-truth row's per-frame counts beside it (its interval: docs/statistics.md)
    assert [p.name for p in (tmp_path / "metrics/ground-truth/per_image").glob("*.npz")] == [
        f"{next(iter(scores['seeds']))}.npz"]
    assert on_disk["experiment"] == "ground-truth" and on_disk["task"]["images"] == 4
    row = on_disk["seeds"]["seed-0"]
    assert list(row) == ["fcn_score_fallback"]  # no caffemodel, no labelIds here
    assert report["per_pixel_acc"] == row["fcn_score_fallback"]["per_pixel_acc"]
    assert report["iterations"] == 40 and report["image_size"] == 32
    # the learning curve: the real photos every 20 iterations; its last point is the
    # ground-truth row, computed by the score stage's session (another code path)
    curve = report["real_photos_curve"]
    assert [point["step"] for point in curve] == [20, 40]
    for key in ("per_pixel_acc", "per_class_acc", "class_iou"):
        assert curve[-1][key] == pytest.approx(row["fcn_score_fallback"][key], abs=5e-5)
    assert not list(tmp_path.glob("runs/segmenter/.*"))  # no temporary files left
    # trained again, the same segmenter in the same bytes: runs/segmenter is the DVC output
    # every score stage depends on, and a retrain that reproduces it must not rerun them
    first = {p.name: p.read_bytes() for p in (tmp_path / "runs/segmenter").iterdir()}
    run_stage(params)
    assert {p.name: p.read_bytes() for p in (tmp_path / "runs/segmenter").iterdir()} == first


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic("cityscapes", "data", size=32, counts={"train": 4, "val": 2})
    params = write_params(tmp_path, iterations=1)
    weights = tmp_path / "runs/segmenter/fallback.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"previous run")

    def torn_save(obj, out):  # out: the open temporary file
        out.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        run_stage(params)
    assert weights.read_bytes() == b"previous run"
    assert not list(weights.parent.glob(".*"))


def test_smoke_profile_sets_the_image_size_and_segmenter(tmp_path):
    params = write_params(tmp_path)
    params["scoring"]["scales"] = {"smoke": {"segmenter": {"iterations": 3}}}
    assert real_photos_config(params).data.image_size == 32
    assert load_scoring(Params.of(params)).segmenter.iterations == 3
    params["scale"] = "paper"
    assert real_photos_config(params).data.image_size == 256
    assert load_scoring(Params.of(params)).segmenter.iterations == 40


def test_real_photos_row_takes_the_cityscapes_experiments_own_data_settings(tmp_path):
    # resolved in the same order as the experiment it is scored beside (Params.layers):
    # an image size set on the experiment itself reaches the real photos' row too, and
    # the scale profile still comes after it
    params = write_params(tmp_path)
    params["scale"] = "paper"
    params["experiments"]["cs"]["data"]["image_size"] = 64
    assert real_photos_config(params).data.image_size == 64
    assert Params.of(params).config("cs").data.image_size == 64
    params["scale"] = "smoke"
    assert real_photos_config(params).data.image_size == 32
    # a photo -> labels experiment is not the row's task: its settings are not taken
    params["experiments"] = {"seg": {"data": {"dataset": "cityscapes", "direction": "AtoB",
                                              "image_size": 64}}}
    params["scale"] = "paper"
    assert real_photos_config(params).data.image_size == 256
