"""A run's fingerprint: what decides its weights, and nothing else (issue 25).

Each test edits a copy of the package the way a developer would and asks whether
codehash.weights_digest — the code part of every checkpoint's fingerprint, which the
pipeline's train stages restart on (`--on-config-change restart`) — moved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from replication.core import codehash

PACKAGE = Path(codehash.__file__).resolve().parents[1]


@pytest.fixture
def package(tmp_path) -> Path:
    copy = tmp_path / "replication"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def edit(package: Path, relative: str, old: str, new: str) -> None:
    path = package / relative
    text = path.read_text()
    assert old in text, f"{relative}: {old!r} is gone; update this test"
    path.write_text(text.replace(old, new, 1))


# (file, text, replacement): what a developer does to code that decides no weights
UNCHANGED = {
    "download code": ("core/fetch.py", "retries: int = 5,", "retries: int = 7,"),
    "the download stage": ("data/download.py", '"""', '"""Reworded.\n'),
    "logging": ("training/monitor.py", "means = {name: value / meter.count",
                "means = {name: value / max(meter.count, 1)"),
    "an error message in the data pipeline": (
        "data/paired.py", 'no .jpg/.png images in this folder', "holds no images"),
    "the error classes' messages": ("core/errors.py", '"""', '"""Reworded.\n'),
    "a comment and a docstring in the step": (
        "models/losses.py", "    l1 = (fake - target).abs().mean()\n",
        '    """Spelled out."""\n    # the mean over every element\n'
        "    l1 = (fake - target).abs().mean()\n"),
    "an import written another way": (
        "training/trainer.py", "from replication.core import codehash\n",
        "import replication.core.codehash as codehash\n"),
}
CHANGED = {
    "the loss": ("models/losses.py", "l1 = (fake - target).abs().mean()",
                 "l1 = (fake - target).abs().sum()"),
    "the lr schedule": ("training/trainer.py", "return 1.0 - max(0, step - half)",
                        "return 1.0 - max(0, step - half + 1)"),
    "the data pipeline": ("data/paired.py", "flips = torch.rand(count, generator=gen) < 0.5",
                          "flips = torch.rand(count, generator=gen) < 0.25"),
}


@pytest.mark.parametrize("what", sorted(UNCHANGED))
def test_editing_what_decides_no_weights_keeps_the_fingerprint(package, what):
    before = codehash.weights_digest(package)
    edit(package, *UNCHANGED[what])
    assert codehash.weights_digest(package) == before


@pytest.mark.parametrize("what", sorted(CHANGED))
def test_editing_the_step_changes_the_fingerprint(package, what):
    before = codehash.weights_digest(package)
    edit(package, *CHANGED[what])
    assert codehash.weights_digest(package) != before


def test_a_pure_move_keeps_the_fingerprint(package):
    # a module moved to another folder, its importers rewritten: the same computation
    before = codehash.weights_digest(package)
    (package / "training/trainer.py").rename(package / "models/trainer.py")
    for path in package.rglob("*.py"):
        text = path.read_text()
        if "replication.training.trainer" in text:
            path.write_text(text.replace("replication.training.trainer",
                                         "replication.models.trainer"))
    assert "models/trainer.py" in codehash.weight_code(package)
    assert codehash.weights_digest(package) == before


def test_the_weight_code_is_the_step_and_not_the_plumbing():
    files = codehash.weight_code()
    for decides in ("models/generators.py", "models/discriminators.py", "models/losses.py",
                    "training/trainer.py", "training/fast.py", "training/fusion.py",
                    "data/paired.py", "core/numerics.py", "config/schema.py"):
        assert decides in files
    for plumbing in ("data/download.py", "core/fetch.py", "core/errors.py",
                     "training/monitor.py", "training/loop.py", "core/progress.py",
                     "config/params.py", "stages/train.py"):
        assert plumbing not in files
