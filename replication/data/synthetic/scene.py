"""The drawing machinery the scene renderers share: a Scene, then the photo painted from it.

Each scene is a random layout drawn twice at once: the label image exactly (PIL fills
polygons without anti-aliasing) and an object image whose objects each get their own photo
colour. The photo is then painted from the objects with per-class texture, lighting and
sensor noise. Windows, lane marks, paint colours and textures exist in the photo only, so
the photo is NOT a function of the labels: a model can learn their statistics but not
their pixels, which is what separates a blurry L1 result from a sharp L1+cGAN one (paper
§4.2, Fig. 4).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Glass as photographed (windows, windscreens): a photo colour more than one scene uses.
GLASS = [(44, 52, 62), (70, 80, 92), (30, 34, 40)]


# --- drawing: labels and photo objects together --------------------------------------

class Scene:
    """A label image and an object image drawn in step; each object has a photo colour."""

    def __init__(self, rng: np.random.Generator, size: int, classes: tuple[str, ...],
                 colours: dict, texture: dict, background: str):
        self.rng, self.size = rng, size
        self.class_id = {name: i for i, name in enumerate(classes)}
        self.colours = colours  # class name -> RGB choices for that class's objects
        self.texture = {self.class_id[k]: v for k, v in texture.items()}
        self.labels = Image.new("L", (size, size), self.class_id[background])
        self.objects = Image.new("I", (size, size), 0)
        self.object_colours = [self.pick(colours[background])]
        self._pens = (ImageDraw.Draw(self.labels), ImageDraw.Draw(self.objects))

    def pick(self, looks: list) -> np.ndarray:
        """A photo colour for one object: one of the base colours `looks`, jittered."""
        base = np.asarray(looks[self.rng.integers(len(looks))], np.float32)
        return np.clip(base + self.rng.uniform(-12, 12, 3), 0, 255)

    def add(self, shape: str, xy: list[float], name: str, looks: list | None = None,
            width: float = 0.0) -> None:
        """Draw one object of class `name`; `xy` in fractions of the image side.

        shape: a PIL ImageDraw method ("polygon", "rectangle", "ellipse", "line") or
        "ring" (an ellipse outline); `width` (fraction) is for "line" and "ring".
        looks: photo base colours to pick from (default: the class's own colours).
        PIL clips whatever falls outside the image.
        """
        self.object_colours.append(self.pick(looks or self.colours[name]))
        pixels = [v * self.size for v in xy]
        stroke = max(1, round(width * self.size))
        for pen, fill in zip(self._pens, (self.class_id[name], len(self.object_colours) - 1)):
            if shape == "line":
                pen.line(pixels, fill=fill, width=stroke, joint="curve")
            elif shape == "ring":
                pen.ellipse(pixels, outline=fill, width=stroke)
            else:
                getattr(pen, shape)(pixels, fill=fill)

    def label_array(self) -> np.ndarray:
        return np.array(self.labels, dtype=np.uint8)


# --- painting the photo ---------------------------------------------------------------

def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Blotchy noise with about `cells` blobs per side (bicubic upsampled white noise)."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC))


def _period(size: int, px_at_64: float) -> int:
    """A pattern period that scales with the image, but never below 2 pixels."""
    return max(2, round(px_at_64 * size / 64))


# Multiplicative patterns, one field per image; rows/cols in pixels.
def _courses(rng, size):  # mortar lines of bricks, panel seams
    rows = np.arange(size)[:, None] + rng.integers(8)
    return np.where(rows % _period(size, 3) == 0, -0.2, 0.0)


def _tiles(rng, size):  # paving slabs
    p, shift = _period(size, 4), rng.integers(8)
    rows, cols = np.arange(size)[:, None] + shift, np.arange(size)[None, :] + shift
    return np.where((rows % p == 0) | (cols % p == 0), -0.15, 0.0)


def _slats(rng, size):  # fence boards, balcony railings
    cols = np.arange(size)[None, :] + rng.integers(8)
    return np.where(cols % _period(size, 2) == 0, -0.35, 0.0)


def _blinds(rng, size):  # window blinds, shutters
    rows = np.arange(size)[:, None] + rng.integers(8)
    return np.where(rows % _period(size, 2) == 0, -0.3, 0.0)


def _grain(rng, size):  # wood grain of doors: vertical streaks
    return np.repeat(smooth_noise(rng, size, size // 2)[:1], size, axis=0) * 0.15


def _sky(rng, size):  # brighter towards the horizon
    return np.arange(size)[:, None] / size * rng.uniform(0.3, 0.7)


def _foliage(rng, size):  # clumps of leaves with shadows between them
    return np.where(smooth_noise(rng, size, max(2, size // 4)) > 0.3, -0.3, 0.05)


_PATTERNS = {"courses": _courses, "tiles": _tiles, "slats": _slats, "blinds": _blinds,
             "grain": _grain, "sky": _sky, "foliage": _foliage}


def paint(rng: np.random.Generator, scene: Scene) -> np.ndarray:
    """The photo (uint8 HxWx3) of a scene: object colours x (1 + class texture), then light.

    scene.texture maps class id -> (fine, coarse, pattern): the amplitude of per-pixel
    and of blotchy relative brightness noise, and a named pattern (or None).
    """
    size = scene.size
    labels = scene.label_array()
    fine, coarse = np.zeros(256, np.float32), np.zeros(256, np.float32)
    for label, (f, c, _) in scene.texture.items():
        fine[label], coarse[label] = f, c
    relief = fine[labels] * rng.standard_normal((size, size), dtype=np.float32)
    relief += coarse[labels] * smooth_noise(rng, size, max(2, size // 8))
    for label, (_, _, pattern) in scene.texture.items():
        mask = labels == label
        if pattern and mask.any():
            relief[mask] += np.broadcast_to(_PATTERNS[pattern](rng, size), (size, size))[mask]
    objects = np.asarray(scene.objects)
    photo = np.asarray(scene.object_colours, np.float32)[objects] * (1 + relief[..., None])
    return _lighting(rng, photo)


def _lighting(rng: np.random.Generator, photo: np.ndarray) -> np.ndarray:
    """Per-image exposure, top-to-bottom light falloff, white balance and sensor noise."""
    rows = np.linspace(0, 1, photo.shape[0], dtype=np.float32)[:, None, None]
    gain = rng.uniform(0.8, 1.15) + rng.uniform(-0.3, 0.15) * rows
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    noise = rng.normal(0.0, rng.uniform(2, 5), photo.shape).astype(np.float32)
    return np.clip(np.rint(photo * gain * cast + noise), 0, 255).astype(np.uint8)
