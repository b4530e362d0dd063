"""The authors' released generators as rows of the tables (params.yaml `released: NAME`).

pytorch-CycleGAN-and-pix2pix publishes its pix2pix generators at RELEASED_URL; its
scripts/download_pix2pix_model.sh lists the names (docs/architectures.md). An experiment
with `released: NAME` trains nothing: its train stage fetches that file (upstream, or
$REPLICATION_MIRROR, or a copy placed by hand in the run folder), maps it onto this code's
U-Net (models/reference.py) and writes the run folder's generator.pt, so generate and
score treat it as any trained run. One seed: a released model is one network.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from replication.config.schema import ExperimentConfig
from replication.core import fetch, layout
from replication.core.errors import CheckpointError, ConfigError
from replication.core.fileio import file_sha256, write_json, write_text
from replication.models import reference
from replication.training import checkpoints

RELEASED_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{name}.pth"
# the download script's list; all are pix2pix U-Nets (unet_256, --norm batch)
RELEASED_MODELS = ("facades_label2photo", "sat2map", "map2sat", "edges2shoes", "day2night")
# Download bound (fetch.py): a unet_256 with ngf 64 has 54.4M float32 parameters, 218 MB;
# twice that and more
MAX_RELEASED_BYTES = 512 << 20


def check_released(cfg: ExperimentConfig) -> None:
    """A known name and one seed (one-line errors naming the fix)."""
    if cfg.released not in RELEASED_MODELS:
        raise ConfigError(f"experiments.{cfg.name}.released={cfg.released!r} is not one of "
                          f"{list(RELEASED_MODELS)} (the authors' released pix2pix models)")
    if len(cfg.seeds) != 1:
        raise ConfigError(f"experiments.{cfg.name}: released={cfg.released} is one network; "
                          f"set seeds: [0] (got {list(cfg.seeds)})")


def released_file(run: Path, name: str) -> Path:
    """Where a run folder keeps the released file (placed there by hand when offline)."""
    return Path(run) / "released" / f"{name}.pth"


def install(cfg: ExperimentConfig, run: Path, progress: bool = True) -> dict:
    """Fetch (once) and convert the released generator of `cfg` into `run`; its train.json
    record: where the file came from, its SHA-256 and the network's parameter count."""
    check_released(cfg)
    path = released_file(run, cfg.released)
    if not path.is_file():
        fetch.fetch(fetch.source_url(RELEASED_URL.format(name=cfg.released)), path,
                    progress=progress, max_bytes=MAX_RELEASED_BYTES)
    G, saved = load_released(path, cfg)
    checkpoints.save_generator(G, saved, cfg.seeds[0], 0, layout.generator_path(run))
    return {"released": cfg.released, "file": str(path), "url": fetch.origin(path),
            "sha256": file_sha256(path), "finished": True, "step": 0, "total_steps": 0,
            "parameters": sum(p.numel() for p in G.parameters())}


def install_stage(cfg: ExperimentConfig, out: Path | None, progress: bool = True) -> int:
    """`replication train` for a released experiment: install into `out` (or the stage's
    run folder, then also its train.json and a logs/ note)."""
    run = out or layout.run_dir(cfg.name, cfg.seeds[0])
    summary = install(cfg, run, progress=progress)
    print(f"{cfg.name}: released model {cfg.released} ({summary['parameters']:,} parameters, "
          f"sha256 {summary['sha256'][:12]}) -> {layout.generator_path(run)}; not trained")
    if out is None:
        # the stage's logs/ output exists, saying why it holds no loss curves
        write_text(layout.log_dir(cfg.name, cfg.seeds[0]) / "README.txt",
                   f"{cfg.name}: the authors' released {cfg.released}, not trained here: "
                   "no loss curves\n")
        write_json(layout.train_metrics(cfg.name), {f"seed-{cfg.seeds[0]}": summary})
    return 0


def load_released(path: Path, cfg: ExperimentConfig) -> tuple[torch.nn.Module, ExperimentConfig]:
    """Our U-Net holding the file's weights, and the experiment's config with the
    generator the file fixes (its width, depth and the reference's dropout placement)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable PyTorch file ({type(err).__name__}); "
                              "delete it to download it again") from None
    if not reference.is_reference_state_dict(state):
        raise CheckpointError(f"{path}: not a pytorch-CycleGAN-and-pix2pix U-Net state dict; "
                              "delete it to download it again")
    try:
        G, theirs = reference.load_reference_generator(state, cfg.name)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    if theirs.data.image_size != cfg.data.image_size:
        raise ConfigError(f"experiments.{cfg.name}: {path.name} is a {theirs.data.image_size} px "
                          f"network but data.image_size={cfg.data.image_size}; released models "
                          "are scored at their own size (set data.image_size)")
    return G, dataclasses.replace(cfg, generator=theirs.generator)
