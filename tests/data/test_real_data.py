"""The real pix2pix Cityscapes archive (../shared/real, where this checkout has it).

The archive holds the upstream cityscapes.tar.gz's JPEG files, repacked (a lab mirror's
situation: other bytes, the same content). A user's clone has no ../shared: these tests
skip there with one line; CI always has the archive.
"""

from __future__ import annotations

import hashlib
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from replication.data.download import download_dataset
from replication.metrics.segmentation import IGNORE, decode_label_maps
from tests.helpers.http_fixtures import ArchiveServer
from tests.helpers.real_data import real_cityscapes_archive

REAL = real_cityscapes_archive()
needs_real = pytest.mark.skipif(REAL is None, reason="no real Cityscapes archive here "
                                 "(../shared/real/cityscapes.tar.gz or $REPLICATION_REAL_CITYSCAPES)")


@needs_real
@pytest.mark.slow
def test_the_real_archive_installs_through_a_mirror_with_every_check(tmp_path):
    data = REAL.read_bytes()
    expected_sha = (REAL.parent / f"{REAL.name}.sha256").read_text().split()[0]
    assert hashlib.sha256(data).hexdigest() == expected_sha  # the file we think it is
    with ArchiveServer({"/cityscapes.tar.gz": data}) as server:
        out = download_dataset("cityscapes", tmp_path, mirror=server.url, progress=False)
    record = json.loads((out / ".verified.json").read_text())
    # the paper's split sizes (docs/datasets.md) and the 2 x 256 px halves of every pair
    assert record["origin"] == "mirror" and record["counts"] == {"train": 2975, "val": 500}
    assert record["pair_size"] == [512, 256]
    # installed byte for byte: a few members read straight from the archive
    with tarfile.open(REAL) as archive:
        for name in ("cityscapes/val/1.jpg", "cityscapes/train/2975.jpg"):
            assert (tmp_path / name).read_bytes() == archive.extractfile(name).read()
    # the label half decodes to the 19 classes and ignored pixels only (frame 1: a street,
    # road and building in it)
    with Image.open(out / "val" / "1.jpg") as pair:
        labels = decode_label_maps(np.asarray(pair.convert("RGB"))[None, :, 256:])[0]
    counts = np.bincount(labels[labels != IGNORE], minlength=19)
    assert set(np.unique(labels)) <= set(range(19)) | {IGNORE}
    assert counts[0] > 0 and counts[2] > 0
