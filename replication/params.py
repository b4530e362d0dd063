"""params.yaml and the command line -> ExperimentConfig (printed by `replication config`).

params.yaml says only what differs from the paper: the experiment grid, the scale
profiles and optional global defaults. Resolution order for one experiment (later wins):
    config.py defaults -> the dataset's paper settings (datasets.py)
    -> params["defaults"] -> params["experiments"][name] -> params["scales"][scale]
YAML syntax errors name the file and line; sections of the wrong kind, unknown keys and
wrong types fail with the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from replication.config import (DataConfig, ExperimentConfig, check_count, check_seeds, deep_merge,
                                from_dict)
from replication.datasets import DATASETS, IMAGE_SUFFIXES
from replication.errors import ConfigError
from replication.layout import check_experiment_name

PAPER = "paper"  # the scale of the full reproduction, the default


def parse_overrides(pairs: list[str]) -> dict:
    """['train.lr=1e-4', 'loss.gan=none'] -> nested dict, values parsed as YAML."""
    out: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} must look like section.key=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = load_yaml(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: the value is not valid YAML "
                              f"({_yaml_problem(err)}); quote it or fix the brackets") from None
    return out


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader refusing a mapping that holds a key twice: PyYAML would silently
    keep the last one (an experiment defined twice, a setting given twice), while DVC
    refuses the same file. Every params.yaml / --set / paper-numbers read uses it."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                continue
            if twice:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"the key {key!r} appears twice", key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml(stream) -> Any:
    """yaml.safe_load, but a key given twice in one mapping is an error."""
    return yaml.load(stream, Loader=UniqueKeyLoader)


def read_yaml(path: str | Path) -> Any:
    """The YAML file at `path`; a syntax error (or a key given twice) names the file and
    line."""
    try:
        with open(path) as f:
            return load_yaml(f)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({_yaml_problem(err)})") from None


def _yaml_problem(err: yaml.YAMLError) -> str:
    return getattr(err, "problem", None) or (str(err).splitlines() or ["syntax error"])[0]


PARAMS_SECTIONS = ("scale", "scales", "defaults", "datasets", "experiments", "scoring",
                   "tables", "launcher", "download")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    params = read_yaml(path) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    unknown = sorted(set(params) - set(PARAMS_SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r}; known: {list(PARAMS_SECTIONS)}")
    check_shape(params, path)
    for name in params.get("experiments") or {}:
        try:
            check_experiment_name(name)
        except ConfigError as err:
            raise ConfigError(f"{path}: experiments: {err}") from None
    for scale, profile in (params.get("scales") or {}).items():  # all, not only the active one
        try:
            from_dict(ExperimentConfig, profile or {}, f"scales.{scale}")
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    return params


# params.yaml sections that hold a mapping, and those whose every entry is one
_MAPPINGS = ("scales", "defaults", "experiments", "scoring", "tables", "launcher", "download")
_MAPPINGS_OF_MAPPINGS = ("scales", "experiments")


def check_shape(params: dict, path: str | Path) -> None:
    """Sections of the right kind, e.g. an experiment written as a list is refused."""
    for section in _MAPPINGS:
        if not isinstance(params.get(section) or {}, dict):
            raise ConfigError(f"{path}: `{section}` must be a mapping of names to settings, "
                              f"got a {type(params[section]).__name__}")
    for section in _MAPPINGS_OF_MAPPINGS:
        for name, entry in (params.get(section) or {}).items():
            if not isinstance(entry or {}, dict):
                raise ConfigError(f"{path}: {section}.{name} must be a mapping of settings "
                                  f"(e.g. data: {{dataset: ...}}), got a {type(entry).__name__}")
    if not isinstance(params.get("datasets") or [], list):
        raise ConfigError(f"{path}: `datasets` must be a list of dataset names")
    if not isinstance(active_scale(params), str):
        raise ConfigError(f"{path}: `scale` must be a scale name, e.g. paper or smoke")


def experiment_dict(params: dict[str, Any], name: str, overrides: dict | None = None) -> dict:
    """The merged plain dict for experiment `name` (before typing)."""
    experiments = params.get("experiments") or {}
    if name not in experiments:
        raise ConfigError(f"experiment {name!r} is not in params.yaml experiments; "
                          f"known: {sorted(experiments)}")
    entry = experiments[name] or {}
    defaults = params.get("defaults") or {}
    dataset = (entry.get("data") or {}).get("dataset")
    if not dataset:
        raise ConfigError(f"experiment {name!r} must name its dataset (data: {{dataset: ...}}); "
                          "dvc.yaml wires data/<dataset> into its stages")
    listed = params.get("datasets")
    if listed is not None and dataset not in listed:
        raise ConfigError(f"experiment {name!r} uses dataset {dataset!r}, which is not in "
                          f"params `datasets` {listed}; add it there so it gets downloaded")
    merged = deep_merge(dataset_settings(dataset), defaults)
    merged = deep_merge(merged, entry)
    merged = deep_merge(merged, scale_profile(params))
    merged = deep_merge(merged, overrides or {})
    merged["name"] = name
    return merged


def dataset_settings(dataset: str) -> dict:
    """The paper's per-dataset settings (docs/datasets.md) from the registry; {} for your own data."""
    info = DATASETS.get(dataset)
    if info is None:
        return {}
    return {"data": {"direction": info.paper_direction, "test_split": info.test_split},
            "train": {"epochs": info.paper_epochs, "batch_size": info.paper_batch_size}}


