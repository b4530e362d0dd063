"""Deterministic synthetic stand-ins for the facades, cityscapes and maps archives.

Smoke runs and tests need data in the upstream layout (docs/datasets.md) without a download:
`<root>/<name>/<split>/<n>.jpg`, n = 1, 2, ..., each image two square halves A | B side by
side. As upstream, A is the photo (the aerial photo for maps) and B the label colours (the
map rendering). `write_archive` writes the upstream archive itself instead (`<name>.tar.gz`
at the registry's counts and image size), for tests that serve it as the upstream host.

Each scene is a random layout drawn twice at once: the label image exactly (PIL fills
polygons without anti-aliasing) and an object image whose objects each get their own photo
colour. The photo is then painted from the objects with per-class texture, lighting and
sensor noise. Windows, lane marks, paint colours and textures exist in the photo only, so
the photo is NOT a function of the labels: a model can learn their statistics but not
their pixels, which is what separates a blurry L1 result from a sharp L1+cGAN one (paper
§4.2, Fig. 4).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from replication.config import DataConfig
from replication.data.cityscapes_labels import CLASS_NAMES, PALETTE
from replication.data import registry
from replication.data.registry import VERIFIED_MARKER
from replication.errors import ConfigError, DataError
from replication.fileio import atomic_dir, atomic_path, write_json

SYNTHETIC_NAMES = ("cityscapes", "facades", "maps")
# Split names (and order) as in the upstream archives; only the folder counts are smaller.
SPLITS = {name: tuple(registry.DATASETS[name].splits) for name in SYNTHETIC_NAMES}
DEFAULT_TRAIN, DEFAULT_TEST = 100, 30  # images in "train" / in every other split
DEFAULT_SIZE = 64  # side of each half in a dataset folder (upstream: 256)
MIN_SIZE = 16  # smaller halves leave most objects under one pixel
# Full-resolution chroma (PIL's default is 4:2:0): at 64 px a halved chroma plane smears
# the label colours of 1-2 px poles and signs; measured on 30 cityscapes-like pairs at
# quality 95, nearest-colour decoding recovers 94.9% of label pixels with 4:2:0, 100% here.
_CHROMA_444 = 0


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


def _box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """Rectangle corners in PIL's order (x0 <= x1, y0 <= y1), whatever the input order."""
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


