import io

import numpy as np
import pytest
import sklearn.metrics
from PIL import Image

from replication.data.cityscapes_labels import IGNORE, PALETTE
from replication.metrics.segmentation import (
    CONFIDENT_DISTANCE,
    SUPPORT_RADIUS,
    VOID_COLORS,
    confusion_matrix,
    decode_color_labels,
    decode_label_maps,
    official_histogram,
    official_scores,
    scores,
)

# A 3-class frame counted by hand (255 = ignore):
#   truth 0 -> predicted 0, 0, 1       row 0: [2, 1, 0]
#   truth 1 -> predicted 1, 2          row 1: [0, 1, 1]
#   truth 2 -> predicted 2, 2, 0, 2    row 2: [1, 0, 3]
TRUTH = np.array([[0, 0, 0, 1, 1], [2, 2, 2, 2, 255]], dtype=np.uint8)
PRED = np.array([[0, 0, 1, 1, 2], [2, 2, 0, 2, 1]], dtype=np.uint8)


def test_hand_counted_matrix_drops_ignored_pixels():
    m = confusion_matrix(TRUTH, PRED, num_classes=3)
    assert m.dtype == np.int64
    np.testing.assert_array_equal(m, [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0]])


def test_hand_computed_scores():
    s = scores(confusion_matrix(TRUTH, PRED, num_classes=3))
    assert s["pixels"] == 9
    assert s["per_pixel_acc"] == pytest.approx(6 / 9)
    # rows 3, 2, 4; columns 3, 2, 4
    assert s["per_class_acc_array"] == pytest.approx([2 / 3, 1 / 2, 3 / 4])
    assert s["per_class_acc"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert s["class_iou_array"] == pytest.approx([2 / 4, 1 / 3, 3 / 5])
    assert s["class_iou"] == pytest.approx((2 / 4 + 1 / 3 + 3 / 5) / 3)


def test_absent_class_skipped_here_and_zero_in_the_official_arithmetic():
    m = np.array([[2, 1, 0], [1, 2, 0], [0, 0, 0]])  # class 2 absent from truth and prediction
    skip, official = scores(m), official_scores(m)
    assert np.isnan(skip["per_class_acc_array"][2]) and np.isnan(skip["class_iou_array"][2])
    assert skip["per_class_acc"] == pytest.approx(2 / 3)
    assert skip["class_iou"] == pytest.approx(2 / 4)
    # official: 0 / (0 + 1e-12) = 0, averaged in by nanmean
    assert official["per_class_acc"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert official["class_iou"] == pytest.approx((2 / 4 + 2 / 4 + 0) / 3)


def test_prediction_19_is_an_error_not_aliased():
    truth = np.array([[0, 5, 18, 18]])
    pred = np.array([[0, 19, 18, 19]])
    m = confusion_matrix(truth, pred)
    assert m.shape == (19, 20)
    assert m[0, 0] == 1 and m[18, 18] == 1
    assert m[5, 19] == 1 and m[18, 19] == 1  # "other" column, in the truth rows
    # any prediction outside [0, 19) is "other", negative ones too
    np.testing.assert_array_equal(confusion_matrix(truth, np.array([[0, -1, 18, 200]])), m)
    assert m[6, 0] == 0  # where fast_hist would alias (5, 19): 5 * 19 + 19 = 6 * 19 + 0
    assert m.sum() == 4
    s = scores(m)
    assert s["per_pixel_acc"] == pytest.approx(2 / 4)
    assert s["other_pixels"] == 2
    # classes 0, 5, 18 present: acc 1/1, 0/1, 1/2; IoU 1/1, 0/1, 1/(2 + 1 - 1)
    assert s["per_class_acc"] == pytest.approx(0.5)
    assert s["class_iou"] == pytest.approx(0.5)


def test_random_labels_agree_with_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 19, size=(60, 80)).astype(np.uint8)
    truth[rng.random(truth.shape) < 0.1] = 255
    pred = rng.integers(0, 20, size=(60, 80)).astype(np.uint8)
    m = confusion_matrix(truth, pred)
    keep = truth.ravel() != 255
    t, p = truth.ravel()[keep], pred.ravel()[keep]
    reference = sklearn.metrics.confusion_matrix(t, p, labels=range(20))
    np.testing.assert_array_equal(m, reference[:19, :20])
    s = scores(m)
    assert s["per_pixel_acc"] == pytest.approx(sklearn.metrics.accuracy_score(t, p))
    recall = sklearn.metrics.recall_score(t, p, labels=range(19), average=None, zero_division=0)
    assert s["per_class_acc"] == pytest.approx(recall.mean())
    jaccard = sklearn.metrics.jaccard_score(t, p, labels=range(19), average="macro")
    assert s["class_iou"] == pytest.approx(jaccard)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="truth label 33"):
        confusion_matrix(np.array([0, 33]), np.array([0, 0]))
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        scores(np.zeros((3, 5)))


