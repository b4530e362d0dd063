"""Scoring protocols against hand-computed confusion matrices, scores.json, the rule."""

import argparse
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from tests.conftest import huge_png
from PIL import Image

from replication.config.params import Params
from replication.config.schema import ExperimentConfig, from_dict
from replication.config.scoring import ScoringConfig, SegmenterConfig, load_scoring
from replication.core.errors import ConfigError, ScoringError
from replication.metrics import fcn_score, per_image, score
from replication.metrics.per_image import PER_IMAGE
from replication.metrics.registry import METRICS, metrics_for
from replication.metrics.session import Session
from replication.stages import score as score_stage

ROAD, CAR, SIDEWALK, BICYCLE = 0, 13, 1, 18  # train ids (cityscapesscripts label table)
ROAD_RGB, CAR_RGB, SIDEWALK_RGB, VOID_RGB = (128, 64, 128), (0, 0, 142), (244, 35, 232), (0, 0, 0)
SIZE = 16  # image size of the tiny pairs


# --- fixtures: a tiny Cityscapes folder written by the test --------------------------

def cityscapes_cfg(direction="BtoA", name="cs", **data) -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "name": name, "seeds": [0, 1],
        "data": {"dataset": "cityscapes", "root": "data", "direction": direction,
                 "image_size": SIZE, "test_split": "val", **data}})


def label_half() -> np.ndarray:
    """Top 8 rows road, bottom 8 car, first 2 columns void (black: ignored)."""
    b = np.zeros((SIZE, SIZE, 3), np.uint8)
    b[:8], b[8:] = ROAD_RGB, CAR_RGB
    b[:, :2] = VOID_RGB
    return b


def write_val_pairs(root, count=2):
    """data/cityscapes/val/<n>.png = photo | colour labels (PNG: no JPEG noise)."""
    val = root / "data" / "cityscapes" / "val"
    val.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for n in range(1, count + 1):
        a = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, label_half()], axis=1)).save(val / f"{n}.png")


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def red_split_image(car=(slice(None), slice(8, None))) -> np.ndarray:
    """A photo that RedThreshold segments as car at `car` (default: columns 8-15), else road."""
    image = np.full((SIZE, SIZE, 3), 40, np.uint8)
    image[car + (0,)] = 255
    return image


class RedThreshold(nn.Module):
    """Stand-in segmenter: road where red < 128, car elsewhere (one-hot logits)."""

    def forward(self, x):
        car = (x[:, 0] >= 128).long()
        ids = torch.where(car.bool(), CAR, ROAD)
        return F.one_hot(ids, 19).permute(0, 3, 1, 2).float()


class Scripted(nn.Module):
    """Stand-in segmenter: returns given maps in call order and records its inputs."""

    def __init__(self, maps, outputs=20):
        super().__init__()
        self.maps, self.outputs, self.inputs = list(maps), outputs, []

    def forward(self, x):
        self.inputs.append(x.clone())
        ids = torch.stack([torch.as_tensor(self.maps.pop(0)) for _ in range(len(x))])
        return F.one_hot(ids.long(), self.outputs).permute(0, 3, 1, 2).float()


def no_fid_weights(monkeypatch, tmp_path) -> ScoringConfig:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    return ScoringConfig(device="cpu", inception_weights=str(tmp_path / "missing.pth"))


# --- the exact FCN-score protocol ------------------------------------------------------

