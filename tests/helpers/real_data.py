"""Where the real Cityscapes archive is, if this checkout has one (tests only)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def real_cityscapes_archive() -> Path | None:
    """$REPLICATION_REAL_CITYSCAPES, else ../shared/real/cityscapes.tar.gz beside the
    repository (the development machines and CI), else None."""
    named = os.environ.get("REPLICATION_REAL_CITYSCAPES")
    path = Path(named) if named else REPO.parent / "shared" / "real" / "cityscapes.tar.gz"
    return path if path.is_file() else None
