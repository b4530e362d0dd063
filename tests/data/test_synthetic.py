"""Synthetic stand-in datasets: upstream layout, determinism, decodable labels, texture."""

import argparse
import dataclasses
import gzip
import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from replication.config import datasets
from replication.core.errors import ConfigError, DataError
from replication.data import synthetic
from replication.data.cityscapes_labels import CLASS_NAMES, PALETTE
from replication.data.download import download_dataset
from replication.data.synthetic import toy
from replication.stages import synth as synth_stage

SIZE = 64
# Split names of the upstream archives (docs/datasets.md), written out independently of the module.
UPSTREAM_SPLITS = {"cityscapes": {"train", "val"}, "facades": {"train", "val", "test"},
                   "maps": {"train", "val"}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """All three datasets at their default counts, seed 0 (about 3 s)."""
    root = tmp_path_factory.mktemp("datasets")
    for name in datasets.PAPER_DATASETS:
        synthetic.make_synthetic(name, root, size=SIZE, seed=0)
    return root


def halves(path):
    pair = np.asarray(Image.open(path).convert("RGB"))
    return pair[:, :SIZE], pair[:, SIZE:]


def nearest_colour(rgb, palette):
    """Index of the nearest palette colour per pixel (squared RGB distance)."""
    diff = rgb[..., None, :].astype(np.int32) - palette.astype(np.int32)
    return (diff ** 2).sum(-1).argmin(-1)


def decoded_split(root, split):
    files = sorted((root / "cityscapes" / split).glob("*.jpg"), key=lambda p: int(p.stem))
    return [(p, *halves(p)) for p in files]


def file_hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- layout -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cityscapes", "facades", "maps"])
def test_layout_matches_upstream_archives(root, name):
    folder = root / name
    splits = {p.name for p in folder.iterdir() if p.is_dir()}
    assert splits == UPSTREAM_SPLITS[name]
    marker = json.loads((folder / ".verified.json").read_text())
    assert marker["synthetic"] is True and marker["seed"] == 0
    for split in splits:
        files = sorted(p.name for p in (folder / split).iterdir())
        expected = 100 if split == "train" else 30
        assert files == sorted(f"{n}.jpg" for n in range(1, expected + 1))
        assert marker["counts"][split] == expected
        for name_ in files[:5] + files[-2:]:
            with Image.open(folder / split / name_) as im:
                assert im.format == "JPEG" and im.size == (2 * SIZE, SIZE) and im.mode == "RGB"


def test_every_file_is_a_pair_of_the_right_size(root):
    for path in root.rglob("*.jpg"):
        with Image.open(path) as im:
            assert (im.format, im.size) == ("JPEG", (2 * SIZE, SIZE)), path


def test_counts_and_size_are_honoured(tmp_path):
    out = synthetic.make_synthetic("facades", tmp_path, size=32,
                                   counts={"train": 3, "val": 1, "test": 2})
    assert out == tmp_path / "facades"
    assert {s: len(list((out / s).glob("*.jpg"))) for s in ("train", "val", "test")} == \
        {"train": 3, "val": 1, "test": 2}
    with Image.open(out / "test" / "2.jpg") as im:
        assert im.size == (64, 32)


# --- determinism ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cityscapes", "facades", "maps"])
def test_same_seed_gives_identical_bytes_other_seed_differs(tmp_path, name):
    counts = {split: 2 for split in UPSTREAM_SPLITS[name]}
    for sub, seed in (("a", 7), ("b", 7), ("c", 8)):
        synthetic.make_synthetic(name, tmp_path / sub, counts=counts, seed=seed)
    a, b, c = (file_hashes(tmp_path / sub / name) for sub in "abc")
    assert a == b
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert len(jpgs) == 2 * len(counts)
    assert all(a[k] != c[k] for k in jpgs)
    assert len({a[k] for k in jpgs}) == len(jpgs)  # no two images alike within a set


# --- cityscapes-like labels -------------------------------------------------------------

def test_label_half_decodes_to_the_rendered_train_ids(root):
    hits = total = 0
    for path, _, label_half in decoded_split(root, "val"):
        rng = synthetic.image_rng(0, "cityscapes", "val", int(path.stem))
        _, train_ids = synthetic.cityscapes.render_cityscapes_like(rng, SIZE)
        hits += (nearest_colour(label_half, PALETTE) == train_ids).sum()
        total += train_ids.size
    assert hits / total >= 0.95


def test_training_split_shows_many_classes_sky_above_road(root):
    decoded = np.stack([nearest_colour(b, PALETTE) for _, _, b in decoded_split(root, "train")])
    share = np.bincount(decoded.ravel(), minlength=len(CLASS_NAMES)) / decoded.size
    present = {CLASS_NAMES[i] for i in np.flatnonzero(share >= 0.001)}
    assert len(present) >= 8, present
    rows = np.broadcast_to(np.arange(SIZE)[None, :, None], decoded.shape)
    sky, road = CLASS_NAMES.index("sky"), CLASS_NAMES.index("road")
    assert rows[decoded == sky].mean() < rows[decoded == road].mean()
    assert rows[decoded == sky].mean() < SIZE / 2 < rows[decoded == road].mean()


def test_label_colours_are_the_official_cityscapes_colours():
    # the published Cityscapes colours of road and sky (cityscapesscripts label table)
    pair = synthetic.render_pair(0, "cityscapes", "train", 1, SIZE)
    labels = synthetic.cityscapes.render_cityscapes_like(
        synthetic.image_rng(0, "cityscapes", "train", 1), SIZE)[1]
    label_half = pair[:, SIZE:]
    assert (label_half[labels == CLASS_NAMES.index("road")] == (128, 64, 128)).all()
    assert (label_half[labels == CLASS_NAMES.index("sky")] == (70, 130, 180)).all()


# --- the photo is not a function of the labels ------------------------------------------

def test_texture_within_a_class_is_far_above_jpeg_noise(root):
    """Inside building regions the photo varies; the flat label colour only by JPEG noise."""
    building = CLASS_NAMES.index("building")
    ratios = []
    for _, photo, label_half in decoded_split(root, "val"):
        labels = nearest_colour(label_half, PALETTE)
        inner = ndimage.binary_erosion(labels == building, iterations=2)  # away from edges
        if inner.sum() < 50:
            continue
        photo_std = photo[inner].astype(float).std(axis=0).mean()
        jpeg_std = label_half[inner].astype(float).std(axis=0).mean()
        ratios.append(photo_std / max(jpeg_std, 0.5))
        assert photo_std > 10
    assert len(ratios) >= 10 and np.median(ratios) > 5


def test_same_labels_painted_twice_give_different_photos():
    scene = synthetic.cityscapes.cityscapes_scene(np.random.default_rng(11), SIZE)
    first = synthetic.scene.paint(np.random.default_rng(1), scene).astype(float)
    second = synthetic.scene.paint(np.random.default_rng(2), scene).astype(float)
    labels = scene.label_array()
    for cls in ("building", "road", "sky"):
        mask = labels == CLASS_NAMES.index(cls)
        assert mask.sum() > 100
        assert np.abs(first[mask] - second[mask]).mean() > 8, cls


def test_map_and_facade_label_halves_are_flat_palette_colours(root):
    for name, palette in (("facades", synthetic.facades.FACADE_PALETTE),
                          ("maps", synthetic.maps.MAP_PALETTE)):
        for path in sorted((root / name / "val").glob("*.jpg"))[:10]:
            _, label_half = halves(path)
            nearest = palette[nearest_colour(label_half, palette)].astype(int)
            close = np.abs(label_half.astype(int) - nearest).max(-1) <= 12
            assert close.mean() > 0.9, path


# --- atomicity, refusals and bad input --------------------------------------------------

def test_failure_mid_generation_leaves_nothing(tmp_path, monkeypatch):
    real_paint, calls = synthetic.cityscapes.paint, []

    def failing_paint(rng, scene):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("disk on fire")
        return real_paint(rng, scene)
    monkeypatch.setattr(synthetic.cityscapes, "paint", failing_paint)
    with pytest.raises(RuntimeError, match="disk on fire"):
        synthetic.make_synthetic("cityscapes", tmp_path, counts={"train": 4, "val": 4})
    assert list(tmp_path.iterdir()) == []


def test_regenerating_replaces_a_synthetic_folder(tmp_path):
    synthetic.make_synthetic("maps", tmp_path, counts={"train": 3, "val": 1})
    synthetic.make_synthetic("maps", tmp_path, counts={"train": 1, "val": 1})
    assert sorted(p.name for p in (tmp_path / "maps" / "train").iterdir()) == ["1.jpg"]


def test_refuses_to_overwrite_a_real_dataset(tmp_path):
    real = tmp_path / "facades" / "train"
    real.mkdir(parents=True)
    (real / "1.jpg").write_bytes(b"real data")
    with pytest.raises(DataError, match="not a synthetic dataset"):
        synthetic.make_synthetic("facades", tmp_path, counts={"train": 1, "val": 1, "test": 1})
    assert (real / "1.jpg").read_bytes() == b"real data"


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "shoes2edges"}, "unknown synthetic dataset"),  # not in the registry
    ({"counts": {"test": 3}}, "no split 'test'"),
    ({"counts": {"train": 0}}, "must be an integer >= 1"),
    ({"size": 8}, "size=8"),
    ({"seed": -1}, "seed=-1"),
    ({"quality": 101}, "quality=101"),
])
def test_bad_requests_fail_with_one_line(tmp_path, kwargs, message):
    args = {"name": "cityscapes", **kwargs}
    with pytest.raises(ConfigError, match=message) as err:
        synthetic.make_synthetic(args.pop("name"), tmp_path, **args)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_all_three(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_stage.add_arguments(parser)
    args = parser.parse_args(["all", "--root", str(tmp_path), "--size", "16",
                              "--train", "2", "--test", "1", "--seed", "4"])
    assert synth_stage.run(args) == 0
    for name, splits in UPSTREAM_SPLITS.items():
        marker = json.loads((tmp_path / name / ".verified.json").read_text())
        assert marker["counts"] == {s: 2 if s == "train" else 1 for s in splits}
        assert marker["seed"] == 4 and marker["pair_size"] == [32, 16]
    assert "facades" in capsys.readouterr().out


# --- upstream archives ------------------------------------------------------------------

SMALL = {"train": 3, "val": 2, "test": 2}


def small_counts(name):
    return {split: SMALL[split] for split in UPSTREAM_SPLITS[name]}


def expected_members(name, counts):
    """Upstream order: the registry's split order, then n = 1, 2, ..."""
    return [f"{name}/{split}/{n}.jpg" for split in datasets.DATASETS[name].splits
            if split in counts for n in range(1, counts[split] + 1)]


def read_archive(path) -> dict[str, bytes]:
    """Every member of a small archive, in order; gzip checks CRC and length on the way."""
    with gzip.open(path) as gz:
        data = gz.read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        assert all(m.isfile() for m in tar.getmembers())
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def image_size(data: bytes) -> tuple:
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # every pixel decodes
        return im.format, im.mode, im.size


def test_default_archive_has_the_upstream_counts_and_geometry(tmp_path):
    """facades at full size (about 1 s): names and one image header per split."""
    info = datasets.DATASETS["facades"]
    path = synthetic.write_archive("facades", tmp_path)
    assert path == tmp_path / "facades.tar.gz"
    names, sizes = [], {}
    with tarfile.open(path, mode="r|gz") as tar:  # one streaming pass
        for member in tar:
            names.append(member.name)
            split = member.name.split("/")[1]
            if split not in sizes:
                sizes[split] = image_size(tar.extractfile(member).read())
    assert names == expected_members("facades", info.splits)
    assert {s: sum(n.split("/")[1] == s for n in names) for s in info.splits} == info.splits
    assert info.pair_size == (512, 256)
    assert sizes == {split: ("JPEG", "RGB", info.pair_size) for split in info.splits}


@pytest.mark.parametrize("name", ["cityscapes", "facades", "maps"])
def test_archive_members_decode_at_the_registry_pair_size(tmp_path, name):
    counts = small_counts(name)
    members = read_archive(synthetic.write_archive(name, tmp_path, counts=counts))
    assert list(members) == expected_members(name, counts)
    pair_size = datasets.DATASETS[name].pair_size
    assert pair_size == {"maps": (1200, 600)}.get(name, (512, 256))
    for member, data in members.items():
        assert image_size(data) == ("JPEG", "RGB", pair_size), member


def test_maps_label_half_is_flat_map_colours_at_full_size(tmp_path):
    members = read_archive(synthetic.write_archive("maps", tmp_path,
                                                   counts={"train": 1, "val": 1}))
    pair = np.asarray(Image.open(io.BytesIO(members["maps/val/1.jpg"])).convert("RGB"))
    label_half = pair[:, 600:]
    nearest = synthetic.maps.MAP_PALETTE[nearest_colour(label_half, synthetic.maps.MAP_PALETTE)]
    assert (np.abs(label_half.astype(int) - nearest).max(-1) <= 12).mean() > 0.9


def test_archive_bytes_are_deterministic_for_a_seed(tmp_path):
    def write(sub, seed):
        return synthetic.write_archive("cityscapes", tmp_path / sub, seed=seed,
                                       counts={"train": 2, "val": 1}).read_bytes()
    first = write("a", 5)
    assert first == write("b", 5)
    assert first != write("c", 6)


def test_archive_cycles_a_pool_of_distinct_scenes(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "ARCHIVE_POOL", 2)
    members = read_archive(synthetic.write_archive("facades", tmp_path,
                                                   counts={"train": 5, "val": 1, "test": 1}))
    train = [members[f"facades/train/{n}.jpg"] for n in range(1, 6)]
    assert train[0] != train[1]
    assert train[0] == train[2] == train[4] and train[1] == train[3]
    assert members["facades/val/1.jpg"] != train[0]  # every split draws its own scenes


def test_download_installs_a_written_archive(tmp_path, monkeypatch):
    """maps (1200x600) through the real install checks, at the counts of a tiny registry."""
    info = dataclasses.replace(datasets.DATASETS["maps"], splits={"train": 3, "val": 2})
    monkeypatch.setitem(datasets.DATASETS, "maps", info)
    archive = synthetic.write_archive("maps", tmp_path / "host")  # the registry's counts
    dest = download_dataset("maps", tmp_path / "data", archive=archive, progress=False)
    record = json.loads((dest / ".verified.json").read_text())
    assert record["counts"] == {"train": 3, "val": 2}
    assert record["pair_size"] == [1200, 600]
    assert sorted(p.name for p in (dest / "val").iterdir()) == ["1.jpg", "2.jpg"]


def test_archive_replaces_a_synthetic_one_but_never_a_real_download(tmp_path):
    counts = {"train": 1, "val": 1}
    first = synthetic.write_archive("maps", tmp_path, counts=counts, seed=1).read_bytes()
    assert synthetic.write_archive("maps", tmp_path, counts=counts, seed=2).read_bytes() != first
    real = tmp_path / "cityscapes.tar.gz"
    real.write_bytes(gzip.compress(b"an upstream download"))
    with pytest.raises(DataError, match="not a synthetic archive"):
        synthetic.write_archive("cityscapes", tmp_path, counts=counts)
    assert gzip.decompress(real.read_bytes()) == b"an upstream download"


def test_failure_mid_archive_leaves_nothing(tmp_path, monkeypatch):
    real_add, calls = synthetic._add_member, []

    def failing_add(tar, member, data):
        calls.append(member)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        real_add(tar, member, data)
    monkeypatch.setattr(synthetic, "_add_member", failing_add)
    with pytest.raises(RuntimeError, match="disk on fire"):
        synthetic.write_archive("cityscapes", tmp_path, counts={"train": 2, "val": 2})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, kwargs, message", [
    ("shoes2edges", {}, "unknown synthetic dataset"),  # not in the registry
    ("cityscapes", {"counts": {"test": 3}}, "no split 'test'"),
    ("maps", {"counts": {"train": 0}}, "must be an integer >= 1"),
    ("facades", {"seed": -1}, "seed=-1"),
    ("facades", {"quality": 101}, "quality=101"),
])
def test_bad_archive_requests_fail_with_one_line(tmp_path, name, kwargs, message):
    with pytest.raises(ConfigError, match=message) as err:
        synthetic.write_archive(name, tmp_path, **kwargs)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def cli(argv):
    parser = argparse.ArgumentParser()
    synth_stage.add_arguments(parser)
    return synth_stage.run(parser.parse_args(argv))


