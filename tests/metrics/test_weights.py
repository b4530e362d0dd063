"""`replication weights`: both networks fetched from a loopback stand-in for their hosts,
checked by content, recorded; offline (or switched off) a reason, never a crash."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from tests.conftest import inception_state_bytes
from tests.metrics.test_fcn import FC, WIDTHS, random_weights, write_caffemodel

from replication.config.schema import ExperimentConfig, from_dict
from replication.config.scoring import ScoringConfig
from replication.core import fetch
from replication.core.errors import DownloadError
from replication.metrics import fcn, fcn_score, fid, image_stats, weights
from tests.helpers.http_fixtures import ArchiveServer, closed_port_url


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A repository root of its own, an empty torch hub, a narrow FCN-8s as 'the' FCN-8s,
    and no waiting between retries."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(fcn, "FCN8s", functools.partial(fcn.FCN8s, WIDTHS, FC))
    monkeypatch.setattr(fetch, "BACKOFF_BASE_S", 0.0)
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def inception_bytes() -> bytes:
    return inception_state_bytes()


def caffemodel_bytes(tmp_path) -> bytes:
    return write_caffemodel(tmp_path / "served.caffemodel", random_weights()).read_bytes()


def served(tmp_path, inception: bytes, caffemodel: bytes | None = None) -> ArchiveServer:
    return ArchiveServer({f"/{weights.FCN_FILE}": caffemodel or caffemodel_bytes(tmp_path),
                          f"/{fid.WEIGHTS_FILE}": inception})


def test_both_networks_are_downloaded_checked_and_recorded(workspace, inception_bytes):
    scoring = ScoringConfig(device="cpu")
    with served(workspace, inception_bytes) as server:
        record = weights.run_stage(scoring, mirror=server.url, progress=False)
    assert record["fcn"]["path"] == str(weights.DOWNLOADED_FCN)
    assert record["fcn"]["downloaded_from"] == server.url + weights.FCN_FILE
    assert record["inception"]["path"] == str(weights.hub_inception())
    assert (workspace / "hub/checkpoints" / fid.WEIGHTS_FILE).read_bytes() == inception_bytes
    assert json.loads(weights.RECORD.read_text()) == record
    # scoring now finds them: the exact protocol's weights and the FID row's
    cfg = from_dict(ExperimentConfig, {"data": {"dataset": "cityscapes"}})
    assert "FCN-8s" not in (fcn_score.missing_exact_inputs(cfg, scoring) or "")
    assert image_stats.inception_weights_path(scoring) == weights.hub_inception()


def test_a_file_already_there_is_not_downloaded_again(workspace, inception_bytes):
    scoring = ScoringConfig(device="cpu")
    with served(workspace, inception_bytes) as server:
        weights.run_stage(scoring, mirror=server.url, progress=False)
        weights.run_stage(scoring, mirror=server.url, progress=False)
    assert len(server.requests) == 2


def test_a_caffemodel_that_does_not_fit_fcn8s_is_removed(workspace, inception_bytes):
    broken = random_weights()
    del broken["score_pool4"]
    bad = write_caffemodel(workspace / "bad.caffemodel", broken).read_bytes()
    with served(workspace, inception_bytes, caffemodel=bad) as server:
        with pytest.raises(DownloadError, match="score_pool4.*removed the download"):
            weights.ensure_fcn(None, mirror=server.url, progress=False)
    assert not weights.DOWNLOADED_FCN.exists()


def test_offline_the_record_says_why_and_nothing_crashes(workspace):
    record = weights.run_stage(ScoringConfig(device="cpu"), mirror=closed_port_url(),
                               progress=False)
    for name in ("fcn", "inception"):
        assert record[name]["available"] is False
        assert "could not download" in record[name]["reason"]


def test_download_weights_false_asks_no_server(workspace, inception_bytes):
    with served(workspace, inception_bytes) as server:
        record = weights.run_stage(ScoringConfig(device="cpu", download_weights=False),
                                   mirror=server.url, progress=False)
    assert server.requests == []
    assert "scoring.download_weights is false" in record["fcn"]["reason"]


@pytest.mark.parametrize("junk", [bytes(range(16)), b"\x80\x04\x95pickle", "inception bytes"])
@pytest.mark.parametrize("download", [True, False])
def test_a_weights_file_placed_by_hand_is_recorded_only_if_it_loads(junk, download, workspace,
                                                                    inception_bytes):
    # 16 junk bytes, the start of a pickle, and a real file of the OTHER network: none
    # loads, so none is recorded available; each is kept (it is not ours to delete)
    placed = {"fcn": workspace / "datasets/weights" / weights.FCN_FILE,
              "inception": workspace / "datasets/weights" / fid.WEIGHTS_FILE}
    for path in placed.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(inception_bytes if junk == "inception bytes" and path == placed["fcn"]
                         else junk if isinstance(junk, bytes) else b"\0" * 16)
    scoring = ScoringConfig(device="cpu", fcn_caffemodel=str(placed["fcn"]),
                            inception_weights=str(placed["inception"]), download_weights=download)
    with served(workspace, inception_bytes) as server:
        record = weights.run_stage(scoring, mirror=server.url, progress=False)
    assert server.requests == []  # found in place: never downloaded over
    for name, path in placed.items():
        assert record[name]["available"] is False, name
        assert str(path) in record[name]["reason"] and "replace it" in record[name]["reason"]
        assert path.is_file()


def test_a_real_file_placed_by_hand_is_recorded_available(workspace, inception_bytes):
    placed = workspace / "datasets/weights" / fid.WEIGHTS_FILE
    placed.parent.mkdir(parents=True)
    placed.write_bytes(inception_bytes)
    record = weights.run_stage(ScoringConfig(device="cpu", inception_weights=str(placed),
                                             download_weights=False), progress=False)
    assert record["inception"]["available"] is True and record["inception"]["path"] == str(placed)


def test_a_weights_download_without_length_is_bounded(workspace, monkeypatch):
    monkeypatch.setitem(weights.MAX_BYTES, "inception", 1 << 20)
    with ArchiveServer({f"/{fid.WEIGHTS_FILE}": bytes(2 << 20)}, no_length=True) as server:
        with pytest.raises(DownloadError, match="passed 1,048,576 bytes"):
            weights.ensure_inception(None, mirror=server.url, progress=False)
    assert not list((workspace / "hub").rglob("*.part"))
