"""`replication download`: fetch, verify and install the upstream pix2pix datasets.

The upstream server is plain HTTP with no published checksums, so an install is trusted
only after every content check passed: the gzip stream is complete (CRC and length), the
layout is `<name>/<split>/*.jpg`, every image decodes at the dataset's geometry (two
square halves: 512x256, maps 1200x600), and the split counts are the registry's. The
upstream archive's byte size is a fact about that host, checked for upstream downloads
only: a mirror ($REPLICATION_MIRROR) or a file dropped in by hand may be recompressed,
and is trusted on content alone. The install record (`<name>/.verified.json`, written
last) lists the checks that were applied and where the archive came from.

Nothing half-made is left: the archive is extracted into a temporary folder renamed to
`<root>/<name>/` only when every check passed. A cut download resumes (fetch.py). A
download whose bytes are broken is deleted; an intact one that fails a content check is
kept, so a fix (of the registry, say) needs no new 100 MB download.

Cityscapes: when the official zips are at hand (`--cityscapes-zips DIR`, or
`datasets/cityscapes/`, the DVC-tracked inputs folder), the pairs are built from them
instead (cityscapes_build), which also keeps the val labelIds of the exact FCN-score.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from replication.config.datasets import (
    VERIFIED_MARKER,
    DatasetInfo,
    dataset_url,
    get_dataset,
    is_installed_dataset,
    is_upstream,
)
from replication.config.schema import DataConfig, DownloadConfig
from replication.core import fetch
from replication.core.errors import DownloadError
from replication.core.fileio import atomic_dir, write_json
from replication.core.layout import DATASET_PROTECTED
from replication.data.cityscapes_build import (
    LABELS_ZIP,
    LOGIN_HINT,
    PHOTOS_ZIP,
    build_cityscapes_pairs,
    official_zips,
)
from replication.data.images import TooManyPixels, open_image

DEFAULT_ROOT = DataConfig.root
# Inputs no stage can download (behind the Cityscapes login) live in the DVC-tracked
# folder datasets/ (datasets.dvc): a lab `dvc push`es them once, every clone `dvc pull`s.
CITYSCAPES_ZIPS_DIR = Path("datasets/cityscapes")


class ArchiveCorrupt(DownloadError):
    """The archive's bytes are broken (truncated, bad gzip or tar): not worth keeping."""


def download_dataset(name: str, root: str | Path, mirror: str | None = None,
                     retries: int = 5, progress: bool = True, *,
                     archive: str | Path | None = None,
                     cityscapes_zips: str | Path | None = None,
                     check_counts: bool = True, keep_archive: bool = False,
                     label_resample: str = DownloadConfig.cityscapes_label_resample) -> Path:
    """Install dataset `name` as `<root>/<name>/<split>/*.jpg`; return that folder."""
    info, root = get_dataset(name), Path(root)
    dest = root / name
    zips_dir = _cityscapes_zips_dir(info, cityscapes_zips)
    if _is_installed(dest, info, check_counts, need_label_ids=zips_dir is not None):
        return dest
    if dest.exists() and not (dest / VERIFIED_MARKER).is_file():
        raise DownloadError(f"{dest} exists but has no {VERIFIED_MARKER} (not installed by "
                            f"`replication download`); move it away and re-run")
    if zips_dir is not None:
        return build_cityscapes_pairs(zips_dir, root, progress=progress,
                                      expected_counts=info.splits if check_counts else None,
                                      label_resample=label_resample)
    path, url = _find_or_fetch(info, root, archive, mirror, retries, progress)
    try:
        _install(path, info, dest, url, check_counts)
    except DownloadError as err:
        raise DownloadError(f"{err}; {_what_now(err, path, url, archive)}") from None
    if url is not None and archive is None and not keep_archive:
        fetch.forget(path)
    return dest


def _what_now(err: DownloadError, path: Path, url: str | None, archive) -> str:
    if url is None or archive is not None:
        return f"replace {path} with a good copy"
    if isinstance(err, ArchiveCorrupt):  # a bad download must not be reused by the next run
        fetch.forget(path)
        return f"removed the download, re-run to fetch it again or {fetch.offline_hint(path)}"
    return (f"kept the intact download {path}, so a fix needs no new download (delete it "
            "to fetch again)")