def test_cli_writes_all_three_archives(tmp_path, capsys):
    assert cli(["all", "--archives", str(tmp_path), "--train", "2", "--test", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for name, splits in UPSTREAM_SPLITS.items():
        path = tmp_path / f"{name}.tar.gz"
        counts = {s: 2 if s == "train" else 1 for s in datasets.DATASETS[name].splits}
        assert list(read_archive(path)) == expected_members(name, counts)
        line = next(line for line in lines if line.startswith(str(path)))
        assert str(counts) in line and f"{path.stat().st_size} bytes" in line
    assert not (tmp_path / "facades").exists()  # archives instead of folders


def test_cli_archive_counts_default_to_the_registry(tmp_path, monkeypatch, capsys):
    info = dataclasses.replace(datasets.DATASETS["facades"],
                               splits={"train": 2, "val": 1, "test": 3})
    monkeypatch.setitem(datasets.DATASETS, "facades", info)
    assert cli(["facades", "--archives", str(tmp_path), "--train", "1"]) == 0
    members = read_archive(tmp_path / "facades.tar.gz")
    assert list(members) == expected_members("facades", {"train": 1, "val": 1, "test": 3})


@pytest.mark.parametrize("argv, message", [
    (["--size", "32"], "--size does not apply to --archives"),
    (["--test", "0"], "must be an integer >= 1"),
])
def test_cli_bad_archive_options_fail_with_one_line(tmp_path, argv, message):
    with pytest.raises(ConfigError, match=message) as err:
        cli(["maps", "--archives", str(tmp_path), *argv])
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


# --- the generic stand-in: every other registry dataset ---------------------------------

GENERIC = [name for name in datasets.DATASETS if name not in synthetic.RENDERERS]


def test_every_registry_dataset_has_a_renderer():
    assert set(GENERIC) == {"edges2shoes", "edges2handbags", "night2day"}
    assert set(datasets.PAPER_DATASETS) == set(synthetic.RENDERERS) == set(UPSTREAM_SPLITS)
    assert set(datasets.PAPER_DATASETS) <= set(datasets.DATASETS)


@pytest.mark.parametrize("name", sorted(datasets.DATASETS))
def test_every_registry_dataset_writes_a_folder_at_the_right_geometry(tmp_path, name):
    counts = {split: 2 for split in datasets.DATASETS[name].splits}
    out = synthetic.make_synthetic(name, tmp_path, size=32, counts=counts, seed=3)
    assert out == tmp_path / name
    assert {p.name for p in out.iterdir() if p.is_dir()} == set(counts)
    marker = json.loads((out / ".verified.json").read_text())
    assert marker["counts"] == counts and marker["synthetic"] is True
    assert marker["pair_size"] == [64, 32]
    for path in out.rglob("*.jpg"):
        with Image.open(path) as im:
            im.load()
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (64, 32)), path


@pytest.mark.parametrize("name", GENERIC)
def test_generic_stand_in_is_deterministic_and_distinct(tmp_path, name):
    counts = {split: 2 for split in datasets.DATASETS[name].splits}
    for sub, seed in (("a", 7), ("b", 7), ("c", 8)):
        synthetic.make_synthetic(name, tmp_path / sub, size=32, counts=counts, seed=seed)
    a, b, c = (file_hashes(tmp_path / sub / name) for sub in "abc")
    assert a == b
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert len(jpgs) == 2 * len(counts)
    assert all(a[k] != c[k] for k in jpgs)
    assert len({a[k] for k in jpgs}) == len(jpgs)


def test_generic_stand_ins_differ_between_datasets():
    # two datasets with the same splits draw from different generator streams
    shoes = synthetic.render_pair(0, "edges2shoes", "train", 1, 32)
    handbags = synthetic.render_pair(0, "edges2handbags", "train", 1, 32)
    assert not np.array_equal(shoes, handbags)


@pytest.mark.parametrize("name", ["edges2shoes", "edges2handbags"])
def test_edges_half_is_black_outlines_on_white(name):
    pair = synthetic.render_pair(0, name, "val", 1, SIZE)
    edges, photo = pair[:, :SIZE], pair[:, SIZE:]  # registry: A = edges, B = photo
    assert set(np.unique(edges)) == {0, 255}
    assert (edges == edges[..., :1]).all()  # grey
    assert 0.01 < (edges[..., 0] == 0).mean() < 0.3
    assert photo.astype(float).std(axis=(0, 1)).mean() > 10  # a photo, not flat


def test_night_half_is_the_day_half_dimmed_and_quantised():
    pair = synthetic.render_pair(0, "night2day", "test", 1, SIZE)
    night, day = pair[:, :SIZE], pair[:, SIZE:]  # registry: A = night, B = day
    assert np.array_equal(night, synthetic.generic.night(day, None))
    assert night.mean() < day.mean()


@pytest.mark.parametrize("name", GENERIC)
def test_generic_archive_decodes_at_the_registry_pair_size(tmp_path, name):
    counts = {split: 2 for split in datasets.DATASETS[name].splits}
    members = read_archive(synthetic.write_archive(name, tmp_path, counts=counts))
    assert list(members) == expected_members(name, counts)
    pair_size = datasets.DATASETS[name].pair_size
    for member, data in members.items():
        assert image_size(data) == ("JPEG", "RGB", pair_size), member


def test_cli_writes_a_generic_stand_in_and_all_is_the_papers_three(tmp_path):
    base = ["--root", str(tmp_path), "--size", "16", "--train", "1", "--test", "1"]
    assert cli(["night2day", *base]) == 0
    marker = json.loads((tmp_path / "night2day" / ".verified.json").read_text())
    assert marker["counts"] == {"train": 1, "val": 1, "test": 1}
    assert cli(["all", *base]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        sorted([*datasets.PAPER_DATASETS, "night2day"])


# --- toy pairs: the tests' and the benchmark's learnable dataset ------------------------

def test_toy_pairs_b_is_exactly_a_channel_permutation_of_a(tmp_path):
    root = toy.write_pairs(tmp_path / "toy", {"train": 3, "test": 2}, size=24, seed=1)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png")) == \
        ["test/0.png", "test/1.png", "train/0.png", "train/1.png", "train/2.png"]
    for path in root.rglob("*.png"):
        pair = np.asarray(Image.open(path).convert("RGB"))
        assert pair.shape == (24, 48, 3)
        a, b = pair[:, :24], pair[:, 24:]
        assert np.array_equal(b, a[..., [2, 0, 1]])
        assert np.array_equal(b, toy.colour_transform(a))
        assert a.std() > 5  # blobs, not a flat colour


def test_toy_pairs_are_deterministic_per_seed(tmp_path):
    for sub, seed in (("a", 2), ("b", 2), ("c", 3)):
        toy.write_pairs(tmp_path / sub, {"train": 2}, size=16, seed=seed)
    a, b, c = (file_hashes(tmp_path / sub) for sub in "abc")
    assert a == b and a != c


def test_channel_permutation_commutes_with_a_per_channel_resize():
    a = toy.smooth_image(np.random.default_rng(0), 32)

    def resize(x):  # per channel, as the jitter resizes
        return np.stack([np.asarray(Image.fromarray(x[..., c]).resize((45, 45), Image.BICUBIC))
                         for c in range(3)], axis=-1)
    assert np.array_equal(resize(toy.colour_transform(a)), toy.colour_transform(resize(a)))
