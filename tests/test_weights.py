"""`replication weights`: both networks fetched from a loopback stand-in for their hosts,
checked by content, recorded; offline (or switched off) a reason, never a crash."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from replication import fetch
from replication.errors import DownloadError
from replication.config import ExperimentConfig, from_dict
from replication.metrics import fcn, fcn_score, fid, image_stats, weights
from replication.metrics.settings import ScoringConfig
from conftest import inception_state_bytes
from test_fcn import FC, WIDTHS, random_weights, write_caffemodel
from tests.http_fixtures import ArchiveServer, closed_port_url


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