# --- what is already there ------------------------------------------------------------

def _cityscapes_zips_dir(info: DatasetInfo, given: str | Path | None) -> Path | None:
    if info.name != "cityscapes":
        return None
    if given is not None:
        if official_zips(given) is None:
            raise DownloadError(f"--cityscapes-zips {given}: needs {PHOTOS_ZIP} and "
                                f"{LABELS_ZIP}; {LOGIN_HINT}")
        return Path(given)
    return CITYSCAPES_ZIPS_DIR if official_zips(CITYSCAPES_ZIPS_DIR) else None


def _is_installed(dest: Path, info: DatasetInfo, check_counts: bool, need_label_ids: bool) -> bool:
    try:
        record = json.loads((dest / VERIFIED_MARKER).read_text())
    except (OSError, ValueError):
        return False
    if record.get("synthetic"):
        return False  # a smoke-scale stand-in (replication synth): the real data replaces it
    if need_label_ids and not record.get("label_ids"):
        return False  # installed from the archive; the official zips give more: rebuild
    counts = record.get("counts", {})
    return not check_counts or all(counts.get(s) == n for s, n in info.splits.items())


def _find_or_fetch(info, root, archive, mirror, retries, progress) -> tuple[Path, str | None]:
    """(archive path, the URL it was downloaded from; None for a file placed by hand)."""
    if archive is not None:
        if not Path(archive).is_file():
            raise DownloadError(f"--archive {archive}: no such file")
        return Path(archive), None
    placed = root / ".downloads" / f"{info.url_name}.tar.gz"
    if not placed.is_file():  # else: put there by hand, or kept from an earlier run
        fetch.fetch(dataset_url(info.name, mirror), placed, retries, progress,
                    max_bytes=info.max_archive_bytes)
    return placed, fetch.origin(placed)


# --- verify and extract ---------------------------------------------------------------

def _install(archive: Path, info: DatasetInfo, dest: Path, url: str | None,
             check_counts: bool) -> None:
    size = archive.stat().st_size
    checks = _size_checks(archive, info, url, size)
    width, height = info.pair_size
    # renamed to `dest` only if every check passes; an existing `dest` only if installed
    with atomic_dir(dest, "download", inputs=[archive], protected=DATASET_PROTECTED,
                    own=is_installed_dataset) as tmp:
        counts = _extract(archive, info, tmp)
        checks += ["gzip stream complete (CRC and length)",
                   f"layout {info.name}/<split>/*.jpg, no hidden or outside paths",
                   f"every image decodes and is {width}x{height} (two square halves)"]
        if check_counts:
            _check_counts(counts, info, archive)
            checks.append(f"split counts {dict(sorted(info.splits.items()))}")
        write_json(tmp / VERIFIED_MARKER, {
            "dataset": info.name, "counts": dict(sorted(counts.items())),
            "pair_size": list(info.pair_size), "origin": _origin_kind(url),
            "source": url or str(archive), "archive_bytes": size, "checks": checks,
            "label_ids": False})


def _origin_kind(url: str | None) -> str:
    if url is None:
        return "placed by hand"
    return "upstream" if is_upstream(url) else "mirror"


def _size_checks(archive: Path, info: DatasetInfo, url: str | None, size: int) -> list[str]:
    """The upstream size pin, for upstream downloads only; advisory (content decides)."""
    if info.archive_bytes is None or url is None or not is_upstream(url):
        return []
    if size == info.archive_bytes:
        return [f"archive size {size:,} bytes = the upstream archive's"]
    print(f"warning: {archive} is {size:,} bytes, the upstream {info.url_name}.tar.gz was "
          f"{info.archive_bytes:,}; installing only if every content check passes")
    return [f"archive size {size:,} bytes != the pinned {info.archive_bytes:,} (content "
            "checks passed)"]


