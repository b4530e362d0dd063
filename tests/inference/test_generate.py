"""Generation: paper test-time behaviour (dropout on) by default, the whole split, names kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.training.test_train import make_config

from replication.inference.generate import generate
from replication.training import checkpoints
from replication.training.loop import train


@pytest.fixture
def trained(toy_dataset, tmp_path):
    train(make_config(toy_dataset, train={"iterations": 3}), 0, tmp_path / "run", progress=False)
    return tmp_path / "run" / "checkpoints" / "generator.pt"


def read_folder(folder) -> dict[str, np.ndarray]:
    """The images of an output folder (its .replication-output.json and index.html left out)."""
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def page_rows(page: Path) -> list[tuple[str, list[str]]]:
    """(file name, [image link, ...]) per row of a results page, links resolved from it."""
    import re
    rows = re.findall(r'<tr><td class="name">([^<]+)</td>(.*?)</tr>', page.read_text())
    return [(name, [str((page.parent / src).resolve()) + (f" {half}" if half else "")
                    for src, half in re.findall(
                        r'<img src="([^"]+)"(?: class="half" style="object-position:(\w+)")?',
                        cells)])
            for name, cells in rows]


def test_the_results_page_lists_each_file_input_output_target(trained, toy_dataset, tmp_path):
    # the reference's test_latest/index.html: one row per named test file; the inputs and
    # targets are the halves of the pair file (BtoA: input = right half), by relative links
    from replication.metrics.session import generated_files
    generate(trained, tmp_path / "out")
    rows = page_rows(tmp_path / "out" / "index.html")
    pairs = sorted((toy_dataset / "test").iterdir())
    assert rows == [(p.name, [f"{p.resolve()} right", str((tmp_path / "out" / f"{p.stem}.png")
                                                          .resolve()), f"{p.resolve()} left"])
                    for p in pairs]
    assert all(Path(link.split()[0]).is_file() for _, links in rows for link in links)
    assert "http" not in (tmp_path / "out" / "index.html").read_text()
    # scoring reads the test images' PNGs only: the page is no stray image
    assert [p.name for p in generated_files(tmp_path / "out", ["0", "1", "2"])] == [
        "0.png", "1.png", "2.png"]


def test_one_png_per_test_image_with_input_names(trained, tmp_path):
    summary = generate(trained, tmp_path / "out")
    images = read_folder(tmp_path / "out")
    assert list(images) == ["0.png", "1.png", "2.png"] and summary["images"] == 3
    assert all(im.shape == (32, 32, 3) and im.dtype == np.uint8 for im in images.values())


def test_dropout_is_on_at_test_time_by_default(trained, tmp_path):
    # paper §3.3: dropout stays on at test time, so two samples (dropout seeds) differ;
    # the same seed reproduces the same images.
    generate(trained, tmp_path / "a", seed=0)
    generate(trained, tmp_path / "b", seed=1)
    generate(trained, tmp_path / "c", seed=0)
    a, b, c = (read_folder(tmp_path / n) for n in "abc")
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    assert all(np.array_equal(a[k], c[k]) for k in a)


def test_eval_mode_turns_dropout_off(trained, tmp_path):
    generate(trained, tmp_path / "a", mode="eval", seed=0)
    generate(trained, tmp_path / "b", mode="eval", seed=1)
    a, b = read_folder(tmp_path / "a"), read_folder(tmp_path / "b")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_train_mode_uses_test_batch_statistics(trained, tmp_path):
    # BatchNorm in train mode normalises with the test batch: with dropout off, the
    # result of an image depends on its batch mates (batch 3) vs alone (batch 1).
    snapshot = checkpoints.load(trained, checkpoints.GENERATOR_FORMAT)
    snapshot["config"]["generator"]["dropout"] = "none"
    no_dropout = trained.with_name("nodrop.pt")
    torch.save(snapshot, no_dropout)
    generate(no_dropout, tmp_path / "alone", batch_size=1)
    generate(no_dropout, tmp_path / "batched", batch_size=3)
    a, b = read_folder(tmp_path / "alone"), read_folder(tmp_path / "batched")
    assert any(not np.array_equal(a[k], b[k]) for k in a)


def test_failed_generation_leaves_no_output(trained, tmp_path, monkeypatch):
    from replication.inference import generate as gen_module
    def broken(image, path):
        raise OSError("disk full")
    monkeypatch.setattr(gen_module, "save_png", broken)
    with pytest.raises(OSError):
        generate(trained, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


def test_a_full_disk_while_generating_is_one_line_and_keeps_the_earlier_output(
        trained, tmp_path, monkeypatch, capsys):
    import errno

    from replication import cli
    from replication.inference import generate as gen_module
    argv = ["generate", "--checkpoint", str(trained), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    before = read_folder(tmp_path / "out")

    def full(image, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(gen_module, "save_png", full)
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'out'}: could not be written (") and "\n" not in err
    assert "GiB free" in err
    assert read_folder(tmp_path / "out").keys() == before.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run", "toy"]  # no temporary


def test_wrong_file_is_refused_in_one_line(tmp_path):
    bogus = tmp_path / "g.pt"
    bogus.write_bytes(b"\x00garbage")
    with pytest.raises(checkpoints.CheckpointError) as info:
        generate(bogus, tmp_path / "out")
    assert "g.pt" in str(info.value) and "\n" not in str(info.value)


def test_cli_checkpoint_uses_its_own_task_settings(toy_dataset, tmp_path, capsys):
    # an AtoB, 32 px checkpoint on a folder: the paper defaults (BtoA, 256 px) must not
    # silently replace the checkpoint's direction and size
    from replication import cli
    train(make_config(toy_dataset, data={"direction": "AtoB"}, train={"iterations": 2}), 0,
          tmp_path / "run", progress=False)
    checkpoint = tmp_path / "run" / "checkpoints" / "generator.pt"
    argv = ["generate", "--checkpoint", str(checkpoint), "--data", str(toy_dataset)]
    assert cli.main([*argv, "--split", "test", "--out", str(tmp_path / "cli")]) == 0
    generate(checkpoint, tmp_path / "direct")  # the checkpoint's own data settings
    assert read_folder(tmp_path / "cli").keys() == read_folder(tmp_path / "direct").keys()
    for name, image in read_folder(tmp_path / "cli").items():
        assert np.array_equal(image, read_folder(tmp_path / "direct")[name]), name


@pytest.mark.parametrize("override", ["data.direction=BtoA", "data.image_size=64"])
def test_cli_override_contradicting_the_checkpoint_is_an_error(override, toy_dataset, tmp_path,
                                                                capsys):
    from replication import cli
    train(make_config(toy_dataset, data={"direction": "AtoB"}, train={"iterations": 2}), 0,
          tmp_path / "run", progress=False)
    checkpoint = tmp_path / "run" / "checkpoints" / "generator.pt"
    code = cli.main(["generate", "--checkpoint", str(checkpoint), "--data", str(toy_dataset),
                     "--set", override, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and override.split("=")[0] in err and str(checkpoint) in err
    assert "\n" not in err and not (tmp_path / "out").exists()


def test_max_images_generates_the_first_images_and_says_so(trained, tmp_path, capsys):
    summary = generate(trained, tmp_path / "out", max_images=2)
    assert sorted(read_folder(tmp_path / "out")) == ["0.png", "1.png"]
    assert summary["images"] == 2 and summary["max_images"] == 2
    assert "deviation: generate.max_images=2" in capsys.readouterr().out


# --- progress lines ---------------------------------------------------------------------

def test_progress_lines_come_by_wall_time_not_per_image(trained, tmp_path, capsys, monkeypatch):
    import re

    generate(trained, tmp_path / "quiet")  # a quick run: no progress line at all
    assert capsys.readouterr().out == ""
    from replication.core import progress
    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.0)  # every batch is "30 s later"
    generate(trained, tmp_path / "out", name="toy seed 0")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # after images 1 and 2; the caller prints the end line
    for done, line in zip((1, 2), lines):
        assert re.fullmatch(rf"generate toy seed 0: {done}/3 images, [0-9.e+]+ images/s, "
                            r"ETA [0-9.]+ (s|min|h)", line), line


def test_durations_read_naturally():
    from replication.core.progress import format_duration
    assert [format_duration(s) for s in (0.2, 45, 130, 3000, 7200)] == \
        ["1 s", "45 s", "2 min", "50 min", "2.0 h"]


# --- translate --------------------------------------------------------------------------

def test_translate_matches_generate_on_the_same_inputs(trained, toy_dataset, tmp_path):
    # a 32 px input IS the model's size: no resize, so translate must give generate's
    # images (the checkpoint is BtoA: x is the right half of each test pair)
    from replication.inference.translate import translate
    photos = tmp_path / "photos"
    photos.mkdir()
    for pair in sorted((toy_dataset / "test").iterdir()):
        Image.open(pair).crop((32, 0, 64, 32)).save(photos / f"{pair.stem}.png")
    generate(trained, tmp_path / "generated", seed=3)
    summary = translate(trained, photos, tmp_path / "translated", seed=3)
    assert summary["images"] == 3 and summary["mode"] == "train"
    a, b = read_folder(tmp_path / "generated"), read_folder(tmp_path / "translated")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_translate_any_size_and_mode_back_at_the_input_size(trained, tmp_path, capsys):
    from replication.inference.translate import translate
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 70, 3), np.uint8)).save(photos / "wide.jpg")
    Image.fromarray(rng.integers(0, 256, (50, 50, 4), np.uint8), "RGBA").save(photos / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (16, 24), np.uint8), "L").save(photos / "grey.png")
    (photos / "notes.txt").write_text("not an image")
    translate(trained, photos, tmp_path / "out", mode="eval", seed=0)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 of 3 images" in err and "converted to RGB" in err
    out = {p.name: Image.open(p) for p in sorted((tmp_path / "out").glob("*.png"))}
    assert sorted(out) == ["grey.png", "rgba.png", "wide.png"]
    # its results page: input | output per file, by name
    assert page_rows(tmp_path / "out" / "index.html") == [
        (name, [str((photos / name).resolve()), str((tmp_path / "out" / f"{stem}.png").resolve())])
        for name, stem in (("grey.png", "grey"), ("rgba.png", "rgba"), ("wide.jpg", "wide"))]
    assert out["wide.png"].size == (70, 40) and out["grey.png"].size == (24, 16)
    assert all(im.mode == "RGB" for im in out.values())
    translate(trained, photos, tmp_path / "again", mode="eval", seed=1)  # eval: no dropout
    again = read_folder(tmp_path / "again")
    assert all(np.array_equal(np.asarray(out[k]), again[k]) for k in out)


@pytest.mark.parametrize("problem", ["missing", "empty", "corrupt", "same-stem", "in-is-out"])
def test_translate_input_errors_are_one_line(problem, trained, tmp_path, capsys):
    from replication import cli
    photos = tmp_path / "photos"
    if problem != "missing":
        photos.mkdir()
    if problem in ("corrupt", "same-stem", "in-is-out"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "good.png")
    if problem == "corrupt":
        (photos / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    if problem == "same-stem":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "good.jpg")
    out = photos if problem == "in-is-out" else tmp_path / "out"
    code = cli.main(["translate", "--checkpoint", str(trained), "--in", str(photos),
                     "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err
    named = {"corrupt": "bad.jpg", "same-stem": "'good'", "in-is-out": "--out"}
    assert named.get(problem, str(photos)) in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    if problem == "in-is-out":
        assert (photos / "good.png").is_file()


# --- flat folders -----------------------------------------------------------------------

def test_generate_on_a_flat_folder(trained, toy_dataset, tmp_path):
    # the A|B test pairs directly in a folder (no <split>/ subfolder)
    import shutil

    from replication import cli
    flat = tmp_path / "flat"
    shutil.copytree(toy_dataset / "test", flat)
    assert cli.main(["generate", "--checkpoint", str(trained), "--data", str(flat),
                     "--out", str(tmp_path / "out")]) == 0
    generate(trained, tmp_path / "direct")  # the checkpoint's own test split
    a, b = read_folder(tmp_path / "out"), read_folder(tmp_path / "direct")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# --- output folders: nothing the command did not write is replaced ---------------------

def cli_error(argv, capsys) -> str:
    from replication import cli
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def tree(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("where", ["parent of --in", "checkpoint folder", "a file",
                                   "unrelated folder", "inside --in"])
def test_translate_never_replaces_what_it_did_not_write(where, trained, tmp_path, capsys):
    photos = tmp_path / "album" / "photos"
    photos.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "good.png")
    (tmp_path / "album" / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    (tmp_path / "report.pdf").write_text("mine")
    out = {"parent of --in": tmp_path / "album", "checkpoint folder": trained.parent,
           "a file": tmp_path / "report.pdf", "unrelated folder": tmp_path / "mine",
           "inside --in": photos / "out"}[where]
    before = tree(tmp_path)
    err = cli_error(["translate", "--checkpoint", str(trained), "--in", str(photos),
                     "--out", str(out)], capsys)
    assert str(out) in err and "--out" in err
    assert tree(tmp_path) == before  # nothing deleted, renamed or hidden


@pytest.mark.parametrize("where", ["dataset", "its test split", "run folder", "metrics",
                                   "workspace"])
def test_generate_never_replaces_its_inputs_or_the_workspace(where, trained, toy_dataset,
                                                             tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics" / "x").mkdir(parents=True)
    (tmp_path / "metrics" / "x" / "scores.json").write_text("{}")
    out = {"dataset": toy_dataset, "its test split": toy_dataset / "test",
           "run folder": tmp_path / "run", "metrics": tmp_path / "metrics",
           "workspace": tmp_path}[where]
    before = tree(tmp_path)
    err = cli_error(["generate", "--checkpoint", str(trained), "--data", str(toy_dataset),
                     "--out", str(out)], capsys)
    assert str(out) in err
    assert tree(tmp_path) == before


def test_generate_replaces_its_own_earlier_output(trained, tmp_path):
    generate(trained, tmp_path / "out", max_images=1)
    generate(trained, tmp_path / "out")
    assert sorted(read_folder(tmp_path / "out")) == ["0.png", "1.png", "2.png"]


def test_translate_writes_beside_the_checkpoint_as_the_readme_shows(trained, tmp_path,
                                                                   monkeypatch):
    # README: `replication translate --checkpoint G.pt --in photos/ --out translated/`,
    # run in the folder holding G.pt: the output lies in the checkpoint's folder, fine
    from replication import cli
    monkeypatch.chdir(trained.parent)
    Path("photos").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save("photos/a.png")
    assert cli.main(["translate", "--checkpoint", trained.name, "--in", "photos/",
                     "--out", "translated/"]) == 0
    assert sorted(read_folder(Path("translated"))) == ["a.png"]


@pytest.mark.parametrize("command", ["generate", "translate"])
def test_a_read_only_output_folder_is_one_line(command, trained, tmp_path, capsys, read_only):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "a.png")
    parent = tmp_path / "ro"
    parent.mkdir()
    read_only(parent)
    argv = {"generate": ["generate", "--checkpoint", str(trained)],
            "translate": ["translate", "--checkpoint", str(trained), "--in", str(photos)]}
    err = cli_error([*argv[command], "--out", str(parent / "out")], capsys)
    assert str(parent / "out") in err and "read-only" in err


@pytest.mark.parametrize("device", ["mps", "bogus", "cuda:x"])
def test_an_unsupported_device_option_is_one_line(device, trained, tmp_path, capsys):
    err = cli_error(["generate", "--checkpoint", str(trained), "--out", str(tmp_path / "o"),
                     "--device", device], capsys)
    assert repr(device) in err and "cuda:N" in err


def test_a_batch_size_below_one_never_empties_the_earlier_output(trained, tmp_path):
    from replication.core.errors import ConfigError
    from replication.inference.translate import translate
    generate(trained, tmp_path / "out")
    for run in (lambda: generate(trained, tmp_path / "out", batch_size=-1),
                lambda: generate(trained, tmp_path / "out", batch_size=0),
                lambda: translate(trained, tmp_path / "out", tmp_path / "t", batch_size=-1)):
        with pytest.raises(ConfigError, match="batch-size"):
            run()
    assert sorted(read_folder(tmp_path / "out")) == ["0.png", "1.png", "2.png"]


# --- inputs translate refuses or scales -------------------------------------------------

@pytest.mark.parametrize("size", [(14000, 14000), (10000, 10000)])
def test_translate_refuses_an_image_over_the_pixel_limit_in_one_line(size, trained, tmp_path,
                                                                    capsys):
    # 14000^2 is past Pillow's error limit (2 x 89.5 MP), 10000^2 past its warning limit
    from tests.conftest import huge_png
    photos = tmp_path / "photos"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ok.png")
    huge_png(photos / "huge.png", *size)
    err = cli_error(["translate", "--checkpoint", str(trained), "--in", str(photos),
                     "--out", str(tmp_path / "out")], capsys)
    assert str(photos / "huge.png") in err and f"{size[0] * size[1]:,} pixels" in err
    assert "89,478,485" in err and not (tmp_path / "out").exists()


def test_translate_scales_16_bit_images_instead_of_clipping(trained, tmp_path, capsys):
    # a 16-bit grayscale ramp: sample v becomes round(v * 255 / 65535), not min(v, 255)
    from replication.inference.translate import read_image
    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1040).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # uint16: mode I;16
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I;16") or img.mode == "I"  # Pillow kept 16 bits
    rgb = np.asarray(read_image(tmp_path / "deep.png"))
    expected = np.rint(ramp.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert rgb.shape == (8, 8, 3) and all(np.array_equal(rgb[..., c], expected) for c in range(3))
    photos = tmp_path / "photos"
    photos.mkdir()
    (tmp_path / "deep.png").rename(photos / "deep.png")
    from replication.inference.translate import translate
    translate(trained, photos, tmp_path / "out")
    assert "16-bit samples, scaled to 8 bits" in capsys.readouterr().err


def test_what_a_killed_generate_left_in_generated_is_removed_by_the_next(trained, tmp_path):
    # a SIGTERM/SIGKILL mid-run leaves `.seed-0.<pid>@<host>.<random>.tmp` (partial PNGs)
    # beside the output; the next generate of that output removes it (its writer is dead)
    import socket
    import subprocess

    from replication.core.fileio import temp_prefix
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "generated" / "x" / "seed-0"
    left = out.parent / temp_prefix(out).replace(f".{os.getpid()}@", f".{dead.pid}@")
    left = left.with_name(left.name + "abcd1234.tmp")
    left.mkdir(parents=True)
    (left / "0.png").write_bytes(b"partial")
    assert socket.gethostname()[:64] in left.name
    generate(trained, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["seed-0"]


def test_a_full_disk_while_translating_is_one_line_and_keeps_the_earlier_output(
        trained, tmp_path, monkeypatch, capsys):
    import errno

    from replication import cli
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "a.png")
    argv = ["translate", "--checkpoint", str(trained), "--in", str(photos),
            "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    saved = Image.Image.save

    def full(image, fp, *args, **kwargs):
        if str(fp).endswith("a.png") and ".tmp" in str(fp):  # translate's own writes only
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        return saved(image, fp, *args, **kwargs)
    monkeypatch.setattr(Image.Image, "save", full)
    err = cli_error(argv, capsys)
    assert err.startswith(f"error: {tmp_path / 'out'}: could not be written (")
    assert "GiB free" in err
    assert sorted(read_folder(tmp_path / "out")) == ["a.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos", "run", "toy"]


def test_the_generate_stage_run_twice_writes_the_same_bytes(tmp_path, monkeypatch):
    # the generated folder is a DVC output the score stage depends on: a rerun that
    # writes the same images (after a code move, say) must leave every byte as it was,
    # its manifest included, or every score below reruns for nothing
    import argparse
    import hashlib

    import yaml

    from replication.data.synthetic import make_synthetic
    from replication.stages import generate as generate_stage
    from replication.stages import train as train_stage

    def run(module, *argv) -> None:
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        assert module.run(parser.parse_args(list(argv))) == 0

    def folder_bytes(folder: Path) -> dict[str, str]:
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    monkeypatch.chdir(tmp_path)
    make_synthetic("facades", "data", size=32, counts={"train": 2, "test": 3})
    params = {"scale": "smoke", "datasets": ["facades"],
              "scales": {"smoke": {"seeds": [0], "data": {"source": "synthetic", "image_size": 32},
                                   "generator": {"ngf": 4}, "discriminator": {"ndf": 4},
                                   "train": {"iterations": 2, "checkpoint_every": 2}}},
              "experiments": {"facades-l1": {"data": {"dataset": "facades"},
                                             "loss": {"gan": "none"}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run(train_stage, "--params", "params.yaml", "-e", "facades-l1", "--no-progress")
    run(generate_stage, "--params", "params.yaml", "-e", "facades-l1")
    first = folder_bytes(tmp_path / "generated")
    run(generate_stage, "--params", "params.yaml", "-e", "facades-l1")
    assert len(first) == 3 + 3  # 3 PNGs, the results page, the output marker, the manifest
    assert folder_bytes(tmp_path / "generated") == first
