"""Opening image files someone else made: pixel count bounded, 16-bit samples scaled.

Pillow decodes whatever size a header claims. Above Image.MAX_IMAGE_PIXELS (89,478,485
pixels, e.g. 9459 x 9459: ~270 MB as RGB, a 1.8 GB float tensor) it only warns, above
twice that it raises DecompressionBombError from Image.open, a traceback either way.
`open_image` makes both one refusal naming the file, before any pixel is decoded: a
JPEG header claiming 40000 x 40000 costs nothing. No image this suite reads comes close
(the paper's largest are the 2048 x 1024 Cityscapes frames).

Pillow's convert("RGB") clips 16-bit grayscale samples (mode I;16, 0..65535) to 255, so
a 16-bit photo turns almost white: `to_rgb` scales them to 8 bits instead.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
from PIL import Image

from replication.core.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # what counts as an image file in a dataset folder

MAX_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit


class TooManyPixels(DataError):
    """An image header claiming more pixels than MAX_PIXELS."""


def open_image(source, name, fix: str = "") -> Image.Image:
    """Image.open (the header only) of `source`, a path or a binary file; `name` is how
    errors call it and `fix` what they tell the user to do. More than MAX_PIXELS pixels:
    TooManyPixels. Other errors (not an image, truncated) are Pillow's, for the caller."""
    try:
        # DecompressionBombWarning as an error, here only (catch_warnings is not
        # thread-safe: a race between threads can at worst leave this one filter set,
        # which every open through here turns into the same refusal)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        claimed = re.search(r"\((\d+) pixels\)", str(err))
        count = f"{int(claimed[1]):,} pixels" if claimed else "too many pixels"
        raise TooManyPixels(f"{name}: the image claims {count}, more than {MAX_PIXELS:,} "
                            f"(Pillow's decompression-bomb limit); not decoded"
                            f"{'; ' + fix if fix else ''}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB. 16-bit samples (I;16*, and I whose values exceed 255) are
    scaled by 255/65535 and rounded, not clipped; other modes convert as Pillow does."""
    if image.mode.startswith("I;16") or image.mode == "I":
        samples = np.asarray(image).astype(np.float64)
        if image.mode.startswith("I;16") or samples.max(initial=0) > 255:
            samples = samples * (255 / 65535)
        grey = np.clip(np.rint(samples), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def is_16_bit(mode: str) -> bool:
    return mode.startswith("I;16") or mode == "I"
