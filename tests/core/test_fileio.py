"""Atomic writes: all or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pytest

from replication.core.errors import ConfigError, WriteFailed
from replication.core.fileio import OUTPUT_MARKER, atomic_dir, atomic_path, write_text


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
    with atomic_dir(target, "test") as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, "test") as tmp:
            (tmp / "y").write_text("2")
            raise RuntimeError("crash")
    assert sorted(os.listdir(target)) == [OUTPUT_MARKER, "x"] and os.listdir(tmp_path) == ["d"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "f", "x")
        with atomic_dir(tmp_path / "d", "test"):
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
from replication.training import checkpoints
from replication.core.errors import UserError
from replication.core.fileio import write_text
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


# --- folders replaced as a whole: nothing the command did not write --------------------

def one_line_refusal(info, *named) -> str:
    text = str(info.value)
    assert "\n" not in text and all(str(n) in text for n in named), text
    return text


def test_our_own_earlier_output_is_replaced_and_marked(tmp_path):
    with atomic_dir(tmp_path / "out", "translate") as tmp:
        (tmp / "a.png").write_text("1")
    with atomic_dir(tmp_path / "out", "translate") as tmp:
        (tmp / "b.png").write_text("2")
    assert sorted(os.listdir(tmp_path / "out")) == [OUTPUT_MARKER, "b.png"]
    assert os.listdir(tmp_path) == ["out"]  # nothing hidden beside it (no .out.old)


@pytest.mark.parametrize("foreign", ["user file", "another command's output"])
def test_a_folder_we_did_not_write_is_refused_and_kept(foreign, tmp_path):
    out = tmp_path / "out"
    if foreign == "user file":
        out.mkdir()
        (out / "holiday.jpg").write_text("precious")
    else:
        with atomic_dir(out, "tables") as tmp:
            (tmp / "holiday.jpg").write_text("precious")
    with pytest.raises(ConfigError) as info:
        with atomic_dir(out, "translate"):
            raise AssertionError("the block must not run")
    one_line_refusal(info, out, "translate", "another output folder")
    assert (out / "holiday.jpg").read_text() == "precious"
    assert os.listdir(tmp_path) == ["out"]


def test_an_empty_folder_is_taken(tmp_path):
    (tmp_path / "out").mkdir()
    with atomic_dir(tmp_path / "out", "translate") as tmp:
        (tmp / "a.png").write_text("1")
    assert (tmp_path / "out" / "a.png").is_file()


def test_a_file_at_the_output_path_is_refused_never_renamed(tmp_path):
    (tmp_path / "out").write_text("my notes")
    with pytest.raises(ConfigError) as info:
        with atomic_dir(tmp_path / "out", "translate"):
            pass
    one_line_refusal(info, tmp_path / "out", "is a file")
    assert (tmp_path / "out").read_text() == "my notes" and os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("out, inputs", [
    ("data", []), ("data/facades", []), (".", []), ("datasets", []), ("runs/x/seed-0", []),
    ("metrics", []), ("link-to-data/sub", []), ("link-to-data/..", []),
    ("photos", ["photos"]), ("photos/out", ["photos"]), ("pictures", ["pictures/photos"]),
    ("run", ["run/generator.pt"]), ("run/../run", ["run/generator.pt"]),
])
def test_an_output_may_not_be_hold_or_lie_inside_inputs_or_protected_folders(
        out, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("data/facades/test", "datasets", "runs/x/seed-0", "metrics/x", "photos",
                   "pictures/photos", "run"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "keep.txt").write_text("keep")
    (tmp_path / "run" / "generator.pt").write_text("weights")
    (tmp_path / "link-to-data").symlink_to(tmp_path / "data")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as info:
        with atomic_dir(out, "translate", inputs=inputs):
            pass
    one_line_refusal(info, out)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_symbolic_link_at_the_output_path_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError) as info:
        with atomic_dir(tmp_path / "link", "translate"):
            pass
    one_line_refusal(info, tmp_path / "link", "symbolic link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real").is_dir()


# A writer killed inside its block (SIGKILL: no `finally` runs) leaves its temporary
# sibling; the next writer of the same path removes it.
KILLED_WRITER = """
import os, signal, sys
from replication.core.fileio import atomic_dir, atomic_path
target = sys.argv[1]
if sys.argv[2] == "dir":
    with atomic_dir(target, "generate") as tmp:
        (tmp / "0.png").write_text("partial")
        os.kill(os.getpid(), signal.SIGKILL)
