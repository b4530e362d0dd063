"""params.yaml `scoring`: how generated images are scored (the one source of its defaults).

The section may carry per-scale overrides under `scoring.scales.<scale>`, merged over it at
that scale (the top-level `scales` profiles configure experiments only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replication.config.params import PAPER, Params
from replication.config.schema import (
    check_count,
    check_finite,
    deep_merge,
    from_dict,
)
from replication.core.device_names import check_device
from replication.core.errors import ConfigError

# pytorch-fid's Inception weights file, as torch hub names it (fid.py; here so that
# reading the settings imports no torch: `replication status --help` stays fast)
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
# FCN-8s's VGG16 trunk: conv1_x .. conv5_x output channels (metrics/fcn.py builds it)
VGG_WIDTHS = (64, 128, 256, 512, 512)


@dataclass(frozen=True)
class SegmenterConfig:
    """The fallback segmenter (`replication segmenter`): FCN-8s layers, narrower, trained
    from random init, since ImageNet VGG16 weights cannot be fetched offline (the authors'
    FCN-8s started from them)."""
    widths: tuple[int, ...] = (32, 64, 128, 256, 256)  # VGG16: 64, 128, 256, 512, 512
    # the resolution it is trained and scores at: None = the experiments' image size; a
    # larger one (e.g. 256, the archive's own) scores generated photos upsampled bilinearly
    # to it against labels at it, as the paper's protocol upsamples to the label size
    image_size: int | None = None
    fc_width: int = 1024  # VGG16 fc6 / fc7: 4096
    iterations: int = 20000
    batch_size: int = 8
    lr: float = 1e-4  # Adam
    flip: bool = True  # random horizontal mirroring of photo and labels together
    seed: int = 0
    log_every: int = 100
    # every N iterations the real val photos are segmented and scored: the learning curve
    # of the ground-truth row, kept in runs/segmenter/fallback.json (None: at the end only)
    curve_every: int | None = None


@dataclass(frozen=True)
class ScoringConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 4  # images per segmenter forward pass (4 FCN-8s frames at 1024x2048
    # need about 12 GB of activations)
    # manual drop-ins (datasets/, DVC-tracked); missing ones are looked for where the
    # `weights` stage downloads them (data/weights/, the torch hub cache), see weights.py
    fcn_caffemodel: str = "datasets/weights/fcn-8s-cityscapes.caffemodel"
    inception_weights: str | None = "datasets/weights/" + INCEPTION_FILE
    # paper run: the `weights` stage downloads both networks; false on offline machines
    download_weights: bool = True
    # colour label maps (the fallback's truth, Table 6's generated maps) -> train ids:
    # "supported" = nearest colour kept only where a confident pixel of that class is near
    # (segmentation.decode_label_maps, docs/protocols.md); "nearest" = every pixel its
    # nearest colour, the earlier rule (JPEG edge blends then decode to third classes)
    label_decoding: str = "supported"
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # capped at half the sample count (fid.kid_subset_size)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    # experiment name -> metric names; replaces `metrics_for`'s rule for that experiment
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_finite(self, "scoring.")  # config.py's rules, as for the experiments
        check_device("scoring.device", self.device)
        if self.label_decoding not in ("supported", "nearest"):
            raise ConfigError(f"scoring.label_decoding={self.label_decoding!r} is not one of "
                              "['supported', 'nearest']")
        for name, chosen in self.metrics.items():
            if not isinstance(chosen, list) or not chosen:
                raise ConfigError(f"scoring.metrics.{name}={chosen!r} must be a non-empty list "
                                  "of metric names (replication/metrics/registry.py)")
        if len(self.segmenter.widths) != len(VGG_WIDTHS):
            raise ConfigError(f"scoring.segmenter.widths={list(self.segmenter.widths)} must "
                              f"list {len(VGG_WIDTHS)} block widths (VGG16: "
                              f"{list(VGG_WIDTHS)})")
        for key in ("batch_size", "kid_subsets", "kid_subset_size", "segmenter.iterations",
                    "segmenter.batch_size", "segmenter.log_every", "segmenter.fc_width"):
            section, _, name = key.rpartition(".")
            value = getattr(getattr(self, section) if section else self, name)
            check_count(f"scoring.{key}", value)
        if self.segmenter.image_size is not None:
            check_count("scoring.segmenter.image_size", self.segmenter.image_size)
        if self.segmenter.curve_every is not None:
            check_count("scoring.segmenter.curve_every", self.segmenter.curve_every)
        for i, width in enumerate(self.segmenter.widths):
            check_count(f"scoring.segmenter.widths[{i}]", width)
        if not 0 < self.segmenter.lr <= 1:
            raise ConfigError(f"scoring.segmenter.lr={self.segmenter.lr} is outside (0, 1]")


def _scoring_config(section: dict, where: str) -> ScoringConfig:
    if not isinstance(section, dict):
        raise ConfigError(f"params {where} must be a mapping of settings")
    try:
        return from_dict(ScoringConfig, section, "scoring")
    except ConfigError as err:
        raise ConfigError(f"params {where}: {err}") from None


def load_scoring(params: Params) -> ScoringConfig:
    """params["scoring"], with params["scoring"]["scales"][scale] merged over it.

    The scale profiles under the top-level `scales` are merged into experiment configs
    only, so the scoring section carries its own per-scale overrides.
    """
    section = dict(params.raw_section("scoring"))
    profiles = section.pop("scales", None) or {}
    known = {PAPER, *params.raw_section("scales")}
    for scale, profile in profiles.items():  # every profile, not only the active one
        if scale not in known:
            raise ConfigError(f"params scoring.scales.{scale}: no such scale; known: "
                              f"{sorted(known)}")
        _scoring_config(deep_merge(section, profile or {}), f"scoring.scales.{scale}")
    scoring = _scoring_config(deep_merge(section, profiles.get(params.scale) or {}), "scoring")
    unknown = sorted(set(scoring.metrics) - set(params.experiments))
    if unknown:
        raise ConfigError(f"scoring.metrics names experiment {unknown[0]!r}, which is not "
                          "in params `experiments`")
    return scoring