# --- painting the photo ---------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
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
    return np.repeat(_smooth_noise(rng, size, size // 2)[:1], size, axis=0) * 0.15


def _sky(rng, size):  # brighter towards the horizon
    return np.arange(size)[:, None] / size * rng.uniform(0.3, 0.7)


def _foliage(rng, size):  # clumps of leaves with shadows between them
    return np.where(_smooth_noise(rng, size, max(2, size // 4)) > 0.3, -0.3, 0.05)


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
    relief += coarse[labels] * _smooth_noise(rng, size, max(2, size // 8))
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


# --- cityscapes-like: a street seen from a car ---------------------------------------

# What objects look like in the photo (RGB base colours), NOT their label colours.
_CITY_COLOURS = {
    "road": [(84, 82, 86), (100, 98, 96)],
    "sidewalk": [(150, 146, 140), (128, 122, 120)],
    "building": [(172, 156, 128), (136, 136, 142), (150, 86, 64), (196, 190, 178)],
    "wall": [(160, 150, 134), (120, 118, 112)],
    "fence": [(110, 100, 82), (90, 96, 90)],
    "pole": [(72, 72, 76), (112, 112, 104)],
    "traffic light": [(36, 38, 36)],
    "traffic sign": [(196, 40, 36), (36, 72, 170), (224, 190, 44), (228, 228, 224)],
    "vegetation": [(58, 96, 40), (76, 104, 46), (46, 80, 50)],
    "terrain": [(118, 128, 70), (140, 126, 84)],
    "sky": [(128, 168, 214), (176, 190, 204), (150, 160, 170)],
    "person": [(40, 40, 44), (150, 40, 40), (40, 60, 120), (200, 190, 170), (90, 110, 70)],
    "rider": [(40, 40, 44), (200, 120, 30), (40, 60, 120), (210, 210, 200)],
    "car": [(28, 28, 30), (214, 214, 210), (160, 162, 166), (150, 30, 30), (40, 60, 120)],
    "truck": [(220, 220, 214), (60, 90, 140), (170, 60, 40)],
    "bus": [(210, 180, 40), (180, 40, 40), (60, 100, 160), (226, 226, 220)],
    "train": [(180, 182, 190), (200, 60, 50)],
    "motorcycle": [(30, 30, 32), (150, 20, 20)],
    "bicycle": [(30, 30, 32), (60, 80, 140)],
}
_GLASS = [(44, 52, 62), (70, 80, 92), (30, 34, 40)]
_SKIN = [(224, 180, 150), (170, 120, 90), (110, 76, 56)]
_TYRE, _WHITE_PAINT, _TRUNK = (26, 26, 26), (206, 206, 200), (80, 60, 44)
_LAMPS = [(220, 40, 30), (230, 160, 30), (40, 200, 90)]

# (fine, coarse, pattern) per class: see paint().
_CITY_TEXTURE = {
    "road": (0.08, 0.06, None), "sidewalk": (0.05, 0.05, "tiles"),
    "building": (0.06, 0.08, "courses"), "wall": (0.08, 0.06, "courses"),
    "fence": (0.06, 0.04, "slats"), "pole": (0.04, 0.0, None),
    "traffic light": (0.04, 0.0, None), "traffic sign": (0.03, 0.0, None),
    "vegetation": (0.3, 0.2, "foliage"), "terrain": (0.18, 0.12, None),
    "sky": (0.02, 0.05, "sky"), "person": (0.06, 0.05, None), "rider": (0.06, 0.05, None),
    "car": (0.03, 0.04, None), "truck": (0.04, 0.05, None), "bus": (0.04, 0.05, None),
    "train": (0.04, 0.05, None), "motorcycle": (0.05, 0.03, None),
    "bicycle": (0.05, 0.03, None),
}
_ROAD_WIDTH_M = 8.0  # sets the scale of everything standing on the ground
_FAR = 4.0  # a depth beyond the image border (PIL clips what falls outside)


@dataclass(frozen=True)
class _Street:
    """A straight street in one-point perspective: every ground line meets at (vx, horizon).

    A ground point at depth t (= image row - horizon) on the line of slope k on side
    s (-1 left, +1 right) lies at column vx + s * t / k; objects there scale with t.
    """
    horizon: float
    vx: float
    road: dict  # side -> slope of the road edge
    walk: dict  # side -> slope of the sidewalk's outer edge
    base: dict  # side -> slope of the building line (walk, or beyond a grass strip)

    def x(self, side: int, slope: float, t: float) -> float:
        return self.vx + side * t / slope

    def metre(self, t: float) -> float:
        """Image fraction per metre for an upright object standing at depth t."""
        return t * (1 / self.road[-1] + 1 / self.road[1]) / _ROAD_WIDTH_M

    def frontage(self, side: int, d: float, z: float) -> list[float]:
        """The point z metres up a facade at horizontal distance d from the vanishing point."""
        t = d * self.base[side]
        return [self.vx + side * d, self.horizon + t - z * self.metre(t)]


def _street(rng: np.random.Generator) -> _Street:
    road, walk, base = {}, {}, {}
    for side in (-1, 1):
        road[side] = rng.uniform(0.45, 0.85)
        walk[side] = road[side] * rng.uniform(0.4, 0.65)
        base[side] = walk[side] * rng.uniform(0.5, 0.75) if rng.random() < 0.35 else walk[side]
    return _Street(rng.uniform(0.36, 0.5), rng.uniform(0.38, 0.62), road, walk, base)


def _along(d0: float, d1: float, a: float) -> float:
    """Distance from the vanishing point a fraction `a` along a facade: 1/d is linear."""
    return 1 / (1 / d0 + a * (1 / d1 - 1 / d0))


def _draw_ground(sc: Scene, st: _Street) -> None:
    h, vx = st.horizon, st.vx
    sc.add("rectangle", [-1, h, 2, 2], "road")
    for side in (-1, 1):
        def wedge(k1, k2):
            return [vx, h, st.x(side, k1, _FAR), h + _FAR, st.x(side, k2, _FAR), h + _FAR]
        sc.add("polygon", wedge(st.road[side], st.walk[side]), "sidewalk")
        if st.base[side] != st.walk[side]:
            sc.add("polygon", wedge(st.walk[side], st.base[side]), "terrain")
        # ground behind the building line; the frontage covers nearly all of it
        sc.add("polygon", [vx, h, st.x(side, st.base[side], _FAR), h + _FAR,
                           vx + side * 100, h], "sidewalk")


def _draw_lane_marks(sc: Scene, st: _Street) -> None:
    """A dashed centre line: equal dashes on the road are geometric steps in t."""
    def centre(t):
        return (st.x(-1, st.road[-1], t) + st.x(1, st.road[1], t)) / 2
    t = 0.02
    while t < 1:
        t1 = t * 1.35
        w0, w1 = 0.08 * st.metre(t), 0.08 * st.metre(t1)
        sc.add("polygon", [centre(t) - w0, st.horizon + t, centre(t) + w0, st.horizon + t,
                           centre(t1) + w1, st.horizon + t1, centre(t1) - w1, st.horizon + t1],
               "road", looks=[_WHITE_PAINT])
        t = t1 * 1.45


def _draw_frontage(sc: Scene, st: _Street, side: int) -> None:
    """Lots of buildings and tree rows from the vanishing point out to the image border."""
    rng = sc.rng
    edge = st.vx if side < 0 else 1 - st.vx
    d = rng.uniform(0.01, 0.03)
    while d < edge * 1.2:
        d1 = d * rng.uniform(1.3, 1.9) + 0.01
        if rng.random() < 0.75:
            _building(sc, st, side, d, d1)
        else:
            _tree_row(sc, st, side, d, d1)
        if rng.random() < 0.3:
            z = rng.uniform(0.8, 2.0)
            sc.add("polygon", st.frontage(side, d, 0) + st.frontage(side, d1, 0)
                   + st.frontage(side, d1, z) + st.frontage(side, d, z),
                   "wall" if rng.random() < 0.5 else "fence")
        d = d1


def _building(sc: Scene, st: _Street, side: int, d0: float, d1: float) -> None:
    height = sc.rng.uniform(6, 28)
    sc.add("polygon", st.frontage(side, d0, 0) + st.frontage(side, d1, 0)
           + st.frontage(side, d1, height) + st.frontage(side, d0, height), "building")
    _windows(sc, st, side, d0, d1, height)


def _windows(sc: Scene, st: _Street, side: int, d0: float, d1: float, height: float) -> None:
    """Windows exist in the photo only: Cityscapes labels them as building."""
    rng = sc.rng
    cols, width, tall = rng.integers(2, 6), rng.uniform(0.3, 0.6), rng.uniform(1.0, 1.8)
    glass = np.asarray(_GLASS[rng.integers(len(_GLASS))])
    for i in range(cols):
        a0 = (i + (1 - width) / 2) / cols
        e0, e1 = _along(d0, d1, a0), _along(d0, d1, a0 + width / cols)
        for floor in range(1, int(height // 3)):
            z0 = 3 * floor + 0.8
            reflection = np.clip(glass * rng.uniform(0.7, 1.6), 0, 255)  # panes differ
            sc.add("polygon", st.frontage(side, e0, z0) + st.frontage(side, e1, z0)
                   + st.frontage(side, e1, z0 + tall) + st.frontage(side, e0, z0 + tall),
                   "building", looks=[reflection])


def _tree_row(sc: Scene, st: _Street, side: int, d0: float, d1: float) -> None:
    crowns = [st.frontage(side, _along(d0, d1, a), sc.rng.uniform(4, 12))
              for a in np.linspace(0, 1, 6)]
    sc.add("polygon", sum(crowns, []) + st.frontage(side, d1, 0) + st.frontage(side, d0, 0),
           "vegetation")


def _vehicle(sc: Scene, st: _Street, x: float, t: float) -> None:
    rng, m, y = sc.rng, st.metre(t), st.horizon + t
    kind = ("car", "truck", "bus", "train")[rng.choice(4, p=[0.8, 0.08, 0.08, 0.04])]

    def box(x0, z0, x1, z1, looks=None):  # metres: sideways from x, up from the road
        sc.add("rectangle", _box(x + x0 * m, y - z1 * m, x + x1 * m, y - z0 * m), kind, looks)
    if kind == "car":
        box(-0.95, 0.25, 0.95, 1.0)
        sc.add("polygon", [x - 0.8 * m, y - 1.0 * m, x + 0.8 * m, y - 1.0 * m,
                           x + 0.6 * m, y - 1.5 * m, x - 0.6 * m, y - 1.5 * m],
               kind, looks=_GLASS)
        for lamp in (-0.85, 0.6):
            box(lamp, 0.7, lamp + 0.25, 0.85, looks=_LAMPS[:1])
    else:
        half, top = {"truck": (1.25, 3.4), "bus": (1.3, 3.1), "train": (1.35, 3.6)}[kind]
        box(-half, 0.3, half, top)
        box(-half + 0.15, top * 0.55, half - 0.15, top * 0.85, looks=_GLASS)
    if kind != "train":
        for wheel in (-0.9, 0.55):
            box(wheel, 0, wheel + 0.35, 0.4, looks=[_TYRE])


def _person(sc: Scene, st: _Street, x: float, t: float, lift: float = 0.0,
            name: str = "person") -> None:
    """Legs, torso and head; `lift` metres raises a rider onto the saddle."""
    rng, m = sc.rng, st.metre(t)
    y = st.horizon + t - lift * m
    tall = rng.uniform(1.55, 1.9) - (0.6 if lift else 0.0)  # a rider sits
    sc.add("rectangle", _box(x - 0.18 * m, y - 0.85 * m, x + 0.18 * m, y), name)
    sc.add("rectangle", _box(x - 0.25 * m, y - (tall - 0.25) * m, x + 0.25 * m, y - 0.8 * m), name)
    sc.add("ellipse", _box(x - 0.12 * m, y - tall * m, x + 0.12 * m, y - (tall - 0.27) * m),
           name, looks=_SKIN)


def _rider(sc: Scene, st: _Street, x: float, t: float) -> None:
    m, y = st.metre(t), st.horizon + t
    name = "bicycle" if sc.rng.random() < 0.6 else "motorcycle"
    r = 0.33 * m
    for wx in (x - 0.55 * m, x + 0.55 * m):
        sc.add("ring" if name == "bicycle" else "ellipse",
               [wx - r, y - 2 * r, wx + r, y], name, width=0.06 * m)
    sc.add("line", [x - 0.55 * m, y - r, x, y - 0.9 * m, x + 0.55 * m, y - r], name,
           width=0.08 * m if name == "bicycle" else 0.3 * m)
    _person(sc, st, x, t, lift=0.5, name="rider")


def _pole(sc: Scene, st: _Street, x: float, t: float) -> None:
    rng, m, y = sc.rng, st.metre(t), st.horizon + t
    top = rng.uniform(4, 8)
    sc.add("rectangle", _box(x - 0.08 * m, y - top * m, x + 0.08 * m, y), "pole")
    arm = (0.45 if x < st.vx else -0.45) * m  # signs and lights hang over the road
    if rng.random() < 0.55:
        shape = "ellipse" if rng.random() < 0.5 else "rectangle"
        sc.add(shape, _box(x + arm - 0.35 * m, y - (top - 0.4) * m,
                           x + arm + 0.35 * m, y - (top - 1.1) * m), "traffic sign")
    if rng.random() < 0.35:
        box = _box(x + arm - 0.18 * m, y - (top - 1.3) * m, x + arm + 0.18 * m, y - (top - 2.3) * m)
        sc.add("rectangle", box, "traffic light")
        sc.add("ellipse", _box(box[0] + 0.06 * m, box[1] + 0.1 * m, box[2] - 0.06 * m,
                               box[1] + 0.34 * m), "traffic light", looks=_LAMPS)


def _tree(sc: Scene, st: _Street, x: float, t: float) -> None:
    m, y = st.metre(t), st.horizon + t
    crown = sc.rng.uniform(1.5, 3.0)
    sc.add("rectangle", _box(x - 0.15 * m, y - 3 * m, x + 0.15 * m, y), "vegetation",
           looks=[_TRUNK])
    sc.add("ellipse", _box(x - crown * m, y - (3 + 1.6 * crown) * m, x + crown * m, y - 2.2 * m),
           "vegetation")


def _street_things(rng: np.random.Generator, st: _Street) -> list[tuple[float, partial]]:
    """Vehicles, people, poles and trees as (depth, draw) pairs."""
    things = []

    def on_sidewalk(draw, near):  # near: 0 at the kerb, 1 at the building line
        side, t = (-1, 1)[rng.integers(2)], rng.uniform(0.03, 0.5)
        k = st.road[side] + (st.walk[side] - st.road[side]) * near
        things.append((t, partial(draw, x=st.x(side, k, t), t=t)))

    def on_road(draw, lane):
        t = rng.uniform(0.03, 0.5)
        left, right = st.x(-1, st.road[-1], t), st.x(1, st.road[1], t)
        things.append((t, partial(draw, x=left + (right - left) * lane, t=t)))
    for _ in range(rng.integers(1, 7)):
        on_road(_vehicle, rng.uniform(0.12, 0.88))
    for _ in range(rng.integers(0, 6)):
        on_sidewalk(_person, rng.uniform(0.2, 0.8))
    for _ in range(rng.integers(1, 5)):
        on_sidewalk(_pole, 0.12)
    for _ in range(rng.integers(1, 3) if rng.random() < 0.5 else 0):
        on_sidewalk(_tree, rng.uniform(0.3, 0.7))
    if rng.random() < 0.4:
        on_road(_rider, rng.choice([0.08, 0.92]))
    return things


def cityscapes_scene(rng: np.random.Generator, size: int) -> Scene:
    """A random street layout in the 19 Cityscapes train-id classes (docs/protocols.md)."""
    sc = Scene(rng, size, CLASS_NAMES, _CITY_COLOURS, _CITY_TEXTURE, background="sky")
    st = _street(rng)
    _draw_ground(sc, st)
    if rng.random() < 0.7:
        _draw_lane_marks(sc, st)
    for side in (-1, 1):
        _draw_frontage(sc, st, side)
    for _, draw in sorted(_street_things(rng, st), key=lambda thing: thing[0]):
        draw(sc, st)  # far to near, so near things cover far ones
    return sc


def render_cityscapes_like(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo uint8 HxWx3, exact train ids uint8 HxW) of one random street."""
    sc = cityscapes_scene(rng, size)
    return paint(rng, sc), sc.label_array()


# --- facades-like: one building front, CMP-style labels -------------------------------

FACADE_CLASSES = ("background", "facade", "window", "door", "cornice", "sill", "balcony",
                  "blind", "deco", "molding", "pillar", "shop")
# In the style of the CMP label images (blue background and facade, warmer small parts):
# a jet colour ramp, jet((k + 0.5) / 12). Not checked against CMP's exact values.
FACADE_PALETTE = np.array([
    (0, 0, 170), (0, 0, 255), (0, 85, 255), (0, 170, 255), (0, 255, 255), (85, 255, 170),
    (170, 255, 85), (255, 255, 0), (255, 170, 0), (255, 85, 0), (255, 0, 0), (170, 0, 0),
], dtype=np.uint8)

_FACADE_COLOURS = {
    "background": [(150, 170, 190), (90, 110, 80), (120, 120, 124)],  # sky, trees, neighbours
    "facade": [(196, 180, 150), (170, 120, 96), (206, 204, 196), (150, 146, 140),
               (214, 190, 140)],
    "window": _GLASS,
    "door": [(90, 60, 40), (60, 44, 34), (40, 60, 50)],
    "cornice": [(214, 206, 190), (180, 172, 160)],
    "sill": [(220, 214, 200), (190, 186, 176)],
    "balcony": [(50, 50, 52), (150, 140, 120)],
    "blind": [(90, 120, 80), (170, 160, 140), (120, 70, 50)],
    "deco": [(210, 200, 180), (180, 170, 150)],
    "molding": [(226, 220, 206), (190, 180, 164)],
    "pillar": [(200, 194, 180), (160, 150, 140)],
    "shop": [(60, 70, 80), (140, 110, 90), (90, 100, 110)],
}
_FRAME = [(222, 222, 216), (60, 50, 44)]  # window frames and mullions
_FACADE_TEXTURE = {
    "background": (0.15, 0.2, None), "facade": (0.05, 0.1, "courses"),
    "window": (0.04, 0.2, None), "door": (0.06, 0.05, "grain"), "cornice": (0.04, 0.05, None),
    "sill": (0.04, 0.03, None), "balcony": (0.05, 0.05, "slats"), "blind": (0.05, 0.05, "blinds"),
    "deco": (0.06, 0.05, None), "molding": (0.04, 0.04, None), "pillar": (0.05, 0.06, None),
    "shop": (0.1, 0.3, None),
}


@dataclass(frozen=True)
class _FacadeStyle:
    """What this building's windows look like; every window of the building shares it."""
    width: float  # window width / column width
    height: float  # window height / floor height
    molding: bool
    sill: bool
    shutters: bool
    deco: bool
    frame: tuple  # photo colour of frames and mullions (labelled window)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "_FacadeStyle":
        return cls(rng.uniform(0.35, 0.6), rng.uniform(0.45, 0.7), rng.random() < 0.5,
                   rng.random() < 0.7, rng.random() < 0.35, rng.random() < 0.3,
                   _FRAME[rng.integers(len(_FRAME))])


def facades_scene(rng: np.random.Generator, size: int) -> Scene:
    """A frontal facade: floors x columns of windows over a shop or door ground floor."""
    sc = Scene(rng, size, FACADE_CLASSES, _FACADE_COLOURS, _FACADE_TEXTURE, "background")
    left, right, top = rng.uniform(0, 0.08), rng.uniform(0.92, 1), rng.uniform(0, 0.15)
    floors, cols, ground = rng.integers(3, 7), rng.integers(2, 6), rng.uniform(0.18, 0.28)
    sc.add("rectangle", [left, top, right, 1], "facade")
    floor_h, col_w = (1 - ground - top - 0.03) / floors, (right - left) / cols
    if rng.random() < 0.3:
        for i in range(cols + 1):
            x = left + i * col_w
            sc.add("rectangle", [x - 0.015, top, x + 0.015, 1], "pillar")
    sc.add("rectangle", [left - 0.01, top, right + 0.01, top + 0.03], "cornice")
    style, cornices = _FacadeStyle.sample(rng), rng.random() < 0.6
    for f in range(floors):
        y = top + 0.03 + f * floor_h
        if cornices and f > 0:
            sc.add("rectangle", [left, y - 0.008, right, y + 0.008], "cornice")
        balcony = rng.random() < 0.3
        for i in range(cols):
            _facade_window(sc, style, left + (i + 0.5) * col_w, col_w, y, floor_h, balcony)
    _ground_floor(sc, left, col_w, cols, 1 - ground)
    return sc


def _facade_window(sc: Scene, style: _FacadeStyle, cx: float, col_w: float, y: float,
                   floor_h: float, balcony: bool) -> None:
    half, tall = style.width * col_w / 2, style.height * floor_h
    x0, x1, y0 = cx - half, cx + half, y + (floor_h - tall) * 0.45
    y1 = y0 + tall
    if style.deco:
        sc.add("ellipse", [cx - half * 0.7, y0 - 0.035, cx + half * 0.7, y0 - 0.008], "deco")
    if style.molding:
        sc.add("rectangle", [x0 - 0.012, y0 - 0.012, x1 + 0.012, y1 + 0.006], "molding")
    if style.shutters:
        sc.add("rectangle", [x0 - half, y0, x0, y1], "blind")
        sc.add("rectangle", [x1, y0, x1 + half, y1], "blind")
    sc.add("rectangle", [x0, y0, x1, y1], "window")
    mullion = y0 + tall * 0.35  # frames are in the photo only: CMP labels them window
    sc.add("rectangle", [cx - 0.006, y0, cx + 0.006, y1], "window", looks=[style.frame])
    sc.add("rectangle", [x0, mullion, x1, mullion + 0.01], "window", looks=[style.frame])
    if sc.rng.random() < 0.25:  # a roller blind pulled part way down
        sc.add("rectangle", [x0, y0, x1, y0 + tall * sc.rng.uniform(0.15, 0.6)], "blind")
    if style.sill:
        sc.add("rectangle", [x0 - 0.01, y1, x1 + 0.01, y1 + 0.015], "sill")
    if balcony:
        sc.add("rectangle", [x0 - 0.03, y1 - tall * 0.35, x1 + 0.03, y1 + 0.015], "balcony")


def _ground_floor(sc: Scene, left: float, col_w: float, cols: int, y: float) -> None:
    door = sc.rng.integers(cols)
    shops = sc.rng.random() < 0.5
    for i in range(cols):
        cx = left + (i + 0.5) * col_w
        if i == door:
            sc.add("rectangle", [cx - col_w * 0.2, y + 0.04, cx + col_w * 0.2, 1], "door")
        elif shops:
            sc.add("rectangle", [cx - col_w * 0.4, y + 0.03, cx + col_w * 0.4, 0.97], "shop")
        else:
            sc.add("rectangle", [cx - col_w * 0.25, y + 0.05, cx + col_w * 0.25, y + 0.16],
                   "window")


def render_facades_like(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo uint8 HxWx3, class ids uint8 HxW into FACADE_CLASSES) of one facade."""
    sc = facades_scene(rng, size)
    return paint(rng, sc), sc.label_array()


# --- maps-like: aerial photo and map of a city block grid -----------------------------

MAP_CLASSES = ("land", "building", "park", "water", "road", "highway")
# Flat map colours in the style of the web map tiles of the maps dataset.
MAP_PALETTE = np.array([
    (236, 234, 228), (214, 210, 202), (196, 226, 182), (166, 204, 232), (255, 255, 255),
    (250, 210, 110),
], dtype=np.uint8)

_MAP_COLOURS = {  # what the aerial photo shows
    "land": [(118, 122, 96), (140, 134, 110), (104, 112, 84)],  # lawns, yards, bare ground
    "building": [(150, 150, 150), (170, 110, 90), (120, 120, 128), (196, 192, 186),
                 (96, 90, 86)],  # roofs
    "park": [(70, 96, 56), (84, 108, 62)],
    "water": [(48, 72, 84), (40, 66, 70), (60, 84, 96)],
    "road": [(110, 110, 112), (128, 126, 124)],
    "highway": [(96, 96, 100), (112, 110, 108)],
}
_TREE_TOPS = [(52, 76, 44), (64, 88, 48)]
_MAP_TEXTURE = {
    "land": (0.12, 0.15, None), "building": (0.05, 0.05, None), "park": (0.25, 0.15, "foliage"),
    "water": (0.04, 0.15, None), "road": (0.07, 0.05, None), "highway": (0.07, 0.05, None),
}


@dataclass(frozen=True)
class _Grid:
    """A street grid turned by `angle`: (u, v) in grid units -> image fractions."""
    angle: float
    spacing: float

    def point(self, u: float, v: float) -> list[float]:
        c, s = np.cos(self.angle), np.sin(self.angle)
        u, v = u * self.spacing, v * self.spacing
        return [0.5 + u * c - v * s, 0.5 + u * s + v * c]

    def quad(self, u0: float, v0: float, u1: float, v1: float) -> list[float]:
        return self.point(u0, v0) + self.point(u1, v0) + self.point(u1, v1) + self.point(u0, v1)


def maps_scene(rng: np.random.Generator, size: int) -> Scene:
    """Blocks of houses, parks, water and a road grid seen from above."""
    sc = Scene(rng, size, MAP_CLASSES, _MAP_COLOURS, _MAP_TEXTURE, background="land")
    grid = _Grid(rng.uniform(0, np.pi / 2), rng.uniform(0.16, 0.3))
    reach = int(np.ceil(0.75 / grid.spacing))  # blocks needed to cover the image when turned
    for u in range(-reach, reach):
        for v in range(-reach, reach):
            _block(sc, grid, u, v)
    if rng.random() < 0.5:
        _river(sc)
    _roads(sc, grid, reach)
    return sc


def _block(sc: Scene, grid: _Grid, u: int, v: int) -> None:
    rng, kind = sc.rng, sc.rng.random()
    if kind < 0.12:
        sc.add("polygon", grid.quad(u, v, u + 1, v + 1), "park")
        return
    if kind < 0.2:  # an empty lot
        return
    if rng.random() < 0.5:  # a garden tree: photo only (land on the map), under the roofs
        cu, cv = grid.point(u + rng.uniform(0.2, 0.8), v + rng.uniform(0.2, 0.8))
        r = grid.spacing * rng.uniform(0.06, 0.12)
        sc.add("ellipse", [cu - r, cv - r, cu + r, cv + r], "land", looks=_TREE_TOPS)
    n = rng.integers(2, 4)
    for i in range(n):
        for j in range(n):
            if rng.random() < 0.2:  # a yard
                continue
            a, b = rng.uniform(0.05, 0.15, 2)
            sc.add("polygon", grid.quad(u + (i + a) / n, v + (j + b) / n,
                                        u + (i + 1 - a) / n, v + (j + 1 - b) / n), "building")


def _river(sc: Scene) -> None:
    rng = sc.rng
    xs = np.linspace(-0.1, 1.1, 9)
    ys = rng.uniform(0.2, 0.8) + 0.12 * np.sin(xs * rng.uniform(3, 7) + rng.uniform(0, 6))
    if rng.random() < 0.5:
        xs, ys = ys, xs  # flowing top to bottom
    points = [float(p) for pair in zip(xs, ys) for p in pair]
    sc.add("line", points, "water", width=rng.uniform(0.06, 0.14))


def _roads(sc: Scene, grid: _Grid, reach: int) -> None:
    rng = sc.rng
    major = {("u", rng.integers(-2, 3)), ("v", rng.integers(-2, 3))}
    for k in range(-reach, reach + 1):
        for axis in ("u", "v"):
            name = "highway" if (axis, k) in major else "road"
            ends = [(k, -reach), (k, reach)] if axis == "u" else [(-reach, k), (reach, k)]
            width = grid.spacing * (0.16 if name == "highway" else 0.09)
            sc.add("line", grid.point(*ends[0]) + grid.point(*ends[1]), name, width=width)


def render_maps_like(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(aerial photo uint8 HxWx3, class ids uint8 HxW into MAP_CLASSES) of one tile."""
    sc = maps_scene(rng, size)
    return paint(rng, sc), sc.label_array()


# --- writing a dataset ---------------------------------------------------------------

_RENDER = {"cityscapes": (render_cityscapes_like, PALETTE),
           "facades": (render_facades_like, FACADE_PALETTE),
           "maps": (render_maps_like, MAP_PALETTE)}


def default_counts(name: str, train: int = DEFAULT_TRAIN, test: int = DEFAULT_TEST) -> dict:
    """`train` images in "train", `test` in every other split of `name`."""
    return {split: train if split == "train" else test for split in _splits(name)}


def image_rng(seed: int, name: str, split: str, number: int) -> np.random.Generator:
    """The generator of image `<name>/<split>/<number>.jpg`: a pure function of its address."""
    return np.random.default_rng(
        [seed, SYNTHETIC_NAMES.index(name), _splits(name).index(split), number])


def render_pair(seed: int, name: str, split: str, number: int, size: int) -> np.ndarray:
    """The A | B pair (uint8, size x 2*size x 3) before JPEG: A photo, B label colours."""
    render, palette = _RENDER[name]
    photo, labels = render(image_rng(seed, name, split, number), size)
    return np.concatenate([photo, palette[labels]], axis=1)


def make_synthetic(name: str, root: str | Path, *, size: int = DEFAULT_SIZE,
                   counts: dict | None = None, seed: int = 0, quality: int = 95) -> Path:
    """Write `<root>/<name>/<split>/<n>.jpg` (n from 1, as upstream) and the marker.

    The folder appears whole or not at all (atomic_dir); an existing synthetic folder is
    replaced, anything else there is refused.
    """
    counts = _check_request(name, size, counts, seed, quality, default_counts(name))
    out = Path(root) / name
    _refuse_foreign(out)
    with atomic_dir(out) as tmp:
        for split, count in counts.items():
            (tmp / split).mkdir()
            for number in range(1, count + 1):
                pair = Image.fromarray(render_pair(seed, name, split, number, size))
                _save_jpeg(pair, tmp / split / f"{number}.jpg", quality)
        write_json(tmp / VERIFIED_MARKER, {
            "dataset": name, "counts": counts, "pair_size": [2 * size, size],
            "synthetic": True, "seed": seed, "quality": quality})
    return out


def _save_jpeg(image: Image.Image, target, quality: int) -> None:
    """One encoding for folders and archives; `target` a path or a binary file."""
    image.save(target, "JPEG", quality=quality, subsampling=_CHROMA_444)


def _splits(name: str) -> tuple[str, ...]:
    if name not in SPLITS:
        raise ConfigError(f"unknown synthetic dataset {name!r}; choose one of {SYNTHETIC_NAMES}")
    return SPLITS[name]


def _check_request(name, size, counts, seed, quality, defaults: dict) -> dict[str, int]:
    """`defaults` updated by `counts`, after checking every argument."""
    merged = {**defaults, **(counts or {})}
    unknown = sorted(set(merged) - set(defaults))
    if unknown:
        raise ConfigError(f"{name} has no split {unknown[0]!r}; its splits are {tuple(defaults)}")
    for split, count in merged.items():
        if not isinstance(count, int) or count < 1:
            raise ConfigError(f"{name} split {split!r}: count {count!r} must be an integer >= 1")
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"size={size!r} must be an integer >= {MIN_SIZE} (upstream: 256)")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be an integer >= 0")
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"quality={quality!r} must be an integer in 1..100")
    return merged


def _refuse_foreign(out: Path) -> None:
    """Only ever replace a synthetic dataset: a real download must never be overwritten."""
    if not out.exists():
        return
    try:
        synthetic = json.loads((out / VERIFIED_MARKER).read_text()).get("synthetic") is True
    except (OSError, ValueError, AttributeError):
        synthetic = False
    if not synthetic:
        raise DataError(f"{out} exists and is not a synthetic dataset; "
                        f"move it away or choose another --root")


# --- writing an upstream archive: a stand-in for the upstream host -------------------

# Distinct scenes per split; image n shows scene (n - 1) % ARCHIVE_POOL + 1. Drawing and
# encoding each of the ~8,000 upstream images takes minutes (13-25 ms apiece), a pool of
# 32 takes seconds. What the archives stand in for (download, verify, install, load)
# needs the upstream layout, counts and geometry, not 8,000 different scenes.
ARCHIVE_POOL = 32
# Scenes are drawn at most this side and scaled up to the registry's half (maps: 300 ->
# 600): the loader shrinks every pair to 286 at most (256 crops), so finer detail never
# reaches a model, and a quarter of the pixels draws 3x faster into 30% smaller JPEGs.
MAX_DRAW_SIDE = 300
# The gzip header's file name, `<name>.synthetic.tar`: it tells a synthetic archive from a
# real download, which must never be overwritten.
_ARCHIVE_TAG = ".synthetic.tar"
# Stored, not deflated: still a valid gzip stream with its CRC and length (what the
# downloader checks), but the JPEG bytes hardly compress (level 1: 4% smaller) and
# deflating ~900 MB was two thirds of the time (maps: 14.7 s at level 1, 4.4 s stored).
_GZIP_LEVEL = 0


def archive_counts(name: str, counts: dict | None = None, seed: int = 0,
                   quality: int = 95) -> dict[str, int]:
    """The split counts `write_archive` writes: the registry's, updated by `counts`."""
    _splits(name)  # only the three datasets that have a renderer
    info = registry.get_dataset(name)
    return _check_request(name, info.half_size, counts, seed, quality, dict(info.splits))


def write_archive(name: str, out_dir: str | Path, *, counts: dict | None = None,
                  seed: int = 0, quality: int = 95) -> Path:
    """Write `<out_dir>/<name>.tar.gz` as upstream has it; return its path.

    Members `<name>/<split>/<n>.jpg`, n = 1..count, in split then numeric order; every
    image an A | B pair (render_pair) of the registry's pair_size. Counts default to the
    registry's splits. No time stamps: the same arguments give the same bytes. Written
    atomically; an existing archive that is not synthetic is refused.
    """
    counts = archive_counts(name, counts, seed, quality)
    half = registry.get_dataset(name).half_size
    path = Path(out_dir) / f"{name}.tar.gz"
    _refuse_foreign_archive(path, name)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(name + _ARCHIVE_TAG, "wb", _GZIP_LEVEL, raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for split, count in counts.items():
            pool = [_archive_jpeg(seed, name, split, k, half, quality)
                    for k in range(1, min(count, ARCHIVE_POOL) + 1)]
            for number in range(1, count + 1):
                _add_member(tar, f"{name}/{split}/{number}.jpg", pool[(number - 1) % len(pool)])
    return path


def _archive_jpeg(seed: int, name: str, split: str, number: int, half: int,
                  quality: int) -> bytes:
    """Pair `number` of the split as JPEG bytes, two `half` x `half` halves."""
    side = min(half, MAX_DRAW_SIDE)
    pair = render_pair(seed, name, split, number, side)
    photo, labels = Image.fromarray(pair[:, :side]), Image.fromarray(pair[:, side:])
    if side != half:  # nearest keeps the labels' flat palette colours, no blends at edges
        photo = photo.resize((half, half), Image.Resampling.BICUBIC)
        labels = labels.resize((half, half), Image.Resampling.NEAREST)
    image = Image.new("RGB", (2 * half, half))
    image.paste(photo, (0, 0))
    image.paste(labels, (half, 0))
    buf = io.BytesIO()
    _save_jpeg(image, buf, quality)
    return buf.getvalue()


def _add_member(tar: tarfile.TarFile, member: str, data: bytes) -> None:
    entry = tarfile.TarInfo(member)
    entry.size, entry.mode, entry.mtime = len(data), 0o644, 0  # fixed: reproducible bytes
    tar.addfile(entry, io.BytesIO(data))


def _refuse_foreign_archive(path: Path, name: str) -> None:
    """Replace only an archive this module wrote (its gzip header names it, see _ARCHIVE_TAG)."""
    if path.exists() and _gzip_file_name(path) != name + _ARCHIVE_TAG:
        raise DataError(f"{path} exists and is not a synthetic archive (a real download?); "
                        "move it away or choose another --archives folder")


def _gzip_file_name(path: Path) -> str | None:
    """The FNAME field of a gzip header as GzipFile writes it (no FEXTRA); None if absent."""
    with open(path, "rb") as f:
        head = f.read(10 + 256)
    flags = head[3] if len(head) > 10 and head[:2] == b"\x1f\x8b" else 0
    if not flags & 0x08 or flags & 0x04:  # no FNAME, or an FEXTRA field before it
        return None
    return head[10:].split(b"\0", 1)[0].decode("latin-1")


# --- command line: replication synth ---------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=[*SYNTHETIC_NAMES, "all"],
                        help="which stand-in dataset to write, or all three")
    parser.add_argument("--root", default=DataConfig.root,
                        help=f"folder that receives <name>/ (default {DataConfig.root})")
    parser.add_argument("--archives", metavar="DIR", default=None,
                        help="write DIR/<name>.tar.gz in the upstream layout, counts and "
                             "image size instead of a dataset folder under --root")
    parser.add_argument("--size", type=int, default=None,
                        help=f"side of each square half in pixels (default {DEFAULT_SIZE}; "
                             "upstream: 256; archives always have the registry's size)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--train", type=int, default=None,
                        help=f"images in the train split (default {DEFAULT_TRAIN}; "
                             "with --archives the upstream count)")
    parser.add_argument("--test", type=int, default=None,
                        help=f"images in every other split, val/test (default {DEFAULT_TEST}; "
                             "with --archives the upstream counts)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")


def run(args: argparse.Namespace) -> int:
    names = SYNTHETIC_NAMES if args.name == "all" else (args.name,)
    if args.archives is not None:
        return _run_archives(names, args)
    size = DEFAULT_SIZE if args.size is None else args.size
    for name in names:
        counts = {**default_counts(name), **_given_counts(name, args)}
        out = make_synthetic(name, args.root, size=size, counts=counts, seed=args.seed,
                             quality=args.quality)
        print(f"{out}: {counts}, {2 * size}x{size} pairs, seed {args.seed}")
    return 0


def _run_archives(names: tuple[str, ...], args: argparse.Namespace) -> int:
    if args.size is not None:
        raise ConfigError("--size does not apply to --archives: archives have the upstream "
                          "image size (registry pair_size)")
    for name in names:
        counts = archive_counts(name, _given_counts(name, args), args.seed, args.quality)
        path = write_archive(name, args.archives, counts=counts, seed=args.seed,
                             quality=args.quality)
        print(f"{path}: {counts}, {path.stat().st_size} bytes, seed {args.seed}")
    return 0


def _given_counts(name: str, args: argparse.Namespace) -> dict[str, int]:
    """The counts --train / --test set for `name`'s splits; the others keep their defaults."""
    given = {split: args.train if split == "train" else args.test for split in _splits(name)}
    return {split: count for split, count in given.items() if count is not None}