def write_exact_inputs(root):
    """val_frames.txt + 32x64 labelIds for two frames, and a stand-in caffemodel file."""
    cs = root / "data" / "cityscapes"
    (cs / "val_frames.txt").write_text("1.png aachen_000000_000019\n2.png bochum_000000_000313\n")
    frame1 = np.full((32, 64), 7, np.uint8)  # label id 7 = road
    frame1[16:] = 26  # car
    frame1[:, :4] = 0  # unlabeled -> ignored
    save(cs / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png", frame1)
    save(cs / "gtFine/val/bochum/bochum_000000_000313_gtFine_labelIds.png",
         np.full((32, 64), 33, np.uint8))  # bicycle everywhere
    (root / "datasets/weights").mkdir(parents=True)
    (root / "datasets/weights/fcn-8s-cityscapes.caffemodel").write_bytes(b"stand-in")


def test_exact_protocol_pools_one_confusion_matrix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path)
    write_exact_inputs(tmp_path)
    rng = np.random.default_rng(1)
    generated = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(2)]
    for n, image in enumerate(generated, 1):
        save(tmp_path / f"gen/{n}.png", image)
    pred1 = np.where(np.arange(64) < 32, ROAD, CAR)[None].repeat(32, 0)
    pred2 = np.where(np.arange(64) < 16, 19, BICYCLE)[None].repeat(32, 0)  # 19: no class
    segmenter = Scripted([pred1, pred2])
    cfg = cityscapes_cfg()
    with Session(cfg, ScoringConfig(device="cpu", batch_size=2),
                 {"fcn_exact": (segmenter, {"segmenter": "scripted"})}) as session:
        result = METRICS["fcn_score_corrected"](session, tmp_path / "gen")
        official = METRICS["fcn_score_official"](session, tmp_path / "gen")
    assert len(segmenter.inputs) == 1  # one FCN pass (a batch of 2) serves both protocols

    # Hand count. Frame 1 (4 void columns dropped): road row = 28 x 16 right + 32 x 16 as
    # car; car row = 28 x 16 as road + 32 x 16 right. Frame 2: bicycle row = 48 x 32 right
    # + 16 x 32 predicted 19 (an error in no class's column).
    road_ok, car_ok, bike_ok = 448, 512, 1536
    total = 960 + 960 + 2048
    assert result["pixels"] == total and result["other_pixels"] == 512
    assert result["per_pixel_acc"] == pytest.approx((road_ok + car_ok + bike_ok) / total)
    assert result["per_class_acc"] == pytest.approx((448 / 960 + 512 / 960 + 1536 / 2048) / 3)
    iou = (448 / (960 + 896 - 448) + 512 / (960 + 1024 - 512) + 1536 / 2048) / 3
    assert result["class_iou"] == pytest.approx(iou)
    assert result["iou_road"] == pytest.approx(448 / 1408)
    assert math.isnan(result["iou_sky"])  # absent in truth and prediction
    # The official fast_hist would have dropped frame 2 (truth 18, prediction 19).
    assert result["official_frames_dropped"] == 1 and result["official_dropped_pixels"] == 2048
    assert result["official_out_of_range_pixels"] == 512
    assert result["protocol"] == "fcn_score_corrected" and result["label_size"] == "32x64"
    assert result["segmenter"] == "scripted" and result["frames"] == 2
    # Official arithmetic by hand: frame 2 dropped, so road 448 right / 512 as car and car
    # 448 as road / 512 right; every denominator + 1e-12, the 17 absent classes score 0
    assert official["protocol"] == "fcn_score_official" and official["frames_dropped"] == 1
    assert official["pixels"] == 1920 and official["per_pixel_acc"] == pytest.approx(0.5)
    assert official["per_class_acc"] == pytest.approx((448 / 960 + 512 / 960) / 19)
    assert official["class_iou"] == pytest.approx((448 / 1408 + 512 / 1472) / 19)

    # Kept per frame (metrics/per_image.py): the same hand counts, frame by frame
    frames = result[PER_IMAGE]
    assert frames["kind"] == "confusion"
    assert frames["tp"][0, ROAD] == 448 and frames["tp"][0, CAR] == 512
    assert frames["truth"][0, ROAD] == 960 and frames["pred"][0, CAR] == 1024
    assert frames["tp"][1, BICYCLE] == 1536 and frames["truth"][1, BICYCLE] == 2048
    assert frames["pred"][1].sum() == 1536  # the 512 pixels predicted 19 are in no column
    dropped = official[PER_IMAGE]
    assert dropped["kind"] == "confusion_official"
    assert dropped["truth"][1].sum() == 0 and dropped["truth"][0].sum() == 1920  # frame 2 out


