"""params.yaml, read once: `Params.load(path)`, then every setting a stage needs from it.

params.yaml says only what differs from the paper: the experiment grid, the scale
profiles and optional global defaults. Resolution order for one experiment (later wins),
written once, in `Params.layers`:
    schema.py defaults -> the dataset's paper settings (datasets.py)
    -> params["defaults"] -> params["experiments"][name] -> params["scales"][scale]
    -> the command line (--set)
YAML syntax errors name the file and line; sections of the wrong kind, unknown keys and
wrong types fail with the key's path. Only the `replication` commands (stages/) load it;
the library takes a `Params` or the configs it resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from replication.config.datasets import DATASETS
from replication.config.schema import (
    DataConfig,
    ExperimentConfig,
    deep_merge,
    from_dict,
)
from replication.core.errors import ConfigError
from replication.core.layout import check_experiment_name


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
                   "launcher", "download")
# sections that hold a mapping, and those whose every entry is one
_MAPPINGS = ("scales", "defaults", "experiments", "scoring", "launcher", "download")
_MAPPINGS_OF_MAPPINGS = ("scales", "experiments")
PAPER = "paper"  # the scale of the full reproduction, the default


@dataclass(frozen=True, eq=False)
class Params:
    """A params file's content, checked when loaded; experiments resolved on first use."""
    path: Path
    content: dict[str, Any]
    _resolved: dict = field(default_factory=dict, repr=False)  # name -> ExperimentConfig

    @classmethod
    def load(cls, path: str | Path = "params.yaml") -> Params:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: params file not found (run from the repository root)")
        return cls.of(read_yaml(path) or {}, path)

    @classmethod
    def of(cls, content: Any, path: str | Path = "params.yaml") -> Params:
        """Params from a parsed mapping (tests, a scale replaced), checked as `load` does."""
        path = Path(path)
        if not isinstance(content, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        unknown = sorted(set(content) - set(PARAMS_SECTIONS))
        if unknown:
            raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r}; known: "
                              f"{list(PARAMS_SECTIONS)}")
        _check_shape(content, path)
        for name in content.get("experiments") or {}:
            try:
                check_experiment_name(name)
            except ConfigError as err:
                raise ConfigError(f"{path}: experiments: {err}") from None
        for scale, profile in (content.get("scales") or {}).items():  # all, not the active only
            try:
                from_dict(ExperimentConfig, profile or {}, f"scales.{scale}")
            except ConfigError as err:
                raise ConfigError(f"{path}: {err}") from None
        return cls(path, content)

    def at_scale(self, scale: str) -> Params:
        """The same file with `scale` replaced (plan --scale, bench --scale)."""
        return Params.of({**self.content, "scale": scale}, self.path)

    # --- the sections -----------------------------------------------------------------

    @property
    def scale(self) -> str:
        """params.yaml `scale`: paper (the default), rehearsal, smoke or one of your own."""
        return self.content.get("scale", PAPER)

    @property
    def experiments(self) -> dict[str, dict]:
        """Experiment name -> its params.yaml entry as written (not resolved)."""
        return {name: entry or {} for name, entry in (self.content.get("experiments") or {}).items()}

    @property
    def datasets(self) -> list[str] | None:
        return self.content.get("datasets")

    def section(self, cls: type, name: str) -> Any:
        """The dataclass `cls` built from section `name` (absent: its defaults)."""
        try:
            return from_dict(cls, self.content.get(name) or {}, name)
        except ConfigError as err:
            raise ConfigError(f"params {name}: {err}") from None

    def raw_section(self, name: str) -> dict:
        return self.content.get(name) or {}

    def scale_profile(self) -> dict:
        scales = self.content.get("scales") or {}
        if self.scale != PAPER and self.scale not in scales:
            raise ConfigError(f"scale={self.scale!r} has no profile under `scales`; known: "
                              f"{[PAPER, *sorted(scales)]}")
        return scales.get(self.scale) or {}

    def scale_data(self) -> DataConfig:
        """The data settings every experiment shares at the active scale (defaults, then
        the scale profile): its data.source and image size decide what `download` installs."""
        merged = deep_merge(self.raw_section("defaults"), self.scale_profile())
        return from_dict(DataConfig, merged.get("data") or {}, "data")

    # --- one experiment -----------------------------------------------------------------

    def layers(self, name: str, entry: dict | None = None,
               overrides: dict | None = None) -> list[tuple[str, dict]]:
        """(source, settings) in resolution order, later wins: THE merge order. `entry`
        stands in for a params.yaml experiment (the segmenter's ground-truth row)."""
        if entry is None:
            entry = self._entry(name)
        dataset = (entry.get("data") or {}).get("dataset")
        return [("dataset", dataset_settings(dataset)), ("defaults", self.raw_section("defaults")),
                ("experiment", entry), (f"scale {self.scale}", self.scale_profile()),
                ("command line", overrides or {}), ("experiment", {"name": name})]

    def experiment_dict(self, name: str, overrides: dict | None = None,
                        entry: dict | None = None) -> dict:
        """The merged plain dict for experiment `name` (before typing)."""
        merged: dict = {}
        for _, settings in self.layers(name, entry, overrides):
            merged = deep_merge(merged, settings)
        return merged

    def config(self, name: str, overrides: dict | None = None,
               entry: dict | None = None) -> ExperimentConfig:
        """Experiment `name` resolved and typed (cached when it has no overrides)."""
        key = name if not overrides and entry is None else None
        if key in self._resolved:
            return self._resolved[key]
        try:
            cfg = from_dict(ExperimentConfig, self.experiment_dict(name, overrides, entry))
        except ConfigError as err:
            raise ConfigError(f"{self.path} experiment {name!r}: {err}") from None
        if key is not None:
            self._resolved[key] = cfg
        return cfg

    def configs(self) -> dict[str, ExperimentConfig]:
        """Every experiment resolved, in params.yaml's order."""
        return {name: self.config(name) for name in self.experiments}

    def _entry(self, name: str) -> dict:
        experiments = self.experiments
        if name not in experiments:
            raise ConfigError(f"experiment {name!r} is not in params.yaml experiments; "
                              f"known: {sorted(experiments)}")
        entry = experiments[name]
        dataset = (entry.get("data") or {}).get("dataset")
        if not dataset:
            raise ConfigError(f"experiment {name!r} must name its dataset (data: {{dataset: ...}}); "
                              "dvc.yaml wires data/<dataset> into its stages")
        if self.datasets is not None and dataset not in self.datasets:
            raise ConfigError(f"experiment {name!r} uses dataset {dataset!r}, which is not in "
                              f"params `datasets` {self.datasets}; add it there so it gets "
                              "downloaded")
        return entry


def _check_shape(params: dict, path: Path) -> None:
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
    if not isinstance(params.get("scale", PAPER), str):
        raise ConfigError(f"{path}: `scale` must be a scale name, e.g. paper or smoke")


def dataset_settings(dataset: str | None) -> dict:
    """The paper's per-dataset settings (docs/datasets.md) from the registry; {} for your
    own data."""
    info = DATASETS.get(dataset)
    if info is None:
        return {}
    return {"data": {"direction": info.paper_direction, "test_split": info.test_split},
            "train": {"epochs": info.paper_epochs, "batch_size": info.paper_batch_size}}