def _extract(archive: Path, info: DatasetInfo, out: Path) -> dict[str, int]:
    """Write `<name>/<split>/*.jpg` to `out/<split>/`, checking each; return split counts.

    Bounded before anything is read: each image member's size (the tar header's) against
    info.max_image_bytes, and every member's and the trailing bytes' sum against
    info.max_install_bytes (members that are skipped are decompressed too)."""
    unpacked = 0
    try:
        with gzip.open(archive) as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:  # one streaming pass
                for member in tar:
                    split = _member_split(member, info, archive)
                    unpacked += max(member.size, 0)
                    _check_bounds(member, split, unpacked, info, archive)
                    if split is None:
                        continue
                    data = tar.extractfile(member).read(member.size)
                    _check_image(data, member.name, info, archive)
                    (out / split).mkdir(exist_ok=True)
                    (out / split / PurePosixPath(member.name).name).write_bytes(data)
            # read to the end: gzip checks its CRC and length (bounded like the members)
            while block := gz.read(fetch.CHUNK):
                unpacked += len(block)
                _check_bounds(None, None, unpacked, info, archive)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ArchiveCorrupt(f"{archive} is corrupt or truncated ({err})") from None
    # count what is on disk: a member stored twice under one name is one image, not two
    return {d.name: sum(1 for _ in d.iterdir()) for d in out.iterdir() if d.is_dir()}


def _check_bounds(member: tarfile.TarInfo | None, split: str | None, unpacked: int,
                  info: DatasetInfo, archive: Path) -> None:
    """One image member at most info.max_image_bytes, the whole archive at most
    info.max_install_bytes unpacked (datasets.py says where the numbers come from)."""
    width, height = info.pair_size
    if split is not None and member.size > info.max_image_bytes:
        raise DownloadError(f"{archive}: {member.name} is {member.size:,} bytes, more than "
                            f"the {info.max_image_bytes:,} any {width}x{height} JPEG needs "
                            "(padding, or not this dataset's image); refusing the archive")
    if unpacked > info.max_install_bytes:
        raise DownloadError(f"{archive} unpacks to more than {info.max_install_bytes:,} "
                            f"bytes, the most {sum(info.splits.values()):,} {width}x{height} "
                            f"JPEGs of {info.name} can take; refusing the archive")


def _member_split(member: tarfile.TarInfo, info: DatasetInfo, archive: Path) -> str | None:
    """The split of a `<name>/<split>/<file>.jpg` member; None for anything else."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise DownloadError(f"{archive}: member {member.name!r} points outside the archive; "
                            f"refusing to extract it")
    parts = path.parts
    if not (member.isfile() and len(parts) == 3 and parts[0] == info.name
            and parts[2].lower().endswith(".jpg")):
        return None  # folders, links and stray files are never written
    if any(part.startswith(".") for part in parts[1:]):
        # e.g. <name>/.verified.json/x.jpg would collide with the install record
        raise DownloadError(f"{archive}: member {member.name!r} has a hidden split or file "
                            "name; refusing the archive")
    return parts[1]


def _check_image(data: bytes, member: str, info: DatasetInfo, archive: Path) -> None:
    try:
        with open_image(io.BytesIO(data), f"{archive}: {member}") as image:
            size = image.size  # the header: checked before any pixel is decoded
            if size == info.pair_size:
                image.load()  # every pixel: a mirror's recompressed copy is trusted on content
    except TooManyPixels as err:
        raise DownloadError(f"{err}; refusing the archive") from None
    except (OSError, SyntaxError) as err:  # PIL.UnidentifiedImageError is an OSError
        raise DownloadError(f"{archive}: {member} is not a readable image ({err})") from None
    if size != info.pair_size:
        want = "x".join(map(str, info.pair_size))
        raise DownloadError(f"{archive}: {member} is {size[0]}x{size[1]}, expected {want} "
                            f"(two {info.half_size}x{info.half_size} halves side by side)")


def _check_counts(counts: dict[str, int], info: DatasetInfo, archive: Path) -> None:
    for split, want in info.splits.items():
        if counts.get(split, 0) != want:
            hint = "" if info.counts_verified else \
                " (this dataset's counts are unverified: --skip-count-check installs anyway)"
            raise DownloadError(f"{archive}: split {split!r} has {counts.get(split, 0)} images, "
                                f"expected {want}{hint}")
