"""Paired data: shared jitter, ranges, schedules, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from replication.config.schema import DataConfig
from replication.data.paired import (
    DataError,
    Schedule,
    TestPairs,
    TrainingPairs,
    to_uint8,
    to_unit_range,
)
from replication.data.synthetic.toy import colour_transform, write_pairs


def data_config(root: Path, **kw) -> DataConfig:
    return DataConfig(root=str(root.parent), dataset=root.name, image_size=32, **kw)


def as_uint8_hwc(t: torch.Tensor) -> np.ndarray:
    return to_uint8(t).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_jitter_is_shared_by_both_halves(toy_dataset, direction):
    # B = colour_transform(A) pixel by pixel, so the pair survives jitter only if both
    # halves get the same crop and the same flip.
    data = TrainingPairs(data_config(toy_dataset, direction=direction), batch_size=3, seed=1)
    flips_seen = set()
    for step in range(12):
        x, y = data.batch(step, torch.device("cpu"))
        a, b = (x, y) if direction == "AtoB" else (y, x)
        for ai, bi in zip(a, b):
            assert np.array_equal(colour_transform(as_uint8_hwc(ai)), as_uint8_hwc(bi))
        _, flips = data.schedule.jitter(step, len(x), data.folder.size, 32)
        flips_seen.update(flips.tolist())
    assert flips_seen == {True, False}


def test_jitter_size_scales_with_image_size(toy_dataset):
    # paper: 256 -> resize 286, crop 256; 32 -> 286/256*32 = 35.75 -> 36
    assert DataConfig(image_size=256).jitter_size == 286
    data = TrainingPairs(data_config(toy_dataset), batch_size=1, seed=0)
    assert data.folder.size == 36
    x, y = data.batch(0, torch.device("cpu"))
    assert x.shape == y.shape == (1, 3, 32, 32)
    offsets = torch.cat([data.schedule.jitter(s, 1, 36, 32)[0] for s in range(200)])
    assert offsets.min() == 0 and offsets.max() == 4  # every crop position is reachable


def test_no_jitter_keeps_whole_image(toy_dataset):
    cfg = data_config(toy_dataset, jitter=False, flip=False, direction="AtoB")
    data = TrainingPairs(cfg, batch_size=1, seed=0)
    assert data.folder.size == 32
    x, _ = data.batch(0, torch.device("cpu"))
    index = int(data.schedule.indices(0)[0])
    original = np.asarray(Image.open(data.folder.files[index]))[:, :32]
    assert np.array_equal(as_uint8_hwc(x[0]), original)


def test_pixel_range_maps_0_255_to_minus1_plus1():
    pixels = torch.tensor([0, 255, 127], dtype=torch.uint8)
    assert torch.allclose(to_unit_range(pixels), torch.tensor([-1.0, 1.0, 127 / 127.5 - 1]))
    assert torch.equal(to_uint8(to_unit_range(pixels)), pixels)


def test_schedule_visits_every_pair_once_per_epoch():
    schedule = Schedule(num_pairs=10, batch_size=3, seed=0)
    assert schedule.steps_per_epoch == 4  # 3+3+3+1: the short last batch is kept
    for epoch in range(3):
        seen = torch.cat([schedule.indices(epoch * 4 + s) for s in range(4)])
        assert sorted(seen.tolist()) == list(range(10))
    other = Schedule(num_pairs=10, batch_size=3, seed=1)
    assert not torch.equal(torch.cat([schedule.indices(s) for s in range(4)]),
                           torch.cat([other.indices(s) for s in range(4)]))


def test_test_pairs_cover_whole_split_in_order(toy_dataset):
    pairs = TestPairs(data_config(toy_dataset, direction="AtoB"), "test")
    assert pairs.names == ["0", "1", "2"]
    seen = [i for indices, _, _ in pairs.batches(2, torch.device("cpu")) for i in indices]
    assert seen == [0, 1, 2]


def test_in_memory_and_from_disk_agree(toy_dataset):
    in_ram = TrainingPairs(data_config(toy_dataset, in_memory="always"), 2, seed=3)
    on_disk = TrainingPairs(data_config(toy_dataset, in_memory="never"), 2, seed=3)
    assert in_ram.folder.pixels is not None and on_disk.folder.pixels is None
    for step in range(5):
        assert torch.equal(in_ram.batch(step, torch.device("cpu"))[0],
                           on_disk.batch(step, torch.device("cpu"))[0])


# --- bad inputs: one line naming the file -------------------------------------------

def _error(folder: Path) -> str:
    with pytest.raises(DataError) as info:
        TrainingPairs(data_config(folder), batch_size=1, seed=0)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_corrupt_image_names_file(toy_dataset):
    (toy_dataset / "train" / "9.jpg").write_bytes(b"not an image at all")
    assert "9.jpg" in _error(toy_dataset) and "corrupt" in _error(toy_dataset)


def test_truncated_jpeg_names_file(tmp_path):
    root = write_pairs(tmp_path / "trunc", {"train": 2}, suffix=".jpg")
    path = root / "train" / "1.jpg"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert "1.jpg" in _error(root)


def test_odd_width_pair_names_file(toy_dataset):
    Image.new("RGB", (65, 32)).save(toy_dataset / "train" / "odd.png")
    message = _error(toy_dataset)
    assert "odd.png" in message and "65x32" in message


def test_grayscale_names_file(toy_dataset):
    Image.new("L", (64, 32)).save(toy_dataset / "train" / "gray.png")
    assert "gray.png" in _error(toy_dataset) and "grayscale" in _error(toy_dataset)


def test_empty_and_missing_split(tmp_path):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    assert "no .jpg/.png" in _error(tmp_path / "empty")
    assert "not found" in _error(tmp_path / "missing")


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK"])
def test_pairs_that_are_not_rgb_are_converted_with_one_warning(mode, tmp_path, capsys):
    # documented choice (README): converted to RGB, one warning line naming a file and
    # its mode; the pixels are Pillow's own RGB conversion of the file
    rgb = write_pairs(tmp_path / "rgb", {"test": 3}, suffix=".png")
    other = tmp_path / "other" / "test"
    other.mkdir(parents=True)
    suffix = ".jpg" if mode == "CMYK" else ".png"  # PNG cannot hold CMYK
    for path in sorted((rgb / "test").iterdir()):
        Image.open(path).convert(mode).save(other / f"{path.stem}{suffix}")
    pairs = TestPairs(data_config(other.parent), "test")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: 3 of 3 pairs")
    assert f"0{suffix} is {mode}" in err[0] and ("alpha dropped" in err[0]) == (mode == "RGBA")
    for i, path in enumerate(sorted(other.iterdir())):  # 32 px halves: no resize
        expected = np.asarray(Image.open(path).convert("RGB"))
        got = pairs.folder.batch(torch.tensor([i]))[0].numpy().transpose(1, 2, 0)
        assert np.array_equal(got, np.concatenate([expected[:, :32], expected[:, 32:]], axis=2))


def flat_folder(toy_dataset: Path, tmp_path: Path) -> Path:
    import shutil
    flat = tmp_path / "flat"
    shutil.copytree(toy_dataset / "train", flat)
    return flat


def test_a_flat_folder_is_both_splits(toy_dataset, tmp_path):
    import argparse

    from replication.stages.arguments import config_from_args
    flat = flat_folder(toy_dataset, tmp_path)
    args = argparse.Namespace(experiment=None, data=str(flat), params="params.yaml",
                              overrides=["data.image_size=32"])
    cfg = config_from_args(args)
    assert (cfg.data.root, cfg.data.dataset, cfg.name) == (str(tmp_path), "flat", "flat")
    assert cfg.data.train_split == cfg.data.test_split == "."
    train = TrainingPairs(cfg.data, batch_size=2, seed=0)
    assert len(train) == 8 and all(p.parent == flat for p in train.folder.files)
    assert TestPairs(cfg.data, cfg.data.test_split).names == [str(i) for i in range(8)]
    # a folder with split subfolders keeps them; --set still wins
    args.data = str(toy_dataset)
    assert config_from_args(args).data.train_split == "train"
    args.data, args.overrides = str(flat), ["data.image_size=32", "data.test_split=val"]
    assert config_from_args(args).data.test_split == "val"


def test_a_folder_with_neither_images_nor_splits_is_one_line(tmp_path, capsys, monkeypatch):
    from replication import cli
    monkeypatch.chdir(tmp_path)  # nothing may be written into the repository
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    code = cli.main(["train", "--data", str(empty), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err and str(empty) in err
