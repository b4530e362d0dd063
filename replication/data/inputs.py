"""`replication inputs`: record what the manual-inputs folder datasets/ holds.

datasets/ (tracked by datasets.dvc) holds what no stage can download: the official
Cityscapes zips, the authors' FCN caffemodel, pytorch-fid's Inception weights. Stages use
these files when present, so they cannot be declared as DVC dependencies (a fresh clone
without them must still run). Instead the `inputs` stage, always re-run, writes this
record of names, sizes and SHA-256 hashes; the download, segmenter and score stages
depend on the record, so DVC re-runs them exactly when an input appears or changes.
"""

from __future__ import annotations

from pathlib import Path

from replication.core.fileio import file_sha256


def describe(folder: Path) -> dict[str, dict]:
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "README.md")
    return {p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
            for p in files}
