"""The FCN-score protocols (Tables 1-3) and the photo -> labels score (Table 6).

    fcn_score_official  the paper's FCN-score: the authors' FCN-8s, gtFine labelIds at
                        full resolution, the generated 256 px photo upsampled bilinearly
                        to it, the official fast_hist arithmetic with its quirks
    fcn_score_corrected the same predictions, the quirks removed (prediction 19 is an
                        error, no frame dropped); one FCN pass serves both
    fcn_score_fallback  our own FCN-8s (runs/segmenter/fallback.pt), truth = the val
                        pairs' colour label half decoded by scoring.label_decoding, at the
                        segmenter's size (generated photos upsampled to it bilinearly);
                        comparable only to its own ground-truth row
    labels_score        Table 6: generated colour label maps -> nearest Cityscapes colour
docs/protocols.md says where each comes from.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from replication.config.schema import ExperimentConfig
from replication.config.scoring import ScoringConfig
from replication.core import layout
from replication.core.errors import ScoringError
from replication.core.fileio import file_sha256
from replication.data.cityscapes_build import VAL_FRAMES
from replication.data.cityscapes_labels import CLASS_NAMES, label_ids_to_train_ids
from replication.metrics import fcn, weights
from replication.metrics.per_image import PER_IMAGE, confusion_counts
from replication.metrics.segmentation import (
    confusion_matrix,
    official_histogram,
    official_scores,
    scores,
)
from replication.metrics.session import Session, scored_split


def cityscapes_root(cfg: ExperimentConfig) -> Path:
    return Path(cfg.data.root) / cfg.data.dataset


def missing_exact_inputs(cfg: ExperimentConfig, scoring: ScoringConfig) -> str | None:
    """What the exact FCN-score protocol lacks here, or None when it can run."""
    root = cityscapes_root(cfg)
    if not (weights.first_file(weights.fcn_candidates(scoring.fcn_caffemodel))
            or layout.CONVERTED_FCN.is_file()):
        where = ", ".join(map(str, weights.fcn_candidates(scoring.fcn_caffemodel)))
        return f"no FCN-8s weights ({where}; {weights.how_to_get(scoring)})"
    if not (root / VAL_FRAMES).is_file() or not (root / "gtFine" / "val").is_dir():
        return (f"no {root / VAL_FRAMES} + {root / 'gtFine/val'} (build Cityscapes from the "
                "official zips)")
    if scored_split(cfg) != "val":
        return f"the test split is {scored_split(cfg)!r}; the labelIds are those of 'val'"
    return None


def flat_scores(matrix: np.ndarray) -> dict:
    """The paper's three numbers, pixel counts and per-class IoU as flat keys."""
    s = scores(matrix)
    per_class = {f"iou_{name.replace(' ', '_')}": v
                 for name, v in zip(CLASS_NAMES, s["class_iou_array"])}
    return {"per_pixel_acc": s["per_pixel_acc"], "per_class_acc": s["per_class_acc"],
            "class_iou": s["class_iou"], "pixels": s["pixels"],
            "other_pixels": s["other_pixels"], "absent_classes": "skip", **per_class}


def load_exact_segmenter(scoring: ScoringConfig) -> tuple[torch.nn.Module, dict]:
    """The converted .pt when the segmenter stage made one (fast), else the caffemodel."""
    caffemodel = weights.first_file(weights.fcn_candidates(scoring.fcn_caffemodel))
    path = layout.CONVERTED_FCN if layout.CONVERTED_FCN.is_file() else caffemodel
    return fcn.load_segmenter(path), {
        "segmenter": "FCN-8s Cityscapes, the pix2pix authors' caffemodel",
        "segmenter_weights": str(path), "segmenter_sha256": file_sha256(path),
        "segmenter_caffemodel": str(caffemodel)}


def load_fallback_segmenter() -> tuple[torch.nn.Module, dict]:
    if not layout.FALLBACK_SEGMENTER.is_file():
        raise ScoringError(f"{layout.FALLBACK_SEGMENTER}: no fallback segmenter; run "
                                "`replication segmenter` (dvc stage segmenter) first")
    info = {"segmenter": "fallback FCN-8s (random init, trained by `replication segmenter`)",
            "segmenter_weights": str(layout.FALLBACK_SEGMENTER),
            "segmenter_sha256": file_sha256(layout.FALLBACK_SEGMENTER)}
    if layout.FALLBACK_REPORT.is_file():  # its own score on real photos: the calibration row
        report = json.loads(layout.FALLBACK_REPORT.read_text())
        for key in ("per_pixel_acc", "per_class_acc", "class_iou", "image_size"):
            info[f"segmenter_on_real_{key}"] = report.get(key)
    return fcn.load_converted(layout.FALLBACK_SEGMENTER), info


