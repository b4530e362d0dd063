"""Shared fixtures: tiny paired datasets written by the tests themselves."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
import torch
import torchvision

from replication.data.synthetic.toy import (
    write_pairs,  # toy pairs; tests import it from here
)

torch.set_num_threads(1)  # 2-core CI machine; tests run in parallel processes
os.environ.setdefault("DVCLIVE_LOGLEVEL", "ERROR")


@pytest.fixture
def toy_dataset(tmp_path: Path) -> Path:
    return write_pairs(tmp_path / "toy", {"train": 8, "test": 3})


def tiny_overrides(**extra) -> dict:
    """Small nets and images so a CPU test trains in seconds (same code paths as 256 px)."""
    cfg = {"generator": {"ngf": 8}, "discriminator": {"ndf": 8},
           "data": {"image_size": 32},
           "train": {"iterations": 12, "log_every": 4, "sample_every": 6, "checkpoint_every": 5}}
    for section, values in extra.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


@pytest.fixture
def float64():
    """Build and train in float64 for the test (networks, data, optimizer state): the
    reference runs whose rounding is too small for Adam's eps to amplify."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)


def inception_state_bytes() -> bytes:
    """A torch.save'd state dict in pytorch-fid's Inception key layout (random weights):
    torchvision builds it alone, as pytorch-fid's FID blocks subclass torchvision's
    InceptionA/C/E with the same parameters."""
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=True)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


@pytest.fixture
def read_only():
    """make(folder): `folder` takes no writes until the test ends, for real. An ordinary
    user: its mode (0555, EACCES); root ignores modes, so there a read-only bind mount
    (EROFS), and the test is skipped where mounting is not allowed."""
    undo = []

    def make(folder: Path) -> Path:
        folder = Path(folder)
        if os.geteuid() != 0:
            folder.chmod(0o555)
            undo.append(lambda: folder.chmod(0o755))
            return folder
        for args in (["--bind", folder, folder], ["-o", "remount,bind,ro", folder]):
            if subprocess.run(["mount", *map(str, args)], capture_output=True).returncode:
                pytest.skip("root, and no read-only bind mount allowed here")
            if args[0] == "--bind":
                undo.append(lambda: subprocess.run(["umount", str(folder)], check=True))
        return folder

    yield make
    for step in reversed(undo):
        step()


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A PNG of a few dozen bytes whose header claims width x height RGB pixels (a few
    pixel bytes follow): a decoder that trusted the header would allocate W*H*3 bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path