def test_exact_protocol_upsamples_the_photo_bilinearly_to_the_label_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path)
    write_exact_inputs(tmp_path)
    rng = np.random.default_rng(2)
    generated = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(2)]
    for n, image in enumerate(generated, 1):
        save(tmp_path / f"gen/{n}.png", image)
    segmenter = Scripted([np.zeros((32, 64), np.int64)] * 2)
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu", batch_size=1),
                 {"fcn_exact": (segmenter, {})}) as session:
        METRICS["fcn_score_official"](session, tmp_path / "gen")
    for seen, image in zip(segmenter.inputs, generated):
        assert seen.shape == (1, 3, 32, 64)  # the labels' full resolution, not 16x16
        source = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        bilinear = F.interpolate(source, size=(32, 64), mode="bilinear", align_corners=False)
        nearest = F.interpolate(source, size=(32, 64), mode="nearest")
        assert (seen - bilinear).abs().max() <= 1  # uint8 rounding
        assert (seen - nearest).abs().max() > 20


# --- the fallback protocol and labels_score --------------------------------------------

def test_fallback_protocol_scores_against_decoded_colour_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=1)
    save(tmp_path / "gen/1.png", red_split_image())
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu"),
                 {"fcn_score_fallback": (RedThreshold(), {"segmenter": "red"})}) as session:
        result = METRICS["fcn_score_fallback"](session, tmp_path / "gen")
    # columns 2-7 predicted road, 8-15 car; truth rows 0-7 road, 8-15 car (cols 0-1 void)
    assert result["pixels"] == 14 * 16
    assert result["per_pixel_acc"] == pytest.approx((6 * 8 + 8 * 8) / (14 * 16))
    assert result["per_class_acc"] == pytest.approx((48 / 112 + 64 / 112) / 2)
    assert result["class_iou"] == pytest.approx((48 / (112 + 96 - 48) + 64 / (112 + 128 - 64)) / 2)
    assert result["protocol"] == "fcn_score_fallback" and result["segmenter"] == "red"


def test_fallback_at_a_larger_size_upsamples_the_generated_photo(tmp_path, monkeypatch):
    # scoring.segmenter.image_size 32: the val pairs' own resolution here; the 16 px
    # generated photo is upsampled bilinearly to 32, the truth is the labels at 32
    monkeypatch.chdir(tmp_path)
    val = tmp_path / "data" / "cityscapes" / "val"
    val.mkdir(parents=True)
    labels = np.zeros((32, 32, 3), np.uint8)  # rows 0-15 road, 16-31 car, cols 0-3 void
    labels[:16], labels[16:], labels[:, :4] = ROAD_RGB, CAR_RGB, VOID_RGB
    photo = np.zeros((32, 32, 3), np.uint8)
    Image.fromarray(np.concatenate([photo, labels], axis=1)).save(val / "1.png")
    save(tmp_path / "gen/1.png", red_split_image())  # 16 px: columns 8-15 red
    scoring = ScoringConfig(device="cpu", segmenter=SegmenterConfig(image_size=32))
    with Session(cityscapes_cfg(), scoring,
                 {"fcn_score_fallback": (RedThreshold(), {"segmenter": "red"})}) as session:
        result = METRICS["fcn_score_fallback"](session, tmp_path / "gen")
    # by hand: PIL's bilinear x2 puts 40 + 0.25 * 215 = 93.75 (road) in column 15 and
    # 40 + 0.75 * 215 = 201.25 (car) in column 16, so columns 0-15 road, 16-31 car.
    # Road truth (rows 0-15, cols 4-31): 12 columns right of 28; car truth: 16 of 28.
    assert result["pixels"] == 2 * 16 * 28 and result["label_size"] == "32x32"
    assert result["per_pixel_acc"] == pytest.approx((16 * 12 + 16 * 16) / (2 * 16 * 28))
    assert result["per_class_acc"] == pytest.approx((12 / 28 + 16 / 28) / 2)
    assert result["upsampling"].startswith("generated photo, bilinear")


