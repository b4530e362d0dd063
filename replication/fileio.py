"""Atomic writes: nothing half-written is ever left where a reader could find it.

Every file the project writes goes to a temporary sibling first and is renamed into
place (rename is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

from replication.errors import RunFolderBusy, WriteFailed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in NO_ROOM:
            raise write_failed(path, err) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


# errno values that say the disk, not the code, refused a write: no space left, quota
# exceeded, over the process's file-size limit (ulimit -f)
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failed(path: Path, err: Exception) -> WriteFailed:
    """The one-line error for a write the disk refused, with the space left on that disk
    (the temporary file is already gone: atomic_path removes it)."""
    detail = (str(err).splitlines() or [type(err).__name__])[0][:100]
    free_gib = shutil.disk_usage(path.parent).free / 2**30
    return WriteFailed(f"{path}: could not be written ({detail}); {free_gib:.1f} GiB free on "
                       "its disk: free space (or lift the quota / file-size limit) and run "
                       "again")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks (weights files are up to ~0.5 GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# The lock of a folder that one process at a time may write (a run folder) and the note
# of who holds it. .dvcignore lists both, so they never enter a DVC output's hash.
LOCK_FILE, LOCK_OWNER_SUFFIX = ".lock", ".owner"


@contextlib.contextmanager
def exclusive(folder: str | Path) -> Iterator[None]:
    """Hold `folder`'s lock for the block; a second process gets RunFolderBusy naming the
    holder's PID."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_file(folder / LOCK_FILE):
        yield


@contextlib.contextmanager
def exclusive_file(lock_path: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold the lock file `lock_path` (filelock: an flock the kernel drops when the holder
    dies). wait=False: if another process holds it, raise RunFolderBusy naming that
    process; wait=True: block until it is free."""
    from filelock import FileLock, Timeout
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path, timeout=-1 if wait else 0)
    owner = lock_path.with_name(lock_path.name + LOCK_OWNER_SUFFIX)
    try:
        lock.acquire()
    except Timeout:
        holder = owner.read_text().strip() if owner.is_file() else "a process that just started"
        raise RunFolderBusy(f"{lock_path.parent} is in use by {holder}; wait for it to "
                            "finish or stop it, then run again") from None
    try:
        write_text(owner, f"PID {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
