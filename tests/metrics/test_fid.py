import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

from replication.core.errors import ScoringError
from replication.metrics.fid import (
    WeightsUnavailable,
    _unbiased_mmd2,
    fid_kid,
    frechet_distance,
    image_features,
    kernel_inception_distance,
    kid_subset_size,
    load_inception,
)


def reference_fid(mu1, s1, mu2, s2):
    with warnings.catch_warnings():  # pytorch-fid passes scipy's deprecated `disp`
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return calculate_frechet_distance(mu1, s1, mu2, s2)
        except TypeError as err:  # SciPy >= 1.18 dropped sqrtm's `disp` (README)
            pytest.skip(f"pytorch-fid's own function no longer runs on this SciPy ({err}); "
                        "the closed-form Fréchet tests still check ours")


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --- Frechet distance ---------------------------------------------------------------

@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_matches_pytorch_fid(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    expected = reference_fid(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_frechet_identity_covariances_is_squared_mean_gap():
    v = np.array([3.0, -4.0, 1.0])
    assert frechet_distance(np.zeros(3), np.eye(3), v, np.eye(3)) == pytest.approx(26.0)


def test_frechet_diagonal_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    # (1-2)^2 + (2-1)^2 + (3-0.5)^2 = 8.25, plus |mu gap|^2 = 5
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(8.25 + 5.0)


def test_frechet_same_gaussian_is_zero():
    s = random_spd(np.random.default_rng(1), 8)
    assert frechet_distance(np.ones(8), s, np.ones(8), s) == pytest.approx(0.0, abs=1e-8)


def test_frechet_rank_deficient_covariances_are_exact():
    # fewer samples than dimensions (500 frames, 2048 features): singular covariances.
    # Closed forms: one singular S on both sides gives Tr(sqrt(S S)) = Tr(S), so the
    # distance is the squared mean gap alone; singular diagonals give sqrt(a_i b_i).
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 64))
    s = np.cov(x, rowvar=False)  # rank 4 of 64
    gap = np.zeros(64)
    gap[:3] = (1.0, 2.0, 2.0)
    got = frechet_distance(x.mean(0), s, x.mean(0) + gap, s)
    # the 60 zero eigenvalues come out as rounding noise of size d * u * |S|^2, and each
    # contributes its square root: at most d * sqrt(d * u * |S|^2), twice (2 Tr)
    d, u = 64, np.finfo(np.float64).eps
    bound = 2 * d * np.sqrt(d * u * np.linalg.norm(s, 2) ** 2)
    assert got == pytest.approx(9.0, abs=bound)
    a, b = np.array([4.0, 0.0, 9.0, 0.0]), np.array([1.0, 5.0, 0.0, 0.0])
    expected = (2 - 1) ** 2 + 5 + 9 + 0  # sum of (sqrt a - sqrt b)^2
    assert frechet_distance(np.zeros(4), np.diag(a), np.zeros(4), np.diag(b)) == \
        pytest.approx(expected, abs=1e-12)


def test_frechet_of_two_samples_in_2048_dimensions_is_finite():
    # the rehearsal's case (2 images): pytorch-fid's sqrtm gave imaginary parts of 3e21
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 2048)), rng.normal(size=(2, 2048)) + 0.1
    got = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0),
                           np.cov(y, rowvar=False))
    assert np.isfinite(got) and got > 0


def test_frechet_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


# --- KID ----------------------------------------------------------------------------

def direct_unbiased_mmd2(x, y):
    """Unbiased MMD^2 written out pair by pair (Gretton et al. 2012, eq. 3)."""
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_mmd_matches_direct_formula():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.3
    assert _unbiased_mmd2(x, y) == pytest.approx(direct_unbiased_mmd2(x, y), rel=1e-10)


def test_kid_subsets_are_half_the_sample_so_their_spread_means_something():
    # subsets as large as the sample would all be the same set (at n = 500 every one of
    # the 100 subsets of 1000 capped to 500 is identical, std 0)
    assert kid_subset_size(500, 500, 1000) == 250
    assert kid_subset_size(106, 500, 1000) == 53
    assert kid_subset_size(5000, 5000, 1000) == 1000
    assert kid_subset_size(3, 3, 1000) == 2  # KID needs 2 per subset
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    _, std = kernel_inception_distance(x, y, subset_size=1000, subsets=20)
    assert std > 0


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(2)
    # Two draws of one distribution. (Literally one array on both sides would let the
    # two subsets share rows, and shared rows inflate the cross term: a negative bias.)
    x, y = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same_mean, same_std = kernel_inception_distance(x, y, subset_size=50, subsets=50)
    assert abs(same_mean) < same_std
    shift_mean, shift_std = kernel_inception_distance(x, y + 1.0, subset_size=50, subsets=50)
    assert shift_mean > 5 * shift_std > 0