def test_labels_score_counts_void_paint_as_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=1)
    generated = label_half().astype(np.int16)
    generated[:, :2] = ROAD_RGB  # over void truth: not scored
    generated[:8] += 6  # noise: still nearest to road
    generated[0:2, 2:6] = SIDEWALK_RGB  # 8 road pixels called sidewalk
    generated[8:12, 10:16] = VOID_RGB  # 24 car pixels painted void
    save(tmp_path / "gen/1.png", np.clip(generated, 0, 255).astype(np.uint8))
    # the plain nearest-colour rule (the noise of 6 per channel, 10.4 RGB units, is past the
    # supported rule's confident distance: tests/metrics/test_segmentation.py covers that rule)
    scoring = ScoringConfig(device="cpu", label_decoding="nearest")
    with Session(cityscapes_cfg("AtoB"), scoring) as session:
        result = METRICS["labels_score"](session, tmp_path / "gen")
    assert result["pixels"] == 224
    assert result["per_pixel_acc"] == pytest.approx((224 - 8 - 24) / 224)
    assert result["per_class_acc"] == pytest.approx((104 / 112 + 88 / 112) / 2)
    # road: 104 / (112 + 104 - 104); car: 88 / 112; sidewalk predicted but absent in the
    # truth: IoU 0 / 8 = 0 counts in the mean
    assert result["class_iou"] == pytest.approx((104 / 112 + 88 / 112 + 0) / 3)
    assert result["other_pixels"] == 24


def test_missing_generated_image_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=2)
    save(tmp_path / "gen/1.png", red_split_image())
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu")) as session:
        with pytest.raises(ScoringError, match=r"2\.png.*replication generate"):
            METRICS["labels_score"](session, tmp_path / "gen")


# --- FID without weights -----------------------------------------------------------------

def test_missing_fid_weights_give_a_reason_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=2)
    for n in (1, 2):
        save(tmp_path / f"gen/{n}.png", red_split_image())
    with Session(cityscapes_cfg(), no_fid_weights(monkeypatch, tmp_path)) as session:
        result = METRICS["fid_kid"](session, tmp_path / "gen")
    assert result["available"] is False and result["protocol"] == "fid_kid"
    # one short sentence with the hint (tables and `replication status` show it); where
    # the weights were looked for is a key of its own
    assert result["reason"] == "no Inception weights (run `replication weights`)"
    assert "missing.pth" in result["weights_searched"]
    assert "scoring.inception_weights" in result["weights_searched"]
    # where `replication weights` fetches nothing (the smoke scale), the hint names the
    # setting instead of a command that would do nothing
    offline = dataclasses.replace(no_fid_weights(monkeypatch, tmp_path), download_weights=False)
    with Session(cityscapes_cfg(), offline) as session:
        result = METRICS["fid_kid"](session, tmp_path / "gen")
    assert result["reason"] == ("no Inception weights (scoring.download_weights is false at "
                                "this scale: set it true in params.yaml `scoring`, then "
                                "`replication weights`)")


