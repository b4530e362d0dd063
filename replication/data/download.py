"""`replication download`: fetch, verify and install the upstream pix2pix datasets (SPEC §3).

The upstream server is plain HTTP with no published checksums, so an install is trusted
only after every check passed: size (Content-Length, and the known archive size), gzip
integrity (the whole stream is read, CRC included), the `<name>/<split>/*.jpg` layout,
the split counts, and the 512x256 size of every image. The archive is extracted into a
temporary folder that is renamed to `<root>/<name>/` only then, with `.verified.json`
written last; a re-run finds that marker and does nothing. A broken download leaves
nothing under `<root>/<name>/`; only `<root>/.downloads/<name>.tar.gz.part` stays, and the
next run resumes it with an HTTP Range request.

Cityscapes: when the official zips are at hand (`--cityscapes-zips DIR`, or
`datasets/cityscapes/`, the DVC-tracked inputs folder), the pairs are built from them instead (cityscapes_build),
which also keeps the val labelIds that the exact FCN-score protocol needs.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import io
import json
import os
import re
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm import tqdm

from replication.data.cityscapes_build import (LABELS_ZIP, LOGIN_HINT, PHOTOS_ZIP,
                                               build_cityscapes_pairs, official_zips)
from replication.data.registry import (BASE_URL, DATASETS, MIRROR_ENV, VERIFIED_MARKER,
                                       DatasetInfo, dataset_url, get_dataset)
from replication.config import DataConfig, load_params, scale_profile
from replication.errors import DownloadError
from replication.fileio import atomic_dir, write_json

DEFAULT_ROOT = DataConfig.root
# Inputs no stage can download (behind the Cityscapes login) live in the DVC-tracked
# folder datasets/ (datasets.dvc): a lab `dvc push`es them once, every clone `dvc pull`s.
CITYSCAPES_ZIPS_DIR = Path("datasets/cityscapes")
ALL = ("facades", "cityscapes", "maps")  # `replication download all`: the paper's sets
CHUNK = 1 << 20
TIMEOUT_S = 60
BACKOFF_BASE_S = 2.0  # waits 2, 4, 8, ... seconds (at most 60) between tries


class _Retry(Exception):
    """A failure worth another try: no connection, HTTP 5xx, a body cut short."""


def download_dataset(name: str, root: str | Path, mirror: str | None = None,
                     retries: int = 5, progress: bool = True, *,
                     archive: str | Path | None = None,
                     cityscapes_zips: str | Path | None = None,
                     check_counts: bool = True, keep_archive: bool = False) -> Path:
    """Install dataset `name` as `<root>/<name>/<split>/*.jpg`; return that folder."""
    info, root = get_dataset(name), Path(root)
    dest = root / name
    zips_dir = _cityscapes_zips_dir(info, root, cityscapes_zips)
    if _is_installed(dest, info, check_counts, need_label_ids=zips_dir is not None):
        return dest
    if dest.exists() and not (dest / VERIFIED_MARKER).is_file():
        raise DownloadError(f"{dest} exists but has no {VERIFIED_MARKER} (not installed by "
                            f"`replication download`); move it away and re-run")
    if zips_dir is not None:
        return build_cityscapes_pairs(zips_dir, root, progress=progress,
                                      expected_counts=info.splits if check_counts else None)
    path, source, downloaded = _find_or_fetch(info, root, archive, mirror, retries, progress)
    try:
        _install(path, info, dest, source, check_counts)
    except DownloadError as err:
        if not downloaded:
            raise DownloadError(f"{err}; replace {path} with a good copy") from None
        path.unlink(missing_ok=True)  # a bad download must not be reused by the next run
        raise DownloadError(f"{err}; removed the download, re-run to fetch it again or "
                            f"set {MIRROR_ENV}=<base url>") from None
    if downloaded and not keep_archive:
        path.unlink()
    return dest


# --- what is already there ------------------------------------------------------------

def _cityscapes_zips_dir(info: DatasetInfo, root: Path, given: str | Path | None) -> Path | None:
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


def _find_or_fetch(info, root, archive, mirror, retries, progress) -> tuple[Path, str, bool]:
    """(archive path, where it came from, whether this call downloaded it)."""
    if archive is not None:
        if not Path(archive).is_file():
            raise DownloadError(f"--archive {archive}: no such file")
        return Path(archive), str(archive), False
    placed = root / ".downloads" / f"{info.url_name}.tar.gz"
    if placed.is_file():  # put there by hand (offline install) or kept from a past run
        return placed, str(placed), False
    url = dataset_url(info.name, mirror)
    _fetch(url, placed, retries, progress)
    return placed, url, True


def _offline_hint(dest: Path) -> str:
    return (f"set {MIRROR_ENV}=<base url> or place {dest.name} in {dest.parent}/ "
            f"(or pass --archive FILE)")


# --- HTTP -----------------------------------------------------------------------------

def _fetch(url: str, dest: Path, retries: int, progress: bool) -> None:
    """Download `url` to `dest` via `dest.part`, resuming what earlier tries left."""
    if retries < 0:
        raise DownloadError(f"retries={retries} must be >= 0")
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, dest, progress)
            os.replace(part, dest)
            return
        except _Retry as err:
            last = err
            if attempt < retries:
                time.sleep(min(60.0, BACKOFF_BASE_S * 2 ** attempt))
    raise DownloadError(f"could not download {url} in {retries + 1} tries ({last}); "
                        f"{_offline_hint(dest)}")


def _fetch_once(url: str, part: Path, dest: Path, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pix2pix-replication"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the partial file does not fit the server's file: start over
            part.unlink()
            raise _Retry("HTTP 416 for the resume offset") from None
        if err.code >= 500 or err.code in (408, 429):
            raise _Retry(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; {_offline_hint(dest)}") from None
    except OSError as err:  # refused, unknown host, timeout (URLError is an OSError)
        raise _Retry(str(getattr(err, "reason", err))) from None
    with response:
        start, total = _resume_offset(response, have, part)
        _stream(response, part, start, total, progress)
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Retry(f"connection closed after {size:,} of {total:,} bytes")


def _resume_offset(response, have: int, part: Path) -> tuple[int, int | None]:
    """(offset the body starts at, full file size if the server says it)."""
    if response.status == 206:
        m = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not m or int(m[1]) != have:
            part.unlink()
            raise _Retry("server resumed at another offset; starting over")
        return have, None if m[2] == "*" else int(m[2])
    # 200: a full body, also when the server ignores Range: restart from byte 0
    length = response.headers.get("Content-Length")
    return 0, int(length) if length else None


def _stream(response, part: Path, start: int, total: int | None, progress: bool) -> None:
    with open(part, "ab" if start else "wb") as f, \
            tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=part.name.removesuffix(".part"), disable=not progress) as bar:
        while chunk := _read_chunk(response):
            f.write(chunk)
            bar.update(len(chunk))


def _read_chunk(response) -> bytes:
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
        raise _Retry(f"connection lost ({err!r})") from None


# --- verify and extract ---------------------------------------------------------------

def _install(archive: Path, info: DatasetInfo, dest: Path, source: str, check_counts: bool) -> None:
    size = archive.stat().st_size
    if info.archive_bytes is not None and size != info.archive_bytes:
        raise DownloadError(f"{archive} is {size:,} bytes, but {info.url_name}.tar.gz is "
                            f"{info.archive_bytes:,} bytes")
    with atomic_dir(dest) as tmp:  # renamed to `dest` only if every check passes
        counts = _extract(archive, info, tmp)
        if check_counts:
            _check_counts(counts, info, archive)
        write_json(tmp / VERIFIED_MARKER, {
            "dataset": info.name, "counts": dict(sorted(counts.items())),
            "pair_size": list(info.pair_size), "source": source, "archive_bytes": size,
            "label_ids": False})


def _extract(archive: Path, info: DatasetInfo, out: Path) -> Counter:
    """Write `<name>/<split>/*.jpg` to `out/<split>/`, checking each; return split counts."""
    try:
        with gzip.open(archive) as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:  # one streaming pass
                for member in tar:
                    split = _member_split(member, info, archive)
                    if split is None:
                        continue
                    data = tar.extractfile(member).read()
                    _check_image(data, member.name, info, archive)
                    (out / split).mkdir(exist_ok=True)
                    (out / split / PurePosixPath(member.name).name).write_bytes(data)
            while gz.read(CHUNK):  # read to the end: gzip checks its CRC and length there
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DownloadError(f"{archive} is corrupt or truncated ({err})") from None
    # count what is on disk: a member stored twice under one name is one image, not two
    return Counter({d.name: sum(1 for _ in d.iterdir()) for d in out.iterdir() if d.is_dir()})


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
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            size = image.size
    except OSError as err:  # PIL.UnidentifiedImageError is an OSError
        raise DownloadError(f"{archive}: {member} is not a readable image ({err})") from None
    if size != info.pair_size:
        want = "x".join(map(str, info.pair_size))
        raise DownloadError(f"{archive}: {member} is {size[0]}x{size[1]}, expected {want} "
                            f"(A | B halves side by side)")


def _check_counts(counts: Counter, info: DatasetInfo, archive: Path) -> None:
    for split, want in info.splits.items():
        if counts[split] != want:
            hint = "" if info.counts_verified else \
                " (this dataset's counts are unverified: --skip-count-check installs anyway)"
            raise DownloadError(f"{archive}: split {split!r} has {counts[split]} images, "
                                f"expected {want}{hint}")


# --- command line ---------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=[*DATASETS, "all"],
                        help=f"dataset to install; 'all' = {', '.join(ALL)}")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="folder that receives <name>/ (default: %(default)s)")
    parser.add_argument("--mirror", default=None,
                        help=f"base URL that replaces {BASE_URL} (or set ${MIRROR_ENV})")
    parser.add_argument("--archive", default=None,
                        help="install from this local <name>.tar.gz instead of downloading "
                             "(<root>/.downloads/<name>.tar.gz is picked up by itself)")
    parser.add_argument("--retries", type=int, default=5,
                        help="extra tries after a failed or cut download (default: %(default)s)")
    parser.add_argument("--cityscapes-zips", default=None,
                        help=f"folder with the official {PHOTOS_ZIP} and {LABELS_ZIP}: build "
                             "cityscapes from them (default: datasets/cityscapes/ if it "
                             "holds them)")
    parser.add_argument("--skip-count-check", action="store_true",
                        help="install even if a split's image count differs from the registry")
    parser.add_argument("--keep-archive", action="store_true",
                        help="keep the downloaded .tar.gz under <root>/.downloads/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--params", default=None,
                        help="params file (what the DVC stage passes): at `scale: smoke` the "
                             "synthetic stand-in is written instead of downloading")


def install_synthetic(names, root, params: dict) -> int:
    """Smoke scale: the deterministic stand-ins, at the smoke profile's image size."""
    from replication.data.synthetic import make_synthetic
    size = (scale_profile(params).get("data") or {}).get("image_size", 64)
    for name in names:
        path = make_synthetic(name, root, size=size)
        print(f"{name}: synthetic stand-in ({size} px, scale {params['scale']}) -> {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    names = ALL if args.name == "all" else (args.name,)
    if args.archive and len(names) > 1:
        raise DownloadError("--archive installs one dataset; name it instead of 'all'")
    if args.params and load_params(args.params).get("scale", "paper") != "paper":
        return install_synthetic(names, args.root, load_params(args.params))
    for name in names:
        path = download_dataset(
            name, args.root, mirror=args.mirror, retries=args.retries,
            progress=not args.no_progress, archive=args.archive,
            cityscapes_zips=args.cityscapes_zips, check_counts=not args.skip_count_check,
            keep_archive=args.keep_archive)
        record = json.loads((path / VERIFIED_MARKER).read_text())
        print(f"{name}: {path} {record['counts']}")
        if name == "cityscapes" and not record.get("label_ids"):
            print(f"cityscapes: no gtFine labelIds (built from the archive); the exact FCN "
                  f"score needs {LABELS_ZIP} and {PHOTOS_ZIP} via --cityscapes-zips")
    return 0