def test_kid_is_reproducible_with_seed():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    assert kernel_inception_distance(x, y, 10, 5, seed=7) == \
        kernel_inception_distance(x, y, 10, 5, seed=7)


def test_kid_needs_two_samples():
    with pytest.raises(ScoringError, match="n = 1, 5"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)), 1000, 100)


# --- fid_kid record -----------------------------------------------------------------

def write_pngs(folder: Path, colours, size=(8, 8)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, colour in enumerate(colours):
        Image.new("RGB", size, tuple(colour)).save(folder / f"{i:03d}.png")
    return folder


KID = {"kid_subsets": 100, "kid_subset_size": 1000}  # the ScoringConfig defaults


def mean_colour_features(files):
    """Stub extractor: each image's mean RGB (3-d features)."""
    return np.stack([np.asarray(Image.open(f), np.float64).mean((0, 1)) for f in files])


def test_fid_kid_with_stub_features(tmp_path):
    rng = np.random.default_rng(0)
    gen = write_pngs(tmp_path / "gen", rng.integers(0, 256, (6, 3)))
    real = write_pngs(tmp_path / "real", rng.integers(0, 256, (9, 3)))
    out = fid_kid(gen, real, mean_colour_features, **KID)
    assert out["n_generated"] == 6 and out["n_real"] == 9
    assert out["kid_subset_size"] == 3 and out["kid_subsets"] == 100  # half of min(6, 9)
    for key in ("fid", "kid_mean", "kid_std"):
        assert key in out
    fg = mean_colour_features(sorted(gen.iterdir()))
    fr = mean_colour_features(sorted(real.iterdir()))
    expected = reference_fid(fg.mean(0), np.cov(fg, rowvar=False),
                             fr.mean(0), np.cov(fr, rowvar=False))
    assert out["fid"] == pytest.approx(expected, rel=1e-6)


def test_fid_kid_identical_folders_give_zero_fid(tmp_path):
    colours = np.random.default_rng(1).integers(0, 256, (5, 3))
    gen, real = write_pngs(tmp_path / "gen", colours), write_pngs(tmp_path / "real", colours)
    out = fid_kid(gen, real, mean_colour_features, **KID)
    assert out["fid"] == pytest.approx(0.0, abs=1e-6)


def test_fid_kid_empty_folder_is_named(tmp_path):
    (tmp_path / "gen").mkdir()
    real = write_pngs(tmp_path / "real", [(0, 0, 0)] * 2)
    with pytest.raises(ScoringError, match="gen"):
        fid_kid(tmp_path / "gen", real, mean_colour_features, **KID)


def test_fid_kid_resolution_mismatch_is_an_error(tmp_path):
    gen = write_pngs(tmp_path / "gen", [(0, 0, 0)] * 2, size=(8, 8))
    real = write_pngs(tmp_path / "real", [(0, 0, 0)] * 2, size=(16, 16))
    with pytest.raises(ScoringError, match="one resolution"):
        fid_kid(gen, real, mean_colour_features, **KID)


# --- Inception loading --------------------------------------------------------------

def test_load_inception_missing_file_raises_dedicated_error(tmp_path):
    with pytest.raises(WeightsUnavailable, match="scoring.inception_weights"):
        load_inception(tmp_path / "missing.pth")


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    # Built by torchvision alone: pytorch-fid's FID blocks subclass torchvision's
    # InceptionA/C/E with the same parameters, so this state dict has its key layout.
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=True)
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_load_inception_from_local_file_gives_pool3_features(random_inception_weights,
                                                             tmp_path):
    torch.set_num_threads(1)
    path, state = random_inception_weights
    model = load_inception(path)
    assert torch.equal(model.blocks[0][0].conv.weight, state["Conv2d_1a_3x3.conv.weight"])
    assert torch.equal(model.blocks[3][1].branch1x1.conv.weight,
                       state["Mixed_7b.branch1x1.conv.weight"])
    folder = write_pngs(tmp_path / "imgs", [(255, 0, 0), (0, 0, 255)], size=(16, 16))
    feats = image_features(model, folder, batch_size=1)
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    assert (feats >= 0).all()  # pool3 averages ReLU outputs
    assert not np.allclose(feats[0], feats[1])


def test_load_inception_rejects_wrong_state_dict(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ScoringError, match="not the pytorch-fid Inception weights"):
        load_inception(path)


def test_image_features_mixed_sizes_is_an_error(tmp_path):
    write_pngs(tmp_path / "imgs", [(0, 0, 0)], size=(8, 8))
    Image.new("RGB", (9, 8)).save(tmp_path / "imgs" / "z.png")
    with pytest.raises(ScoringError, match="differ in size"):
        image_features(None, tmp_path / "imgs")
