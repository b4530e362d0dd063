"""The upstream pix2pix datasets: where they live, what they hold, how the paper used them.

Facts from SPEC §3. Each archive `<url_name>.tar.gz` holds `<name>/<split>/*.jpg`, every
image two 256x256 halves side by side (A | B, 512x256).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from replication.errors import ConfigError

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
MIRROR_ENV = "REPLICATION_MIRROR"  # a base URL that replaces BASE_URL


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    url_name: str  # archive name on the server, without .tar.gz
    splits: dict[str, int]  # split -> expected number of images
    a_side: str  # what the left half shows
    b_side: str  # what the right half shows
    paper_direction: str  # "AtoB" | "BtoA": the paper's main task for this dataset
    test_split: str  # the split the paper reports numbers on
    paper_epochs: int
    paper_batch_size: int
    archive_bytes: int | None = None  # None: size unknown, only Content-Length is checked
    pair_size: tuple[int, int] = (512, 256)  # (W, H) of every image in the archive
    # False: the counts come from the authors' docs, not from a checked download, so a
    # mismatch may mean the counts are wrong; `--skip-count-check` then installs anyway.
    counts_verified: bool = True


def _info(name: str, **kw) -> DatasetInfo:
    return DatasetInfo(name=name, url_name=name, **kw)


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    # SPEC §3: facades, cityscapes and maps counts, sizes and settings are authoritative.
    _info("facades", splits={"train": 400, "val": 100, "test": 106}, a_side="photo",
          b_side="label colours", paper_direction="BtoA", test_split="test",
          paper_epochs=200, paper_batch_size=1, archive_bytes=30_168_306),
    # The paper tests Cityscapes on val (500 frames).
    _info("cityscapes", splits={"train": 2975, "val": 500}, a_side="photo",
          b_side="label colours", paper_direction="BtoA", test_split="val",
          paper_epochs=200, paper_batch_size=1),
    _info("maps", splits={"train": 1096, "val": 1098}, a_side="aerial photo",
          b_side="map", paper_direction="AtoB", test_split="val",
          paper_epochs=200, paper_batch_size=1),
    # The large sets: paper §4 "batch 4, 15-17 epochs"; the split counts below are from
    # the authors' descriptions and were not checked against a download; the sides follow
    # the dataset names (X2Y: A = X, B = Y) as AtoB trains X -> Y.
    _info("edges2shoes", splits={"train": 49825, "val": 200}, a_side="edges",
          b_side="photo", paper_direction="AtoB", test_split="val",
          paper_epochs=15, paper_batch_size=4, counts_verified=False),
    _info("edges2handbags", splits={"train": 138567, "val": 200}, a_side="edges",
          b_side="photo", paper_direction="AtoB", test_split="val",
          paper_epochs=15, paper_batch_size=4, counts_verified=False),
    _info("night2day", splits={"train": 17823, "val": 2287, "test": 10348}, a_side="night",
          b_side="day", paper_direction="AtoB", test_split="test",
          paper_epochs=17, paper_batch_size=4, counts_verified=False),
)}


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def base_url(mirror: str | None = None) -> str:
    """The server to download from: `mirror`, else $REPLICATION_MIRROR, else upstream."""
    url = mirror or os.environ.get(MIRROR_ENV) or BASE_URL
    return url if url.endswith("/") else url + "/"


def dataset_url(name: str, mirror: str | None = None) -> str:
    return base_url(mirror) + get_dataset(name).url_name + ".tar.gz"


# Written last inside an installed dataset folder (`<root>/<name>/.verified.json`) with
# the verified split counts; a folder without it is not a finished install.
VERIFIED_MARKER = ".verified.json"
