"""The upstream pix2pix datasets: where they live, what they hold, how the paper used them.

Facts from docs/datasets.md. Each archive `<url_name>.tar.gz` holds
`<name>/<split>/*.jpg`, every image two square halves side by side (A | B): 512x256 for
facades and cityscapes, 1200x600 for maps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replication.core.errors import ConfigError
from replication.core.fetch import source_url

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"


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
    # the upstream archive's size (None: unknown). A fact about the upstream host: checked
    # for upstream downloads only (a mirror may recompress), and advisory there, since
    # the content checks decide whether the archive is sound.
    archive_bytes: int | None = None
    half_size: int = 256  # side of each square half: every image is 2*half x half pixels
    # False: the counts come from the authors' docs, not from a checked download, so a
    # mismatch may mean the counts are wrong; `--skip-count-check` then installs anyway.
    counts_verified: bool = True

    @property
    def pair_size(self) -> tuple[int, int]:
        """(W, H) of every image in the archive: two square halves side by side."""
        return 2 * self.half_size, self.half_size

    # --- bounds: what an archive of this dataset can hold, from the facts above --------
    @property
    def max_image_bytes(self) -> int:
        """The most bytes one pair's JPEG may take: twice its raw RGB pixels, plus 64 KiB
        of headers (EXIF, ICC, comments). A baseline JPEG stays under 1.4x its raw size
        even for noise at quality 100 without chroma subsampling (measured with Pillow:
        1.37x at 512x256 and 1200x600); the upstream images take about a tenth. A larger
        member is padding or not one of this dataset's images."""
        width, height = self.pair_size
        return 2 * width * height * 3 + 64 * 1024

    @property
    def max_install_bytes(self) -> int:
        """The most bytes all members of an archive may unpack to: every split's count
        (the registry's) x max_image_bytes, 25% more for splits whose counts are
        unverified (--skip-count-check). facades: 0.6 GB, cityscapes: 3.7 GB, maps:
        12 GB, against ~0.03, 0.1 and 0.25 GB upstream: loose, but a few MB of gzip can
        no longer unpack to fill the disk."""
        return self.max_image_bytes * sum(self.splits.values()) * 5 // 4

    @property
    def max_archive_bytes(self) -> int:
        """The most bytes the .tar.gz may have: what it unpacks to (JPEG data does not
        shrink under gzip) plus tar's 1 KiB of header and padding per member."""
        return self.max_install_bytes + 1024 * sum(self.splits.values()) * 5 // 4


def _info(name: str, **kw) -> DatasetInfo:
    return DatasetInfo(name=name, url_name=name, **kw)


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    # docs/datasets.md: facades, cityscapes and maps counts, sizes and settings are authoritative.
    _info("facades", splits={"train": 400, "val": 100, "test": 106}, a_side="photo",
          b_side="label colours", paper_direction="BtoA", test_split="test",
          paper_epochs=200, paper_batch_size=1, archive_bytes=30_168_306),
    # The paper tests Cityscapes on val (500 frames).
    _info("cityscapes", splits={"train": 2975, "val": 500}, a_side="photo",
          b_side="label colours", paper_direction="BtoA", test_split="val",
          paper_epochs=200, paper_batch_size=1, archive_bytes=103_441_232),
    # maps pairs are 1200x600: two 600x600 halves (pytorch-CycleGAN-and-pix2pix #761);
    # the loader resizes them to 286 (training jitter) or 256 (test), as the paper did.
    _info("maps", splits={"train": 1096, "val": 1098}, a_side="aerial photo",
          b_side="map", paper_direction="AtoB", test_split="val",
          paper_epochs=200, paper_batch_size=1, half_size=600),
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

# The paper's datasets, the ones it reports numbers on (§4): what `replication download all`
# and `replication synth all` install. The others above are in the registry for completeness.
PAPER_DATASETS = ("facades", "cityscapes", "maps")


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_url(name: str, mirror: str | None = None) -> str:
    """Where the archive comes from: upstream, or `<mirror>/<url_name>.tar.gz`."""
    return source_url(BASE_URL + get_dataset(name).url_name + ".tar.gz", mirror)


def is_upstream(url: str) -> bool:
    return url.startswith(BASE_URL)


# Written last inside an installed dataset folder (`<root>/<name>/.verified.json`) with
# the verified split counts; a folder without it is not a finished install.
VERIFIED_MARKER = ".verified.json"


def is_installed_dataset(folder: Path) -> bool:
    """`folder` holds an install record: `download` / `synth` wrote it (and may replace it)."""
    return (Path(folder) / VERIFIED_MARKER).is_file()