def test_fid_kid_with_features_reads_each_folder_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=3)
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu")) as session:
        real = session.real_dir()  # labels -> photo: the targets are the A halves
        calls = []

        def mean_colour(files):  # a stand-in feature extractor: (N, 3) mean RGB
            calls.append(len(files))
            return np.stack([np.asarray(Image.open(f), float).mean((0, 1)) for f in files])

        session.models["inception"] = (mean_colour, {"weights": "stand-in"})
        same = METRICS["fid_kid"](session, real)
        again = METRICS["fid_kid"](session, real)
        features = np.stack([np.asarray(Image.open(f), float).mean((0, 1))
                             for f in sorted(real.iterdir())])
    assert same["available"] is True and same["weights"] == "stand-in"
    # a set against itself: 0 up to the square roots of the zero eigenvalues' rounding
    # noise (3 images, 3-d features: rank 2), at most 2 d sqrt(d u) |S| (tests/metrics/test_fid.py)
    spread = np.linalg.norm(np.cov(features, rowvar=False), 2)
    d, u = 3, np.finfo(np.float64).eps
    assert same["fid"] == pytest.approx(0.0, abs=2 * d * np.sqrt(d * u) * spread)
    assert again["fid"] == same["fid"] and calls == [3]  # features computed once


# --- scores.json -------------------------------------------------------------------------

def write_params(root, experiments, scoring=None):
    params = {"scale": "paper", "datasets": ["cityscapes", "maps"],
              "defaults": {"seeds": [0, 1]}, "experiments": experiments,
              "scoring": {"device": "cpu", **(scoring or {})}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_scores_json_shape_and_mean_std_across_two_seeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=1)
    write_params(tmp_path, {"cs": {"data": {"dataset": "cityscapes", "image_size": SIZE}}},
                 {"inception_weights": str(tmp_path / "missing.pth")})
    no_fid_weights(monkeypatch, tmp_path)
    monkeypatch.setattr(fcn_score, "load_fallback_segmenter",
                        lambda: (RedThreshold(), {"segmenter": "red"}))
    save(tmp_path / "generated/cs/seed-0/1.png", red_split_image())  # car on columns 8-15
    rows_8_to_15 = (slice(8, None), slice(None))
    save(tmp_path / "generated/cs/seed-1/1.png", red_split_image(rows_8_to_15))  # all right
    parser = argparse.ArgumentParser()
    score_stage.add_arguments(parser)
    assert score_stage.run(parser.parse_args(["--params", "params.yaml", "-e", "cs"])) == 0

    text = (tmp_path / "metrics/cs/scores.json").read_text()
    record = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in scores.json"))
    assert set(record) == {"experiment", "scale", "task", "seeds", "summary", "machine", "timing"}
    assert set(record["machine"]) == {"cpu", "isa", "threads", "gpu", "torch", "python"}
    assert record["task"] == {"dataset": "cityscapes", "direction": "BtoA", "split": "val",
                              "images": 1, "source": "upstream", "max_images": None}
    assert record["experiment"] == "cs" and record["scale"] == "paper"
    assert set(record["seeds"]) == {"seed-0", "seed-1"}
    assert list(record["seeds"]["seed-0"]) == ["fcn_score_fallback", "fid_kid", "color_hist",
                                               "psnr_ssim"]
    assert record["seeds"]["seed-0"]["fid_kid"]["available"] is False
    weight_free = record["seeds"]["seed-0"]["psnr_ssim"]  # numbers without any weights
    assert -1 <= weight_free["ssim"] < 1 and 0 < weight_free["psnr"] < 20
    assert record["seeds"]["seed-0"]["fcn_score_fallback"]["iou_sky"] is None  # NaN -> null
    # seed 0: road right on columns 2-7 of rows 0-7 (48), car right on columns 8-15 of
    # rows 8-15 (64), of 224; seed 1: every pixel right.
    acc = [(48 + 64) / 224, 1.0]
    iou = [(48 / (112 + 96 - 48) + 64 / (112 + 128 - 64)) / 2, 1.0]
    summary = record["summary"]
    for key, values in (("per_pixel_acc", acc), ("class_iou", iou)):
        stats = summary[f"fcn_score_fallback/{key}"]
        assert stats["mean"] == pytest.approx((values[0] + values[1]) / 2)
        assert stats["std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))  # ddof 1
        assert stats["n"] == 2
    assert "fcn_score_fallback/iou_sky" not in summary  # null in every seed
    assert "fid_kid/available" not in summary  # booleans are no statistics
    assert set(record["timing"]) == {"seconds", "images", "seconds_per_image"}
    assert record["timing"]["images"] == 2
    assert not list(tmp_path.glob("metrics/cs/.*"))  # no temporary file left behind
    # per-image scores beside it, keyed by the test image's name (metrics/per_image.py)
    assert sorted(p.name for p in (tmp_path / "metrics/cs/per_image").glob("*.npz")) == [
        "seed-0.npz", "seed-1.npz"]
    images, arrays = per_image.load(tmp_path / "metrics/cs/per_image/seed-0.npz")
    assert images == ["1"] and set(arrays) == {"fcn_score_fallback", "psnr_ssim"}
    assert arrays["fcn_score_fallback"]["tp"][0].sum() == 48 + 64  # seed 0's hand count
    assert arrays["psnr_ssim"]["psnr"][0] == pytest.approx(weight_free["psnr"])


def test_summary_std_is_null_for_one_seed():
    summary = score.summarize({"seed-0": {"m": {"x": 0.5, "name": "a", "ok": True}}})
    assert summary == {"m/x": {"mean": 0.5, "std": None, "n": 1}}


# --- which metrics ------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, direction, expected", [
    ("cityscapes", "AtoB", ["labels_score", "psnr_ssim"]),
    ("maps", "AtoB", ["fid_kid", "psnr_ssim", "pixel_accuracy"]),  # photo -> map
    ("maps", "BtoA", ["fid_kid", "psnr_ssim"]),
    ("facades", "BtoA", ["fid_kid", "psnr_ssim"]),
])
def test_metrics_for_rule(dataset, direction, expected):
    cfg = from_dict(ExperimentConfig, {"name": "x", "data": {"dataset": dataset,
                                                             "direction": direction}})
    assert metrics_for(cfg, ScoringConfig()) == expected


