"""The 19 Cityscapes evaluation classes (docs/protocols.md), from the cityscapesscripts label table.

Train ids 0..18 in the paper's order; every other label id maps to IGNORE (255).
"""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as _LABELS

IGNORE = 255
NUM_CLASSES = 19

_train = sorted((l for l in _LABELS if 0 <= l.trainId < IGNORE), key=lambda l: l.trainId)
CLASS_NAMES: tuple[str, ...] = tuple(l.name for l in _train)
PALETTE = np.array([l.color for l in _train], dtype=np.uint8)  # (19, 3) RGB, by train id

# label id (0..33, -1 for license plate) -> train id; lookup table over uint8 ids
ID_TO_TRAIN_ID = np.full(256, IGNORE, dtype=np.uint8)
for _l in _LABELS:
    if 0 <= _l.id < 256:
        ID_TO_TRAIN_ID[_l.id] = _l.trainId if 0 <= _l.trainId < IGNORE else IGNORE


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a `*_gtFine_labelIds.png` array to train ids (ignored classes -> 255)."""
    return ID_TO_TRAIN_ID[np.asarray(label_ids, dtype=np.uint8)]


def train_ids_to_colors(train_ids: np.ndarray) -> np.ndarray:
    """Colour label map (H, W, 3) uint8; ignored pixels are black as in the archives."""
    out = np.zeros((*train_ids.shape, 3), dtype=np.uint8)
    valid = train_ids < NUM_CLASSES
    out[valid] = PALETTE[train_ids[valid]]
    return out
