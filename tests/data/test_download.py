"""Downloader: offline, against a loopback server serving a tiny upstream-layout archive."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gzip
import io
import json
import tarfile

import pytest
from PIL import Image

from replication.config import datasets
from replication.core import fetch
from replication.core.errors import ConfigError
from replication.data.download import DownloadError, download_dataset
from replication.stages import download as download_stage
from tests.helpers.http_fixtures import ArchiveServer, closed_port_url

COUNTS = {"train": 3, "val": 2}


@pytest.fixture(autouse=True)
def small_facades(monkeypatch):
    """Registry facades with the tiny archive's counts; no waiting between retries."""
    info = dataclasses.replace(datasets.DATASETS["facades"], splits=dict(COUNTS),
                               archive_bytes=None)
    monkeypatch.setitem(datasets.DATASETS, "facades", info)
    monkeypatch.setattr(fetch, "BACKOFF_BASE_S", 0.0)
    monkeypatch.delenv(fetch.MIRROR_ENV, raising=False)


def jpeg(size=(512, 256), shade=0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (shade, 128, 255 - shade)).save(buf, format="JPEG")
    return buf.getvalue()


def make_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return buf.getvalue()


def upstream_members(counts=COUNTS, name="facades") -> dict[str, bytes]:
    return {f"{name}/{split}/{i}.jpg": jpeg(shade=10 * i)
            for split, n in counts.items() for i in range(1, n + 1)}


@pytest.fixture
def archive() -> bytes:
    return make_tar(upstream_members())


def serve(data: bytes, **kw) -> ArchiveServer:
    return ArchiveServer({"/facades.tar.gz": data}, **kw)


def downloads(root) -> list[str]:
    """What root/.downloads holds, but the (empty) lock files fetch leaves to be safe."""
    return sorted(p.name for p in (root / ".downloads").iterdir()
                  if not p.name.endswith((".lock", ".lock.owner")))


def assert_nothing_installed(root):
    assert not (root / "facades").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".facades")]  # no temp dirs


# --- registry -------------------------------------------------------------------------

def test_registry_holds_the_spec_facts(monkeypatch):
    monkeypatch.undo()  # the real registry, not the tiny one
    facades = datasets.get_dataset("facades")
    assert facades.splits == {"train": 400, "val": 100, "test": 106}
    assert facades.archive_bytes == 30_168_306 and facades.paper_direction == "BtoA"
    assert datasets.get_dataset("cityscapes").splits == {"train": 2975, "val": 500}
    assert datasets.get_dataset("cityscapes").test_split == "val"
    assert datasets.get_dataset("maps").splits == {"train": 1096, "val": 1098}
    assert datasets.get_dataset("edges2shoes").paper_batch_size == 4
    assert datasets.dataset_url("maps") == \
        "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/maps.tar.gz"


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known: facades, cityscapes, maps"):
        datasets.get_dataset("facade")


def test_mirror_argument_beats_env_var_beats_upstream(monkeypatch):
    monkeypatch.setenv(fetch.MIRROR_ENV, "http://env.example/pix")
    assert datasets.dataset_url("maps") == "http://env.example/pix/maps.tar.gz"
    assert datasets.dataset_url("maps", "http://arg.example/") == "http://arg.example/maps.tar.gz"


# --- success paths --------------------------------------------------------------------

def test_download_installs_verified_dataset_and_rerun_is_a_noop(tmp_path, archive):
    with serve(archive) as server:
        out = download_dataset("facades", tmp_path, mirror=server.url, progress=False)
        assert out == tmp_path / "facades"
        assert server.requests == [("/facades.tar.gz", None)]
        again = download_dataset("facades", tmp_path, mirror=server.url, progress=False)
        assert again == out and len(server.requests) == 1  # the server was not asked again
    expected = upstream_members()
    for member, data in expected.items():
        assert (tmp_path / member).read_bytes() == data
    assert sorted(p.name for p in (out / "train").iterdir()) == ["1.jpg", "2.jpg", "3.jpg"]
    marker = json.loads((out / ".verified.json").read_text())
    assert marker["counts"] == COUNTS and marker["pair_size"] == [512, 256]
    assert not (tmp_path / ".downloads" / "facades.tar.gz").exists()  # removed after install


