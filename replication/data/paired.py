"""Paired A|B image folders, decoded once, jittered with one shared random draw.

Upstream layout (docs/datasets.md): `<root>/<dataset>/<split>/*.jpg`, each file two square halves
side by side, A (left) | B (right). Each pair is decoded and resized ONCE to the jitter
size (paper: 286 for 256 crops) and kept as uint8 in one (N, 6, S, S) tensor, so the
training loop only crops and flips — no JPEG decoding per step (the slow-loading pitfall
of docs/pitfalls.md). The resize is deterministic, so doing it once is the same computation as
the Lua code's per-step resize, up to uint8 rounding of the resized pixels (<= 0.5/255).

Random jitter is counter-based: the crop offsets and flips of step `s` come from a
generator seeded with (seed, s), and the epoch order from (seed, epoch). Resuming at
step `s` therefore needs no saved data-loader state and replays exactly.
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from replication.config.schema import DataConfig
from replication.core.errors import DataError
from replication.data.images import IMAGE_SUFFIXES, is_16_bit, open_image

GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")


def list_pairs(folder: Path) -> list[Path]:
    """The A|B images of one split folder."""
    return list_images(folder, f"split folder not found; run `replication download <name>` "
                               "or point data.root/data.dataset (--data DIR) at your A|B images: "
                               "a folder of <split>/ subfolders or of the images themselves")


def list_images(folder: Path, missing: str = "folder not found") -> list[Path]:
    """The .jpg/.png files directly in `folder` (hidden ones skipped), sorted; their base
    names must be unique, as outputs are named after them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: {missing}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file())
    if not files:
        raise DataError(f"{folder}: no .jpg/.png images in this folder")
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise DataError(f"{folder}: two images share the base name {dup!r} (outputs are "
                        f"named after inputs: both would be {dup}.png); rename one")
    return files


def read_pair(path: Path, size: int) -> np.ndarray:
    """Decode one A|B file into a (6, size, size) uint8 array: A channels then B."""
    try:
        with open_image(path, path, "replace the file with the dataset's own") as img:
            img.load()
            mode, (width, height) = img.mode, img.size
            if mode in GRAYSCALE_MODES:
                raise DataError(f"{path}: grayscale image (mode {mode}); pairs must be RGB "
                                "— convert it, e.g. PIL Image.convert('RGB')")
            if width != 2 * height:
                raise DataError(f"{path}: size {width}x{height} is not two square halves "
                                f"side by side (expected width {2 * height})")
            img = img.convert("RGB")
            halves = [img.crop((0, 0, height, height)), img.crop((height, 0, width, height))]
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"{path}: cannot decode image ({err}); the file is corrupt or "
                        "truncated — re-download the dataset or delete the file") from None
    arrays = [np.asarray(h.resize((size, size), Image.BILINEAR)) for h in halves]
    return np.concatenate(arrays, axis=2).transpose(2, 0, 1).copy()


def warn_if_converted(files: list[Path], what: str = "pairs",
                      refused: tuple[str, ...] = GRAYSCALE_MODES) -> None:
    """One warning line when images are not RGB: palette (P) and CMYK images are converted
    to RGB and RGBA loses its alpha channel; modes in `refused` are reported elsewhere
    (read_pair refuses grayscale pairs; plain inputs to translate may be grayscale)."""
    converted = []
    for path in files:
        try:
            with open_image(path, path) as img:  # the header only
                mode = img.mode
        except (UnidentifiedImageError, OSError, DataError):
            continue  # the reader names the broken (or too large) file
        if mode != "RGB" and mode not in refused:
            converted.append((path, mode))
    if converted:
        path, mode = converted[0]
        alpha = ", alpha dropped" if "A" in mode else ""
        deep = sum(is_16_bit(m) for _, m in converted)
        scaled = f" ({deep} with 16-bit samples, scaled to 8 bits)" if deep else ""
        print(f"warning: {len(converted)} of {len(files)} {what} in {path.parent} are not RGB "
              f"(e.g. {path.name} is {mode}{alpha}); converted to RGB{scaled}", file=sys.stderr)


def decode_folder(files: list[Path], size: int, threads: int = 4) -> torch.Tensor:
    """All pairs as one (N, 6, size, size) uint8 tensor (PIL decodes without the GIL)."""
    out = torch.empty((len(files), 6, size, size), dtype=torch.uint8)

    def load(i: int) -> None:
        out[i] = torch.from_numpy(read_pair(files[i], size))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(load, range(len(files))))
    return out


def fits_in_memory(num_files: int, size: int, cfg: DataConfig) -> bool:
    if cfg.in_memory != "auto":
        return cfg.in_memory == "always"
    return num_files * 6 * size * size / 2**30 <= cfg.memory_limit_gb


class PairFolder:
    """The pairs of one split at one stored size; `batch(indices)` -> (B, 6, S, S) uint8.

    In memory when it fits (the default for every paper dataset but edges2handbags),
    otherwise decoded from disk per batch.
    """

    def __init__(self, folder: Path, size: int, cfg: DataConfig, limit: int | None = None):
        self.files = list_pairs(folder)[:limit]  # limit: the first files only (rehearsal)
        warn_if_converted(self.files)
        self.size = size
        self.pixels = None
        if fits_in_memory(len(self.files), size, cfg):
            self.pixels = decode_folder(self.files, size)

    def __len__(self) -> int:
        return len(self.files)

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        if self.pixels is not None:
            return self.pixels[indices]
        return torch.stack([torch.from_numpy(read_pair(self.files[i], self.size))
                            for i in indices.tolist()])

    def to(self, device: torch.device) -> "PairFolder":
        """Keep the decoded pixels on `device` (fast mode: jitter runs there)."""
        if self.pixels is not None:
            self.pixels = self.pixels.to(device)
        return self