def test_metrics_for_cityscapes_labels_to_photo_needs_every_exact_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path)
    cfg, scoring = cityscapes_cfg(), ScoringConfig()
    assert metrics_for(cfg, scoring) == ["fcn_score_fallback", "fid_kid", "color_hist",
                                         "psnr_ssim"]
    write_exact_inputs(tmp_path)
    assert metrics_for(cfg, scoring) == ["fcn_score_official", "fcn_score_corrected", "fid_kid",
                                         "color_hist", "psnr_ssim"]
    (tmp_path / "data/cityscapes/val_frames.txt").unlink()
    assert metrics_for(cfg, scoring)[0] == "fcn_score_fallback"


def test_params_override_the_rule_and_smoke_values_merge(tmp_path):
    params = {"scale": "smoke", "scales": {"smoke": {}},
              "experiments": {"cs": {"data": {"dataset": "cityscapes"}}},
              "scoring": {"metrics": {"cs": ["fcn_score_fallback", "fid_kid"]},
                          "segmenter": {"iterations": 100, "lr": "1e-4"},
                          "scales": {"smoke": {"segmenter": {"iterations": 7}}}}}
    scoring = load_scoring(Params.of(params))
    assert scoring.segmenter.iterations == 7 and scoring.segmenter.lr == 1e-4
    assert metrics_for(cityscapes_cfg(name="cs"), scoring) == ["fcn_score_fallback", "fid_kid"]
    params["scoring"]["metrics"] = {"cs": ["fcn_score"]}  # no such protocol
    with pytest.raises(ConfigError, match="scoring.metrics.cs.*'fcn_score' is not one of"):
        metrics_for(cityscapes_cfg(name="cs"), load_scoring(Params.of(params)))
    params["scoring"] = {"segmenter": {"widht": 3}}
    with pytest.raises(ConfigError, match="widht"):
        load_scoring(Params.of(params))


