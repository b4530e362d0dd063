"""Weight-free metrics (replication/metrics/pixel.py) against values computed by hand."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from replication.config.schema import ExperimentConfig, from_dict
from replication.config.scoring import ScoringConfig
from replication.core.errors import ScoringError
from replication.metrics import pixel
from replication.metrics.per_image import PER_IMAGE
from replication.metrics.registry import METRICS
from replication.metrics.score import finite
from replication.metrics.session import Session

SIZE = 16
C1 = (0.01 * 255) ** 2  # SSIM's constants at data range 255 (K1 = 0.01, K2 = 0.03)


def task(dataset="maps", direction="AtoB") -> ExperimentConfig:
    return from_dict(ExperimentConfig, {
        "name": "x", "seeds": [0],
        "data": {"dataset": dataset, "root": "data", "direction": direction,
                 "image_size": SIZE, "test_split": "val"}})


def constant(value) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), value, np.uint8)


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def write_pairs(root, dataset, pairs):
    """data/<dataset>/val/<n>.png = A | B (PNG: exact pixels)."""
    for n, (a, b) in enumerate(pairs, start=1):
        save(root / "data" / dataset / "val" / f"{n}.png", np.concatenate([a, b], axis=1))


def score(tmp_path, metric, pairs, generated, **task_args):
    cfg = task(**task_args)
    write_pairs(tmp_path, cfg.data.dataset, pairs)
    for n, image in enumerate(generated, start=1):
        save(tmp_path / "gen" / f"{n}.png", image)
    with Session(cfg, ScoringConfig(device="cpu")) as session:
        return METRICS[metric](session, tmp_path / "gen")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_psnr_and_ssim_of_constant_images(tmp_path):
    # image 1: every value 100 vs 110: MSE 100; image 2: only green off by 5: MSE 25 / 3
    target = constant(100)
    one_channel = target.copy()
    one_channel[..., 1] = 105
    result = score(tmp_path, "psnr_ssim", [(constant(7), target)] * 2,
                   [constant(110), one_channel])
    psnr = [10 * math.log10(255 ** 2 / 100), 10 * math.log10(255 ** 2 / (25 / 3))]
    assert result["psnr"] == pytest.approx(sum(psnr) / 2)
    assert result["psnr_std_over_images"] == pytest.approx(abs(psnr[0] - psnr[1]) / 2)
    # constant windows: no variance, so SSIM = luminance term (2 mu_x mu_y + C1) /
    # (mu_x^2 + mu_y^2 + C1); image 2: two channels identical (1), green 100 vs 105
    lum = lambda x, y: (2 * x * y + C1) / (x * x + y * y + C1)  # noqa: E731
    ssim = [lum(100, 110), (2 + lum(100, 105)) / 3]
    assert result["ssim"] == pytest.approx(sum(ssim) / 2)
    # kept per image too (metrics/per_image.py), in the pairs' order
    assert result[PER_IMAGE]["kind"] == "mean"
    assert result[PER_IMAGE]["psnr"] == pytest.approx(psnr)
    assert result[PER_IMAGE]["ssim"] == pytest.approx(ssim)
    assert result["identical_images"] == 0 and "psnr_note" not in result
    assert result["frames"] == 2 and result["protocol"] == "psnr_ssim"
    assert (result["data_range"], result["ssim_window"], result["ssim_gaussian_weights"]) == \
        (255, 7, False)


def test_psnr_matches_the_formula_on_noise(tmp_path):
    rng = np.random.default_rng(0)
    target, generated = (rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in "ab")
    result = score(tmp_path, "psnr_ssim", [(constant(0), target)], [generated])
    mse = np.mean((generated.astype(float) - target.astype(float)) ** 2)
    assert result["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / mse))
    assert -1 <= result["ssim"] < 0.2  # independent noise: SSIM near 0


def test_an_image_identical_to_its_target(tmp_path):
    # PSNR is infinite: the mean PSNR is null (JSON has no inf; a cap would be invented),
    # the record counts the identical images; SSIM of identical images is 1
    target = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    result = score(tmp_path, "psnr_ssim", [(constant(0), target)], [target])
    assert result["psnr"] is None and result["psnr_std_over_images"] is None
    assert result["ssim"] == pytest.approx(1.0)
    assert result["identical_images"] == 1 and "identical" in result["psnr_note"]
    arrays = result.pop(PER_IMAGE)  # per-image scores go to their own file (score.py)
    json.dumps(result, allow_nan=False)  # storable as it is
    assert finite(result) == result
    assert arrays["psnr"].tolist() == [math.inf] and arrays["ssim"][0] == pytest.approx(1.0)


def test_one_identical_image_of_two_makes_the_mean_psnr_null(tmp_path):
    result = score(tmp_path, "psnr_ssim", [(constant(0), constant(100))] * 2,
                   [constant(100), constant(110)])
    assert result["psnr"] is None and result["identical_images"] == 1
    assert "1 of 2 images" in result["psnr_note"]
    assert result["psnr_std_over_images"] == 0.0  # over the finite one
    assert result["ssim"] == pytest.approx((1 + (2 * 100 * 110 + C1) /
                                            (100 ** 2 + 110 ** 2 + C1)) / 2)


@pytest.mark.parametrize("direction, identical", [("BtoA", True), ("AtoB", False)])
def test_the_target_is_the_output_half_of_the_direction(tmp_path, direction, identical):
    # A = 50, B = 200; the generated image equals A: identical to the target for BtoA only
    result = score(tmp_path, "psnr_ssim", [(constant(50), constant(200))], [constant(50)],
                   dataset="facades", direction=direction)
    assert (result["psnr"] is None) is identical
    if not identical:
        assert result["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / 150 ** 2))


def hand_made_map() -> np.ndarray:
    """A 16x16 map tile: top half road white (255, 255, 255), bottom half water."""
    tile = np.empty((SIZE, SIZE, 3), np.uint8)
    tile[:8] = 255
    tile[8:] = (170, 218, 255)
    return tile


def test_pixel_accuracy_on_a_hand_made_map(tmp_path):
    target = hand_made_map()
    generated = target.astype(int)
    generated[0, :4] -= 16  # 4 pixels off by exactly the tolerance in every channel: right
    generated[1, :3, 2] -= 17  # 3 pixels off by 17 in blue only: wrong
    generated[8:12] = (170 + 16, 218 - 16, 255)  # 64 water pixels off by 16: right
    generated[12, :5] = (255, 255, 255)  # 5 water pixels painted road: wrong
    result = score(tmp_path, "pixel_accuracy", [(constant(30), target)], [generated])
    assert result["pixel_acc"] == pytest.approx((256 - 3 - 5) / 256)
    assert result["tolerance"] == 16 and "16 (of 255)" in result["tolerance_rule"]
    assert result["pixels"] == 256 and result["frames"] == 1
    assert result["protocol"] == "pixel_accuracy"


def test_pixel_accuracy_pools_over_images(tmp_path):
    target = hand_made_map()
    wrong_half = target.copy()
    wrong_half[8:] = 0  # 128 of 256 pixels wrong
    result = score(tmp_path, "pixel_accuracy", [(constant(30), target)] * 2,
                   [target, wrong_half])
    assert result["pixel_acc"] == pytest.approx((256 + 128) / 512)
    assert result["pixel_acc_std_over_images"] == pytest.approx(0.25)
    assert result[PER_IMAGE]["pixel_acc"] == pytest.approx([1.0, 0.5])  # per image, kept


def test_within_tolerance_has_no_uint8_wraparound():
    assert pixel.within_tolerance(np.uint8([[[0, 0, 0]]]), np.uint8([[[255, 0, 0]]])) \
        .tolist() == [[False]]
    assert pixel.within_tolerance(np.uint8([[[10, 0, 0]]]), np.uint8([[[0, 0, 0]]]),
                                  tolerance=10).tolist() == [[True]]


@pytest.mark.parametrize("metric", ["psnr_ssim", "pixel_accuracy"])
def test_a_generated_image_of_the_wrong_size_is_an_error(tmp_path, metric):
    with pytest.raises(ScoringError, match=r"1\.png is 32x32"):
        score(tmp_path, metric, [(constant(0), constant(0))],
              [np.zeros((2 * SIZE, 2 * SIZE, 3), np.uint8)])
