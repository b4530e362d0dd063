"""Scoring protocols by name (as StyleGAN3's metric_main) and the rule that picks them.

`METRICS[name](session, folder)` scores one folder of generated PNGs and returns a FLAT
dict of numbers and strings that always says which protocol and which weights or
segmenter produced it. A `Session` holds what every seed of one experiment shares: the
real test split, the decoded true labels, the real reference PNGs and the loaded
models (each loaded once, never per image or per seed).

Protocol names (docs/protocols.md):
    fcn_score_official  the paper's FCN-score: the authors' FCN-8s, gtFine labelIds at
                        full resolution, the generated 256 px photo upsampled bilinearly
                        to it, the official fast_hist arithmetic with its quirks
    fcn_score_corrected the same predictions, the quirks removed (prediction 19 is an
                        error, no frame dropped)
    fcn_score_fallback  our own FCN-8s (runs/segmenter/fallback.pt), truth = the val
                        pairs' colour label half decoded by nearest palette colour, all at
                        the image size; comparable only to its own ground-truth row
    labels_score        Table 6: generated colour label maps -> nearest Cityscapes colour
    fid_kid             FID and KID on pytorch-fid Inception pool3 features
    color_hist          Lab colour histogram intersection (Fig. 7d)
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from replication import layout
from replication.config import ExperimentConfig, deep_merge, from_dict
from replication.params import active_scale
from replication.data.cityscapes_labels import CLASS_NAMES, label_ids_to_train_ids
from replication.data.paired import TestPairs
from replication.errors import ConfigError, ScoringError
from replication.metrics import fcn, fid, weights
from replication.metrics.color import color_stats
from replication.metrics.segmentation import (VOID_COLORS, confusion_matrix,
                                              decode_color_labels, official_histogram,
                                              official_scores, scores)
from replication.fileio import file_sha256
from replication.devices import resolve_device

SEGMENTER_DIR = layout.SEGMENTER  # the `segmenter` stage's output (dvc.yaml)
FALLBACK_WEIGHTS = SEGMENTER_DIR / "fallback.pt"
FALLBACK_REPORT = SEGMENTER_DIR / "fallback.json"
CONVERTED_FCN = SEGMENTER_DIR / "fcn8s-cityscapes.pt"
VAL_FRAMES = "val_frames.txt"  # written by data/cityscapes_build.py: "<n>.jpg <frame id>"


# --- configuration: params.yaml `scoring` -------------------------------------------

@dataclass(frozen=True)
class SegmenterConfig:
    """The fallback segmenter (`replication segmenter`): FCN-8s layers, narrower, trained
    from random init, since ImageNet VGG16 weights cannot be fetched offline (the authors'
    FCN-8s started from them)."""
    widths: tuple[int, ...] = (32, 64, 128, 256, 256)  # VGG16: 64, 128, 256, 512, 512
    fc_width: int = 1024  # VGG16 fc6 / fc7: 4096
    iterations: int = 20000
    batch_size: int = 8
    lr: float = 1e-4  # Adam
    flip: bool = True  # random horizontal mirroring of photo and labels together
    seed: int = 0
    log_every: int = 100


@dataclass(frozen=True)
class ScoringConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 4  # images per segmenter forward pass (4 FCN-8s frames at 1024x2048
    # need about 12 GB of activations)
    # manual drop-ins (datasets/, DVC-tracked); missing ones are looked for where the
    # `weights` stage downloads them (data/weights/, the torch hub cache), see weights.py
    fcn_caffemodel: str = "datasets/weights/fcn-8s-cityscapes.caffemodel"
    inception_weights: str | None = "datasets/weights/" + fid.WEIGHTS_FILE
    # paper run: the `weights` stage downloads both networks; false on offline machines
    download_weights: bool = True
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # capped at half the sample count (fid.kid_subset_size)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    # experiment name -> metric names; replaces `metrics_for`'s rule for that experiment
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, chosen in self.metrics.items():
            unknown = [m for m in (chosen or []) if m not in METRICS]
            if not isinstance(chosen, list) or not chosen or unknown:
                raise ConfigError(f"scoring.metrics.{name}={chosen!r} must be a non-empty list "
                                  f"of {sorted(METRICS)}")
        if len(self.segmenter.widths) != len(fcn.VGG_WIDTHS):
            raise ConfigError(f"scoring.segmenter.widths={list(self.segmenter.widths)} must "
                              f"list {len(fcn.VGG_WIDTHS)} block widths (VGG16: "
                              f"{list(fcn.VGG_WIDTHS)})")
        for key in ("batch_size", "kid_subsets", "kid_subset_size", "segmenter.iterations",
                    "segmenter.batch_size", "segmenter.log_every", "segmenter.fc_width"):
            section, _, name = key.rpartition(".")
            value = getattr(getattr(self, section) if section else self, name)
            if value < 1:
                raise ConfigError(f"scoring.{key}={value} must be >= 1")


def _scoring_config(section: dict, where: str) -> ScoringConfig:
    if not isinstance(section, dict):
        raise ConfigError(f"params {where} must be a mapping of settings")
    try:
        return from_dict(ScoringConfig, section, "scoring")
    except ConfigError as err:
        raise ConfigError(f"params {where}: {err}") from None


def load_scoring(params: dict) -> ScoringConfig:
    """params["scoring"], with params["scoring"]["scales"][scale] merged over it.

    The scale profiles under the top-level `scales` are merged into experiment configs
    only, so the scoring section carries its own per-scale overrides.
    """
    section = dict(params.get("scoring") or {})
    profiles = section.pop("scales", None) or {}
    known = {"paper", *(params.get("scales") or {})}
    for scale, profile in profiles.items():  # every profile, not only the active one
        if scale not in known:
            raise ConfigError(f"params scoring.scales.{scale}: no such scale; known: "
                              f"{sorted(known)}")
        _scoring_config(deep_merge(section, profile or {}), f"scoring.scales.{scale}")
    scale = active_scale(params)
    scoring = _scoring_config(deep_merge(section, profiles.get(scale) or {}), "scoring")
    unknown = sorted(set(scoring.metrics) - set(params.get("experiments") or {}))
    if unknown:
        raise ConfigError(f"scoring.metrics names experiment {unknown[0]!r}, which is not "
                          "in params `experiments`")
    return scoring


# --- which metrics an experiment gets --------------------------------------------------

def cityscapes_root(cfg: ExperimentConfig) -> Path:
    return Path(cfg.data.root) / cfg.data.dataset


def missing_exact_inputs(cfg: ExperimentConfig, scoring: ScoringConfig) -> str | None:
    """What the exact FCN-score protocol lacks here, or None when it can run."""
    root = cityscapes_root(cfg)
    if not (weights.first_file(weights.fcn_candidates(scoring.fcn_caffemodel))
            or CONVERTED_FCN.is_file()):
        where = ", ".join(map(str, weights.fcn_candidates(scoring.fcn_caffemodel)))
        return f"no FCN-8s weights ({where}; `replication weights` downloads them)"
    if not (root / VAL_FRAMES).is_file() or not (root / "gtFine" / "val").is_dir():
        return (f"no {root / VAL_FRAMES} + {root / 'gtFine/val'} (build Cityscapes from the "
                "official zips)")
    if scored_split(cfg) != "val":
        return f"the test split is {scored_split(cfg)!r}; the labelIds are those of 'val'"
    return None


def metrics_for(cfg: ExperimentConfig, scoring: ScoringConfig) -> list[str]:
    """The rule (docs/protocols.md), unless params `scoring.metrics` names this experiment:

    cityscapes labels -> photo (BtoA): the FCN score (exact when the caffemodel and the
        gtFine val labelIds + val_frames.txt are present, else the fallback segmenter),
        FID/KID and the Lab colour histograms (Fig. 7d);
    cityscapes photo -> labels (AtoB): labels_score (Table 6);
    every other task: FID/KID (the paper's AMT studies cannot be rerun by a program).
    """
    if cfg.name in scoring.metrics:
        return list(scoring.metrics[cfg.name])
    if cfg.data.dataset == "cityscapes" and cfg.data.direction == "BtoA":
        missing = missing_exact_inputs(cfg, scoring)
        fcn_scores = ["fcn_score_fallback"] if missing else ["fcn_score_official",
                                                             "fcn_score_corrected"]
        return [*fcn_scores, "fid_kid", "color_hist"]
    if cfg.data.dataset == "cityscapes":
        return ["labels_score"]
    return ["fid_kid"]


def scored_split(cfg: ExperimentConfig) -> str:
    return cfg.generate.split or cfg.data.test_split  # as generate.py chooses it


# --- the session: what all seeds of one experiment share ------------------------------

class Session:
    """The real test split, true labels, real reference PNGs and models of one task.

    `models` pre-loads entries of the model cache (tests pass stand-in segmenters):
    "fcn_exact" / "fcn_score_fallback": (nn.Module, info dict);
    "inception": (feature function files -> (N, d) array, info dict).
    """

    def __init__(self, cfg: ExperimentConfig, scoring: ScoringConfig,
                 models: dict | None = None):
        self.cfg, self.scoring = cfg, scoring
        self.device = resolve_device(scoring.device)
        self.split = scored_split(cfg)
        self.pairs = TestPairs(cfg.data, self.split, cfg.generate.max_images)
        self.size = cfg.data.image_size
        self.models = dict(models or {})
        self._truth = None
        self._features: dict[tuple, np.ndarray] = {}
        self.memo: dict = {}  # per-folder results two protocols share (exact_frames)
        self._tmp = tempfile.TemporaryDirectory(prefix="replication-real-")
        self._real_dir = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    @property
    def names(self) -> list[str]:
        return self.pairs.names

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) of every test pair as (N, S, S, 3) uint8, as generate.py read them."""
        pixels = self.pairs.folder.batch(torch.arange(len(self.pairs))).numpy()
        pixels = pixels.transpose(0, 2, 3, 1)
        return pixels[..., :3], pixels[..., 3:]

    def label_truth(self) -> np.ndarray:
        """Train ids (N, S, S) of the pairs' colour label half (B): nearest palette colour,
        Cityscapes void colours -> ignored (docs/protocols.md, without the labelIds files)."""
        if self._truth is None:
            labels = self.halves()[1]
            n, s = labels.shape[:2]
            flat = decode_color_labels(labels.reshape(n * s, s, 3), ignore_colors=VOID_COLORS)
            self._truth = flat.reshape(n, s, s)
        return self._truth

    def real_dir(self) -> Path:
        """The real test targets as PNG at the image size, written once per session into
        a temporary folder (not a cache under generated/: it could outlive a change of
        data/<dataset> and no DVC stage would notice)."""
        if self._real_dir is None:
            a, b = self.halves()
            targets = a if self.cfg.data.direction == "BtoA" else b
            folder = Path(self._tmp.name) / "real"
            folder.mkdir()
            for name, image in zip(self.names, targets):
                Image.fromarray(image).save(folder / f"{name}.png")
            self._real_dir = folder
        return self._real_dir

    def generated_files(self, folder: str | Path) -> list[Path]:
        """`folder`/<name>.png of every test pair, in pair order: exactly those files (an
        extra or missing one is an error, never silently scored), each at the image size."""
        files = generated_files(folder, self.names)
        for path in files:
            with Image.open(path) as img:  # the header only
                width, height = img.size
            if (width, height) != (self.size, self.size):
                raise ScoringError(f"{path} is {width}x{height} but the experiment's image size "
                                   f"is {self.size}; regenerate it")
        return files

    def real_files(self) -> list[Path]:
        """The real targets written by real_dir(), in pair order."""
        return [self.real_dir() / f"{name}.png" for name in self.names]

    def read_generated(self, folder: str | Path) -> np.ndarray:
        """(N, S, S, 3) uint8 of `folder`/<name>.png for every test pair, in pair order."""
        with ThreadPoolExecutor(4) as pool:
            return np.stack(list(pool.map(read_rgb, self.generated_files(folder))))

    def features(self, extract: Callable, files: list[Path]) -> np.ndarray:
        """extract(files), once per list: the real images' features serve every seed."""
        key = tuple(map(str, files))
        if key not in self._features:  # 8 MB per 500 images
            self._features[key] = extract(files)
        return self._features[key]

    def model(self, key: str, load: Callable[[], tuple]) -> tuple:
        if key not in self.models:
            self.models[key] = load()
        return self.models[key]


def generated_files(folder: str | Path, names: list[str]) -> list[Path]:
    """`folder`/<name>.png for each name; missing or extra files are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScoringError(f"{folder}: no generated images; run `replication generate` "
                           "(dvc stage generate@<experiment>) first")
    expected = [f"{n}.png" for n in names]
    present = {p.name for p in folder.iterdir()}
    missing = [n for n in expected if n not in present]
    if missing:
        raise ScoringError(f"{folder}: {len(missing)} of {len(names)} test images have no "
                           f"PNG (e.g. {missing[0]}); rerun `replication generate`")
    extra = sorted(present - set(expected))
    if extra:
        raise ScoringError(f"{folder}: {len(extra)} file(s) that are not a test image's output "
                           f"(e.g. {extra[0]}); remove them or rerun `replication generate`")
    return [folder / name for name in expected]


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


# --- segmentation scores -------------------------------------------------------------

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
    path = CONVERTED_FCN if CONVERTED_FCN.is_file() else caffemodel
    return fcn.load_segmenter(path), {
        "segmenter": "FCN-8s Cityscapes, the pix2pix authors' caffemodel",
        "segmenter_weights": str(path), "segmenter_sha256": file_sha256(path),
        "segmenter_caffemodel": str(caffemodel)}


def load_fallback_segmenter() -> tuple[torch.nn.Module, dict]:
    if not FALLBACK_WEIGHTS.is_file():
        raise ScoringError(f"{FALLBACK_WEIGHTS}: no fallback segmenter; run "
                                "`replication segmenter` (dvc stage segmenter) first")
    info = {"segmenter": "fallback FCN-8s (random init, trained by `replication segmenter`)",
            "segmenter_weights": str(FALLBACK_WEIGHTS),
            "segmenter_sha256": file_sha256(FALLBACK_WEIGHTS)}
    if FALLBACK_REPORT.is_file():  # its own score on real photos: the calibration row
        report = json.loads(FALLBACK_REPORT.read_text())
        for key in ("per_pixel_acc", "per_class_acc", "class_iou", "image_size"):
            info[f"segmenter_on_real_{key}"] = report.get(key)
    return fcn.load_converted(FALLBACK_WEIGHTS), info


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
              "frames_dropped": 0, "dropped_pixels": 0, "out_of_range_pixels": 0}
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
    pooled["corrected"] += confusion_matrix(truth, pred)
    pooled["out_of_range_pixels"] += int(((pred >= C) & (truth < C)).sum())
    hist = official_histogram(truth, pred)
    if hist is None:  # the official code silently leaves this frame out
        pooled["frames_dropped"] += 1
        pooled["dropped_pixels"] += int((truth < C).sum())
    else:
        pooled["official"] += hist


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
            "dropped_pixels": frames["dropped_pixels"], **per_class}


def fcn_score_corrected(session: Session, folder: Path) -> dict:
    """The same FCN predictions with the quirks removed: prediction 19 is an error in
    its truth row, no frame is dropped, absent classes are left out of the means."""
    frames = exact_frames(session, folder)
    return {**_exact_record("fcn_score_corrected", session, frames),
            "arithmetic": "corrected: prediction 19 an error, no frame dropped",
            **flat_scores(frames["corrected"]),
            "official_out_of_range_pixels": frames["out_of_range_pixels"],
            "official_frames_dropped": frames["frames_dropped"],
            "official_dropped_pixels": frames["dropped_pixels"]}


def _stack(photos: list[np.ndarray], files: list[Path]) -> np.ndarray:
    shapes = {p.shape for p in photos}
    if len(shapes) > 1:
        raise ScoringError(f"labelIds files differ in size {sorted(shapes)} (near {files[0]}); "
                         "set scoring.batch_size: 1")
    return np.stack(photos)


def fcn_score_fallback(session: Session, folder: Path) -> dict:
    model, info = session.model("fcn_score_fallback", load_fallback_segmenter)
    pred = fcn.segment(model, session.read_generated(folder), session.device,
                       session.scoring.batch_size)
    matrix = confusion_matrix(session.label_truth(), pred)
    return {"protocol": "fcn_score_fallback", **info,
            "labels": "colour label half, nearest palette colour (void colours ignored)",
            "label_size": f"{session.size}x{session.size}", "image_size": session.size,
            "upsampling": "none", "precision": "fp32", "frames": len(pred),
            **flat_scores(matrix)}


def labels_score(session: Session, folder: Path) -> dict:
    """Table 6: each generated pixel -> the nearest Cityscapes label colour. Void colours
    are candidates too: a pixel painted void counts as an error ("other"), not as the
    class whose colour happens to be closest to black."""
    images = session.read_generated(folder)
    n, s = images.shape[:2]
    pred = decode_color_labels(images.reshape(n * s, s, 3), ignore_colors=VOID_COLORS)
    matrix = confusion_matrix(session.label_truth(), pred.reshape(n, s, s))
    return {"protocol": "labels_score", "segmenter": "none: nearest Cityscapes colour",
            "prediction_colors": "19 classes + void (void = error)",
            "labels": "colour label half, nearest palette colour (void colours ignored)",
            "image_size": s, "frames": n, **flat_scores(matrix)}


# --- image statistics ------------------------------------------------------------------

def load_inception_features(scoring: ScoringConfig, device) -> tuple[Callable, dict]:
    """(files -> (N, 2048) pool3 features, what produced them)."""
    path = inception_weights_path(scoring)
    model = fid.load_inception(path, device)
    sha = file_sha256(path)
    return (lambda files: fid.image_features(model, files, device=device)), {
        "feature_extractor": fid.FEATURE_EXTRACTOR, "weights": str(path), "weights_sha256": sha,
        "weights_are_pytorch_fid": sha.startswith(fid.WEIGHTS_SHA256_PREFIX)}


def inception_weights_path(scoring: ScoringConfig) -> Path:
    """scoring.inception_weights when that file exists, else the torch hub cache file."""
    found = weights.first_file(weights.inception_candidates(scoring.inception_weights))
    if found is None:
        raise fid.WeightsUnavailable(
            f"no Inception weights (`replication weights` downloads them; offline, place "
            f"{fid.WEIGHTS_FILE} at {fid.WEIGHTS_PARAM} = {scoring.inception_weights})")
    return found


def fid_kid(session: Session, folder: Path) -> dict:
    try:
        features, info = session.model(
            "inception", lambda: load_inception_features(session.scoring, session.device))
    except fid.WeightsUnavailable as err:
        return {"protocol": "fid_kid", "available": False, "reason": str(err),
                "n_generated": len(session.names), "n_real": len(session.names)}
    result = fid.fid_kid(session.generated_files(folder), session.real_files(),
                         feature_fn=lambda files: session.features(features, files),
                         kid_subsets=session.scoring.kid_subsets,
                         kid_subset_size=session.scoring.kid_subset_size)
    return {"protocol": "fid_kid", "available": True, **result, **info,
            "reference": f"real {session.split} targets, PNG at {session.size} px"}


def color_hist(session: Session, folder: Path) -> dict:
    result = color_stats(session.generated_files(folder), session.real_files())
    bins = result.pop("bins")
    return {"protocol": "color_hist", "space": "Lab, histogram intersection per channel",
            **result, **{f"bins_{c}": n for c, n in bins.items()},
            "reference": f"real {session.split} targets, PNG at {session.size} px"}


METRICS: dict[str, Callable[[Session, Path], dict]] = {
    "fcn_score_official": fcn_score_official,
    "fcn_score_corrected": fcn_score_corrected,
    "fcn_score_fallback": fcn_score_fallback,
    "labels_score": labels_score,
    "fid_kid": fid_kid,
    "color_hist": color_hist,
}


def run_metric(name: str, session: Session, folder: Path) -> dict:
    """METRICS[name] with its wall time (seconds) added to the record."""
    began = time.perf_counter()
    record = METRICS[name](session, Path(folder))
    return {**record, "seconds": round(time.perf_counter() - began, 3)}
