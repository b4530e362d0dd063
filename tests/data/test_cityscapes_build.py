"""Cityscapes pairs from tiny fake zips in the official layout."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from replication.config import datasets
from replication.data import download
from replication.data.cityscapes_build import (
    CityscapesBuildError,
    build_cityscapes_pairs,
)
from replication.data.download import download_dataset
from tests.helpers.http_fixtures import closed_port_url

# (split, city, frame id) listed unsorted on purpose: pairs must follow sorted frame order
FRAMES = [("train", "bochum", "bochum_000000_000313"),
          ("train", "aachen", "aachen_000000_000019"),
          ("val", "lindau", "lindau_000000_000019"),
          ("val", "frankfurt", "frankfurt_000000_000294")]
W, H = 64, 32
RED, BLUE = (255, 0, 0), (0, 0, 255)


def frame_colour(i: int) -> tuple[int, int, int]:
    return (40 + 50 * i, 200 - 40 * i, 90)  # one distinct colour per frame


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def photo(i: int) -> np.ndarray:
    out = np.zeros((H, W, 3), np.uint8)
    out[:, : W // 2] = frame_colour(i)  # left half: the frame's colour
    out[:, W // 2:] = (250, 250, 250)
    return out


def colour_label(i: int) -> np.ndarray:
    # RGBA like the official *_gtFine_color.png. Left: 1-pixel red/blue columns, which a
    # nearest 4x downscale keeps pure and a bicubic one blends to purple. Right: solid.
    out = np.full((H, W, 4), 255, np.uint8)
    out[:, 0:W // 2:2, :3] = RED
    out[:, 1:W // 2:2, :3] = BLUE
    out[:, W // 2:, :3] = frame_colour(i)[::-1]
    return out


def label_ids(i: int) -> np.ndarray:
    return np.random.default_rng(i).integers(0, 34, (H, W), dtype=np.uint8)


def write_zips(folder, frames=FRAMES, drop=()):
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "leftImg8bit_trainvaltest.zip", "w") as z:
        z.writestr("README", "fake")
        z.writestr("leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png", png(photo(0)))
        for i, (split, city, frame) in enumerate(frames):
            z.writestr(f"leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png", png(photo(i)))
    with zipfile.ZipFile(folder / "gtFine_trainvaltest.zip", "w") as z:
        for i, (split, city, frame) in enumerate(frames):
            base = f"gtFine/{split}/{city}/{frame}_gtFine_"
            for kind, data in (("color", colour_label(i)), ("labelIds", label_ids(i))):
                if base + kind not in drop:
                    z.writestr(f"{base}{kind}.png", png(data))
    return folder


def load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_pairs_are_photo_then_colour_label_in_sorted_frame_order(tmp_path):
    out = build_cityscapes_pairs(write_zips(tmp_path / "zips"), tmp_path / "data", size=16,
                                 label_resample="nearest", progress=False)
    assert out == tmp_path / "data" / "cityscapes"
    assert (out / "val_frames.txt").read_text().splitlines() == \
        ["1.jpg frankfurt_000000_000294", "2.jpg lindau_000000_000019"]
    assert (out / "train_frames.txt").read_text().splitlines() == \
        ["1.jpg aachen_000000_000019", "2.jpg bochum_000000_000313"]
    by_frame = {frame: i for i, (_, _, frame) in enumerate(FRAMES)}
    for split, lines in (("train", ["aachen_000000_000019", "bochum_000000_000313"]),
                         ("val", ["frankfurt_000000_000294", "lindau_000000_000019"])):
        assert sorted(p.name for p in (out / split).iterdir()) == ["1.jpg", "2.jpg"]
        for n, frame in enumerate(lines, start=1):
            pair = load(out / split / f"{n}.jpg")
            assert pair.shape == (16, 32, 3)
            i = by_frame[frame]
            # block interiors survive any resampling; JPEG q100 moves values by a few levels
            assert np.abs(pair[2:-2, 1:6] - frame_colour(i)).max() <= 4  # photo, left
            assert np.abs(pair[2:-2, 10:15] - 250).max() <= 4
            assert np.abs(pair[2:-2, 25:31] - frame_colour(i)[::-1]).max() <= 4  # label
            stripes = pair[2:-2, 17:22]  # nearest: all red or all blue, never purple
            assert min(np.abs(stripes - c).max() for c in (RED, BLUE)) <= 4


def test_val_label_ids_are_copied_unchanged(tmp_path):
    out = build_cityscapes_pairs(write_zips(tmp_path / "zips"), tmp_path / "data", size=16,
                                 progress=False)
    for i, (split, city, frame) in enumerate(FRAMES):
        copied = out / "gtFine" / split / city / f"{frame}_gtFine_labelIds.png"
        assert copied.is_file() == (split == "val")  # only val is kept (FCN score)
        if split == "val":
            assert np.array_equal(np.asarray(Image.open(copied)), label_ids(i))
    marker = json.loads((out / ".verified.json").read_text())
    assert marker["counts"] == {"train": 2, "val": 2} and marker["label_ids"] is True


def test_labels_are_resized_bicubic_by_default_as_the_reference_script(tmp_path):
    # prepare_cityscapes_dataset.py resizes the colour labels with Pillow's default
    # (bicubic): a 4x downscale of thin red/blue stripes blends them (purple), as in the
    # upstream archive's smooth label halves
    out = build_cityscapes_pairs(write_zips(tmp_path / "zips"), tmp_path / "data", size=16,
                                 progress=False)
    stripes = load(out / "train" / "1.jpg")[2:-2, 17:22]
    assert min(np.abs(stripes - c).max() for c in (RED, BLUE)) > 60
    assert json.loads((out / ".verified.json").read_text())["label_resample"] == "bicubic"


def test_download_section_switches_the_labels_to_nearest(tmp_path):
    from replication.config.params import Params
    from replication.config.schema import DownloadConfig
    from replication.core.errors import ConfigError
    assert Params.of({}).section(DownloadConfig, "download").cityscapes_label_resample == "bicubic"
    nearest = Params.of({"download": {"cityscapes_label_resample": "nearest"}}).section(
        DownloadConfig, "download")
    assert nearest.cityscapes_label_resample == "nearest"
    with pytest.raises(ConfigError, match="cityscapes_label_resample='box'"):
        Params.of({"download": {"cityscapes_label_resample": "box"}}).section(
            DownloadConfig, "download")


def test_missing_colour_label_names_the_member_and_writes_nothing(tmp_path):
    missing = "gtFine/val/lindau/lindau_000000_000019_gtFine_color"
    zips = write_zips(tmp_path / "zips", drop={missing})
    with pytest.raises(CityscapesBuildError, match=f"has no {missing}.png"):
        build_cityscapes_pairs(zips, tmp_path / "data", size=16, progress=False)
    assert not (tmp_path / "data" / "cityscapes").exists()


def test_count_mismatch_and_missing_zip_are_clear_errors(tmp_path):
    zips = write_zips(tmp_path / "zips")
    with pytest.raises(CityscapesBuildError, match="has 2 train photos, expected 2975"):
        build_cityscapes_pairs(zips, tmp_path / "data", progress=False,
                               expected_counts={"train": 2975, "val": 500})
    assert not (tmp_path / "data" / "cityscapes").exists()
    (zips / "gtFine_trainvaltest.zip").unlink()
    with pytest.raises(CityscapesBuildError,
                       match="gtFine_trainvaltest.zip not found.*cityscapes-dataset.com"):
        build_cityscapes_pairs(zips, tmp_path / "data", progress=False)


def test_download_builds_from_official_zips_instead_of_the_archive(tmp_path, monkeypatch):
    info = dataclasses.replace(datasets.DATASETS["cityscapes"], splits={"train": 2, "val": 2})
    monkeypatch.setitem(datasets.DATASETS, "cityscapes", info)
    root = tmp_path / "data"
    # an earlier install from the upstream archive: no labelIds, so the zips replace it
    (root / "cityscapes").mkdir(parents=True)
    (root / "cityscapes" / ".verified.json").write_text(
        json.dumps({"counts": {"train": 2, "val": 2}, "label_ids": False}))
    write_zips(tmp_path / "datasets" / "cityscapes")
    monkeypatch.setattr(download, "CITYSCAPES_ZIPS_DIR", tmp_path / "datasets" / "cityscapes")
    out = download_dataset("cityscapes", root, mirror=closed_port_url(), progress=False)
    label_ids_png = out / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelIds.png"
    assert label_ids_png.is_file()
    assert Image.open(out / "val" / "1.jpg").size == (512, 256)
    stamp = (out / "val" / "1.jpg").stat().st_mtime_ns
    assert download_dataset("cityscapes", root, mirror=closed_port_url(), progress=False) == out
    assert (out / "val" / "1.jpg").stat().st_mtime_ns == stamp  # second call: no rebuild