def val_label_files(cfg: ExperimentConfig, names: list[str]) -> list[Path]:
    """gtFine/val/<city>/<frame>_gtFine_labelIds.png of each pair, via val_frames.txt."""
    root = cityscapes_root(cfg)
    frames = {}
    for line in (root / VAL_FRAMES).read_text().splitlines():
        pair_file, _, frame = line.partition(" ")
        frames[Path(pair_file).stem] = frame.strip()
    files = []
    for name in names:
        if name not in frames:
            raise ScoringError(f"{root / VAL_FRAMES} has no line for {name}.jpg; rebuild the "
                             "dataset from the official zips")
        city = frames[name].split("_")[0]
        path = root / "gtFine" / "val" / city / f"{frames[name]}_gtFine_labelIds.png"
        if not path.is_file():
            raise ScoringError(f"{path} not found; rebuild Cityscapes from the zips")
        files.append(path)
    return files


def _exact_frame(label_file: Path, image_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train ids at full resolution, the photo upsampled bilinearly to that size).

    As the official evaluate.py: scipy.misc.imresize(im, label shape) = PIL bilinear on
    the uint8 PHOTO. Resizing the labels down instead is the classic mistake (docs/pitfalls.md).
    """
    with Image.open(label_file) as img:
        truth = label_ids_to_train_ids(np.asarray(img))
    with Image.open(image_file) as img:
        photo = img.convert("RGB").resize(truth.shape[::-1], Image.Resampling.BILINEAR)
    return truth, np.asarray(photo)


def exact_frames(session: Session, folder: Path) -> dict:
    """The authors' FCN-8s on every generated photo against the gtFine labelIds, pooled
    two ways at once (the FCN runs once per folder for both protocols): the corrected
    (C, C + 1) matrix and the official fast_hist counts with the frames it drops."""
    key = ("exact_frames", str(folder))
    if key in session.memo:
        return session.memo[key]
    model, info = session.model("fcn_exact", lambda: load_exact_segmenter(session.scoring))
    images = session.generated_files(folder)
    labels = val_label_files(session.cfg, session.names)
    C = len(CLASS_NAMES)
    pooled = {"corrected": np.zeros((C, C + 1), np.int64), "official": np.zeros((C, C)),
              "frames_dropped": 0, "dropped_pixels": 0, "out_of_range_pixels": 0,
              "per_frame": {"corrected": [], "official": []}}  # per_image.py
    step = session.scoring.batch_size
    with ThreadPoolExecutor(4) as pool:
        for start in range(0, len(images), step):
            frames = list(pool.map(_exact_frame, labels[start:start + step],
                                   images[start:start + step]))
            preds = fcn.segment(model, _stack([f[1] for f in frames], images[start:]),
                                session.device, step)
            for (truth, _), pred in zip(frames, preds):
                _pool_frame(pooled, truth, pred)
    height, width = frames[0][0].shape
    session.memo[key] = {**pooled, "info": info, "frames": len(images),
                         "label_size": f"{height}x{width}"}
    return session.memo[key]


def _pool_frame(pooled: dict, truth: np.ndarray, pred: np.ndarray) -> None:
    C = len(CLASS_NAMES)
    matrix = confusion_matrix(truth, pred)
    pooled["corrected"] += matrix
    pooled["out_of_range_pixels"] += int(((pred >= C) & (truth < C)).sum())
    hist = official_histogram(truth, pred)
    if hist is None:  # the official code silently leaves this frame out
        pooled["frames_dropped"] += 1
        pooled["dropped_pixels"] += int((truth < C).sum())
    else:
        pooled["official"] += hist
    pooled["per_frame"]["corrected"].append(matrix)
    pooled["per_frame"]["official"].append(hist)  # None: dropped, zero counts


def _exact_record(protocol: str, session: Session, frames: dict) -> dict:
    return {"protocol": protocol, **frames["info"],
            "labels": "gtFine labelIds -> train ids, full resolution",
            "label_size": frames["label_size"], "image_size": session.size,
            "upsampling": "photo, bilinear (PIL), to the label size", "precision": "fp32",
            "frames": frames["frames"]}


def fcn_score_official(session: Session, folder: Path) -> dict:
    """The paper's arithmetic (official fast_hist / get_scores, quirks included): the
    numbers the tables put beside the paper's."""
    frames = exact_frames(session, folder)
    s = official_scores(frames["official"])
    per_class = {f"iou_{name.replace(' ', '_')}": v
                 for name, v in zip(CLASS_NAMES, s["class_iou_array"])}
    return {**_exact_record("fcn_score_official", session, frames),
            "arithmetic": "official fast_hist: prediction 19 counted as (truth + 1, road), "
                          "frames with a bicycle pixel predicted 19 dropped, absent classes 0",
            "per_pixel_acc": s["per_pixel_acc"], "per_class_acc": s["per_class_acc"],
            "class_iou": s["class_iou"], "pixels": s["pixels"], "absent_classes": "zero",
            "frames_dropped": frames["frames_dropped"],
            "dropped_pixels": frames["dropped_pixels"], **per_class,
            PER_IMAGE: confusion_counts(frames["per_frame"]["official"], len(CLASS_NAMES),
                                        official=True)}


