"""Build the pix2pix Cityscapes pairs from the official Cityscapes zips (docs/datasets.md).

The labels licence needs a login, so users download `gtFine_trainvaltest.zip` and
`leftImg8bit_trainvaltest.zip` from https://www.cityscapes-dataset.com/downloads/ and
this module turns them into `<root>/cityscapes/<split>/<n>.jpg` = photo | colour label,
as the official PyTorch `prepare_cityscapes_dataset.py` does. It also keeps the val
`*_gtFine_labelIds.png` files at full resolution: the exact FCN-score protocol (docs/protocols.md)
scores against them. Everything is read straight from the zips.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from replication.config.datasets import VERIFIED_MARKER, is_installed_dataset
from replication.core.errors import ConfigError, DownloadError
from replication.core.fileio import atomic_dir, write_json, write_text
from replication.core.layout import DATASET_PROTECTED
from replication.data.images import TooManyPixels, open_image

PHOTOS_ZIP = "leftImg8bit_trainvaltest.zip"
LABELS_ZIP = "gtFine_trainvaltest.zip"
SPLITS = ("train", "val")
# "<n>.jpg <frame id>" per pair: which official frame (and, for val, which gtFine labelIds
# file the FCN-score reads) pair n is
FRAMES_FILE = "{split}_frames.txt"
VAL_FRAMES = FRAMES_FILE.format(split="val")
LOGIN_HINT = "download it from https://www.cityscapes-dataset.com/downloads/ (needs a login)"
_PHOTO = re.compile(r"leftImg8bit/(train|val)/([^/]+)/(\2_\d+_\d+)_leftImg8bit\.png")
# The reference's prepare_cityscapes_dataset.py: Image.resize with Pillow's default
# (bicubic) for photo AND labels; that is the default here (config.DownloadConfig), and
# "nearest" keeps pure palette colours in the label half.
_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}


class CityscapesBuildError(DownloadError):
    """A missing or broken official zip; the message says which and what to do."""


def official_zips(zips_dir: str | Path) -> tuple[Path, Path] | None:
    """(photos zip, labels zip) if both are in `zips_dir`, else None."""
    photos, labels = Path(zips_dir) / PHOTOS_ZIP, Path(zips_dir) / LABELS_ZIP
    return (photos, labels) if photos.is_file() and labels.is_file() else None


def build_cityscapes_pairs(zips_dir: str | Path, root: str | Path, size: int = 256,
                           expected_counts: dict[str, int] | None = None,
                           label_resample: str = "bicubic", progress: bool = True) -> Path:
    """Write `<root>/cityscapes/` from the official zips; return that folder."""
    if label_resample not in _RESAMPLE:
        raise ConfigError(f"label_resample={label_resample!r} is not one of {list(_RESAMPLE)}")
    photos_path, labels_path = _require_zips(Path(zips_dir))
    out = Path(root) / "cityscapes"
    with _open_zip(photos_path) as photos, _open_zip(labels_path) as labels:
        frames = {split: _frames(photos, split) for split in SPLITS}
        _check_counts(frames, expected_counts, photos_path)  # before the slow part
        with atomic_dir(out, "download", inputs=[photos_path, labels_path],
                        protected=DATASET_PROTECTED, own=is_installed_dataset) as tmp:
            for split in SPLITS:
                _write_pairs(photos, labels, split, frames[split], tmp / split, size,
                             _RESAMPLE[label_resample], progress)
                write_text(tmp / FRAMES_FILE.format(split=split),
                           "".join(f"{n}.jpg {f}\n" for n, (_, f) in _numbered(frames[split])))
            _copy_label_ids(labels, frames["val"], tmp)
            write_json(tmp / VERIFIED_MARKER, {
                "dataset": "cityscapes", "counts": {s: len(frames[s]) for s in SPLITS},
                "pair_size": [2 * size, size], "source": str(Path(zips_dir).resolve()),
                "label_ids": True, "label_resample": label_resample})
    return out


def _require_zips(zips_dir: Path) -> tuple[Path, Path]:
    for name in (PHOTOS_ZIP, LABELS_ZIP):
        if not (zips_dir / name).is_file():
            raise CityscapesBuildError(f"{zips_dir / name} not found; {LOGIN_HINT}")
    return zips_dir / PHOTOS_ZIP, zips_dir / LABELS_ZIP


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise CityscapesBuildError(f"{path} is not a readable zip ({err}); {LOGIN_HINT} again")


def _frames(photos: zipfile.ZipFile, split: str) -> list[tuple[str, str]]:
    """Sorted (city, frame id) of `split`'s photos: ("aachen", "aachen_000000_000019")."""
    found = (_PHOTO.fullmatch(n) for n in photos.namelist())
    return sorted((m[2], m[3]) for m in found if m and m[1] == split)


