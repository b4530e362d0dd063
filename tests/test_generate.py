"""Generation: paper test-time behaviour (dropout on) by default, the whole split, names kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from replication import checkpoints
from replication.generate import generate
from replication.train import train
from test_train import make_config


@pytest.fixture
def trained(toy_dataset, tmp_path):
    train(make_config(toy_dataset, train={"iterations": 3}), 0, tmp_path / "run", progress=False)
    return tmp_path / "run" / "checkpoints" / "generator.pt"


def read_folder(folder) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())}


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
    from replication import generate as gen_module

    def broken(image, path):
        raise OSError("disk full")
    monkeypatch.setattr(gen_module, "save_png", broken)
    with pytest.raises(OSError):
        generate(trained, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out*"))


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
