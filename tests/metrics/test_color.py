import numpy as np
import pytest
from PIL import Image

from replication.core.errors import ScoringError
from replication.metrics.color import color_stats, lab_histogram_intersection


def solid(rgb, h=4, w=4):
    return np.full((h, w, 3), rgb, np.uint8)


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
BLACK, WHITE = (0, 0, 0), (255, 255, 255)


def test_identical_sets_intersect_fully():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    out = lab_histogram_intersection(images, [im.copy() for im in images])
    assert out == pytest.approx({"L": 1.0, "a": 1.0, "b": 1.0})


def test_disjoint_primaries_do_not_intersect():
    # sRGB primaries in CIE Lab (D65): red (53.2, 80.1, 67.2), green (87.7, -86.2, 83.2),
    # blue (32.3, 79.2, -107.9): red/blue differ in L and b, red/green in L and a.
    red_blue = lab_histogram_intersection([solid(RED)], [solid(BLUE)])
    assert red_blue["L"] == 0.0 and red_blue["b"] == 0.0
    red_green = lab_histogram_intersection([solid(RED)], [solid(GREEN)])
    assert red_green["L"] == 0.0 and red_green["a"] == 0.0


def test_two_bin_hand_computed_pooling():
    # 2 bins: L in [0, 50) | [50, 100]; a, b in [-128, -0.5) | [-0.5, 127].
    # Black is L=0 and white L=100, both with a = b = 0 (neutral).
    # Generated pools 1 black + 3 white pixels: p_L = (1/4, 3/4).
    # Real pools 2 black + 2 white pixels:      q_L = (1/2, 1/2).
    # Intersection L = min(1/4, 1/2) + min(3/4, 1/2) = 3/4; a and b share one bin: 1.
    generated = [solid(BLACK, 1, 1), solid(WHITE, 1, 3)]
    real = [np.array([[BLACK, WHITE], [WHITE, BLACK]], np.uint8)]
    out = lab_histogram_intersection(generated, real, bins=2)
    assert out == pytest.approx({"L": 0.75, "a": 1.0, "b": 1.0})


def test_float_images_in_unit_range_match_uint8():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    as_uint8 = lab_histogram_intersection([a], [b])
    as_float = lab_histogram_intersection([a / 255.0], [b / 255.0])
    assert as_float == pytest.approx(as_uint8)


def test_values_lie_in_unit_interval():
    rng = np.random.default_rng(2)
    gen = [rng.integers(0, 128, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    real = [rng.integers(64, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    out = lab_histogram_intersection(gen, real)
    assert all(0.0 < v < 1.0 for v in out.values())


def test_color_stats_reads_folders_and_counts(tmp_path):
    for name, colours in (("gen", [RED, BLUE]), ("real", [RED, RED, BLUE, BLUE])):
        (tmp_path / name).mkdir()
        for i, colour in enumerate(colours):
            Image.fromarray(solid(colour)).save(tmp_path / name / f"{i}.png")
    out = color_stats(tmp_path / "gen", tmp_path / "real")
    # same half-red, half-blue pixel mix on both sides
    assert (out["L"], out["a"], out["b"]) == pytest.approx((1.0, 1.0, 1.0))
    assert out["n_generated"] == 2 and out["n_real"] == 4
    assert out["bins"] == {"L": 100, "a": 255, "b": 255}


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="expected \\(H, W, 3\\)"):
        lab_histogram_intersection([np.zeros((4, 4))], [solid(RED)])
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        lab_histogram_intersection([np.full((2, 2, 3), 255.0)], [solid(RED)])
    with pytest.raises(ScoringError, match="no images"):
        lab_histogram_intersection([], [solid(RED)])
    with pytest.raises(ValueError, match="bins"):
        lab_histogram_intersection([solid(RED)], [solid(RED)], bins=(10, 10))


def test_empty_folder_is_named(tmp_path):
    (tmp_path / "gen").mkdir()
    with pytest.raises(ScoringError, match="gen"):
        color_stats(tmp_path / "gen", tmp_path / "gen")
