"""Deterministic synthetic stand-ins for the upstream pix2pix archives, and `replication synth`.

Smoke runs and tests need data in the upstream layout (docs/datasets.md) without a download:
`<root>/<name>/<split>/<n>.jpg`, n = 1, 2, ..., each image two square halves A | B side by
side. As upstream, for facades, cityscapes and maps A is the photo (the aerial photo for
maps) and B the label colours (the map rendering), drawn by a scene renderer each
(cityscapes.py, facades.py, maps.py on scene.py); every other registry dataset gets the
generic stand-in (generic.py), so every name in the registry can be written.
`write_archive` writes the upstream archive itself instead (`<name>.tar.gz` at the
registry's counts and image size), for tests that serve it as the upstream host.

toy.py is apart: the toy pairs of the tests and the benchmark (B a channel permutation of A).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from replication.config import datasets
from replication.config.datasets import VERIFIED_MARKER
from replication.core.errors import ConfigError, DataError
from replication.core.fileio import atomic_dir, atomic_path, write_json
from replication.core.layout import DATASET_PROTECTED
from replication.data.synthetic import cityscapes, facades, generic, maps
from replication.data.synthetic.generic import Renderer

DEFAULT_TRAIN, DEFAULT_TEST = 100, 30  # images in "train" / in every other split
DEFAULT_SIZE = 64  # side of each half in a dataset folder (upstream: 256)
MIN_SIZE = 16  # smaller halves leave most objects under one pixel
# Full-resolution chroma (PIL's default is 4:2:0): at 64 px a halved chroma plane smears
# the label colours of 1-2 px poles and signs; measured on 30 cityscapes-like pairs at
# quality 95, nearest-colour decoding recovers 94.9% of label pixels with 4:2:0, 100% here.
_CHROMA_444 = 0


# --- renderers: name -> (rng, size) -> (A, B) -------------------------------------------

# name -> (photo, label ids) renderer and the palette that colours its labels
SCENES = {"cityscapes": (cityscapes.render_cityscapes_like, cityscapes.PALETTE),
          "facades": (facades.render_facades_like, facades.FACADE_PALETTE),
          "maps": (maps.render_maps_like, maps.MAP_PALETTE)}


def _scene_halves(render, palette) -> Renderer:
    def halves(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        photo, labels = render(rng, size)
        return photo, palette[labels]  # A: the photo, B: its label colours
    return halves


RENDERERS: dict[str, Renderer] = {name: _scene_halves(*scene) for name, scene in SCENES.items()}
# Each dataset draws from a stream of its own. The first three keep the numbers they had
# when they were the only ones (so their images keep their bytes); any other name gets one
# from its spelling, so a new registry entry changes no existing image.
_STREAMS = {"cityscapes": 0, "facades": 1, "maps": 2}


def renderer(name: str) -> Renderer:
    """How pairs of `name` are drawn: its own renderer, else the generic stand-in."""
    _splits(name)
    return RENDERERS.get(name) or generic.renderer(datasets.DATASETS[name])


# --- writing a dataset ---------------------------------------------------------------

def default_counts(name: str, train: int = DEFAULT_TRAIN, test: int = DEFAULT_TEST) -> dict:
    """`train` images in "train", `test` in every other split of `name`."""
    return {split: train if split == "train" else test for split in _splits(name)}


def image_rng(seed: int, name: str, split: str, number: int) -> np.random.Generator:
    """The generator of image `<name>/<split>/<number>.jpg`: a pure function of its address."""
    stream = _STREAMS.get(name, zlib.crc32(name.encode()))
    return np.random.default_rng([seed, stream, _splits(name).index(split), number])


def render_pair(seed: int, name: str, split: str, number: int, size: int) -> np.ndarray:
    """The A | B pair (uint8, size x 2*size x 3) before JPEG (paper sets: A photo, B labels)."""
    a, b = renderer(name)(image_rng(seed, name, split, number), size)
    return np.concatenate([a, b], axis=1)


def make_synthetic(name: str, root: str | Path, *, size: int = DEFAULT_SIZE,
                   counts: dict | None = None, seed: int = 0, quality: int = 95) -> Path:
    """Write `<root>/<name>/<split>/<n>.jpg` (n from 1, as upstream) and the marker.

    The folder appears whole or not at all (atomic_dir); an existing synthetic folder is
    replaced, anything else there is refused.
    """
    counts = _check_request(name, size, counts, seed, quality, default_counts(name))
    out = Path(root) / name
    _refuse_foreign(out)
    with atomic_dir(out, "synth", protected=DATASET_PROTECTED, own=_is_synthetic) as tmp:
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
    """`name`'s split names and order as in the upstream archive (only the counts differ)."""
    if name not in datasets.DATASETS:
        raise ConfigError(f"unknown synthetic dataset {name!r}; "
                          f"choose one of {tuple(datasets.DATASETS)}")
    return tuple(datasets.DATASETS[name].splits)


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
    if out.exists() and not _is_synthetic(out):
        raise DataError(f"{out} exists and is not a synthetic dataset; "
                        f"move it away or choose another --root")


def _is_synthetic(out: Path) -> bool:
    """`out` is a stand-in this command wrote (its install record says so)."""
    try:
        return json.loads((out / VERIFIED_MARKER).read_text()).get("synthetic") is True
    except (OSError, ValueError, AttributeError):
        return False


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
    _splits(name)  # a registry dataset ("unknown synthetic dataset" otherwise)
    info = datasets.get_dataset(name)
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
    half = datasets.get_dataset(name).half_size
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
