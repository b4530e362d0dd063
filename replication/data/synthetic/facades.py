"""facades-like: one building front, labelled in the style of the CMP Facade Database."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replication.data.synthetic.scene import GLASS, Scene, paint

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
    "window": GLASS,
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