def section_config(cls: type, params: dict[str, Any], section: str) -> Any:
    """The dataclass `cls` built from params.yaml section `section` (absent: defaults)."""
    try:
        return from_dict(cls, params.get(section) or {}, section)
    except ConfigError as err:
        raise ConfigError(f"params {section}: {err}") from None


def scale_data(params: dict[str, Any]) -> DataConfig:
    """The data settings every experiment shares at the active scale (defaults, then the
    scale profile): its data.source and image size decide what `download` installs."""
    merged = deep_merge(params.get("defaults") or {}, scale_profile(params))
    return from_dict(DataConfig, merged.get("data") or {}, "data")


def active_scale(params: dict[str, Any]) -> str:
    """params.yaml `scale`: paper (the default), rehearsal, smoke or one of your own."""
    return params.get("scale", PAPER)


def scale_profile(params: dict[str, Any]) -> dict:
    scale = active_scale(params)
    scales = params.get("scales") or {}
    if scale != PAPER and scale not in scales:
        raise ConfigError(f"scale={scale!r} has no profile under `scales`; known: "
                          f"{[PAPER, *sorted(scales)]}")
    return scales.get(scale) or {}


def load_experiment(params_path: str | Path, name: str,
                    overrides: dict | None = None) -> ExperimentConfig:
    params = load_params(params_path)
    merged = experiment_dict(params, name, overrides)
    try:
        return from_dict(ExperimentConfig, merged)
    except ConfigError as err:
        raise ConfigError(f"{params_path} experiment {name!r}: {err}") from None


# --- command-line glue (shared by train / generate / score ...) ---------------------

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
    group.add_argument("--params", default="params.yaml",
                       help="params file holding the experiment grid (default: params.yaml)")
    group.add_argument("--experiment", "-e",
                       help="experiment name from params.yaml `experiments` (e.g. facades-l1-cgan)")
    group.add_argument("--data", metavar="DIR",
                       help="instead of --experiment: a dataset folder holding <split>/*.jpg A|B "
                            "pairs, or the A|B pairs themselves (a flat folder: train and test "
                            "on them); paper settings apply unless changed with --set")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set train.lr=1e-4 --set loss.gan=none "
                            "(repeatable; `replication config` lists every key)")


def config_from_args(args) -> ExperimentConfig:
    overrides = parse_overrides(args.overrides)
    if args.experiment and args.data:
        raise ConfigError("give either --experiment (from params.yaml) or --data DIR, not both")
    if args.experiment:
        return load_experiment(args.params, args.experiment, overrides)
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