with atomic_path(target) as tmp:
    tmp.write_text("partial")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_what_a_killed_writer_left_is_removed_by_the_next_one(kind, tmp_path):
    target = tmp_path / "generated" / "seed-0"
    target.parent.mkdir()
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target), kind])
    assert child.returncode == -signal.SIGKILL
    left = os.listdir(target.parent)
    assert len(left) == 1 and left[0].startswith(".seed-0.") and left[0].endswith(".tmp")
    if kind == "dir":
        with atomic_dir(target, "generate") as tmp:
            (tmp / "0.png").write_text("whole")
    else:
        write_text(target, "whole")
    assert os.listdir(target.parent) == ["seed-0"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target, "generate") as tmp:
        with atomic_dir(target, "generate"):  # a second writer: must not delete the first's
            pass
        assert tmp.is_dir()
        (tmp / "0.png").write_text("1")
    assert (target / "0.png").is_file()


def test_dvc_ignores_temporaries():
    # .dvcignore, read by DVC's own matcher: a temporary sibling inside a DVC output (a
    # writer killed before it removed it) never enters the output's hash
    from pathlib import Path

    from dvc.fs import localfs
    from dvc.ignore import DvcIgnorePatterns
    root = Path(__file__).resolve().parents[2]
    rules = DvcIgnorePatterns.from_file(str(root / ".dvcignore"), localfs, ".dvcignore")
    folder = str(root / "generated" / "facades-l1-cgan")
    assert rules.matches(folder, ".seed-0.123@host.abcd1234.tmp", is_dir=True)
    assert rules.matches(str(root / "runs" / "x" / "seed-0"), ".state.pt.123@host.ab12.tmp")
    assert not rules.matches(folder, "seed-0", is_dir=True)


def test_a_read_only_output_folder_is_one_line(tmp_path, read_only):
    parent = tmp_path / "ro"
    parent.mkdir()
    read_only(parent)
    for write in (lambda: write_text(parent / "notes.txt", "x"),
                  lambda: atomic_dir(parent / "out", "translate").__enter__()):
        with pytest.raises(WriteFailed) as info:
            write()
        one_line_refusal(info, parent, "read-only")


WRITE_A_FOLDER_OVER_THE_LIMIT = """
import sys
from pathlib import Path
from replication.core.errors import UserError
from replication.core.fileio import atomic_dir
try:
    with atomic_dir(Path(sys.argv[1]) / "out", "generate") as tmp:
        (tmp / "big.png").write_bytes(b"x" * (2 << 20))
except UserError as err:
    print(err)
"""


def test_a_folder_the_disk_refuses_is_one_line_and_leaves_nothing(tmp_path):
    child = subprocess.run([sys.executable, "-c", WRITE_A_FOLDER_OVER_THE_LIMIT, str(tmp_path)],
                           preexec_fn=_one_mib_file_limit, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith(f"{tmp_path / 'out'}: could not be written (")
    assert child.stdout.count("\n") == 1 and "GiB free on its disk" in child.stdout
    assert os.listdir(tmp_path) == []


def test_a_lock_that_wrote_nothing_leaves_no_folders_it_made(tmp_path):
    from replication.core.fileio import exclusive
    with pytest.raises(RuntimeError):  # refused before the first write (a bad --data)
        with exclusive(tmp_path / "runs/nowhere/seed-0"):
            raise RuntimeError("no data")
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()
    with exclusive(kept):  # a folder that was there before stays
        pass
    assert kept.is_dir()
    with exclusive(tmp_path / "wrote/seed-0"):
        (tmp_path / "wrote/seed-0/config.yaml").write_text("x")
    assert (tmp_path / "wrote/seed-0/config.yaml").is_file()