def split_folder(cfg: DataConfig, split: str) -> Path:
    # split "." (a flat folder, params.folder_settings): the dataset folder itself
    return Path(cfg.root) / cfg.dataset / split


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1] (paper: pixels in [-1, 1], Tanh output), in the
    default dtype (fp32; the tests' float64 reference runs set float64)."""
    return pixels.to(torch.get_default_dtype()).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded."""
    return images.add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def split_direction(pairs: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 6, H, W) A|B channels -> (input, target) for the configured direction."""
    a, b = pairs[:, :3], pairs[:, 3:]
    return (a, b) if direction == "AtoB" else (b, a)


@dataclass(frozen=True)
class Schedule:
    """Which pairs, crops and flips every training step uses, as a pure function of step."""

    num_pairs: int
    batch_size: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.num_pairs / self.batch_size)  # last short batch kept

    def batch_length(self, step: int) -> int:
        """Pairs in step `step`'s batch (the last batch of an epoch may be short)."""
        position = step % self.steps_per_epoch
        return min(self.batch_size, self.num_pairs - position * self.batch_size)

    def indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        order = torch.randperm(self.num_pairs, generator=_generator(self.seed, 0, epoch))
        start = position * self.batch_size
        return order[start:start + self.batch_size]

    def jitter(self, step: int, count: int, stored: int, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop offsets (count, 2) and flip flags (count,) shared by both halves of a pair."""
        gen = _generator(self.seed, 1, step)
        offsets = torch.randint(0, stored - crop + 1, (count, 2), generator=gen)
        flips = torch.rand(count, generator=gen) < 0.5
        return offsets, flips


def _generator(seed: int, stream: int, counter: int) -> torch.Generator:
    # distinct streams for order (0) and jitter (1); large odd multipliers avoid overlaps
    return torch.Generator().manual_seed((seed * 1_000_003 + stream) * 2_000_029 + counter)


def jitter_batch(pairs: torch.Tensor | list[torch.Tensor], offsets: torch.Tensor, flips: torch.Tensor,
                 crop: int, mirror: bool) -> torch.Tensor:
    """Apply each pair's crop and flip to A and B together (docs/method.md: the SAME jitter)."""
    out = []
    for pair, (top, left), flip in zip(pairs, offsets.tolist(), flips.tolist()):
        pair = pair[:, top:top + crop, left:left + crop]
        out.append(pair.flip(-1) if (mirror and flip) else pair)
    return torch.stack(out)


class TrainingPairs:
    """The training split with the paper's jitter: `batch(step)` -> (input, target) in [-1, 1]."""

    def __init__(self, cfg: DataConfig, batch_size: int, seed: int):
        self.cfg = cfg
        stored = cfg.jitter_size if cfg.jitter else cfg.image_size
        self.folder = PairFolder(split_folder(cfg, cfg.train_split), stored, cfg)
        self.schedule = Schedule(len(self.folder), batch_size, seed)

    def __len__(self) -> int:
        return len(self.folder)

    def batch(self, step: int, device: torch.device,
              rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """rows: this process's part of the global batch (data-parallel training); the
        draws are made for the whole batch, so every rank sees the same jitter."""
        indices = self.schedule.indices(step)
        offsets, flips = self.schedule.jitter(step, len(indices), self.folder.size,
                                              self.cfg.image_size)
        if rows is not None:
            indices, offsets, flips = indices[rows], offsets[rows], flips[rows]
        pixels = self.folder.pixels
        # in memory (on the device in fast mode): crop views by Python ints, so no index
        # tensor is uploaded (an upload would make the host wait for the device)
        pairs = [pixels[i] for i in indices.tolist()] if pixels is not None \
            else self.folder.batch(indices)
        pairs = jitter_batch(pairs, offsets, flips, self.cfg.image_size, self.cfg.flip)
        x, y = split_direction(to_unit_range(pairs.to(device, non_blocking=True)),
                               self.cfg.direction)
        return x, y

    def _index_device(self) -> torch.device:
        pixels = self.folder.pixels
        return pixels.device if pixels is not None else torch.device("cpu")


class TestPairs:
    __test__ = False  # not a pytest test class
    """An evaluation split at image_size, no jitter, in file order: the whole split
    unless `limit` (generate.max_images, a named deviation) keeps its first files."""

    def __init__(self, cfg: DataConfig, split: str, limit: int | None = None):
        self.cfg = cfg
        self.folder = PairFolder(split_folder(cfg, split), cfg.image_size, cfg, limit)

    def __len__(self) -> int:
        return len(self.folder)

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.folder.files]

    def batches(self, batch_size: int, device: torch.device):
        for start in range(0, len(self), batch_size):
            indices = torch.arange(start, min(start + batch_size, len(self)))
            pairs = to_unit_range(self.folder.batch(indices).to(device))
            x, y = split_direction(pairs, self.cfg.direction)
            yield indices.tolist(), x, y
