"""The command line's shared pieces: --params, the experiment to run, counts and seeds.

Every stage takes its settings the same way: `--params` (the file, loaded once per command
as config.params.Params) with `--experiment NAME`, or `--data DIR` (any A|B folder at the
paper's settings), each changed with `--set KEY=VALUE`.
"""

from __future__ import annotations

from pathlib import Path

from replication.config.params import Params, dataset_settings, parse_overrides
from replication.config.schema import (
    TEST_MODES,
    ExperimentConfig,
    check_count,
    check_seeds,
    deep_merge,
    from_dict,
)
from replication.core.errors import ConfigError
from replication.data.images import IMAGE_SUFFIXES

PARAMS = "params.yaml"


def add_params_argument(parser, what: str = "the experiment grid", *, default: str | None = PARAMS,
                        help: str | None = None) -> None:
    """--params, the same in every command (`download` alone defaults to none: used by hand
    it installs the upstream archive whatever params.yaml sits in the folder)."""
    parser.add_argument("--params", default=default,
                        help=help or f"params file: {what} (default: {default})")


def count_option(flag: str):
    """argparse `type` of a count or size option (--batch-size, --stop-after, ...): an
    integer >= 1, else one line naming the option (cli.py prints the ConfigError)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{flag} {text!r} must be an integer >= 1") from None
        check_count(flag, value)
        return value
    return parse


def seed_option(text: str) -> int:
    """argparse `type` of --seed: an integer >= 0 (the run folder is seed-<k>)."""
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--seed {text!r} must be an integer >= 0") from None
    check_seeds((value,))
    return value


def add_experiment_arguments(parser) -> None:
    """--params/--experiment (the pipeline) or --data DIR (any A|B folder) plus --set."""
    group = parser.add_argument_group("what to run")
    add_params_argument(group)
    group.add_argument("--experiment", "-e",
                       help="experiment name from params.yaml `experiments` (e.g. facades-l1-cgan)")
    group.add_argument("--data", metavar="DIR",
                       help="instead of --experiment: a dataset folder holding <split>/*.jpg A|B "
                            "pairs, or the A|B pairs themselves (a flat folder: train and test "
                            "on them); paper settings apply unless changed with --set")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set train.lr=1e-4 --set loss.gan=none "
                            "(repeatable; `replication config` lists every key)")


def config_from_args(args, params: Params | None = None) -> ExperimentConfig:
    """--experiment (from `params`, else loaded from --params) or --data, with --set."""
    overrides = parse_overrides(args.overrides)
    if args.experiment and args.data:
        raise ConfigError("give either --experiment (from params.yaml) or --data DIR, not both")
    if args.experiment:
        return (params or Params.load(args.params)).config(args.experiment, overrides)
    if not args.data:
        raise ConfigError("say what to run: --experiment NAME (params.yaml) or --data DIR")
    folder = Path(args.data)
    base = {"name": folder.name, **folder_settings(folder)}
    base = deep_merge(dataset_settings(folder.name), base)  # a known dataset: paper settings
    return from_dict(ExperimentConfig, deep_merge(base, overrides))


FLAT = "."  # the split name of a flat folder: the folder itself (split_folder joins it)


def is_flat_folder(folder: Path) -> bool:
    """A|B images directly in `folder` and no train/ subfolder: one flat set of pairs."""
    folder = Path(folder)
    if not folder.is_dir() or (folder / "train").is_dir():
        return False
    return any(p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())


def folder_settings(folder: Path) -> dict:
    """`--data DIR` -> data.root / data.dataset; a flat folder (is_flat_folder) is both
    the training and the test split. The splits otherwise stay <split>/ subfolders, so a
    folder with neither fails when read, naming DIR/train."""
    folder = Path(folder)
    data = {"root": str(folder.parent), "dataset": folder.name}
    if not is_flat_folder(folder):
        return {"data": data}
    return {"data": {**data, "train_split": FLAT, "test_split": FLAT},
            "generate": {"split": None}}


def add_test_time_arguments(parser) -> None:
    """How G runs at test time (generate and translate): the checkpoint's settings unless
    changed here."""
    parser.add_argument("--mode", choices=TEST_MODES,
                        help="train = paper: dropout on and BatchNorm with test-batch statistics; "
                             "eval = dropout off, running statistics; no_dropout = dropout off, "
                             "test-batch statistics (default: the checkpoint's)")
    parser.add_argument("--batch-size", type=count_option("--batch-size"),
                        help="test batch size (default: the checkpoint's, paper: 1; BatchNorm "
                             "in train mode sees the test batch)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--sample-seed", type=int, default=0,
                        help="seed of the dropout draws (default 0; another seed = another sample)")