def test_env_var_mirror_is_used(tmp_path, archive, monkeypatch):
    with serve(archive) as server:
        monkeypatch.setenv("REPLICATION_MIRROR", server.url.rstrip("/"))
        download_dataset("facades", tmp_path, progress=False)
        assert len(server.requests) == 1
    assert (tmp_path / "facades" / "val" / "2.jpg").is_file()


def test_resume_after_cut_uses_range_from_partial_size(tmp_path, archive):
    half = len(archive) // 2
    with serve(archive, cut_after=half, cut_times=1) as server:
        download_dataset("facades", tmp_path, mirror=server.url, retries=2, progress=False)
    assert [r for _, r in server.requests] == [None, f"bytes={half}-"]
    assert (tmp_path / "facades" / ".verified.json").is_file()


def test_http_500_is_retried(tmp_path, archive):
    with serve(archive, fail_first=1) as server:
        download_dataset("facades", tmp_path, mirror=server.url, retries=1, progress=False)
    assert len(server.requests) == 2
    assert (tmp_path / "facades" / "train" / "3.jpg").is_file()


def test_server_ignoring_range_restarts_from_zero(tmp_path, archive):
    half = len(archive) // 2
    with serve(archive, cut_after=half, cut_times=1, ignore_range=True) as server:
        download_dataset("facades", tmp_path, mirror=server.url, retries=2, progress=False,
                         keep_archive=True)
    assert server.requests[1][1] == f"bytes={half}-"  # asked to resume, got the whole file
    assert (tmp_path / ".downloads" / "facades.tar.gz").read_bytes() == archive


def test_archive_placed_by_hand_installs_offline(tmp_path, archive):
    placed = tmp_path / ".downloads" / "facades.tar.gz"
    placed.parent.mkdir()
    placed.write_bytes(archive)
    download_dataset("facades", tmp_path, mirror=closed_port_url(), progress=False)
    assert (tmp_path / "facades" / "train" / "1.jpg").is_file()
    assert placed.is_file()  # the user's file is kept


def test_cli_installs_from_archive(tmp_path, archive, capsys):
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(archive)
    parser = argparse.ArgumentParser()
    download_stage.add_arguments(parser)
    args = parser.parse_args(["facades", "--root", str(tmp_path / "data"), "--archive",
                              str(path), "--no-progress"])
    assert download_stage.run(args) == 0
    assert (tmp_path / "data" / "facades" / "val" / "1.jpg").is_file()
    with pytest.raises(DownloadError, match="--archive installs one dataset"):
        download_stage.run(parser.parse_args(["all", "--archive", str(path)]))


# --- failures leave no dataset folder -------------------------------------------------

def test_connection_always_cut_gives_up_with_partial_kept(tmp_path, archive):
    step = len(archive) // 3
    with serve(archive, cut_after=step, cut_times=99) as server:
        with pytest.raises(DownloadError, match=r"in 2 tries \(connection closed after"):
            download_dataset("facades", tmp_path, mirror=server.url, retries=1, progress=False)
    assert_nothing_installed(tmp_path)
    assert [r for _, r in server.requests] == [None, f"bytes={step}-"]
    part = tmp_path / ".downloads" / "facades.tar.gz.part"
    assert part.read_bytes() == archive[:2 * step]  # kept for the next run to resume