def _block_label_image(rng, blocks=16, size=16):
    ids = rng.integers(0, 19, size=(blocks, blocks))
    ids[:2, :10] = np.arange(19)[:10]  # every class appears
    ids[2, :9] = np.arange(10, 19)
    return np.kron(ids, np.ones((size, size), dtype=np.int64)).astype(np.uint8)


def test_decode_jpeg_colour_labels():
    rng = np.random.default_rng(1)
    ids = _block_label_image(rng)
    buffer = io.BytesIO()
    Image.fromarray(PALETTE[ids]).save(buffer, format="JPEG", quality=75)
    noisy = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    assert (noisy != PALETTE[ids]).any()  # JPEG changed the colours
    decoded = decode_color_labels(noisy, chunk_pixels=1000)  # chunks cut through rows
    # pixels at least 3 px from a block edge of a different class
    inner = np.ones_like(ids, dtype=bool)
    for axis in (0, 1):
        for shift in (-3, -2, -1, 1, 2, 3):
            inner &= np.roll(ids, shift, axis=axis) == ids
    inner[:3], inner[-3:], inner[:, :3], inner[:, -3:] = False, False, False, False
    assert inner.mean() > 0.3
    assert (decoded[inner] == ids[inner]).mean() >= 0.97


def test_decode_matches_brute_force_and_max_distance():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(7, 9, 3)).astype(np.uint8)
    d2 = ((image[:, :, None, :].astype(int) - PALETTE.astype(int)) ** 2).sum(-1)
    np.testing.assert_array_equal(decode_color_labels(image, chunk_pixels=5), d2.argmin(-1))
    # white: the nearest class colour is terrain (152, 251, 152), 103^2 + 4^2 + 103^2 away
    white = np.full((1, 1, 3), 255, dtype=np.uint8)
    assert decode_color_labels(white)[0, 0] == 9
    assert decode_color_labels(white, max_distance=145)[0, 0] == 255
    assert decode_color_labels(white, max_distance=146)[0, 0] == 9


def test_void_colours_decode_to_ignore():
    ground = np.array([[[81, 0, 81]]], dtype=np.uint8)  # Cityscapes "ground", no train id
    assert decode_color_labels(ground)[0, 0] != 255
    assert decode_color_labels(ground, ignore_colors=VOID_COLORS)[0, 0] == 255
    pole = np.array([[[153, 153, 153]]], dtype=np.uint8)  # shared with polegroup: pole wins
    assert decode_color_labels(pole, ignore_colors=VOID_COLORS)[0, 0] == 5


# --- the official arithmetic, against a literal transcription ------------------------
# scripts/eval_cityscapes/util.py (phillipi/pix2pix, same in pytorch-CycleGAN-and-pix2pix)
# and the accumulation loop of evaluate.py, transcribed line for line as the oracle.

def official_fast_hist(a, b, n):
    k = np.where((a >= 0) & (a < n))[0]
    bc = np.bincount(n * a[k].astype(int) + b[k], minlength=n**2)
    if len(bc) != n**2:
        # ignore this example if dimension mismatch
        return 0
    return bc.reshape(n, n)


def official_get_scores(hist):
    acc = np.diag(hist).sum() / (hist.sum() + 1e-12)
    cl_acc = np.diag(hist) / (hist.sum(1) + 1e-12)
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist) + 1e-12)
    return acc, np.nanmean(cl_acc), np.nanmean(iu), cl_acc, iu


