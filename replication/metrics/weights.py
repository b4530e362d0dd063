"""`replication weights`: the two networks scoring borrows, found or downloaded once.

- The authors' FCN-8s for the FCN-score, `fcn-8s-cityscapes.caffemodel` (~0.5 GB): the
  reference's scripts/eval_cityscapes/download_fcn8s.sh fetches it from FCN_URL (the
  old tinghuiz address is dead). Looked for at scoring.fcn_caffemodel (datasets/, a
  manual drop-in), then in data/weights/ (this stage's download).
- pytorch-fid's Inception weights for FID/KID, looked for at scoring.inception_weights
  (datasets/, for offline machines), then in the torch hub cache, where pytorch-fid
  itself would put them and this stage downloads them.

Downloads go through fetch.py (retries, resume, $REPLICATION_MIRROR serving both files
by name) and are checked by content: the caffemodel must load into FCN-8s layer by layer,
the Inception file into pytorch-fid's network. Offline, or with scoring.download_weights
false, nothing is fetched: data/weights/weights.json then says, per network, why it is
missing, and the scores fall back (FCN-score) or say so in their row (FID/KID).
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_fid.inception import FID_WEIGHTS_URL

from replication.core import fetch, layout
from replication.core.errors import DownloadError, ScoringError
from replication.core.fileio import file_sha256, write_json
from replication.metrics import fcn, fid

FCN_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix_extra/fcn-8s-cityscapes.caffemodel"
FCN_FILE = FCN_URL.rsplit("/", 1)[-1]
DOWNLOADED_FCN = layout.WEIGHTS / FCN_FILE
RECORD = layout.WEIGHTS / "weights.json"
# Download and load bounds: about twice each file's size. The caffemodel: FCN-8s's
# ~134M float32 parameters, ~0.5 GB; pytorch-fid's Inception weights: ~92 MB.
MAX_BYTES = {"fcn": 1 << 30, "inception": 256 << 20}


def hub_inception() -> Path:
    """Where pytorch-fid's own download (torch.hub) keeps the Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / fid.WEIGHTS_FILE


def fcn_candidates(configured: str | None) -> list[Path]:
    return [p for p in (configured and Path(configured), DOWNLOADED_FCN) if p]


def inception_candidates(configured: str | None) -> list[Path]:
    return [p for p in (configured and Path(configured), hub_inception()) if p]


def first_file(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def ensure_fcn(configured: str | None, mirror: str | None = None, retries: int = 5,
               progress: bool = True) -> Path:
    """The authors' caffemodel: found (and checked), else downloaded and checked layer by
    layer."""
    found = first_file(fcn_candidates(configured))
    if found is not None:
        return checked_placed("fcn", found)
    fetch.fetch(fetch.source_url(FCN_URL, mirror), DOWNLOADED_FCN, retries, progress,
                max_bytes=MAX_BYTES["fcn"])
    return checked_download("fcn", DOWNLOADED_FCN)


def ensure_inception(configured: str | None, mirror: str | None = None, retries: int = 5,
                     progress: bool = True) -> Path:
    """pytorch-fid's Inception weights: found (and checked), else downloaded into the
    torch hub cache and loaded once into pytorch-fid's network (strict: every tensor by
    name)."""
    found = first_file(inception_candidates(configured))
    if found is not None:
        return checked_placed("inception", found)
    dest = hub_inception()
    fetch.fetch(fetch.source_url(FID_WEIGHTS_URL, mirror), dest, retries, progress,
                max_bytes=MAX_BYTES["inception"])
    return checked_download("inception", dest)


def check_loads(name: str, path: Path) -> None:
    """ScoringError unless `path` (at most MAX_BYTES[name]) loads as network `name`: the
    caffemodel into FCN-8s layer by layer, the Inception file strictly into pytorch-fid's
    network. What is recorded available is what scoring can load."""
    size = path.stat().st_size
    if size > MAX_BYTES[name]:
        raise ScoringError(f"{path} is {size:,} bytes, more than the {MAX_BYTES[name]:,} "
                           f"the {name} weights can take")
    if name == "fcn":
        fcn.fcn8s_from_caffemodel(path)  # every layer present, every shape right
    else:
        fid.load_inception(path)


def checked_placed(name: str, path: Path) -> Path:
    """A file found in place (by hand, or an earlier run): used only if it loads; kept
    either way (it is not ours to delete)."""
    try:
        check_loads(name, path)
    except ScoringError as err:
        raise DownloadError(f"{err}; replace it with the real file (it was found in place "
                            "and is left as it is)") from None
    return path


def checked_download(name: str, path: Path) -> Path:
    """A file this stage downloaded: removed again if it does not load."""
    try:
        check_loads(name, path)
    except ScoringError as err:
        fetch.forget(path)
        raise DownloadError(f"{err}; removed the download") from None
    return path


def describe(path: Path) -> dict:
    return {"available": True, "path": str(path), "bytes": path.stat().st_size,
            "sha256": file_sha256(path), "downloaded_from": fetch.origin(path)}


def how_to_get(scoring) -> str:
    """The hint beside a missing network: a command that works here, or the setting that
    stops it (at smoke scale `replication weights` fetches nothing)."""
    if scoring.download_weights:
        return "run `replication weights`"
    return ("scoring.download_weights is false at this scale: set it true in params.yaml "
            "`scoring`, then `replication weights`")


def run_stage(scoring, mirror: str | None = None, progress: bool = True) -> dict:
    """Find or fetch both networks; the record says what is there and, if not, why."""
    wanted = {"fcn": (ensure_fcn, fcn_candidates, scoring.fcn_caffemodel),
              "inception": (ensure_inception, inception_candidates, scoring.inception_weights)}
    record = {}
    for name, (ensure, candidates, configured) in wanted.items():
        try:
            if scoring.download_weights:
                path = ensure(configured, mirror, progress=progress)
            else:
                path = first_file(candidates(configured))
                if path is None:
                    raise DownloadError(f"not in {', '.join(map(str, candidates(configured)))} "
                                        "and scoring.download_weights is false at this scale "
                                        "(set it true in params.yaml `scoring` to download, "
                                        "or place the file there)")
                checked_placed(name, path)
            record[name] = describe(path)
        except DownloadError as err:
            record[name] = {"available": False, "reason": str(err)}
    write_json(RECORD, record)
    return record