def test_truncated_gzip_is_rejected_and_download_removed(tmp_path, archive):
    with serve(archive[:-200]) as server:  # honest Content-Length, broken archive
        with pytest.raises(DownloadError, match="corrupt or truncated.*re-run"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert_nothing_installed(tmp_path)
    assert downloads(tmp_path) == []


def test_gzip_crc_error_after_the_tar_end_is_caught(tmp_path, archive):
    # RFC 1952: the last 8 bytes are CRC32 and ISIZE; the tar members themselves stay intact
    bad = bytearray(archive)
    bad[-8] ^= 0xFF
    with serve(bytes(bad)) as server:
        with pytest.raises(DownloadError, match="CRC"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert_nothing_installed(tmp_path)


def test_wrong_split_count_names_split_and_counts(tmp_path):
    data = make_tar(upstream_members({"train": 2, "val": 2}))
    with serve(data) as server:
        with pytest.raises(DownloadError, match="split 'train' has 2 images, expected 3"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert_nothing_installed(tmp_path)


def test_skip_count_check_installs_anyway(tmp_path):
    data = make_tar(upstream_members({"train": 2, "val": 2}))
    with serve(data) as server:
        download_dataset("facades", tmp_path, mirror=server.url, progress=False,
                         check_counts=False)
    assert json.loads((tmp_path / "facades" / ".verified.json").read_text())["counts"] == \
        {"train": 2, "val": 2}


def test_image_of_wrong_size_is_rejected(tmp_path):
    members = upstream_members()
    members["facades/val/2.jpg"] = jpeg(size=(256, 256))
    with serve(make_tar(members)) as server:
        with pytest.raises(DownloadError, match="facades/val/2.jpg is 256x256, expected 512x256"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert_nothing_installed(tmp_path)


def test_upstream_size_is_advisory_and_recorded(tmp_path, archive, monkeypatch, capsys):
    # the loopback server stands in for the upstream host; the pinned size is wrong by one
    # byte, every content check passes: installed, with a warning and the check recorded
    info = dataclasses.replace(datasets.DATASETS["facades"], archive_bytes=len(archive) + 1)
    monkeypatch.setitem(datasets.DATASETS, "facades", info)
    with serve(archive) as server:
        monkeypatch.setattr(datasets, "BASE_URL", server.url)
        download_dataset("facades", tmp_path, progress=False)
    marker = json.loads((tmp_path / "facades" / ".verified.json").read_text())
    assert marker["origin"] == "upstream" and marker["source"] == server.url + "facades.tar.gz"
    assert any(f"!= the pinned {len(archive) + 1:,}" in c for c in marker["checks"])
    assert f"{len(archive):,} bytes" in capsys.readouterr().out


def test_mirror_archive_is_trusted_on_content_not_size(tmp_path, archive, monkeypatch):
    # a lab mirror may recompress: the upstream pin does not apply, the content checks do
    info = dataclasses.replace(datasets.DATASETS["facades"], archive_bytes=len(archive) + 1)
    monkeypatch.setitem(datasets.DATASETS, "facades", info)
    with serve(archive) as server:
        download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    marker = json.loads((tmp_path / "facades" / ".verified.json").read_text())
    assert marker["origin"] == "mirror" and not any("size" in c for c in marker["checks"])
    assert any("every image decodes" in c for c in marker["checks"])
    assert any("split counts" in c for c in marker["checks"])


def test_maps_pairs_are_1200x600(tmp_path, monkeypatch):
    info = dataclasses.replace(datasets.DATASETS["maps"], splits={"train": 2, "val": 1})
    monkeypatch.setitem(datasets.DATASETS, "maps", info)
    members = {f"maps/{split}/{i}.jpg": jpeg(size=(1200, 600))
               for split, n in info.splits.items() for i in range(1, n + 1)}
    with ArchiveServer({"/maps.tar.gz": make_tar(members)}) as server:
        download_dataset("maps", tmp_path, mirror=server.url, progress=False)
    marker = json.loads((tmp_path / "maps" / ".verified.json").read_text())
    assert marker["pair_size"] == [1200, 600] and marker["counts"] == {"train": 2, "val": 1}
    members["maps/val/1.jpg"] = jpeg(size=(512, 256))
    with ArchiveServer({"/maps.tar.gz": make_tar(members)}) as server:
        with pytest.raises(DownloadError, match=r"val/1.jpg is 512x256, expected 1200x600 "
                                                r"\(two 600x600 halves"):
            download_dataset("maps", tmp_path / "b", mirror=server.url, progress=False)


def test_intact_download_failing_a_content_check_is_kept_for_the_fix(tmp_path, monkeypatch):
    # the archive is sound but the registry's count is wrong: after the registry is fixed
    # the kept download installs without asking the server again
    data = make_tar(upstream_members({"train": 4, "val": 2}))
    with serve(data) as server:
        with pytest.raises(DownloadError, match="expected 3; kept the intact download"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
        assert downloads(tmp_path) == ["facades.tar.gz", "facades.tar.gz.origin.json"]
        fixed = dataclasses.replace(datasets.DATASETS["facades"], splits={"train": 4, "val": 2})
        monkeypatch.setitem(datasets.DATASETS, "facades", fixed)
        download_dataset("facades", tmp_path, mirror=server.url, progress=False)
        assert len(server.requests) == 1
    marker = json.loads((tmp_path / "facades" / ".verified.json").read_text())
    assert marker["origin"] == "mirror" and marker["counts"] == {"train": 4, "val": 2}
    assert downloads(tmp_path) == []  # removed once installed


def test_image_with_a_good_header_but_broken_pixels_is_refused(tmp_path):
    members = upstream_members()
    members["facades/train/2.jpg"] = members["facades/train/2.jpg"][:400]  # header intact
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(make_tar(members))
    with pytest.raises(DownloadError, match="train/2.jpg is not a readable image.*replace"):
        download_dataset("facades", tmp_path / "root", archive=path, progress=False)


def test_unreachable_host_gives_one_line_with_mirror_hint(tmp_path):
    with pytest.raises(DownloadError) as err:
        download_dataset("facades", tmp_path, mirror=closed_port_url(), retries=1,
                         progress=False)
    message = str(err.value)
    assert "\n" not in message and "REPLICATION_MIRROR=" in message
    assert "facades.tar.gz" in message
    assert_nothing_installed(tmp_path)


def test_http_404_is_not_retried(tmp_path):
    with ArchiveServer({}) as server:
        with pytest.raises(DownloadError, match="HTTP 404.*REPLICATION_MIRROR"):
            download_dataset("facades", tmp_path, mirror=server.url, retries=3, progress=False)
    assert len(server.requests) == 1


def test_tar_member_with_dotdot_is_refused(tmp_path):
    members = upstream_members()
    members["facades/train/../../../evil.jpg"] = jpeg()
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(make_tar(members))
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="points outside the archive"):
        download_dataset("facades", root, archive=path, progress=False)
    assert not (root / "facades").exists()
    assert not list(tmp_path.rglob("evil.jpg"))


def test_existing_unverified_folder_is_not_replaced(tmp_path, archive):
    (tmp_path / "facades" / "train").mkdir(parents=True)
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(archive)
    with pytest.raises(DownloadError, match="has no .verified.json.*move it away"):
        download_dataset("facades", tmp_path, archive=path, progress=False)
    assert (tmp_path / "facades" / "train").is_dir()


def test_member_under_the_install_record_is_refused(tmp_path):
    # facades/.verified.json/x.jpg would turn the install record's path into a folder
    members = upstream_members()
    members["facades/.verified.json/x.jpg"] = jpeg()
    with serve(make_tar(members)) as server:
        with pytest.raises(DownloadError, match=r"\.verified\.json/x\.jpg.*hidden") as err:
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert "\n" not in str(err.value)
    assert_nothing_installed(tmp_path)


def test_duplicate_members_count_once(tmp_path):
    # tar allows one name twice; the second overwrites the first on disk, so the split
    # holds 2 images although the archive lists 3 members
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("facades/train/1.jpg", "facades/train/1.jpg", "facades/train/2.jpg",
                     "facades/val/1.jpg", "facades/val/2.jpg"):
            data = jpeg()
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    with serve(buf.getvalue()) as server:
        with pytest.raises(DownloadError, match="split 'train' has 2 images, expected 3"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
        download_dataset("facades", tmp_path, mirror=server.url, progress=False,
                         check_counts=False)
    marker = json.loads((tmp_path / "facades" / ".verified.json").read_text())
    assert marker["counts"] == {"train": 2, "val": 2}
    assert len(list((tmp_path / "facades" / "train").iterdir())) == 2


# --- bounds: every member, the whole archive, every body ------------------------------

def tiny_facades() -> datasets.DatasetInfo:
    return datasets.DATASETS["facades"]  # the autouse fixture's: 3 + 2 pairs of 512x256


def padded_jpeg(total: int) -> bytes:
    """A valid 512x256 JPEG followed by zeros up to `total` bytes: Pillow decodes it."""
    data = jpeg()
    return data + bytes(total - len(data))


def test_bounds_follow_from_the_registry_facts():
    # 512x256 RGB is 393,216 bytes raw: a JPEG of it at most twice that plus 64 KiB;
    # 5 pairs (+25%) of those unpacked, plus 1 KiB of tar per member in the .tar.gz
    info = tiny_facades()
    assert info.max_image_bytes == 2 * 393_216 + 65_536
    assert info.max_install_bytes == 851_968 * 5 * 5 // 4
    assert info.max_archive_bytes == info.max_install_bytes + 1024 * 5 * 5 // 4


def tar_claiming(name: str, size: int, data: bytes = b"") -> bytes:
    """A .tar.gz whose member header claims `size` bytes, followed by only `data`: the
    refusal must come from the header, before any of the claimed bytes is read."""
    entry = tarfile.TarInfo(name)
    entry.size = size
    return gzip.compress(entry.tobuf(format=tarfile.GNU_FORMAT) + data + bytes(1024))


def test_a_member_claiming_1_5_gib_is_refused_from_its_header(tmp_path):
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(tar_claiming("facades/train/1.jpg", 3 << 29, jpeg()))
    with pytest.raises(DownloadError) as err:
        download_dataset("facades", tmp_path / "root", archive=path, progress=False)
    message = str(err.value)
    assert "\n" not in message and "facades/train/1.jpg is 1,610,612,736 bytes" in message
    assert not (tmp_path / "root" / "facades").exists()


def test_a_jpeg_padded_with_zeros_is_refused(tmp_path):
    members = upstream_members()
    members["facades/train/2.jpg"] = padded_jpeg(tiny_facades().max_image_bytes + 1)
    with serve(make_tar(members)) as server:
        with pytest.raises(DownloadError, match=r"train/2\.jpg is 851,969 bytes, more than "
                                                r"the 851,968 any 512x256 JPEG needs"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert_nothing_installed(tmp_path)


def test_an_archive_unpacking_to_more_than_the_dataset_can_take_is_refused(tmp_path):
    # 8 members each under the per-image bound: together past 5 x 1.25 of them
    members = {f"facades/train/{i}.jpg": padded_jpeg(800_000) for i in range(1, 9)}
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(make_tar(members))
    assert path.stat().st_size < 100_000  # a few KB of gzip
    with pytest.raises(DownloadError, match="unpacks to more than 5,324,800 bytes"):
        download_dataset("facades", tmp_path / "root", archive=path, progress=False,
                         check_counts=False)
    assert not (tmp_path / "root" / "facades").exists()
    assert [p.name for p in (tmp_path / "root").iterdir()] == []  # no temporary folder


def test_zeros_after_the_tar_end_are_bounded_too(tmp_path, archive):
    tar = gzip.decompress(archive)
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(gzip.compress(tar + bytes(tiny_facades().max_install_bytes)))
    with pytest.raises(DownloadError, match="unpacks to more than"):
        download_dataset("facades", tmp_path / "root", archive=path, progress=False)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF0) is patched to claim width x height."""
    data = bytearray(jpeg(size=(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("side", [40000, 10000])
def test_a_jpeg_claiming_too_many_pixels_is_one_line(side, tmp_path):
    # 40000^2 is past Pillow's error limit, 10000^2 past its warning limit
    members = upstream_members()
    members["facades/val/1.jpg"] = jpeg_claiming(side, side)
    path = tmp_path / "facades.tar.gz"
    path.write_bytes(make_tar(members))
    with pytest.raises(DownloadError) as err:
        download_dataset("facades", tmp_path / "root", archive=path, progress=False)
    message = str(err.value)
    assert "\n" not in message and "facades/val/1.jpg" in message
    assert f"{side * side:,} pixels" in message


def test_a_body_without_length_is_cut_at_the_bound_and_deleted(tmp_path):
    body = bytes(tiny_facades().max_archive_bytes + (1 << 20))
    with serve(body, no_length=True) as server:
        with pytest.raises(DownloadError, match="the body passed 5,331,200 bytes") as err:
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert "\n" not in str(err.value)
    assert downloads(tmp_path) == []  # no .part: never resumed


def test_an_announced_length_over_the_bound_is_refused_before_the_body(tmp_path):
    body = bytes(tiny_facades().max_archive_bytes + 1)
    with serve(body) as server:
        with pytest.raises(DownloadError, match="announces 5,331,201 bytes"):
            download_dataset("facades", tmp_path, mirror=server.url, progress=False)
    assert downloads(tmp_path) == [] and len(server.requests) == 1


# Under a 1 MiB file-size limit (ulimit -f) the kernel refuses the rest of the .part with
# EFBIG, as a full disk does with ENOSPC
FETCH_OVER_THE_LIMIT = """
import sys
from pathlib import Path
from replication.core import fetch
from replication.core.errors import UserError
from replication.stages import download as download_stage
try:
    fetch.fetch(sys.argv[1], Path(sys.argv[2]), retries=0, progress=False, max_bytes=1 << 30)
except UserError as err:
    print(err)
"""


def test_a_download_the_disk_refuses_is_one_line_and_leaves_no_part(tmp_path):
    import subprocess
    import sys

    from tests.core.test_fileio import _one_mib_file_limit
    dest = tmp_path / "dl" / "facades.tar.gz"
    with serve(bytes(2 << 20)) as server:
        child = subprocess.run([sys.executable, "-c", FETCH_OVER_THE_LIMIT,
                                server.url + "facades.tar.gz", str(dest)],
                               preexec_fn=_one_mib_file_limit, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith(f"{dest}.part: could not be written (")
    assert child.stdout.count("\n") == 1 and "GiB free on its disk" in child.stdout
    assert not dest.with_name(dest.name + ".part").exists() and not dest.exists()


def test_mirror_credentials_are_sent_but_never_printed_or_recorded(tmp_path, archive):
    with serve(archive) as server:
        mirror = server.url.replace("http://", "http://lab:s3cr%40t@")
        download_dataset("facades", tmp_path, mirror=mirror, progress=False)
        assert server.authorization == ["Basic " + base64.b64encode(b"lab:s3cr@t").decode()]
        with pytest.raises(DownloadError) as err:  # 404: the message names the URL
            fetch.fetch(mirror + "missing.tar.gz", tmp_path / "m.tar.gz", progress=False,
                        max_bytes=1 << 20)
    assert "s3cr" not in str(err.value) and "lab:***@" in str(err.value)
    record = (tmp_path / "facades" / ".verified.json").read_text()
    assert "s3cr" not in record and "lab:***@127.0.0.1" in record


def test_credentials_are_not_printed_when_the_host_is_down(tmp_path):
    mirror = closed_port_url().replace("http://", "http://lab:hunter2@")
    with pytest.raises(DownloadError) as err:
        download_dataset("facades", tmp_path, mirror=mirror, retries=0, progress=False)
    assert "hunter2" not in str(err.value)