def random_frames(seed: int, count: int, shape=(24, 40)):
    """Truth in 0..18 or 255, predictions in 0..19 (19 = the FCN's extra output), some
    frames with bicycle pixels predicted 19 (dropped by the official code), some with
    classes absent."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        truth = rng.integers(0, 19 - (i % 3) * 5, shape).astype(np.uint8)
        truth[rng.random(shape) < 0.1] = 255
        pred = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, 20, shape))
        pred = np.where(pred == 255, 0, pred).astype(np.uint8)
        frames.append((truth, pred))
    return frames


@pytest.mark.parametrize("seed", range(5))
def test_official_arithmetic_matches_the_transcribed_evaluation_loop(seed):
    frames = random_frames(seed, count=8)
    hist_perframe = np.zeros((19, 19))  # evaluate.py's accumulator
    ours = np.zeros((19, 19))
    dropped = 0
    for truth, pred in frames:
        hist_perframe += official_fast_hist(truth.flatten(), pred.flatten(), 19)
        hist = official_histogram(truth, pred)
        dropped += hist is None
        ours += 0 if hist is None else hist
    assert np.array_equal(ours, hist_perframe)
    assert dropped == sum(((t == 18) & (p == 19)).any() for t, p in frames)
    acc, cl_acc, iu, cl_acc_array, iu_array = official_get_scores(hist_perframe)
    got = official_scores(ours)
    assert got["per_pixel_acc"] == acc and got["per_class_acc"] == cl_acc
    assert got["class_iou"] == iu
    assert got["per_class_acc_array"] == cl_acc_array.tolist()
    assert got["class_iou_array"] == iu_array.tolist()


def test_official_arithmetic_aliases_prediction_19_to_the_next_class_as_road():
    # truth car (13) predicted 19: index 19 * 13 + 19 = 19 * 14 + 0, i.e. truck predicted road
    truth = np.array([[13, 13, 0]], np.uint8)
    pred = np.array([[19, 13, 0]], np.uint8)
    hist = official_histogram(truth, pred)
    assert hist[14, 0] == 1 and hist[13, 13] == 1 and hist[0, 0] == 1 and hist.sum() == 3


# --- the supported-colour rule (decode_label_maps; docs/protocols.md) ---------------------

SKY, BUILDING, WALL, POLE = 10, 2, 3, 5


def two_regions(blend) -> np.ndarray:
    """One 8x8 map: sky left, building right, column 4 painted `blend`."""
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[0, :, :4], image[0, :, 4:] = PALETTE[SKY], PALETTE[BUILDING]
    image[0, :, 4] = blend
    return image


def test_an_edge_blend_that_is_nearest_a_third_class_is_ignored():
    # the mean of sky (70, 130, 180) and building (70, 70, 70) is (70, 100, 125): nearest
    # wall (102, 102, 156) at 44.6 units, by hand; no confident wall pixel anywhere
    blend = (PALETTE[SKY].astype(int) + PALETTE[BUILDING]) // 2
    image = two_regions(blend)
    nearest = decode_label_maps(image, supported=False)
    assert (nearest[0, :, 4] == WALL).all()  # the invented class of the old rule
    ids = decode_label_maps(image)
    assert (ids[0, :, 4] == IGNORE).all()
    assert (ids[0, :, :4] == SKY).all() and (ids[0, :, 5:] == BUILDING).all()


def test_a_thin_true_structure_and_a_near_blend_survive():
    pole = two_regions(PALETTE[POLE])  # a 1-px pole in its pure colour: confident
    assert (decode_label_maps(pole)[0, :, 4] == POLE).all()
    # JPEG noise of 5 units per channel on building (8.7 units, under the 10 of the rule)
    # next to pure building pixels: kept
    noisy = two_regions(PALETTE[BUILDING].astype(int) + 5)
    assert (decode_label_maps(noisy)[0, :, 4] == BUILDING).all()


def test_support_reaches_exactly_the_radius_and_stays_inside_its_map():
    # row 0 one confident car pixel; car-ish pixels (11 units off) in rows 1..7 of col 0:
    # kept up to SUPPORT_RADIUS rows away, ignored beyond
    image = np.zeros((2, 8, 8, 3), np.uint8)  # black: void
    car = PALETTE[13].astype(int)
    image[0, 0, 0] = car
    image[0, 1:, 0] = car + [0, 11, 0]
    ids = decode_label_maps(image)
    rows = np.flatnonzero(ids[0, :, 0] == 13)
    assert rows.tolist() == list(range(SUPPORT_RADIUS + 1))
    # the next map's unconfident car pixel at its top is not supported by map 0's bottom
    image[0, 7, 0] = car
    image[1, 0, 0] = car + [0, 11, 0]
    assert decode_label_maps(image)[1, 0, 0] == IGNORE
    assert CONFIDENT_DISTANCE < 11  # the premise of the constructed case
