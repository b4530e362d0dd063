"""Atomic writes: nothing half-written is ever left where a reader could find it, and
nothing a command did not write is ever replaced.

Every file the project writes goes to a temporary sibling first and is renamed into
place (rename is atomic on POSIX within one file system). A temporary's name says which
process made it, so one that a killed process left is removed by the next writer of the
same path (and .dvcignore keeps it out of every DVC output meanwhile). A folder that a
command replaces as a whole (atomic_dir) must pass check_replaceable first. A write the
disk refuses (full, quota, read-only) is one line: WriteFailed.
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
from typing import Any, Callable, Iterable, Iterator

from replication.core import layout
from replication.core.errors import ConfigError, RunFolderBusy, WriteFailed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _one_line(path, err) from None
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if _refused_write(err, tmp, path):
            raise write_failed(path, err) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


# errno values that say the disk, not the code, refused a write: no space left, quota
# exceeded, over the process's file-size limit (ulimit -f)
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# ... and those that say the folder takes no writes: a read-only file system or mount,
# a folder without write permission for this user
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_failed(path: Path, err: Exception) -> WriteFailed:
    """The one-line error for a write the disk refused: with the space left on that disk
    (full, quota, size limit), or saying the folder is read-only (the temporary file is
    already gone: atomic_path removes it)."""
    detail = (str(err).splitlines() or [type(err).__name__])[0][:100]
    if getattr(err, "errno", None) in READ_ONLY:
        return WriteFailed(f"{path}: could not be written ({detail}): its folder is "
                           "read-only or not writable by this user; make it writable or "
                           "choose another place, and run again")
    try:
        free = f"{shutil.disk_usage(_existing_parent(path)).free / 2**30:.1f} GiB free"
    except OSError:
        free = "unknown space left"
    return WriteFailed(f"{path}: could not be written ({detail}); {free} on "
                       "its disk: free space (or lift the quota / file-size limit) and run "
                       "again")


def _existing_parent(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _refused_write(err: OSError, *written: Path) -> bool:
    """The disk refused a write (NO_ROOM, anywhere), or a write into one of `written`
    found its folder read-only: an input the block could not read keeps its own error."""
    if err.errno in NO_ROOM:
        return True
    if err.errno not in READ_ONLY:
        return False
    if err.filename is None:
        return True
    target = Path(os.path.abspath(err.filename))
    return any(target == Path(os.path.abspath(w)) or
               Path(os.path.abspath(w)) in target.parents for w in written)


def _one_line(path: Path, err: OSError) -> Exception:
    """A refused write as WriteFailed; any other OSError as it is (a bug, or a path
    that is not a folder: mkdir says which)."""
    return write_failed(path, err) if err.errno in NO_ROOM + READ_ONLY else err


# --- temporary names: whose they are, and removing those of a killed writer -------------

_HOST = socket.gethostname()[:64]


def temp_prefix(path: Path) -> str:
    """`.<name>.<pid>@<host>.` : a writer's temporary siblings of `path` say which process
    made them, so the next writer of `path` can remove those a killed process left (they
    match `.*.tmp`, which .dvcignore lists: never part of a DVC output's hash)."""
    return f".{Path(path).name}.{os.getpid()}@{_HOST}."


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary siblings of `path` whose writer is dead (killed before its
    `finally` ran: SIGKILL, SIGTERM, a power cut). Another host's, or a live process's,
    are left alone."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        name = sibling.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        owner = name[len(prefix):-len(".tmp")].rpartition(".")[0]  # <pid>@<host>
        pid, at, host = owner.partition("@")
        if not (at and pid.isdigit()) or host != _HOST or _alive(int(pid)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


# --- folders a command replaces as a whole ----------------------------------------------

# Written last into every folder a command replaces as a whole (generate, translate,
# tables): {"command": ...}. Only a folder holding it (or an empty one) is replaced again.
OUTPUT_MARKER = ".replication-output.json"


def is_own_output(path: Path, command: str) -> bool:
    """`path` holds OUTPUT_MARKER naming `command`: an earlier output of that command."""
    try:
        return json.loads((Path(path) / OUTPUT_MARKER).read_text()).get("command") == command
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable(path: str | Path, command: str, *, inputs: Iterable[str | Path] = (),
                      protected: Iterable[str | Path] = layout.PROTECTED,
                      own: Callable[[Path], bool] | None = None) -> None:
    """The one rule for a folder that `replication <command>` replaces as a whole: it
    deletes or hides nothing it did not write. `path` must be absent, an empty folder or
    the command's own earlier output (`own(path)`; default: is_own_output), never a file
    or a symbolic link; and it must not be, hold or lie inside an input folder or a
    `protected` folder (layout.PROTECTED), nor be or hold an input file (a checkpoint:
    `--checkpoint G.pt --out translated/` puts the output beside it, which deletes
    nothing). Paths are compared after resolving symbolic links (`..`, links)."""
    path = Path(path)
    fix = "choose another output folder (--out)"
    if path.is_symlink():
        raise ConfigError(f"{path} is a symbolic link (to {os.readlink(path)}); the output "
                          f"folder of `replication {command}` is replaced as a whole: {fix}")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a folder; `replication {command}` writes a "
                          f"folder there and leaves the file alone: {fix}")
    real = Path(os.path.realpath(path))
    named = [(Path(i), "its input") for i in inputs] + \
        [(Path(p), "the protected folder") for p in protected]
    for given, what in named:
        relation = _relation(real, Path(os.path.realpath(given)),
                             only_holds=what == "its input" and given.is_file())
        if relation:
            raise ConfigError(f"{path} {relation} {what} {given}; `replication {command}` "
                              f"replaces its output folder as a whole: {fix}")
    if path.is_dir() and any(path.iterdir()) and not (own or _marked(command))(path):
        raise ConfigError(f"{path} is not empty and was not written by `replication "
                          f"{command}` (no {OUTPUT_MARKER}); it would be replaced as a whole: "
                          f"{fix}, or empty it yourself")


def _relation(out: Path, other: Path, only_holds: bool) -> str | None:
    """How the output folder `out` touches `other` (both resolved), if it does."""
    if out == other:
        return "is"
    if out in other.parents:
        return "holds"
    if other in out.parents and not only_holds:
        return "lies inside"
    return None


def _marked(command: str) -> Callable[[Path], bool]:
    return lambda path: is_own_output(path, command)


@contextlib.contextmanager
def atomic_dir(path: str | Path, command: str, *, inputs: Iterable[str | Path] = (),
               protected: Iterable[str | Path] = layout.PROTECTED,
               own: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder; it replaces `path` only if the block succeeds.

    check_replaceable first (nothing the command did not write is replaced); the new
    folder gets OUTPUT_MARKER unless `own` says how the command recognises its output
    (a dataset's install record). The temporary folder is `path`'s sibling (a rename is
    atomic only within one file system); one a killed writer left is removed here."""
    path = Path(path)
    inputs, protected = list(inputs), list(protected)
    check_replaceable(path, command, inputs=inputs, protected=protected, own=own)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise _one_line(path, err) from None
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
        yield tmp
        if own is None:
            write_json(tmp / OUTPUT_MARKER, {"command": command})
        _swap_in(tmp, path)
    except OSError as err:
        if _refused_write(err, tmp, path):
            raise write_failed(path, err) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, path: Path) -> None:
    """Rename `tmp` onto `path`; an existing folder (checked replaceable) is moved aside
    under a temporary name first and deleted after."""
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        os.replace(path, old)  # onto the empty folder mkdtemp made
        os.replace(tmp, path)
    finally:
        shutil.rmtree(old, ignore_errors=True)


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
    holder's PID. Folders this call made are removed again if the block wrote nothing
    into them (a run refused before its first write leaves no empty runs/<name>/)."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _one_line(folder, err) from None
    try:
        with exclusive_file(folder / LOCK_FILE):
            yield
    finally:
        if made and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            (folder / LOCK_FILE).unlink()
            for path in made:  # deepest first; stops at the first that is not empty
                try:
                    path.rmdir()
                except OSError:
                    break


@contextlib.contextmanager
def exclusive_file(lock_path: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold the lock file `lock_path` (filelock: an flock the kernel drops when the holder
    dies). wait=False: if another process holds it, raise RunFolderBusy naming that
    process; wait=True: block until it is free."""
    from filelock import FileLock, Timeout
    lock_path = Path(lock_path)
    lock = FileLock(lock_path, timeout=-1 if wait else 0)
    owner = lock_path.with_name(lock_path.name + LOCK_OWNER_SUFFIX)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:  # a TimeoutError, an OSError: caught first
        holder = owner.read_text().strip() if owner.is_file() else "a process that just started"
        raise RunFolderBusy(f"{lock_path.parent} is in use by {holder}; wait for it to "
                            "finish or stop it, then run again") from None
    except OSError as err:  # a read-only folder (or a full disk): one line, not filelock's
        raise _one_line(lock_path, err) from None
    try:
        write_text(owner, f"PID {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
