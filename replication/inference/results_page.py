"""The per-image results page (index.html) that generate and translate write beside their
PNGs: one row per test file, its name, then input | output | target, as the reference's
results/<name>/test_latest/index.html.

Images are linked, not copied: the output PNG beside the page, and the input and target
halves of the dataset's A|B pair file (cropped by CSS) or translate's input file, by
relative links; so the page costs no disk and opens offline, but only while the folder
stays where it was written relative to the data.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from replication.core.layout import RESULTS_PAGE

SHOWN_PX = 256  # width of each image on the page


@dataclass(frozen=True)
class Image:
    path: Path  # the file, where it lies for good (not a temporary folder)
    half: str | None = None  # "left" | "right": that half of an A|B pair; None: all of it


@dataclass(frozen=True)
class Row:
    name: str  # the test file's name, shown
    images: tuple[Image | None, ...]  # one per column; None: nothing to show


def pair_halves(pair: Path, direction: str) -> tuple[Image, Image]:
    """(input, target) halves of an A|B pair file: AtoB reads left -> right."""
    a, b = Image(pair, "left"), Image(pair, "right")
    return (a, b) if direction == "AtoB" else (b, a)


def cell(image: Image | None, page_dir: Path) -> str:
    if image is None:
        return "<td>—</td>"
    link = html.escape(Path(os.path.relpath(image.path.resolve(), page_dir)).as_posix())
    crop = (f" class=\"half\" style=\"object-position:{image.half}\"" if image.half else "")
    return f"<td><a href=\"{link}\"><img src=\"{link}\"{crop} alt=\"\"></a></td>"


def render(title: str, columns: tuple[str, ...], rows: list[Row], page_dir: Path) -> str:
    """The page for a folder that will lie at `page_dir`."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("file", *columns))
    body = "\n".join(f"<tr><td class=\"name\">{html.escape(r.name)}</td>"
                     + "".join(cell(i, page_dir) for i in r.images) + "</tr>" for r in rows)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>"
            f"body{{font-family:sans-serif}} img{{width:{SHOWN_PX}px;height:auto}}"
            f" img.half{{height:{SHOWN_PX}px;object-fit:cover}}"
            " td{vertical-align:top} td.name{font-family:monospace}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{len(rows)} files</p>\n"
            f"<table><tr>{head}</tr>\n{body}\n</table></body></html>\n")


def write(tmp: Path, final: Path, title: str, columns: tuple[str, ...], rows: list[Row]) -> None:
    """index.html into the temporary folder `tmp` that becomes `final` (links from there)."""
    (tmp / RESULTS_PAGE).write_text(render(title, columns, rows, final.resolve()))
