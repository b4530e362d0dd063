"""Measure the colour-label decoding rules on real pix2pix Cityscapes labels (docs/protocols.md).

    python scripts/measure_label_decoding.py data/cityscapes/val [--simulate 60] [--json F]

The label halves of the pix2pix Cityscapes pairs are JPEGs of colour maps that were
resized from 2048x1024 to 256x256: at class edges their colours are blends, and a blend
can be nearest to a THIRD class's colour. Two measurements:

1. On the real labels (no truth exists for them): per class, the share of pixels each
   rule assigns it, relative to plain nearest colour, and the share ignored.
2. Simulated labels with known truth: a real map cleaned by a 5x5 majority vote (blend
   lines are 1-2 px thin, so the vote removes them whatever rule is measured) is drawn at
   2048x1024 with smooth edges, resized to 256x256 bicubic and saved as JPEG at the real
   files' quality (their quantisation tables are those of Pillow's quality 95). Per rule:
   pixels decoded to a class that does not occur within 2 px of them in the truth
   ("invented", the failure at stake), pixels decoded to another class than the truth's
   majority ("wrong"), and pixels ignored.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's package
from replication.data.cityscapes_labels import CLASS_NAMES, IGNORE, PALETTE  # noqa: E402
from replication.metrics.segmentation import decode_label_maps  # noqa: E402

RULES = {"nearest": False, "supported": True}
VOID = len(PALETTE)  # the simulation's index for void (drawn black)


def label_halves(folder: Path, count: int | None) -> np.ndarray:
    files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))[:count]
    maps = []
    for path in files:
        with Image.open(path) as image:
            pair = np.asarray(image.convert("RGB"))
        maps.append(pair[:, pair.shape[1] // 2:])
    return np.stack(maps)


def class_shares(ids: np.ndarray) -> np.ndarray:
    return np.bincount(ids[ids != IGNORE].ravel(), minlength=len(PALETTE)) / ids.size


def real_report(maps: np.ndarray) -> dict:
    decoded = {rule: decode_label_maps(maps, supported=s) for rule, s in RULES.items()}
    base = class_shares(decoded["nearest"])
    out = {"maps": len(maps)}
    for rule, ids in decoded.items():
        shares = class_shares(ids)
        out[rule] = {"ignored": float((ids == IGNORE).mean()),
                     "share": dict(zip(CLASS_NAMES, shares.round(5).tolist())),
                     "kept_vs_nearest": dict(zip(CLASS_NAMES, (shares / base).round(3).tolist()))}
    return out


def clean_truth(label_map: np.ndarray) -> np.ndarray:
    """(256, 256) class indices 0..19 (19 = void): nearest colour, then a 5x5 majority."""
    ids = decode_label_maps(label_map[None], supported=False)[0].astype(np.int64)
    ids[ids == IGNORE] = VOID
    votes = np.stack([ndimage.uniform_filter((ids == c).astype(np.float32), 5)
                      for c in range(VOID + 1)])
    return votes.argmax(0)


def simulate(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(degraded 256x256 colour map, majority truth, classes within 2 px) of one map."""
    onehot = np.stack([(truth == c).astype(np.float32) for c in range(VOID + 1)])
    full = ndimage.zoom(onehot, (1, 4, 8), order=1).argmax(0)  # 1024x2048, smooth edges
    colours = np.concatenate([PALETTE, [[0, 0, 0]]]).astype(np.uint8)
    small = Image.fromarray(colours[full]).resize((256, 256), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=95)
    degraded = np.asarray(Image.open(buffer).convert("RGB"))
    blocks = full.reshape(256, 4, 256, 8)
    counts = np.stack([(blocks == c).sum((1, 3)) for c in range(VOID + 1)])
    near = ndimage.maximum_filter(counts > 0, size=(1, 5, 5))
    return degraded, counts.argmax(0), near


def simulated_report(maps: np.ndarray) -> dict:
    sims = [simulate(clean_truth(m)) for m in maps]
    degraded = np.stack([s[0] for s in sims])
    majority = np.stack([s[1] for s in sims])
    near = np.stack([s[2] for s in sims])  # (N, 20, H, W)
    out = {"maps": len(maps)}
    for rule, supported in RULES.items():
        ids = decode_label_maps(degraded, supported=supported).astype(np.int64)
        kept = ids != IGNORE
        invented = np.zeros(ids.shape, bool)
        per_class = {}
        for c, name in enumerate(CLASS_NAMES):
            of_c = ids == c
            invented |= of_c & ~near[:, c]
            truth_c = majority == c
            per_class[name] = {
                "invented_share_of_decoded": float((of_c & ~near[:, c]).sum() / max(of_c.sum(), 1)),
                "recall": float((of_c & truth_c).sum() / max(truth_c.sum(), 1))}
        out[rule] = {"ignored": float(1 - kept.mean()),
                     "invented": float(invented.sum() / kept.sum()),
                     "wrong": float((kept & (ids != majority) & (majority != VOID)).sum()
                                    / kept.sum()),
                     "per_class": per_class}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder of pix2pix Cityscapes pairs (val)")
    parser.add_argument("--count", type=int, help="first N pairs only")
    parser.add_argument("--simulate", type=int, default=60, help="maps to simulate (default 60)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    maps = label_halves(args.folder, args.count)
    report = {"real": real_report(maps), "simulated": simulated_report(maps[:args.simulate])}
    for rule in RULES:
        real, sim = report["real"][rule], report["simulated"][rule]
        print(f"{rule:9s} real: ignored {real['ignored']:.3f} | simulated: ignored "
              f"{sim['ignored']:.3f}, invented {sim['invented']:.4f}, wrong {sim['wrong']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
