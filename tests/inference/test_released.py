"""`released: NAME`: the authors' released generator installed as a run, without training.

Served by a loopback mirror in the reference's file layout (a state dict of the
reference UnetGenerator, rebuilt in test_reference.py from its description).
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import torch
from tests.models.test_reference import ReferenceUnet, randomised

from replication import cli
from replication.config.schema import DataConfig, ExperimentConfig
from replication.core import layout
from replication.core.errors import CheckpointError, ConfigError
from replication.inference.generate import load_generator
from replication.inference.released import RELEASED_URL, install, released_file
from tests.helpers.http_fixtures import ArchiveServer


def reference_bytes(num_downs: int, ngf: int) -> tuple[bytes, torch.nn.Module]:
    net = randomised(ReferenceUnet(num_downs, ngf))
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue(), net


def released_cfg(**changes) -> ExperimentConfig:
    settings = {"name": "facades-released", "released": "facades_label2photo",
                "data": DataConfig(dataset="facades", image_size=32), **changes}
    return ExperimentConfig(**settings)


def test_install_fetches_converts_and_records_the_file(tmp_path, monkeypatch):
    body, ref = reference_bytes(5, 4)  # 2^5 = 32 px
    with ArchiveServer({"/facades_label2photo.pth": body}) as server:
        monkeypatch.setenv("REPLICATION_MIRROR", server.url)
        record = install(released_cfg(), tmp_path / "run", progress=False)
    assert server.requests[0][0] == "/facades_label2photo.pth"
    assert record["url"] == server.url + "facades_label2photo.pth"
    assert record["sha256"] == hashlib.sha256(body).hexdigest()
    assert record["parameters"] == sum(p.numel() for p in ref.parameters())
    assert record["finished"] and record["total_steps"] == 0
    G, cfg = load_generator(layout.generator_path(tmp_path / "run"), torch.device("cpu"))
    assert cfg.generator.dropout == "pytorch_code" and cfg.generator.ngf == 4
    assert cfg.data.dataset == "facades" and cfg.released == "facades_label2photo"
    # the file's float32 weights, exact in float64, where only the order of the sums differs
    # (test_reference.py: float64 eps 2.2e-16 times a few thousand terms per level)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():  # eval mode: no dropout draw
        ours, theirs = G.double().eval()(x), ref.double().eval()(x.clone())
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)


def test_the_upstream_address_is_the_download_scripts():
    # pytorch-CycleGAN-and-pix2pix scripts/download_pix2pix_model.sh
    assert RELEASED_URL.format(name="sat2map") == \
        "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/sat2map.pth"


def test_a_file_placed_by_hand_is_used_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("REPLICATION_MIRROR", raising=False)
    body, _ = reference_bytes(5, 4)
    path = released_file(tmp_path / "run", "facades_label2photo")
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    record = install(released_cfg(), tmp_path / "run", progress=False)
    assert record["url"] is None and record["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("changes, message", [
    ({"released": "cityscapes_label2photo"}, "is not one of"),
    ({"seeds": (0, 1)}, "set seeds: [0]"),
    ({"data": DataConfig(dataset="facades", image_size=64)}, "is a 32 px network"),
])
def test_bad_released_settings_are_one_line_errors(tmp_path, changes, message):
    body, _ = reference_bytes(5, 4)
    for name in ("facades_label2photo", "cityscapes_label2photo"):
        path = released_file(tmp_path / "run", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        install(released_cfg(**changes), tmp_path / "run", progress=False)


def test_a_file_that_is_no_reference_unet_names_itself(tmp_path):
    path = released_file(tmp_path / "run", "facades_label2photo")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>moved</html>")  # what a dead link often serves
    with pytest.raises(CheckpointError, match=r"facades_label2photo\.pth: not a readable"):
        install(released_cfg(), tmp_path / "run", progress=False)
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a pytorch-CycleGAN-and-pix2pix U-Net"):
        install(released_cfg(), tmp_path / "run", progress=False)


def test_train_command_installs_instead_of_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    body, _ = reference_bytes(5, 4)
    (tmp_path / "params.yaml").write_text(
        "experiments:\n  facades-released:\n    data: {dataset: facades, image_size: 32}\n"
        "    released: facades_label2photo\n    seeds: [0]\n")
    with ArchiveServer({"/facades_label2photo.pth": body}) as server:
        monkeypatch.setenv("REPLICATION_MIRROR", server.url)
        assert cli.main(["train", "--params", "params.yaml", "--experiment",
                         "facades-released", "--no-progress"]) == 0
    assert "not trained" in capsys.readouterr().out
    record = json.loads((tmp_path / "metrics/facades-released/train.json").read_text())
    assert record["seed-0"]["released"] == "facades_label2photo"
    assert not (tmp_path / "runs/facades-released/seed-0/checkpoints/state.pt").exists()
