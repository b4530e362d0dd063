"""Typed configuration: one frozen dataclass per concern, the one source of every default.

The dataclass defaults ARE the paper's settings (docs/method.md, docs/architectures.md);
each field's comment names the paper's value and the alternatives. `validate` is the one
place a value is checked; `from_dict` builds a config from plain data, failing on unknown
keys and wrong types with the dotted key path. params.py resolves params.yaml into these.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from replication.core.device_names import check_device
from replication.core.errors import ConfigError


@dataclass(frozen=True)
class GeneratorConfig:
    arch: str = "unet"  # paper: U-Net (§3.2.1); "encoder_decoder" for Table 2
    ngf: int = 64  # paper: 64 filters in the first layer
    norm: str = "batch"  # paper: BatchNorm; "instance" | "none"
    # paper + Lua code: Dropout(0.5) on the first three decoder layers (2x2, 4x4, 8x8 at
    # 256 px); "pytorch_code": on the 4x4, 8x8, 16x16 outputs; "none": no dropout.
    dropout: str = "paper"
    dropout_rate: float = 0.5  # paper: 0.5
    bottleneck_norm: bool = False  # errata: no BN on the 1x1 bottleneck; True = v1 paper


@dataclass(frozen=True)
class DiscriminatorConfig:
    receptive_field: int = 70  # paper: 70x70 PatchGAN; 1 (PixelGAN) | 16 | 70 | 286
    ndf: int = 64  # paper: 64 filters in the first layer
    norm: str = "batch"  # paper: BatchNorm; "instance" | "none"


@dataclass(frozen=True)
class LossConfig:
    # paper objective L1+cGAN (eq. 4). "none" = L1 only, "unconditional" = D sees y only.
    gan: str = "conditional"
    l1_weight: float = 100.0  # paper: lambda = 100; 0 for the GAN / cGAN rows of Table 1
    d_loss_scale: float = 0.5  # paper §3.3: D objective divided by 2


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "facades"  # folder name under `root` (a registry name or your own)
    root: str = "data"  # where `replication download` puts datasets (a DVC output)
    # paper: "upstream", the authors' archives; "synthetic": deterministic stand-ins in the
    # same layout (replication synth), what the smoke scale trains on
    source: str = "upstream"
    direction: str = "BtoA"  # which half is the input: "AtoB" (left->right) | "BtoA"
    image_size: int = 256  # paper: 256 (any power of two >= 16 works)
    # paper: resize to 286 then random 256 crop; None = image_size * 286/256
    load_size: int | None = None
    jitter: bool = True  # paper: random jitter (resize + crop); False = plain resize
    flip: bool = True  # paper: random horizontal mirroring
    train_split: str = "train"
    test_split: str = "test"  # cityscapes and maps: "val" (docs/datasets.md)
    # decode every pair once and keep them in RAM (uint8): auto (below memory_limit_gb) |
    # always | never (decode each batch from disk: the same pixels, for huge datasets)
    in_memory: str = "auto"
    memory_limit_gb: float = 8.0  # "auto" keeps images in RAM below this size

    @property
    def jitter_size(self) -> int:
        if self.load_size is not None:
            return self.load_size
        return int(round(self.image_size * 286 / 256))


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 1  # paper: 1 (Table 2 used 10; edges2* used 4)
    epochs: int = 200  # paper: 200 for facades, cityscapes, maps
    iterations: int | None = None  # optimizer steps; overrides epochs when set
    lr: float = 2e-4  # paper: Adam lr 0.0002
    beta1: float = 0.5  # paper: 0.5
    beta2: float = 0.999  # paper: 0.999
    # paper is silent; the Lua code that produced the numbers keeps lr constant.
    # "linear": constant for the first half, then linear decay to 0 (PyTorch code).
    lr_policy: str = "constant"
    mode: str = "faithful"  # "faithful" (fp32 eager, the reference) | "fast" (see bench)
    # fast mode only (faithful is always fp32, as the paper's Torch7 code): "auto" = bf16
    # autocast of the forwards where the device has native bf16 (CUDA compute capability
    # >= 8, CPUs with AVX512-BF16 or AMX), fp32 elsewhere; "fp32" | "bf16" force it.
    fast_precision: str = "auto"
    # auto: a free slot of the machine's GPU pool (devices.py), else the CPU | cpu | cuda:N
    device: str = "auto"
    runs_per_device: int = 1  # slots per GPU in the `auto` pool (processes sharing a GPU)
    # K seeds of the experiment in one process, their steps interleaved, each its own RNG
    # streams (bit-identical to one after another) and, on CUDA, its own stream and graph:
    # several batch-1 runs fill a GPU that one leaves mostly idle
    seeds_per_process: int = 1
    # N seeds trained side by side as N processes, the cores shared evenly between them
    # (seed_processes.py); paper: one run at a time. On a CPU, N single-threaded runs
    # outrun one N-threaded run (batch-1 convolutions split poorly over threads)
    seed_processes: int = 1
    # paper: every run trained on its own (false). A speed switch: true trains the runs of
    # one `replication train` call - the experiment's seeds, plus the experiments named
    # with --fuse-with (same networks, dataset and schedule; fusion_groups.py) - as ONE
    # fused step (fusion.py: grouped convolutions; per-run BatchNorm statistics, losses,
    # L1 weight, Adam state and dropout generators): each run its own arithmetic, not its
    # own kernels, and on CUDA other dropout draws. Each run still ends as a run folder.
    fuse: bool = False
    # faithful mode on CUDA: capture the strict-fp32 step (same kernels, same Adam
    # arithmetic) as a CUDA graph, ~4x faster at batch 1; off until a GPU check shows it
    # bit-equal to eager faithful (scripts/gpu_check.sh)
    faithful_cuda_graph: bool = False
    log_every: int = 50  # steps between logged losses
    sample_every: int = 1000  # steps between sample grids (input | output | target)
    # steps between the sample grids kept (logs/.../plots/images/samples/step-<N>.png; the
    # latest is always plots/images/samples.png); Lua code: save_display_freq = 5000.
    # None: only the latest
    keep_samples_every: int | None = 5000
    checkpoint_every: int = 2000  # steps between full-state checkpoints (and at the end)
    # true: the full training state (state.pt: G, D and both Adams, ~3x generator.pt)
    # stays after the last step, so a longer schedule resumes it. false: deleted once
    # generator.pt is written, and a later `train` of the run starts over (the rehearsal:
    # 2-step states are worth nothing and 22 of them at paper width take ~14 GB)
    keep_state: bool = True

    def total_steps(self, dataset_len: int) -> int:
        if self.iterations is not None:
            return self.iterations
        steps_per_epoch = -(-dataset_len // self.batch_size)  # ceil: last batch kept
        return self.epochs * steps_per_epoch


@dataclass(frozen=True)
class GenerateConfig:
    # paper §3.3: at test time G runs as in training (dropout on, BatchNorm with the test
    # batch's statistics). "eval" = dropout off, running statistics; "no_dropout" =
    # dropout off, BatchNorm still on the test batch's statistics.
    mode: str = "train"
    batch_size: int = 1  # paper: 1 (BN statistics of a single test image)
    split: str | None = None  # None = data.test_split
    # paper: None, the whole split (the PyTorch code's default of 50 is a known pitfall);
    # N = generate and score the first N test images only (the rehearsal's deviation)
    max_images: int | None = None
    # The test-time study (docs/test_time.md, replication/inference/test_time.py): each mode listed
    # is generated and scored beside the others. Paper: its own mode only, ("paper",).
    #   paper       dropout on, BatchNorm on the test batch's statistics, batch_size
    #   eval        dropout off, BatchNorm running statistics (the reference's --eval)
    #   no_dropout  dropout off, BatchNorm on the test batch's statistics
    #   batch       the paper's mode at test batch size study_batch_size
    modes: tuple[str, ...] = ("paper",)
    study_batch_size: int = 16  # the "batch" mode's test batch (paper: batch_size, 1)
    # K dropout draws per input in the paper's mode (sample seeds 0..K-1, 0 = the tables'
    # images): the spread of the scores over draws and the outputs' per-pixel std
    samples: int = 1


@dataclass(frozen=True)
class DownloadConfig:
    """params.yaml `download`: how `replication download` installs the datasets."""
    # Cityscapes rebuilt from the official zips: how the colour label images are resized
    # to 256 px. The reference's prepare_cityscapes_dataset.py uses Pillow's default,
    # bicubic (the upstream archive's labels are smooth too); "nearest" keeps pure palette
    # colours.
    cityscapes_label_resample: str = "bicubic"

    def __post_init__(self) -> None:
        allowed = ("bicubic", "nearest")
        if self.cityscapes_label_resample not in allowed:
            raise ConfigError(f"download.cityscapes_label_resample="
                              f"{self.cityscapes_label_resample!r} is not one of {list(allowed)}")


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "default"
    seeds: tuple[int, ...] = (0,)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    # tables only: the experiment whose row this one is compared with
    compare_to: str | None = None
    # score the authors' released generator of this name instead of training one
    # (released.py; paper: not part of it, the reference code's published models)
    released: str | None = None

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


# --- validation ---------------------------------------------------------------------

# 4 down-sampling layers: fewer leave no room for the decoder's 3 dropout layers
MIN_IMAGE_SIZE = 16

# how G runs at test time (generate --mode): the paper's train, or the reference's --eval /
# --no_dropout (docs/test_time.md)
TEST_MODES = ("train", "eval", "no_dropout")

_CHOICES = {
    "generator.arch": ("unet", "encoder_decoder"),
    "generator.norm": ("batch", "instance", "none"),
    "generator.dropout": ("paper", "pytorch_code", "none"),
    "discriminator.receptive_field": (1, 16, 70, 286),
    "discriminator.norm": ("batch", "instance", "none"),
    "loss.gan": ("none", "conditional", "unconditional"),
    "data.direction": ("AtoB", "BtoA"),
    "data.source": ("upstream", "synthetic"),
    "data.in_memory": ("auto", "always", "never"),
    "train.lr_policy": ("constant", "linear"),
    "train.mode": ("faithful", "fast"),
    "train.fast_precision": ("auto", "fp32", "bf16"),
    "generate.mode": TEST_MODES,
}
STUDY_MODES = ("paper", "eval", "no_dropout", "batch")  # generate.modes (test_time.py)


def validate(cfg: ExperimentConfig) -> None:
    check_finite(cfg)
    for key, allowed in _CHOICES.items():
        value = _get(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not one of {list(allowed)}")
    check_device("train.device", cfg.train.device)
    size = cfg.data.image_size
    if size < MIN_IMAGE_SIZE or size & (size - 1):
        raise ConfigError(f"data.image_size={size} must be a power of two >= {MIN_IMAGE_SIZE} "
                          "(paper: 256)")
    if cfg.data.jitter_size < size:
        raise ConfigError(f"data.load_size={cfg.data.jitter_size} must be >= data.image_size={size}")
    _check_range("generator.dropout_rate", cfg.generator.dropout_rate, 0.0, 1.0, hi_open=True)
    _check_range("loss.l1_weight", cfg.loss.l1_weight, 0.0, math.inf, hi_open=True)
    # 0 would leave D without gradients (paper: 0.5)
    _check_range("loss.d_loss_scale", cfg.loss.d_loss_scale, 0.0, math.inf, lo_open=True,
                 hi_open=True)
    _check_range("data.memory_limit_gb", cfg.data.memory_limit_gb, 0.0, math.inf, hi_open=True)
    _check_range("train.lr", cfg.train.lr, 0.0, 1.0, lo_open=True)
    _check_range("train.beta1", cfg.train.beta1, 0.0, 1.0, hi_open=True)
    _check_range("train.beta2", cfg.train.beta2, 0.0, 1.0, hi_open=True)
    for key in ("generator.ngf", "discriminator.ndf", "train.batch_size", "train.epochs",
                "train.log_every", "train.sample_every", "train.checkpoint_every",
                "train.runs_per_device", "train.seeds_per_process", "train.seed_processes",
                "generate.batch_size", "generate.study_batch_size", "generate.samples"):
        check_count(key, _get(cfg, key))
    _check_study(cfg.generate)
    if cfg.generate.max_images is not None and cfg.generate.max_images < 1:
        raise ConfigError(f"generate.max_images={cfg.generate.max_images} must be >= 1 (or "
                          "null: the whole split, the paper's)")
    if cfg.train.keep_samples_every is not None:
        check_count("train.keep_samples_every", cfg.train.keep_samples_every)
    if cfg.train.iterations is not None and cfg.train.iterations < 1:
        raise ConfigError(f"train.iterations={cfg.train.iterations} must be >= 1 (or null)")
    if cfg.loss.gan == "none" and cfg.loss.l1_weight == 0:
        raise ConfigError("loss.gan='none' with loss.l1_weight=0 leaves no objective")
    check_seeds(cfg.seeds)
    if cfg.train.seed_processes > 1 and (cfg.train.fuse or cfg.train.seeds_per_process > 1):
        raise ConfigError("train.seed_processes > 1 trains each seed in its own process; "
                          "train.fuse / train.seeds_per_process > 1 put them in one: set one")
    if cfg.train.fuse and cfg.train.seeds_per_process > 1:
        raise ConfigError("train.fuse trains the seeds as one fused step; "
                          "train.seeds_per_process > 1 interleaves them: set one of the two")


def check_finite(cfg: Any, prefix: str = "") -> None:
    """Every float field of a config dataclass (nested ones too) is a finite number: no
    setting here means anything with NaN or an infinity, and NaN passes every range
    check (all its comparisons are false), e.g. dropout_rate=nan would train without
    dropout."""
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{key}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value} must be a finite number")


def check_count(key: str, value: Any) -> None:
    """A count or a size: an integer >= 1 (0 or less would write or train nothing)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} must be an integer >= 1")


