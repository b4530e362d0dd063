"""FID/KID and the Lab colour histograms as metrics of a session (docs/protocols.md).

    fid_kid             FID and KID on pytorch-fid Inception pool3 features
    color_hist          Lab colour histogram intersection (paper Fig. 7d)
Both compare the generated folder with the real targets of the same test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from replication.config.scoring import ScoringConfig
from replication.core.fileio import file_sha256
from replication.metrics import fid, weights
from replication.metrics.color import color_stats
from replication.metrics.session import Session


def load_inception_features(scoring: ScoringConfig, device) -> tuple[Callable, dict]:
    """(files -> (N, 2048) pool3 features, what produced them)."""
    path = inception_weights_path(scoring)
    model = fid.load_inception(path, device)
    sha = file_sha256(path)
    return (lambda files: fid.image_features(model, files, device=device)), {
        "feature_extractor": fid.FEATURE_EXTRACTOR, "weights": str(path), "weights_sha256": sha,
        "weights_are_pytorch_fid": sha.startswith(fid.WEIGHTS_SHA256_PREFIX)}


def no_weights_reason(scoring: ScoringConfig) -> str:
    """The `reason` of an unavailable fid_kid record: short, as tables and `replication
    status` show it, with a hint that works at this scale; where the weights were looked
    for goes into `weights_searched`."""
    return f"no Inception weights ({weights.how_to_get(scoring)})"


def inception_weights_path(scoring: ScoringConfig) -> Path:
    """scoring.inception_weights when that file exists, else the torch hub cache file."""
    found = weights.first_file(weights.inception_candidates(scoring.inception_weights))
    if found is None:
        raise fid.WeightsUnavailable(no_weights_reason(scoring))
    return found


def weights_searched(scoring: ScoringConfig) -> str:
    """Where the Inception weights were looked for, and how to place them offline."""
    where = ", ".join(map(str, weights.inception_candidates(scoring.inception_weights)))
    return (f"{fid.WEIGHTS_FILE} looked for at {where}; offline, put it there or set "
            f"{fid.WEIGHTS_PARAM}")


def fid_kid(session: Session, folder: Path) -> dict:
    try:
        features, info = session.model(
            "inception", lambda: load_inception_features(session.scoring, session.device))
    except fid.WeightsUnavailable:  # the file is missing (fid.load_inception: vanished)
        return {"protocol": "fid_kid", "available": False,
                "reason": no_weights_reason(session.scoring),
                "weights_searched": weights_searched(session.scoring),
                "n_generated": len(session.names), "n_real": len(session.names)}
    result = fid.fid_kid(session.generated_files(folder), session.real_files(),
                         feature_fn=lambda files: session.features(features, files),
                         kid_subsets=session.scoring.kid_subsets,
                         kid_subset_size=session.scoring.kid_subset_size)
    return {"protocol": "fid_kid", "available": True, **result, **info,
            "reference": f"real {session.split} targets, PNG at {session.size} px"}


def color_hist(session: Session, folder: Path) -> dict:
    result = color_stats(session.generated_files(folder), session.real_files())
    bins = result.pop("bins")
    return {"protocol": "color_hist", "space": "Lab, histogram intersection per channel",
            **result, **{f"bins_{c}": n for c, n in bins.items()},
            "reference": f"real {session.split} targets, PNG at {session.size} px"}