def _numbered(frames):
    return enumerate(frames, start=1)  # pair files 1.jpg, 2.jpg, ... in sorted frame order


def _check_counts(frames: dict, expected: dict[str, int] | None, photos_path: Path) -> None:
    for split in SPLITS:
        want = (expected or {}).get(split)
        if not frames[split] or (want is not None and len(frames[split]) != want):
            raise CityscapesBuildError(
                f"{photos_path} has {len(frames[split])} {split} photos, expected "
                f"{want or 'some'}; is it the complete {PHOTOS_ZIP}? {LOGIN_HINT}")


def _write_pairs(photos, labels, split, frames, out_dir, size, label_resample, progress):
    out_dir.mkdir(parents=True)
    for n, (city, frame) in tqdm(_numbered(frames), total=len(frames), disable=not progress,
                                 desc=f"cityscapes {split}", unit="img"):
        photo = _read_png(photos, f"leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png")
        colour = _read_png(labels, f"gtFine/{split}/{city}/{frame}_gtFine_color.png")
        pair = Image.new("RGB", (2 * size, size))
        pair.paste(photo.resize((size, size), Image.Resampling.BICUBIC), (0, 0))
        pair.paste(colour.resize((size, size), label_resample), (size, 0))
        # quality 100 and no chroma subsampling, as the official PyTorch script saves them
        pair.save(out_dir / f"{n}.jpg", format="JPEG", quality=100, subsampling=0)


def _read_png(zf: zipfile.ZipFile, member: str) -> Image.Image:
    # the colour labels are RGBA; RGB drops the (constant) alpha channel
    name = f"{zf.filename}: {member}"
    try:
        return open_image(io.BytesIO(_read_member(zf, member)), name, LOGIN_HINT).convert("RGB")
    except TooManyPixels as err:
        raise CityscapesBuildError(str(err)) from None


# Every official file read is one 2048x1024 frame (photo RGB, colour labels RGBA,
# labelIds L): twice its raw RGBA bytes plus 64 KiB of headers bounds any PNG of it,
# checked from the zip's directory before a member is decompressed.
MAX_MEMBER_BYTES = 2 * 2048 * 1024 * 4 + 64 * 1024


def _read_member(zf: zipfile.ZipFile, member: str) -> bytes:
    try:
        size = zf.getinfo(member).file_size
        if size > MAX_MEMBER_BYTES:
            raise CityscapesBuildError(
                f"{zf.filename}: {member} is {size:,} bytes, more than the {MAX_MEMBER_BYTES:,} "
                f"any 2048x1024 frame needs; is it the official {Path(zf.filename).name}? "
                f"{LOGIN_HINT}")
        return zf.read(member)  # zipfile reads no more than the size checked above
    except KeyError:
        raise CityscapesBuildError(f"{zf.filename} has no {member}; is it the complete "
                                   f"{Path(zf.filename).name}? {LOGIN_HINT}") from None
    except (zipfile.BadZipFile, OSError) as err:
        raise CityscapesBuildError(f"{zf.filename}: {member} is corrupt ({err}); "
                                   f"{LOGIN_HINT} again") from None


def _copy_label_ids(labels: zipfile.ZipFile, val_frames, out: Path) -> None:
    """Copy the val labelIds PNGs byte for byte (full 2048x1024, for the FCN score)."""
    for city, frame in val_frames:
        member = f"gtFine/val/{city}/{frame}_gtFine_labelIds.png"
        dest = out / member
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(_read_member(labels, member))