def check_seeds(seeds: tuple[int, ...]) -> None:
    """At least one seed, each >= 0 (a run folder is seed-<k>) and none twice (the same
    run trained twice and counted as two)."""
    if not seeds:
        raise ConfigError("seeds must list at least one seed")
    bad = [s for s in seeds if s < 0]
    if bad:
        raise ConfigError(f"seeds {list(seeds)}: seed {bad[0]} must be >= 0")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"seeds {list(seeds)} lists seed {twice[0]} twice; each seed is "
                          "one run")


def _check_study(g: GenerateConfig) -> None:
    unknown = [m for m in g.modes if m not in STUDY_MODES]
    if unknown or len(set(g.modes)) != len(g.modes) or "paper" not in g.modes:
        raise ConfigError(f"generate.modes={list(g.modes)!r} must list distinct modes of "
                          f"{list(STUDY_MODES)}, \"paper\" among them (the mode the others are "
                          "compared with)")
    if "batch" in g.modes and g.study_batch_size == g.batch_size:
        raise ConfigError(f"generate.study_batch_size={g.study_batch_size} equals "
                          "generate.batch_size: the \"batch\" mode would repeat \"paper\"; "
                          "choose another test batch size")


def _check_range(key, value, lo, hi, lo_open=False, hi_open=False):
    below = value <= lo if lo_open else value < lo
    above = value >= hi if hi_open else value > hi
    if below or above or not math.isfinite(value):
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ConfigError(f"{key}={value} is outside {left}{lo}, {hi}{right}")


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


# --- building from plain dicts ------------------------------------------------------

def from_dict(cls: type, data: dict[str, Any], path: str = "") -> Any:
    """Build dataclass `cls` from a dict, failing on unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; known keys: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # PyYAML (YAML 1.1) reads "1e-4" without a dot as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{path} must be a number, got {value!r}") from None
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{path} must be an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{path} must be of type {hint.__name__}, got {value!r}")
    return value


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def dump_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
