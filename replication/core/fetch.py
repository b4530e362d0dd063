"""HTTP downloads that survive a slow, flaky host: retries, Range resume, length checks.

Every file the suite downloads (the dataset archives, the authors' FCN-8s caffemodel,
pytorch-fid's Inception weights) goes through `fetch(url, dest)`: the body streams into
`dest.part`, a cut connection is retried with an HTTP Range request from where it
stopped, and only a body of the announced length is renamed to `dest`. One process at a
time fetches a given file (a lock beside it), so parallel DVC stages never write the
same `.part`. `base_url()` is where files come from: upstream, or one mirror for all.

Every download is bounded (`max_bytes`, what the file can be at most: datasets.py and
its callers say why): a larger announced length is refused before the body is read, a
body without Content-Length is cut at the bound, and either way the `.part` is deleted.
A mirror URL may carry credentials (`http://user:password@host/...`): they are sent as
HTTP basic auth, never printed or recorded (`redact`).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from replication.core.errors import DownloadError
from replication.core.fileio import NO_ROOM, READ_ONLY, write_failed, write_json

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


def fetch(url: str, dest: Path, retries: int = 5, progress: bool = True, *,
          max_bytes: int) -> None:
    """Download `url` to `dest` via `dest.part`, resuming what earlier tries left; record
    the URL (without credentials) beside it (`origin(dest)`). More than `max_bytes`, or
    a write the disk refuses: one-line error, the `.part` deleted."""
    from replication.core.fileio import exclusive_file
    if retries < 0:
        raise DownloadError(f"retries={retries} must be >= 0")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_file(dest.with_name(f".{dest.name}.lock"), wait=True):
            if dest.is_file():  # another process finished it while this one waited
                return
            last = _fetch_with_retries(url, part, dest, retries, progress, max_bytes)
            if last is None:
                return
    except (DownloadError, OSError) as err:
        if isinstance(err, OSError) and err.errno not in NO_ROOM + READ_ONLY:
            raise
        if isinstance(err, OSError) or isinstance(err, TooLarge):
            _delete(part)  # nothing half-downloaded is left behind
        raise (write_failed(part, err) if isinstance(err, OSError) else err) from None
    raise DownloadError(f"could not download {redact(url)} in {retries + 1} tries ({last}); "
                        f"{offline_hint(dest)}")


def _fetch_with_retries(url, part, dest, retries, progress, max_bytes) -> str | None:
    """None once `dest` is in place, else the last try's failure."""
    last = None
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, dest, progress, max_bytes)
            write_json(dest.with_name(dest.name + ORIGIN_SUFFIX), {"url": redact(url)})
            os.replace(part, dest)
            return None
        except _Retry as err:
            last = err
            if attempt < retries:
                time.sleep(min(60.0, BACKOFF_BASE_S * 2 ** attempt))
    return str(last)


class TooLarge(DownloadError):
    """A body longer than the file can be: the `.part` is deleted, never resumed."""


def _delete(part: Path) -> None:
    try:
        part.unlink(missing_ok=True)
    except OSError:  # a read-only folder: it holds no .part of this run then
        pass


def redact(url: str) -> str:
    """`url` without its password (user:password@ -> user:***@), for messages and records."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


def _request(url: str, headers: dict) -> urllib.request.Request:
    """The request for `url`, its credentials (if any) moved into a basic-auth header
    that a redirect to another host does not carry along (an unredirected header)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url, headers=headers)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=netloc)),
                                     headers=headers)
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


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


def _fetch_once(url: str, part: Path, dest: Path, progress: bool, max_bytes: int) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pix2pix-replication"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(_request(url, headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the partial file does not fit the server's file: start over
            part.unlink()
            raise _Retry("HTTP 416 for the resume offset") from None
        if err.code >= 500 or err.code in (408, 429):
            raise _Retry(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(f"{redact(url)}: HTTP {err.code} {err.reason}; "
                            f"{offline_hint(dest)}") from None
    except OSError as err:  # refused, unknown host, timeout (URLError is an OSError)
        raise _Retry(str(getattr(err, "reason", err))) from None
    except ValueError as err:  # http.client.InvalidURL, an unknown scheme
        raise DownloadError(f"{redact(url)}: not a URL this can download ({err}); "
                            f"{offline_hint(dest)}") from None
    with response:
        start, total = _resume_offset(response, have, part)
        if total is not None and total > max_bytes:
            raise TooLarge(f"{redact(url)}: the server announces {total:,} bytes, more than "
                           f"the {max_bytes:,} this file can be; not downloaded (a wrong "
                           f"file or mirror?) — {offline_hint(dest)}")
        _stream(response, part, start, total, progress, url, max_bytes)
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
    return 0, int(length) if length and length.isdigit() else None


def _stream(response, part: Path, start: int, total: int | None, progress: bool, url: str,
            max_bytes: int) -> None:
    with open(part, "ab" if start else "wb") as f, \
            tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=part.name.removesuffix(".part"), disable=not progress) as bar:
        written = start
        while chunk := _read_chunk(response):
            written += len(chunk)
            if written > max_bytes:  # no Content-Length, or a server sending more
                raise TooLarge(f"{redact(url)}: the body passed {max_bytes:,} bytes, more "
                               "than this file can be; stopped and deleted it (a wrong "
                               f"file or mirror?) — {offline_hint(part.with_suffix(''))}")
            f.write(chunk)
            bar.update(len(chunk))


def _read_chunk(response) -> bytes:
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as err:  # reset, timeout, IncompleteRead
        raise _Retry(f"connection lost ({err!r})") from None
