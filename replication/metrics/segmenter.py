"""`replication segmenter`: the fallback FCN-score segmenter and the ground-truth rows.

The exact FCN score needs the authors' Caffe FCN-8s (docs/protocols.md), which not everyone can
get. The fallback trains an FCN-8s (fcn.FCN8s: the same layers, narrower widths from
params `scoring.segmenter`) on the Cityscapes training pairs at the experiments' image
size: the photo half in, the label half decoded as the truth is (scoring.label_decoding) as the target
(void colours ignored), cross-entropy. It starts from random weights: the authors'
network started from ImageNet VGG16, which cannot be fetched offline. Its numbers are
therefore on their own scale: compare generated images with the ground-truth row it
writes, never with the paper's numbers.

Writes (the `segmenter` stage, dvc.yaml):
    runs/segmenter/fallback.pt           fcn.save_converted format (fcn.load_converted)
    runs/segmenter/fallback.json         training record and its scores on real val photos
    runs/segmenter/fcn8s-cityscapes.pt   the authors' caffemodel converted once, if present
    metrics/ground-truth/scores.json     the "ground truth" rows (real val photos scored),
                                         in the shape of every scores.json
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from replication.config.params import Params
from replication.config.schema import ExperimentConfig
from replication.config.scoring import ScoringConfig, SegmenterConfig
from replication.core import layout
from replication.core.devices import resolve_device
from replication.core.errors import TrainingDiverged
from replication.core.fileio import file_sha256, write_json
from replication.core.numerics import fp32_exact
from replication.data.cityscapes_labels import IGNORE, NUM_CLASSES
from replication.data.paired import PairFolder, split_folder
from replication.metrics import fcn, weights
from replication.metrics.fcn_score import missing_exact_inputs
from replication.metrics.score import score_folders, write_scores
from replication.metrics.segmentation import confusion_matrix, decode_label_maps
from replication.metrics.segmentation import scores as pooled_scores
from replication.metrics.session import Session


def cityscapes_config(params: Params, scoring: ScoringConfig) -> ExperimentConfig:
    """The real photos' row: Cityscapes labels -> photo resolved as params.yaml resolves an
    experiment (Params.layers), with the data settings of its first Cityscapes labels ->
    photo experiment (so its own image size or data root counts), at the segmenter's
    resolution (scoring.segmenter.image_size, else that image size)."""
    task = {"dataset": "cityscapes", "direction": "BtoA"}
    data = next((entry.get("data") or {} for entry in params.experiments.values()
                 if all((entry.get("data") or {}).get(k, v) == v for k, v in task.items())
                 and (entry.get("data") or {}).get("dataset") == "cityscapes"), {})
    if scoring.segmenter.image_size is not None:
        data = {**data, "image_size": scoring.segmenter.image_size, "load_size": None}
    return params.config(layout.GROUND_TRUTH, entry={"data": {**data, **task}})


# --- the network -----------------------------------------------------------------------

def build_fallback(seg: SegmenterConfig) -> fcn.FCN8s:
    """FCN-8s with 19 outputs (no 20th "other" output), initialised for training from
    scratch: He-normal convolutions (no BatchNorm in FCN-8s), class scoring layers zeroed
    and upsampling deconvolutions set to bilinear interpolation (both as the FCN paper)."""
    model = fcn.FCN8s(seg.widths, seg.fc_width, num_outputs=NUM_CLASSES)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.ConvTranspose2d):
            module.weight.data.copy_(bilinear_kernel(module.weight.shape))
    for name in ("score_fr", "score_pool4", "score_pool3"):
        nn.init.zeros_(getattr(model, name).weight)
        nn.init.zeros_(getattr(model, name).bias)
    return model


def bilinear_kernel(shape: torch.Size) -> torch.Tensor:
    """(C, C, k, k) weights that upsample each channel bilinearly (stride k // 2)."""
    channels, _, k, _ = shape
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 else factor - 0.5
    taps = 1 - (torch.arange(k, dtype=torch.float32) - centre).abs() / factor
    weight = torch.zeros(shape)
    weight[range(channels), range(channels)] = taps[:, None] * taps[None, :]
    return weight


# --- data ------------------------------------------------------------------------------

def training_set(cfg: ExperimentConfig, scoring: ScoringConfig,
                 split: str | None = None, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(photos (N, 3, S, S) uint8, train ids (N, S, S) uint8) of the training pairs (or
    `split`'s): labels = the colour half decoded by the truth's rule
    (scoring.label_decoding), void and unsupported pixels -> 255 (ignored by the loss).
    `chunk` maps at a time bound the decoder's memory."""
    folder = PairFolder(split_folder(cfg.data, split or cfg.data.train_split),
                        cfg.data.image_size, cfg.data)
    pairs = folder.batch(torch.arange(len(folder)))
    colours = pairs[:, 3:].permute(0, 2, 3, 1).numpy()
    supported = scoring.label_decoding == "supported"
    labels = [decode_label_maps(colours[i:i + chunk], supported=supported)
              for i in range(0, len(colours), chunk)]
    return pairs[:, :3].contiguous(), torch.from_numpy(np.concatenate(labels))


# --- training --------------------------------------------------------------------------

def train_fallback(photos: torch.Tensor, labels: torch.Tensor, seg: SegmenterConfig,
                   device: torch.device, evaluate=None) -> tuple[fcn.FCN8s, dict]:
    """Adam on cross-entropy (ignore 255) over random batches; seeded by seg.seed.
    evaluate(model) -> {name: number}: called every seg.curve_every iterations (the
    learning curve); it draws no random numbers, so the training is the same without it."""
    torch.manual_seed(seg.seed)
    model = build_fallback(seg).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=seg.lr)
    draws = torch.Generator().manual_seed(seg.seed)
    curve, real_curve, window, began = [], [], [], time.perf_counter()
    for step in range(1, seg.iterations + 1):
        x, y = _batch(photos, labels, seg, draws)
        loss = F.cross_entropy(model(x.to(device).float()), y.to(device).long(),
                               ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(loss.item())
        if not math.isfinite(window[-1]):
            raise TrainingDiverged(f"segmenter step {step}: loss is {window[-1]}; lower "
                                   "scoring.segmenter.lr")
        if step % seg.log_every == 0 or step == seg.iterations:
            curve.append([step, float(np.mean(window))])
            print(f"segmenter step {step}/{seg.iterations}: loss {curve[-1][1]:.4f}", flush=True)
            window = []
        if evaluate is not None and seg.curve_every and step % seg.curve_every == 0:
            scores_now = evaluate(model.eval())
            model.train()
            real_curve.append({"step": step, **scores_now})
            print(f"segmenter step {step}: real val photos " + ", ".join(
                f"{k} {v:.3f}" for k, v in scores_now.items()), flush=True)
    seconds = time.perf_counter() - began
    return model.eval(), {"iterations": seg.iterations, "seconds": round(seconds, 2),
                          "loss_curve": curve, "real_photos_curve": real_curve}


def real_photo_scores(cfg: ExperimentConfig, scoring: ScoringConfig, device: torch.device):
    """evaluate(model) for train_fallback: the three FCN-score numbers of the real photos
    of the scored split against its decoded labels (the ground-truth row's arithmetic)."""
    photos, truth = training_set(cfg, scoring, split=cfg.generate.split or cfg.data.test_split)
    images = photos.permute(0, 2, 3, 1).numpy()

    def evaluate(model: nn.Module) -> dict:
        with torch.no_grad():
            pred = fcn.segment(model, images, device, scoring.batch_size)
        s = pooled_scores(sum(confusion_matrix(t, p) for t, p in zip(truth.numpy(), pred)))
        return {k: round(s[k], 4) for k in ("per_pixel_acc", "per_class_acc", "class_iou")}
    return evaluate


def _batch(photos, labels, seg: SegmenterConfig, draws: torch.Generator):
    index = torch.randint(len(photos), (seg.batch_size,), generator=draws)
    x, y = photos[index], labels[index]  # copies: flipping them leaves the data alone
    if seg.flip:
        flip = torch.rand(seg.batch_size, generator=draws) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
    return x, y


# --- the stage -------------------------------------------------------------------------

def convert_caffemodel(scoring: ScoringConfig) -> bool:
    """The authors' caffemodel -> runs/segmenter/fcn8s-cityscapes.pt, when it exists."""
    caffemodel = weights.first_file(weights.fcn_candidates(scoring.fcn_caffemodel))
    if caffemodel is None:
        return False
    fcn.save_converted(fcn.fcn8s_from_caffemodel(caffemodel), layout.CONVERTED_FCN)
    print(f"converted {caffemodel} -> {layout.CONVERTED_FCN}")
    return True


def run_stage(cfg: ExperimentConfig, scoring: ScoringConfig, scale: str) -> dict:
    """Train and save the fallback, convert the caffemodel, write the ground-truth rows of
    `cfg` (cityscapes_config) at `scale`."""
    device = resolve_device(scoring.device)
    convert_caffemodel(scoring)
    with fp32_exact():
        evaluate = real_photo_scores(cfg, scoring, device) if scoring.segmenter.curve_every \
            else None
        model, record = train_fallback(*training_set(cfg, scoring), scoring.segmenter, device,
                                       evaluate)
    fcn.save_converted(model, layout.FALLBACK_SEGMENTER)
    # the time is printed, not kept: runs/segmenter is a DVC output every score stage
    # depends on, so a retrain that reproduces the segmenter must leave its bytes as they were
    print(f"segmenter trained in {record.pop('seconds'):.0f} s", flush=True)
    scores = score_real_photos(cfg, scoring, scale, model)
    fallback = next(iter(scores["seeds"].values()))["fcn_score_fallback"]
    write_json(layout.FALLBACK_REPORT, {
        **{k: fallback[k] for k in ("per_pixel_acc", "per_class_acc", "class_iou")},
        "image_size": cfg.data.image_size, "evaluated_on": f"real {scores['task']['split']} photos",
        "widths": list(scoring.segmenter.widths), "fc_width": scoring.segmenter.fc_width,
        "device": str(device), **record,
        "init": "random (He-normal; score layers zero; deconvolutions bilinear)"})
    return write_scores(layout.GROUND_TRUTH, scores)  # + per-image scores, DVC headline


def score_real_photos(cfg: ExperimentConfig, scoring: ScoringConfig, scale: str,
                      model: nn.Module) -> dict:
    """scores.json of the real val photos (A halves at the image size) as if generated:
    the fallback's calibration and, with the exact inputs, the paper's ground-truth row."""
    names = ["fcn_score_fallback"]
    if missing_exact_inputs(cfg, scoring) is None:
        names[:0] = ["fcn_score_official", "fcn_score_corrected"]
    models = {"fcn_score_fallback": (model, {
        "segmenter": "fallback FCN-8s (random init, trained by `replication segmenter`)",
        "segmenter_weights": str(layout.FALLBACK_SEGMENTER),
        "segmenter_sha256": file_sha256(layout.FALLBACK_SEGMENTER)})}
    with fp32_exact(), Session(cfg, scoring, models) as session:
        photos = session.real_dir()  # labels -> photo: the targets are the real photos
        return score_folders(session, scale, {f"seed-{scoring.segmenter.seed}": photos}, names)
