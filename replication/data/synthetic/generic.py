"""A generic stand-in for every registry dataset without a renderer of its own.

edges2shoes, edges2handbags and night2day have no scene renderer: their pairs here are a
photo of smooth colour blobs (a shaded background under a few flat-coloured ellipses) and
an image derived from it exactly, pixel by pixel. Which half is the photo follows the
registry's sides (X2Y: A = X, B = Y): "edges" is the blobs' outlines, black on white (the
style of the edges2* sketches), "night" a dim, blue-shifted and quantised version; for
sides neither names, B is A quantised. The content is nothing like the real datasets; what
it stands in for is their layout, counts and geometry (download, verify, install, load, a
smoke run), with a mapping a model can learn.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from replication.config.datasets import DatasetInfo
from replication.data.synthetic.scene import smooth_noise

Renderer = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def blobs(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo uint8 HxWx3, blob ids int32 HxW: 0 background, 1.. the ellipses)."""
    corners = rng.integers(0, 256, (3, 3, 3), dtype=np.uint8)
    background = np.asarray(Image.fromarray(corners).resize((size, size), Image.BILINEAR),
                            np.float32)
    canvas = Image.new("I", (size, size), 0)
    pen = ImageDraw.Draw(canvas)
    count = int(rng.integers(3, 8))
    for k in range(1, count + 1):
        cx, cy = rng.uniform(0.1, 0.9, 2) * size
        rx, ry = rng.uniform(0.1, 0.3, 2) * size
        pen.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=k)
    ids = np.asarray(canvas, np.int32)
    colours = np.concatenate([np.zeros((1, 3)), rng.uniform(0, 255, (count, 3))])
    photo = np.where(ids[..., None] == 0, background, colours[ids].astype(np.float32))
    photo *= 1 + 0.12 * smooth_noise(rng, size, 3)[..., None]  # soft shading
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8), ids


def edges(photo: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The blobs' outlines, black on white: pixels whose left or upper neighbour differs."""
    edge = np.zeros(ids.shape, bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    return np.repeat(np.where(edge, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def night(photo: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The same view at night: dimmed, shifted to blue, quantised to steps of 16."""
    dim = photo.astype(np.float32) * np.array([0.3, 0.35, 0.55], np.float32)
    return (np.floor(dim / 16) * 16).astype(np.uint8)


def quantised(photo: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Four levels per channel (0, 85, 170, 255)."""
    return (photo // 64 * 85).astype(np.uint8)


# side name (registry a_side / b_side) -> how that half is derived from the photo
DERIVED = {"edges": edges, "night": night}


def render(rng: np.random.Generator, size: int, a_side: str = "photo",
           b_side: str = "quantised") -> tuple[np.ndarray, np.ndarray]:
    """(A, B), uint8 HxWx3 each: the photo and its derived image, on the sides named."""
    photo, ids = blobs(rng, size)
    if a_side in DERIVED:
        return DERIVED[a_side](photo, ids), photo
    return photo, DERIVED.get(b_side, quantised)(photo, ids)


def renderer(info: DatasetInfo) -> Renderer:
    """The (rng, size) -> (A, B) renderer of a registry dataset, its sides as registered."""
    return partial(render, a_side=info.a_side, b_side=info.b_side)