def fcn_score_corrected(session: Session, folder: Path) -> dict:
    """The same FCN predictions with the quirks removed: prediction 19 is an error in
    its truth row, no frame is dropped, absent classes are left out of the means."""
    frames = exact_frames(session, folder)
    return {**_exact_record("fcn_score_corrected", session, frames),
            "arithmetic": "corrected: prediction 19 an error, no frame dropped",
            **flat_scores(frames["corrected"]),
            "official_out_of_range_pixels": frames["out_of_range_pixels"],
            "official_frames_dropped": frames["frames_dropped"],
            "official_dropped_pixels": frames["dropped_pixels"],
            PER_IMAGE: confusion_counts(frames["per_frame"]["corrected"], len(CLASS_NAMES))}


def _stack(photos: list[np.ndarray], files: list[Path]) -> np.ndarray:
    shapes = {p.shape for p in photos}
    if len(shapes) > 1:
        raise ScoringError(f"labelIds files differ in size {sorted(shapes)} (near {files[0]}); "
                         "set scoring.batch_size: 1")
    return np.stack(photos)


def fcn_score_fallback(session: Session, folder: Path) -> dict:
    model, info = session.model("fcn_score_fallback", load_fallback_segmenter)
    size = session.scoring.segmenter.image_size or session.size  # the segmenter's
    pred = fcn.segment(model, session.read_generated(folder, size), session.device,
                       session.scoring.batch_size)
    frames = per_frame_matrices(session.label_truth(size), pred)
    upsampled = f"generated photo, bilinear (PIL), {session.size} -> {size} px"
    return {"protocol": "fcn_score_fallback", **info,
            "labels": f"colour label half: {session.label_rule}",
            "label_size": f"{size}x{size}", "image_size": session.size,
            "upsampling": upsampled if size != session.size else "none",
            "precision": "fp32", "frames": len(pred),
            **flat_scores(sum(frames)),
            PER_IMAGE: confusion_counts(frames, len(CLASS_NAMES))}


def per_frame_matrices(truth: np.ndarray, pred: np.ndarray) -> list[np.ndarray]:
    """One (C, C + 1) confusion matrix per frame; their sum is the pooled matrix."""
    return [confusion_matrix(t, p) for t, p in zip(truth, pred)]


def labels_score(session: Session, folder: Path) -> dict:
    """Table 6: each generated pixel -> the nearest Cityscapes label colour, by the truth's
    rule (scoring.label_decoding). Void colours are candidates too: a pixel painted void counts as an error ("other"), not as the
    class whose colour happens to be closest to black."""
    images = session.read_generated(folder)
    n, s = images.shape[:2]
    # the truth's rule: a pixel of an unsupported (invented) class is "other", an error
    pred = session.decode_labels(images)
    frames = per_frame_matrices(session.label_truth(), pred)
    return {"protocol": "labels_score", "segmenter": "none: nearest Cityscapes colour",
            "prediction_colors": "19 classes + void (void = error)",
            "labels": f"colour label half: {session.label_rule}",
            "image_size": s, "frames": n, **flat_scores(sum(frames)),
            PER_IMAGE: confusion_counts(frames, len(CLASS_NAMES))}
