"""The test-time study: how the way G runs at test time moves the numbers (docs/test_time.md).

The paper runs G at test time exactly as in training: dropout on, BatchNorm normalising
with the test batch's statistics, batch 1 (§3.3). The reference code's `--eval` and
`--no_dropout` change that, and its users keep asking what they do. An experiment asks
for the study with params `generate.modes` / `generate.samples` (config.py
GenerateConfig); its variants:

    paper       dropout on, test-batch statistics, generate.batch_size (the tables' images)
    eval        dropout off, BatchNorm running statistics
    no_dropout  dropout off, test-batch statistics
    batch       dropout on, test-batch statistics, test batch generate.study_batch_size
    sample-<j>  the paper's mode with dropout draw j (sample seed j), j = 1 .. samples - 1

A variant whose settings are those of the tables' own generation (generate.mode,
batch_size, sample seed 0) reads generated/<experiment>/seed-<k>/ and is not generated
twice; every other one has its own folder, generated/<experiment>/test-time/<variant>/.
Cost: (variants generated) x seeds x test images extra generator passes, each image
scored with the task's metrics: `cost_line` states it where generate runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replication.config.schema import GenerateConfig
from replication.core import layout

PAPER = "paper"


@dataclass(frozen=True)
class Variant:
    name: str  # paper | eval | no_dropout | batch | sample-<j>
    mode: str  # generate.py's mode: train (dropout on, batch statistics) | eval | no_dropout
    batch_size: int
    sample_seed: int  # seed of the dropout draws

    def describe(self) -> str:
        dropout = "dropout off" if self.mode in ("eval", "no_dropout") else "dropout on"
        stats = "running BN statistics" if self.mode == "eval" else "test-batch BN statistics"
        return f"{dropout}, {stats}, test batch {self.batch_size}, sample seed {self.sample_seed}"


def asked(g: GenerateConfig) -> bool:
    """Whether the experiment asked for more than the paper's single mode."""
    return tuple(g.modes) != (PAPER,) or g.samples > 1


def variants(g: GenerateConfig) -> list[Variant]:
    """Every variant of the study, the paper's first; [] when none was asked for."""
    if not asked(g):
        return []
    settings = {PAPER: ("train", g.batch_size), "eval": ("eval", g.batch_size),
                "no_dropout": ("no_dropout", g.batch_size),
                "batch": ("train", g.study_batch_size)}
    out = [Variant(m, *settings[m], 0) for m in g.modes]
    out += [Variant(f"sample-{j}", "train", g.batch_size, j) for j in range(1, g.samples)]
    return sorted(out, key=lambda v: v.name != PAPER)  # stable: the paper's first


def sample_names(g: GenerateConfig) -> list[str]:
    """The K dropout draws of the paper's mode: "paper" (draw 0), then "sample-<j>"."""
    return [PAPER] + [f"sample-{j}" for j in range(1, g.samples)] if g.samples > 1 else []


def is_main(variant: Variant, g: GenerateConfig) -> bool:
    """The tables' own generation: generated/<experiment>/seed-<k>/ holds it already."""
    return (variant.mode, variant.batch_size, variant.sample_seed) == (g.mode, g.batch_size, 0)


def folder(experiment: str, variant: Variant, g: GenerateConfig, seed: int) -> Path:
    if is_main(variant, g):
        return layout.generated_dir(experiment, seed)
    return layout.test_time_dir(experiment, variant.name, seed)


def cost_line(experiment: str, g: GenerateConfig, seeds: int, images: int) -> str:
    extra = [v.name for v in variants(g) if not is_main(v, g)]
    return (f"{experiment}: test-time study ({', '.join(v.name for v in variants(g))}): "
            f"{len(extra)} extra variant(s) x {seeds} seed(s) x {images} images = "
            f"{len(extra) * seeds * images} more generated images, each scored like the "
            "tables' (docs/test_time.md)")
