"""HTTP downloads that survive a slow, flaky host: retries, Range resume, length checks.

Every file the suite downloads (the dataset archives, the authors' FCN-8s caffemodel,
pytorch-fid's Inception weights) goes through `fetch(url, dest)`: the body streams into
`dest.part`, a cut connection is retried with an HTTP Range request from where it
stopped, and only a body of the announced length is renamed to `dest`. One process at a
time fetches a given file (a lock beside it), so parallel DVC stages never write the
same `.part`. `base_url()` is where files come from: upstream, or one mirror for all.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from replication.errors import DownloadError
from replication.fileio import write_json

MIRROR_ENV = "REPLICATION_MIRROR"  # one base URL that serves every file by its name
CHUNK = 1 << 20
TIMEOUT_S = 60
BACKOFF_BASE_S = 2.0  # waits 2, 4, 8, ... seconds (at most 60) between tries
ORIGIN_SUFFIX = ".origin.json"  # beside a downloaded file: the URL it came from


class _Retry(Exception):
    """A failure worth another try: no connection, HTTP 5xx, a body cut short."""


def mirror_url(mirror: str | None = None) -> str | None:
    """The mirror base URL (`mirror`, else $REPLICATION_MIRROR), ending in '/', or None."""
    url = mirror or os.environ.get(MIRROR_ENV)
    return None if not url else (url if url.endswith("/") else url + "/")


def source_url(upstream: str, mirror: str | None = None) -> str:
    """`upstream`, or the file of the same name on the mirror."""
    base = mirror_url(mirror)
    return upstream if base is None else base + upstream.rsplit("/", 1)[-1]


def offline_hint(dest: Path) -> str:
    return (f"set {MIRROR_ENV}=<base url> or place {dest.name} in {dest.parent}/ by hand")


def fetch(url: str, dest: Path, retries: int = 5, progress: bool = True) -> None:
    """Download `url` to `dest` via `dest.part`, resuming what earlier tries left; record
    the URL beside it (`origin(dest)`)."""
    from replication.fileio import exclusive_file
    if retries < 0:
        raise DownloadError(f"retries={retries} must be >= 0")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_file(dest.with_name(f".{dest.name}.lock"), wait=True):
        if dest.is_file():  # another process finished it while this one waited
            return
        for attempt in range(retries + 1):
            try:
                _fetch_once(url, part, dest, progress)
                write_json(dest.with_name(dest.name + ORIGIN_SUFFIX), {"url": url})
                os.replace(part, dest)
                return
            except _Retry as err:
                last = err
                if attempt < retries:
                    time.sleep(min(60.0, BACKOFF_BASE_S * 2 ** attempt))
    raise DownloadError(f"could not download {url} in {retries + 1} tries ({last}); "
                        f"{offline_hint(dest)}")


def origin(path: Path) -> str | None:
    """The URL `fetch` downloaded `path` from; None for a file placed by hand."""
    record = path.with_name(path.name + ORIGIN_SUFFIX)
    try:
        return json.loads(record.read_text())["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget(path: Path) -> None:
    """Delete a downloaded file and its origin record."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ORIGIN_SUFFIX).unlink(missing_ok=True)


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
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; {offline_hint(dest)}") from None
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
