"""cityscapes-like: a street seen from a car, labelled in the 19 Cityscapes train ids."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from replication.data.cityscapes_labels import CLASS_NAMES, PALETTE  # noqa: F401 (SCENES reads it here)
from replication.data.synthetic.scene import GLASS, Scene, paint

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


def _box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """Rectangle corners in PIL's order (x0 <= x1, y0 <= y1), whatever the input order."""
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


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
    glass = np.asarray(GLASS[rng.integers(len(GLASS))])
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
               kind, looks=GLASS)
        for lamp in (-0.85, 0.6):
            box(lamp, 0.7, lamp + 0.25, 0.85, looks=_LAMPS[:1])
    else:
        half, top = {"truck": (1.25, 3.4), "bus": (1.3, 3.1), "train": (1.35, 3.6)}[kind]
        box(-half, 0.3, half, top)
        box(-half + 0.15, top * 0.55, half - 0.15, top * 0.85, looks=GLASS)
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
