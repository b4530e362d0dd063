"""Atomic writes: all or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from replication.fileio import atomic_dir, atomic_path, write_text


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_failed_dir_leaves_old_dir(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "y").write_text("2")
            raise RuntimeError("crash")
    assert sorted(os.listdir(target)) == ["x"] and os.listdir(tmp_path) == ["d"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "f", "x")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


# Run in a child under a 1 MiB file-size limit (ulimit -f): the kernel refuses the rest of
# each write with EFBIG, the way a full disk refuses with ENOSPC (torch.save included).
WRITES_OVER_THE_LIMIT = """
import sys, torch
from pathlib import Path
from replication import checkpoints
from replication.errors import UserError
from replication.fileio import write_text
folder = Path(sys.argv[1])
for name, write in (("state.pt", lambda p: checkpoints.save({"w": torch.zeros(1 << 20)}, p)),
                    ("notes.txt", lambda p: write_text(p, "x" * (2 << 20)))):
    try:
        write(folder / name)
    except UserError as err:
        print(err)
"""


def _one_mib_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the writer
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))


def test_a_write_the_disk_refuses_is_one_line_and_leaves_no_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.run([sys.executable, "-c", WRITES_OVER_THE_LIMIT, str(out)],
                           preexec_fn=_one_mib_file_limit, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert [line.split(": could not be written (")[0] for line in lines] == \
        [str(out / "state.pt"), str(out / "notes.txt")]
    assert "File too large" in lines[1] and all("GiB free on its disk" in x for x in lines)
    assert os.listdir(out) == []  # no temporary file, no partial checkpoint
