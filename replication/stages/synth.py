"""`replication synth`: write the deterministic synthetic stand-ins for facades, cityscapes, maps.

The command's arguments and run; the work is replication.data.synthetic's."""

from __future__ import annotations

import argparse

from replication.config import datasets
from replication.config.datasets import PAPER_DATASETS
from replication.config.schema import DataConfig
from replication.core.errors import ConfigError
from replication.data.synthetic import (
    DEFAULT_SIZE,
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    _splits,
    archive_counts,
    default_counts,
    make_synthetic,
    write_archive,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=[*datasets.DATASETS, "all"],
                        help="which stand-in dataset to write, or all = the paper's "
                             f"{', '.join(PAPER_DATASETS)}")
    parser.add_argument("--root", default=DataConfig.root,
                        help=f"folder that receives <name>/ (default {DataConfig.root})")
    parser.add_argument("--archives", metavar="DIR", default=None,
                        help="write DIR/<name>.tar.gz in the upstream layout, counts and "
                             "image size instead of a dataset folder under --root")
    parser.add_argument("--size", type=int, default=None,
                        help=f"side of each square half in pixels (default {DEFAULT_SIZE}; "
                             "upstream: 256; archives always have the registry's size)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--train", type=int, default=None,
                        help=f"images in the train split (default {DEFAULT_TRAIN}; "
                             "with --archives the upstream count)")
    parser.add_argument("--test", type=int, default=None,
                        help=f"images in every other split, val/test (default {DEFAULT_TEST}; "
                             "with --archives the upstream counts)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")


def run(args: argparse.Namespace) -> int:
    names = PAPER_DATASETS if args.name == "all" else (args.name,)
    if args.archives is not None:
        return _run_archives(names, args)
    size = DEFAULT_SIZE if args.size is None else args.size
    for name in names:
        counts = {**default_counts(name), **_given_counts(name, args)}
        out = make_synthetic(name, args.root, size=size, counts=counts, seed=args.seed,
                             quality=args.quality)
        print(f"{out}: {counts}, {2 * size}x{size} pairs, seed {args.seed}")
    return 0


def _run_archives(names: tuple[str, ...], args: argparse.Namespace) -> int:
    if args.size is not None:
        raise ConfigError("--size does not apply to --archives: archives have the upstream "
                          "image size (registry pair_size)")
    for name in names:
        counts = archive_counts(name, _given_counts(name, args), args.seed, args.quality)
        path = write_archive(name, args.archives, counts=counts, seed=args.seed,
                             quality=args.quality)
        print(f"{path}: {counts}, {path.stat().st_size} bytes, seed {args.seed}")
    return 0


def _given_counts(name: str, args: argparse.Namespace) -> dict[str, int]:
    """The counts --train / --test set for `name`'s splits; the others keep their defaults."""
    given = {split: args.train if split == "train" else args.test for split in _splits(name)}
    return {split: count for split, count in given.items() if count is not None}