@pytest.mark.parametrize("scoring", [
    {"bogus": 1},
    {"scales": {"smoke": {"bogus": 1}}},  # a profile of a scale that is not active
    {"scales": {"smok": {}}},  # no such scale
    {"scales": {"smoke": {"segmenter": {"iteratons": 3}}}},
])
def test_unknown_scoring_keys_are_refused(scoring):
    params = {"scale": "paper", "scales": {"smoke": {}}, "scoring": scoring,
              "experiments": {"cs": {"data": {"dataset": "cityscapes"}}}}
    with pytest.raises(ConfigError) as err:
        load_scoring(Params.of(params))
    assert "\n" not in str(err.value) and ("bogus" in str(err.value) or "smok" in str(err.value)
                                           or "iteratons" in str(err.value))


def mean_colour_session(session):
    """Stand-in Inception: (N, 3) mean RGB per image, so FID sees every scored file."""
    def mean_colour(files):
        return np.stack([np.asarray(Image.open(f).convert("RGB"), float).mean((0, 1))
                         for f in files])
    session.models["inception"] = (mean_colour, {"weights": "stand-in"})


@pytest.mark.parametrize("metric", ["color_hist", "fid_kid", "labels_score"])
@pytest.mark.parametrize("stray", ["0.jpg", "3.png", ".DS_Store"])
def test_a_stray_file_in_the_generated_folder_is_an_error(metric, stray, tmp_path, monkeypatch):
    # the real targets themselves score perfectly; one extra file would change the
    # colour histogram and FID silently: it must be refused, naming the file
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=2)
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu")) as session:
        mean_colour_session(session)
        gen = tmp_path / "gen"
        for path in session.real_files():
            save(gen / path.name, np.asarray(Image.open(path)))
        save(gen / stray, np.zeros((SIZE, SIZE, 3), np.uint8)) if stray != ".DS_Store" \
            else (gen / stray).write_bytes(b"\0")
        with pytest.raises(ScoringError, match=stray.replace(".", r"\.")) as err:
            METRICS[metric](session, gen)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("metric", ["color_hist", "fid_kid", "fcn_score_fallback"])
def test_a_generated_image_of_the_wrong_size_is_an_error(metric, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=2)
    save(tmp_path / "gen/1.png", red_split_image())
    save(tmp_path / "gen/2.png", np.zeros((2 * SIZE, 2 * SIZE, 3), np.uint8))
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu"),
                 {"fcn_score_fallback": (RedThreshold(), {})}) as session:
        mean_colour_session(session)
        with pytest.raises(ScoringError, match=r"2\.png is 32x32 but .* image size is 16"):
            METRICS[metric](session, tmp_path / "gen")


def test_the_output_marker_generate_writes_is_not_a_stray_file(tmp_path, monkeypatch):
    from replication.core.fileio import OUTPUT_MARKER
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=2)
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu")) as session:
        gen = tmp_path / "gen"
        for path in session.real_files():
            save(gen / path.name, np.asarray(Image.open(path)))
        (gen / OUTPUT_MARKER).write_text('{"command": "generate"}')
        assert [p.name for p in session.generated_files(gen)] == ["1.png", "2.png"]


def truncated_png(path):
    save(path, np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the header and half the pixels


def huge_png_header(path):
    huge_png(path, 40000, 40000)


@pytest.mark.parametrize("broken, needle", [(truncated_png, "cannot decode"),
                                            (huge_png_header, "pixels")])
@pytest.mark.parametrize("metric", ["color_hist", "fid_kid", "psnr_ssim"])
def test_a_broken_generated_image_is_one_line_naming_it(broken, needle, metric, tmp_path,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_val_pairs(tmp_path, count=2)
    save(tmp_path / "gen/1.png", red_split_image())
    broken(tmp_path / "gen/2.png")
    with Session(cityscapes_cfg(), ScoringConfig(device="cpu")) as session:
        mean_colour_session(session)
        with pytest.raises(ScoringError) as err:
            METRICS[metric](session, tmp_path / "gen")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "gen" / "2.png") in message
    assert needle in message and "replication generate" in message
