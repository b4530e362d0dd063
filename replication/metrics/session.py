"""What scoring one experiment caches: a `Session` holds what every seed shares.

The real test split (decoded once), the true labels decoded from its colour halves, the
real targets written once as PNG, the loaded models (segmenters, Inception: each loaded
once, never per image or per seed), features of the real images, and per-folder results
two protocols share. The metric code (fcn_score.py, image_stats.py) asks it for these.
"""

from __future__ import annotations

import dataclasses
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from replication.config.schema import ExperimentConfig
from replication.config.scoring import ScoringConfig
from replication.core.devices import resolve_device
from replication.core.errors import ScoringError
from replication.core.fileio import OUTPUT_MARKER
from replication.core.layout import RESULTS_PAGE
from replication.data.images import TooManyPixels, open_image
from replication.data.paired import TestPairs
from replication.metrics.segmentation import decode_label_maps, label_rule


def scored_split(cfg: ExperimentConfig) -> str:
    return cfg.generate.split or cfg.data.test_split  # as generate.py chooses it


class Session:
    """The real test split, true labels, real reference PNGs and models of one task.

    `models` pre-loads entries of the model cache (tests pass stand-in segmenters):
    "fcn_exact" / "fcn_score_fallback": (nn.Module, info dict);
    "inception": (feature function files -> (N, d) array, info dict).
    """

    def __init__(self, cfg: ExperimentConfig, scoring: ScoringConfig,
                 models: dict | None = None):
        self.cfg, self.scoring = cfg, scoring
        self.device = resolve_device(scoring.device)
        self.split = scored_split(cfg)
        self.pairs = TestPairs(cfg.data, self.split, cfg.generate.max_images)
        self.size = cfg.data.image_size
        self.models = dict(models or {})
        self._truth: dict[int, np.ndarray] = {}  # image size -> train ids
        self._features: dict[tuple, np.ndarray] = {}
        self.memo: dict = {}  # per-folder results two protocols share (exact_frames)
        self._tmp = tempfile.TemporaryDirectory(prefix="replication-real-")
        self._real_dir = None

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    @property
    def names(self) -> list[str]:
        return self.pairs.names

    def halves(self) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) of every test pair as (N, S, S, 3) uint8, as generate.py read them."""
        pixels = self.pairs.folder.batch(torch.arange(len(self.pairs))).numpy()
        pixels = pixels.transpose(0, 2, 3, 1)
        return pixels[..., :3], pixels[..., 3:]

    def label_truth(self, size: int | None = None) -> np.ndarray:
        """Train ids (N, S, S) of the pairs' colour label half (B) by scoring.label_decoding,
        Cityscapes void colours -> ignored (docs/protocols.md, without the labelIds files);
        at `size` (default the image size: the halves resized as for training)."""
        size = size or self.size
        if size not in self._truth:
            pairs = self.pairs if size == self.size else TestPairs(
                dataclasses.replace(self.cfg.data, image_size=size, load_size=None),
                self.split, self.cfg.generate.max_images)
            pixels = pairs.folder.batch(torch.arange(len(pairs))).numpy()
            self._truth[size] = self.decode_labels(pixels.transpose(0, 2, 3, 1)[..., 3:])
        return self._truth[size]

    def decode_labels(self, maps: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) colour label maps -> train ids by scoring.label_decoding."""
        return decode_label_maps(maps, supported=self.scoring.label_decoding == "supported")

    @property
    def label_rule(self) -> str:
        return label_rule(self.scoring.label_decoding)

    def real_dir(self) -> Path:
        """The real test targets as PNG at the image size, written once per session into
        a temporary folder (not a cache under generated/: it could outlive a change of
        data/<dataset> and no DVC stage would notice)."""
        if self._real_dir is None:
            a, b = self.halves()
            targets = a if self.cfg.data.direction == "BtoA" else b
            folder = Path(self._tmp.name) / "real"
            folder.mkdir()
            for name, image in zip(self.names, targets):
                Image.fromarray(image).save(folder / f"{name}.png")
            self._real_dir = folder
        return self._real_dir

    def generated_files(self, folder: str | Path) -> list[Path]:
        """`folder`/<name>.png of every test pair, in pair order: exactly those files (an
        extra or missing one is an error, never silently scored), each at the image size."""
        files = generated_files(folder, self.names)
        for path in files:
            check_generated_image(path, self.size)
        return files

    def real_files(self) -> list[Path]:
        """The real targets written by real_dir(), in pair order."""
        return [self.real_dir() / f"{name}.png" for name in self.names]

    def read_generated(self, folder: str | Path, size: int | None = None) -> np.ndarray:
        """(N, S, S, 3) uint8 of `folder`/<name>.png for every test pair, in pair order;
        at `size`, upsampled bilinearly (PIL, as the official evaluation upsamples)."""
        size = size or self.size
        read = read_rgb if size == self.size else lambda path: read_rgb(path, size)
        with ThreadPoolExecutor(4) as pool:
            return np.stack(list(pool.map(read, self.generated_files(folder))))

    def features(self, extract: Callable, files: list[Path]) -> np.ndarray:
        """extract(files), once per list: the real images' features serve every seed."""
        key = tuple(map(str, files))
        if key not in self._features:  # 8 MB per 500 images
            self._features[key] = extract(files)
        return self._features[key]

    def model(self, key: str, load: Callable[[], tuple]) -> tuple:
        if key not in self.models:
            self.models[key] = load()
        return self.models[key]


REGENERATE = "rerun `replication generate`"


def check_generated_image(path: Path, size: int) -> None:
    """`path` decodes whole (a truncated PNG fails here, in one line, not inside a metric)
    and is size x size pixels; its header is checked before any pixel is decoded."""
    try:
        with open_image(path, path, REGENERATE) as img:
            width, height = img.size
            if (width, height) != (size, size):
                raise ScoringError(f"{path} is {width}x{height} but the experiment's image "
                                   f"size is {size}; regenerate it")
            img.load()
    except TooManyPixels as err:
        raise ScoringError(str(err)) from None
    except (OSError, SyntaxError, ValueError) as err:  # UnidentifiedImageError: an OSError
        detail = (str(err).splitlines() or [type(err).__name__])[0][:120]
        raise ScoringError(f"{path}: cannot decode the image ({detail}); {REGENERATE}") \
            from None


def generated_files(folder: str | Path, names: list[str]) -> list[Path]:
    """`folder`/<name>.png for each name; missing or extra files are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScoringError(f"{folder}: no generated images; run `replication generate` "
                           "(dvc stage generate@<experiment>) first")
    expected = [f"{n}.png" for n in names]
    # generate's own note and results page are no images
    present = {p.name for p in folder.iterdir()} - {OUTPUT_MARKER, RESULTS_PAGE}
    missing = [n for n in expected if n not in present]
    if missing:
        raise ScoringError(f"{folder}: {len(missing)} of {len(names)} test images have no "
                           f"PNG (e.g. {missing[0]}); rerun `replication generate`")
    extra = sorted(present - set(expected))
    if extra:
        raise ScoringError(f"{folder}: {len(extra)} file(s) that are not a test image's output "
                           f"(e.g. {extra[0]}); remove them or rerun `replication generate`")
    return [folder / name for name in expected]


def read_rgb(path: Path, size: int | None = None) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("RGB")
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(img)
