"""Segmentation scores for the FCN-score and photo -> labels tables (docs/protocols.md).

One confusion matrix is pooled over all frames (add the per-frame matrices), then
`scores` turns it into the paper's three numbers.

Two arithmetics. The corrected one (`confusion_matrix`, `scores`) has C + 1 columns:
column C ("other") counts predictions that are not one of the C classes, e.g. the FCN's
20th output (index 19); such a pixel is an error in its truth row and on no class's
prediction column. The official one (`official_histogram`, `official_scores`) is what
the paper's numbers came from (scripts/eval_cityscapes/util.py, fast_hist): it computes
bincount(C * truth + pred), so prediction 19 aliases into (truth + 1, 0), and truth 18
with prediction 19 makes the count vector too long, which silently drops the frame.
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _LABELS

from replication.data.cityscapes_labels import IGNORE, NUM_CLASSES, PALETTE

# Colours of the Cityscapes labels outside the 19 classes (ground, parking, dynamic, ...),
# for `decode_color_labels(..., ignore_colors=VOID_COLORS)`. Colours shared with a class
# (polegroup = pole, license plate = car) are left out: the class wins.
VOID_COLORS = np.array(
    sorted({l.color for l in _LABELS if not 0 <= l.trainId < NUM_CLASSES}
           - {tuple(c) for c in PALETTE.tolist()}),
    dtype=np.uint8,
)


def _flat_pair(truth, pred) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth shape {truth.shape} != prediction shape {pred.shape}; "
                         "resize the prediction to the label size (never the labels down)")
    return truth.ravel().astype(np.int64), pred.ravel().astype(np.int64)


def confusion_matrix(truth, pred, num_classes: int = NUM_CLASSES,
                     ignore_index: int = IGNORE) -> np.ndarray:
    """(C, C + 1) int64 counts: rows = truth, columns = prediction, column C = "other".

    Pixels whose truth is `ignore_index` are dropped; any other truth outside [0, C)
    is an error (map label ids to train ids first).
    """
    C = num_classes
    t, p = _flat_pair(truth, pred)
    keep = t != ignore_index
    t, p = t[keep], p[keep]
    bad = (t < 0) | (t >= C)
    if bad.any():
        raise ValueError(f"truth label {t[bad][0]} is neither a class in [0, {C}) nor "
                         f"ignore_index {ignore_index}; map label ids to train ids first")
    p = np.where((p >= 0) & (p < C), p, C)
    return np.bincount(t * (C + 1) + p, minlength=C * (C + 1)).reshape(C, C + 1)


def official_histogram(truth, pred, num_classes: int = NUM_CLASSES) -> np.ndarray | None:
    """One frame's (C, C) counts exactly as the official fast_hist computes them, or None
    where it drops the frame (scripts/eval_cityscapes/util.py, docs/protocols.md).

    It keeps pixels whose truth is in [0, C) and counts bincount(C * truth + pred): a
    prediction C (the FCN's 20th output) lands in cell (truth + 1, 0), "predicted road";
    for truth C - 1 (bicycle) that index is past C * C, the count vector comes out too
    long, and the official code drops the whole frame (returns 0).
    """
    C = num_classes
    t, p = _flat_pair(truth, pred)
    keep = (t >= 0) & (t < C)
    counts = np.bincount(C * t[keep] + p[keep], minlength=C * C)
    return counts.reshape(C, C) if len(counts) == C * C else None


def official_scores(hist) -> dict:
    """The official get_scores: every denominator + 1e-12, then np.nanmean, so a class
    absent from truth and prediction scores 0 / 1e-12 = 0 and counts in the mean."""
    h = np.asarray(hist, dtype=np.float64)
    diag = np.diag(h)
    class_acc = diag / (h.sum(1) + 1e-12)
    class_iou = diag / (h.sum(1) + h.sum(0) - diag + 1e-12)
    return {"per_pixel_acc": float(diag.sum() / (h.sum() + 1e-12)),
            "per_class_acc": float(np.nanmean(class_acc)),
            "class_iou": float(np.nanmean(class_iou)),
            "per_class_acc_array": class_acc.tolist(), "class_iou_array": class_iou.tolist(),
            "pixels": int(h.sum())}


def scores(matrix) -> dict:
    """The paper's per-pixel acc, per-class acc and class IoU from one pooled matrix,
    corrected arithmetic (official_scores is the paper's).

    `matrix` is (C, C + 1) from `confusion_matrix` (summed over frames) or a plain
    (C, C). per-class acc averages diag / row over classes present in the truth;
    class IoU averages diag / (row + col - diag) over classes present in the truth or
    the prediction: absent classes are nan in the arrays and left out of the means. On
    the full 500-frame Cityscapes val split every class is present.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] not in (m.shape[0], m.shape[0] + 1):
        raise ValueError(f"confusion matrix shape {m.shape} is neither (C, C) nor (C, C + 1)")
    C = m.shape[0]
    diag = np.diag(m[:, :C])
    rows = m.sum(1)  # includes "other": a prediction outside the classes is an error
    union = rows + m[:, :C].sum(0) - diag
    with np.errstate(invalid="ignore", divide="ignore"):
        class_acc = np.where(rows > 0, diag / rows, np.nan)
        class_iou = np.where(union > 0, diag / union, np.nan)
        pixel_acc = diag.sum() / m.sum() if m.sum() > 0 else np.nan

    def mean(per_class):
        present = per_class[~np.isnan(per_class)]
        return float(present.mean()) if present.size else float("nan")

    return {
        "per_pixel_acc": float(pixel_acc),
        "per_class_acc": mean(class_acc),
        "class_iou": mean(class_iou),
        "per_class_acc_array": class_acc.tolist(),
        "class_iou_array": class_iou.tolist(),
        "pixels": int(m.sum()),
        "other_pixels": int(m[:, C:].sum()),
    }


# The label-decoding rule for JPEG colour label maps (docs/protocols.md, measured by
# scripts/measure_label_decoding.py on the 500 real val labels and on simulated ones with
# known truth): a pixel keeps its nearest class only if a CONFIDENT pixel of that class
# (at most CONFIDENT_DISTANCE RGB units from its colour) lies within SUPPORT_RADIUS pixels;
# otherwise it is ignored. Bicubic resizing and JPEG blend two regions' colours at their
# edge into a colour nearest a THIRD class (sky | building -> wall, car | void -> truck),
# never confidently and never next to a confident pixel of that class.
SUPPORT_RADIUS = 2
CONFIDENT_DISTANCE = 10.0


def decode_label_maps(images, ignore_colors=VOID_COLORS, supported: bool = True) -> np.ndarray:
    """Train ids (N, H, W) of N colour label maps (N, H, W, 3): nearest colour of the 19
    classes and `ignore_colors` (-> 255), then, if `supported`, the support rule above per
    map (no neighbourhood crosses two maps). The one decoder of the pipeline's truth and of
    Table 6's generated label maps; supported=False is the plain nearest-colour rule."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"colour label maps have shape {images.shape}; expected (N, H, W, 3)")
    n, h, w = images.shape[:3]
    ids, distance = decode_color_labels(images.reshape(n * h, w, 3), ignore_colors=ignore_colors,
                                        return_distance=True)
    ids, distance = ids.reshape(n, h, w), distance.reshape(n, h, w)
    return keep_supported(ids, distance) if supported else ids


def label_rule(decoding: str) -> str:
    """How colour labels were decoded, for the score records."""
    if decoding == "nearest":
        return "nearest Cityscapes colour (void colours ignored)"
    return (f"nearest Cityscapes colour, kept where a pixel of that class within "
            f"{CONFIDENT_DISTANCE:g} RGB units lies within {SUPPORT_RADIUS} px, else "
            "ignored (void colours ignored)")


def keep_supported(ids: np.ndarray, distance: np.ndarray, radius: int = SUPPORT_RADIUS,
                   confident: float = CONFIDENT_DISTANCE) -> np.ndarray:
    """ids (N, H, W) with every pixel whose class has no confident pixel within `radius`
    (a square window, within its own map) set to IGNORE."""
    from scipy import ndimage  # only the decoding of colour labels needs it
    out = ids.copy()
    window = (1, 2 * radius + 1, 2 * radius + 1)
    sure = distance <= confident
    unsupported = np.zeros(ids.shape, dtype=bool)
    for c in np.unique(ids):
        if c == IGNORE:
            continue
        of_c = ids == c
        near = ndimage.maximum_filter(of_c & sure, size=window, mode="constant", cval=False)
        unsupported |= of_c & ~near
    out[unsupported] = IGNORE
    return out


def decode_color_labels(image_rgb, palette=PALETTE, max_distance: float | None = None,
                        ignore_colors=None, chunk_pixels: int = 1 << 18,
                        return_distance: bool = False):
    """Train ids (H, W) uint8 of a colour label map by nearest palette colour.

    Nearest = smallest squared RGB distance, so JPEG noise decodes to the right class.
    max_distance: pixels farther (Euclidean RGB) than this from every colour -> 255.
    ignore_colors: extra (K, 3) colours that decode to 255 when nearest (e.g.
    VOID_COLORS); None = the 19 class colours only (docs/protocols.md).
    return_distance: also the (H, W) Euclidean distance to the nearest colour.
    Each distinct colour is decoded once (a label map, even JPEG-noisy, has far fewer
    distinct colours than pixels), `chunk_pixels` colours at a time to bound memory.
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"colour label image has shape {image.shape}; expected (H, W, 3) RGB")
    rgb = image.reshape(-1, 3).astype(np.int64)
    codes, inverse = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2],
                               return_inverse=True)
    distinct = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1)
    decoded, d2 = _nearest_ids(distinct, palette, max_distance, ignore_colors, chunk_pixels)
    ids = decoded[inverse.reshape(-1)].reshape(image.shape[:2])
    if not return_distance:
        return ids
    return ids, np.sqrt(d2[inverse.reshape(-1)].reshape(image.shape[:2]))


def _nearest_ids(flat: np.ndarray, palette, max_distance, ignore_colors,
                 chunk_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    extra = np.zeros((0, 3)) if ignore_colors is None else np.asarray(ignore_colors)
    colors = np.concatenate([np.asarray(palette), extra]).astype(np.int64)
    ids = np.concatenate([np.arange(len(palette)), np.full(len(extra), IGNORE)]).astype(np.uint8)
    out = np.empty(len(flat), dtype=np.uint8)
    nearest_d2 = np.empty(len(flat), dtype=np.int64)
    for start in range(0, len(flat), chunk_pixels):
        x = flat[start:start + chunk_pixels].astype(np.int64)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, exact in integers
        d2 = (x * x).sum(1, keepdims=True) - 2 * x @ colors.T + (colors * colors).sum(1)
        nearest = d2.argmin(1)
        decoded = ids[nearest]
        if max_distance is not None:
            decoded[d2[np.arange(len(x)), nearest] > max_distance ** 2] = IGNORE
        out[start:start + len(x)] = decoded
        nearest_d2[start:start + len(x)] = d2[np.arange(len(x)), nearest]
    return out, nearest_d2
