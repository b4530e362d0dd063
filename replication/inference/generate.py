"""Test-time generation: one PNG per test image, named after the input file, and the
results page index.html beside them (input | output | target per file, results_page.py).

Paper behaviour by default (docs/method.md, §3.3 of the paper): G runs exactly as in training —
dropout on, BatchNorm normalising with the test batch's own statistics. `mode="eval"`
switches both off, `mode="no_dropout"` dropout only. An experiment may ask for the
test-time study (params generate.modes / generate.samples, replication/inference/test_time.py):
its other variants go to generated/<experiment>/test-time/<variant>/. Always the whole
split (the PyTorch code's default of 50 images is a known pitfall, docs/pitfalls.md). The
dropout draws are seeded, so a given seed reproduces the same images and different seeds
give different samples.

It accepts the authors' released PyTorch generators (`latest_net_G.pth`,
models/reference.py) as well as this code's generator.pt (translate.py uses the same
loader on plain single images). Progress: a line every 30 s of wall time (not per image),
so logs under `dvc repro` stay short.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from replication.config.schema import (
    TEST_MODES,
    DataConfig,
    ExperimentConfig,
    check_count,
)
from replication.core.devices import resolve_device
from replication.core.errors import CheckpointError, ConfigError
from replication.core.fileio import atomic_dir
from replication.core.numerics import fp32_exact
from replication.core.progress import ProgressLines
from replication.data.paired import TestPairs, split_folder, to_uint8
from replication.inference import results_page
from replication.models import build, reference
from replication.training import checkpoints


def read_checkpoint(path: str | Path) -> tuple[dict, ExperimentConfig, bool]:
    """(our-format state dict, config, released): a generator.pt, or else the authors'
    released U-Net state dict (recognised by its keys, models/reference.py)."""
    try:
        snapshot = checkpoints.load(path, checkpoints.GENERATOR_FORMAT)
    except CheckpointError as err:
        state = _released_state_dict(path)
        if state is None:
            raise
        if not reference.is_reference_state_dict(state):
            raise CheckpointError(f"{err}, nor a released pytorch-CycleGAN-and-pix2pix U-Net "
                                  "generator (latest_net_G.pth)") from None
        try:
            cfg = reference.reference_config(state, _released_name(path))
            return reference.convert_state_dict(state), cfg, True
        except CheckpointError as problem:
            raise CheckpointError(f"{path}: {problem}") from None
    return snapshot["state_dict"], checkpoints.config_of(snapshot, path), False


def _released_state_dict(path: str | Path) -> dict | None:
    """The file's content when it is a plain dict of tensors (how the reference saves)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # checkpoints.load has already said why the file is unusable
        return None
    if isinstance(obj, dict) and "format" not in obj and obj and \
            all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    return None


def _released_name(path: str | Path) -> str:
    # the reference keeps <name>/latest_net_G.pth, e.g. facades_label2photo_pretrained/
    path = Path(path)
    return path.parent.name if path.stem.startswith("latest_net") and path.parent.name \
        else path.stem


def open_generator(path: str | Path, device: torch.device
                   ) -> tuple[torch.nn.Module, ExperimentConfig, bool]:
    """G with its weights on `device`, its config, and whether it is a released file."""
    state_dict, cfg, released = read_checkpoint(path)
    G, _ = build(cfg)
    checkpoints.load_weights(G, state_dict, path, "generator")
    return G.to(device), cfg, released


def load_generator(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, ExperimentConfig]:
    G, cfg, _ = open_generator(path, device)
    return G, cfg


def generate(checkpoint: str | Path, out_dir: str | Path, *, data: DataConfig | None = None,
             split: str | None = None, mode: str | None = None, batch_size: int | None = None,
             device: str = "auto", seed: int = 0, max_images: int | None = None,
             name: str | None = None) -> dict:
    """Write G(x) for every image of the split into `out_dir` (replaced atomically).

    `data`, `split`, `mode`, `batch_size` default to the values stored in the checkpoint.
    max_images: the first N images only (generate.max_images, a printed deviation).
    name: how progress lines call this run (default: the output folder's name).
    """
    dev = resolve_device(device)
    G, cfg, released = open_generator(checkpoint, dev)
    data = data or cfg.data
    check_same_task(cfg.data, data, checkpoint, released)
    split = split or cfg.generate.split or data.test_split
    mode = mode or cfg.generate.mode
    batch_size = cfg.generate.batch_size if batch_size is None else batch_size
    if mode not in TEST_MODES:
        raise ConfigError(f"mode={mode!r} must be one of {list(TEST_MODES)} (paper: 'train')")
    check_count("--batch-size", batch_size)
    pairs = TestPairs(data, split, max_images)
    if max_images is not None:
        print(f"deviation: generate.max_images={max_images}: the first {len(pairs)} {split} "
              "images only (paper: the whole split)")
    set_test_mode(G, mode)
    torch.manual_seed(seed)
    began = time.perf_counter()
    progress = ProgressLines(f"generate {name or Path(out_dir).name}", len(pairs), unit="images")
    # the output folder: absent, empty or an earlier `generate` output; never the inputs
    inputs = [checkpoint, split_folder(data, split)]
    with atomic_dir(out_dir, "generate", inputs=inputs) as tmp, torch.no_grad(), \
            fp32_exact():  # no TF32 convolutions
        for indices, x, _ in pairs.batches(batch_size, dev):
            images = to_uint8(G(x)).permute(0, 2, 3, 1).cpu().numpy()
            for i, image in zip(indices, images):
                save_png(image, tmp / f"{pairs.names[i]}.png")
            progress.update(indices[-1] + 1)
        rows = [results_page.Row(pair.name, (inp, results_page.Image(Path(out_dir) / f"{name}.png"),
                                             target))
                for name, pair in zip(pairs.names, pairs.folder.files)
                for inp, target in [results_page.pair_halves(pair, data.direction)]]
        results_page.write(tmp, Path(out_dir), f"{name or Path(out_dir).name}: {split} split, "
                           f"test mode {mode}, batch {batch_size}",
                           ("input", "output", "target"), rows)
    seconds = time.perf_counter() - began
    return {"checkpoint": str(checkpoint), "split": split, "images": len(pairs),
            "max_images": max_images,
            "mode": mode, "batch_size": batch_size, "seed": seed, "device": str(dev),
            "seconds": round(seconds, 2), "images_per_second": round(len(pairs) / seconds, 2)}



def set_test_mode(G: torch.nn.Module, mode: str) -> None:
    """train (paper §3.3): dropout on, BatchNorm on the batch's statistics; eval: both
    off (running statistics); no_dropout: dropout off, batch statistics kept."""
    G.train(mode != "eval")
    if mode == "no_dropout":
        for module in G.modules():
            if isinstance(module, torch.nn.Dropout):
                module.eval()


# What the generator was trained to do; generating with other values is a different task.
# A released file's weights fix its image size (its depth), not its direction.
TASK_KEYS = ("direction", "image_size")
RELEASED_TASK_KEYS = ("image_size",)


def check_same_task(trained: DataConfig, wanted: DataConfig, checkpoint,
                    released: bool = False) -> None:
    for key in RELEASED_TASK_KEYS if released else TASK_KEYS:
        if getattr(wanted, key) != getattr(trained, key):
            raise ConfigError(f"data.{key}={getattr(wanted, key)!r} but {checkpoint} was trained "
                              f"with {getattr(trained, key)!r}; drop the override (the "
                              "checkpoint's own settings are the default)")


def save_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(image).save(path, format="PNG")
