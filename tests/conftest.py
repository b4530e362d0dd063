"""Shared fixtures: tiny paired datasets written by the tests themselves."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch
import torchvision

from replication.data.synthetic.toy import write_pairs  # toy pairs; tests import it from here

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
