"""`replication translate`: run a generator on a folder of new single images.

Each image (any size up to images.MAX_PIXELS, ~89 megapixels, Pillow's decompression-bomb
limit: a larger one is refused in one line before it is decoded; RGBA, grayscale,
16-bit and palette images are converted to 8-bit RGB, with one warning line) is resized
(bicubic) to the model's image size, translated with the checkpoint's own test-time
settings (paper: dropout on, test-batch BatchNorm), resized back to its own size and
written as <name>.png, with index.html listing input | output per file
(results_page.py). Accepts this code's generator.pt and the
authors' released pytorch-CycleGAN-and-pix2pix U-Nets (latest_net_G.pth).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from replication.config.schema import TEST_MODES, check_count
from replication.core.devices import resolve_device
from replication.core.errors import ConfigError, DataError
from replication.core.fileio import atomic_dir, check_replaceable
from replication.core.numerics import fp32_exact
from replication.core.progress import ProgressLines
from replication.data.images import open_image, to_rgb
from replication.data.paired import (
    list_images,
    to_uint8,
    to_unit_range,
    warn_if_converted,
)
from replication.inference import results_page
from replication.inference.generate import open_generator, set_test_mode


def read_image(path: Path) -> Image.Image:
    """One input image, upright (EXIF orientation applied) and 8-bit RGB (16-bit samples
    scaled, images.to_rgb); more than images.MAX_PIXELS pixels is refused undecoded."""
    try:
        with open_image(path, path, TOO_LARGE) as img:
            img.load()
            return to_rgb(ImageOps.exif_transpose(img))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        detail = (str(err).splitlines() or ["unreadable"])[0][:120]
        raise DataError(f"{path}: cannot decode image ({detail}); the file is corrupt or "
                        "not an image — replace or remove it") from None


TOO_LARGE = "scale it down (any size up to that is translated) or leave it out"


def translate(checkpoint: str | Path, in_dir: str | Path, out_dir: str | Path, *,
              mode: str | None = None, batch_size: int | None = None, device: str = "auto",
              seed: int = 0) -> dict:
    """G(x) for every image of `in_dir`: resized (bicubic) to the model's image size, run
    with the checkpoint's test-time settings, resized back to the input's size (bicubic)
    and written as <stem>.png into `out_dir` (replaced atomically)."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    files = list_images(in_dir, "input folder not found")
    # replaced as a whole: absent, empty or an earlier `translate` output; never the inputs
    check_replaceable(out_dir, "translate", inputs=[in_dir, checkpoint])
    dev = resolve_device(device)
    G, cfg, _ = open_generator(checkpoint, dev)
    mode = mode or cfg.generate.mode
    batch_size = cfg.generate.batch_size if batch_size is None else batch_size
    check_count("--batch-size", batch_size)
    if mode not in TEST_MODES:
        raise ConfigError(f"mode={mode!r} must be one of {list(TEST_MODES)} (paper: 'train')")
    warn_if_converted(files, "images", refused=())
    size = cfg.data.image_size
    set_test_mode(G, mode)
    torch.manual_seed(seed)
    began = time.perf_counter()
    progress = ProgressLines(f"translate {in_dir.name}", len(files), unit="images")
    with atomic_dir(out_dir, "translate", inputs=[in_dir, checkpoint]) as tmp, \
            torch.no_grad(), fp32_exact():
        for start in range(0, len(files), batch_size):
            batch = files[start:start + batch_size]
            images = [read_image(path) for path in batch]
            pixels = np.stack([np.asarray(im.resize((size, size), Image.BICUBIC))
                               for im in images])
            x = to_unit_range(torch.from_numpy(pixels).permute(0, 3, 1, 2)).to(dev)
            outputs = to_uint8(G(x)).permute(0, 2, 3, 1).cpu().numpy()
            for path, image, output in zip(batch, images, outputs):
                result = Image.fromarray(output)
                if result.size != image.size:
                    result = result.resize(image.size, Image.BICUBIC)
                result.save(tmp / f"{path.stem}.png", format="PNG")
            progress.update(start + len(batch))
        rows = [results_page.Row(path.name, (results_page.Image(path),
                                             results_page.Image(out_dir / f"{path.stem}.png")))
                for path in files]
        results_page.write(tmp, out_dir, f"translate {in_dir.name}: test mode {mode}",
                           ("input", "output"), rows)
    seconds = time.perf_counter() - began
    return {"checkpoint": str(checkpoint), "input": str(in_dir), "images": len(files),
            "image_size": size, "mode": mode, "batch_size": batch_size, "seed": seed,
            "device": str(dev), "seconds": round(seconds, 2),
            "images_per_second": round(len(files) / max(seconds, 1e-9), 2)}
