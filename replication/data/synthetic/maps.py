"""maps-like: the aerial photo and the map of a city block grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replication.data.synthetic.scene import Scene, paint

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
