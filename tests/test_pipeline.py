"""The DVC pipeline: stage wiring, precise invalidation, and parallel runs via the queue."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from replication import layout

REPO = Path(__file__).resolve().parents[1]


def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


# the module each stage's command runs (its `python -m replication <command>`)
STAGE_MODULES = {"download": "replication.data.download", "train": "replication.train",
                 "generate": "replication.generate", "weights": "replication.metrics.weights",
                 "segmenter": "replication.metrics.segmenter",
                 "score": "replication.metrics.score", "tables": "replication.tables",
                 "notebooks": "replication.report"}


def stage_deps(name: str) -> list[str]:
    stage = dvc_yaml()["stages"][name]
    return stage.get("do", stage).get("deps", [])


@pytest.mark.parametrize("stage", sorted(STAGE_MODULES))
def test_stage_deps_cover_the_code_it_runs(stage):
    # every package file the stage's module imports, directly or not, is a dep (a file or
    # a folder holding it), and no code dep is one the stage never runs; else a code
    # change would leave stale results, or re-run a stage for nothing
    code_deps = [d for d in stage_deps(stage) if d.startswith("replication/")
                 and (d.endswith(".py") or (REPO / d).is_dir())]
    closure = [f"replication/{p}" for p in layout.code_closure(STAGE_MODULES[stage])]
    missed = [f for f in closure if not any(f == d or f.startswith(d + "/") for d in code_deps)]
    unused = [d for d in code_deps if not any(f == d or f.startswith(d + "/") for f in closure)]
    assert not missed and not unused, (
        f"{stage}: missing {missed}, not run {unused}; run scripts/update_stage_deps.py")


def test_the_closure_follows_imports_inside_functions():
    # train.run imports layout lazily; the notebook stage runs tables, which imports config
    assert "layout.py" in layout.code_closure("replication.train")
    assert "data/synthetic/__init__.py" in layout.code_closure("replication.data.download")
    assert "cli.py" not in layout.code_closure("replication.train")  # the dispatcher


def test_train_stage_depends_on_exactly_the_training_code():
    # a checkpoint records a hash of layout.TRAIN_CODE; the stage must depend on the same
    code = [d for d in stage_deps("train") if d.startswith("replication/")]
    expanded = {f for d in code for f in ([d] if d.endswith(".py") else
                [f"{d}/{p.name}" for p in (REPO / d).glob("*.py")])}
    assert expanded == {f"replication/{p}" for p in layout.TRAIN_CODE}


def test_stage_outputs_follow_the_layout():
    stages = dvc_yaml()["stages"]
    train_outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["train"]["do"]["outs"]]
    assert train_outs == [f"{layout.RUNS}/${{key}}", f"{layout.LOGS}/${{key}}"]
    assert stages["generate"]["do"]["outs"] == [f"{layout.GENERATED}/${{key}}"]
    assert str(layout.train_metrics("${key}")) in str(stages["train"]["do"]["metrics"])


TWO_EXPERIMENTS = {"facades-a": {"data": {"dataset": "facades"}},
                   "facades-b": {"data": {"dataset": "facades"}, "loss": {"gan": "none"}}}


def dvc_in(project: Path):
    return lambda *args: subprocess.run(["dvc", *args], cwd=project, check=True,
                                        capture_output=True, text=True).stdout


def make_project(tmp_path: Path, experiments: dict) -> Path:
    """A git + DVC copy of the project with a tiny smoke profile (32 px, 3 steps)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(REPO / "replication", project / "replication",
                    ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(scale="smoke", datasets=["facades"], experiments=experiments)
    params["scales"]["smoke"] = {
        "seeds": [0], "generator": {"ngf": 4}, "discriminator": {"ndf": 4},
        "data": {"image_size": 32, "source": "synthetic"},
        "train": {"iterations": 3, "checkpoint_every": 3}}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    pipeline = dvc_yaml()
    pipeline["stages"] = {k: v for k, v in pipeline["stages"].items()
                          if k in ("inputs", "download", "train", "generate")}
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


@pytest.mark.slow
def test_queue_runs_experiments_in_parallel(tmp_path):
    # The supported DVC route for a grid on several workers: queue, then start N workers.
    run = dvc_in(make_project(tmp_path, TWO_EXPERIMENTS))
    for name in TWO_EXPERIMENTS:
        run("exp", "run", "--queue", f"train@{name}")
    run("queue", "start", "-j", "2")
    deadline = time.time() + 240
    while time.time() < deadline and any(s in run("queue", "status") for s in ("Queued", "Running")):
        time.sleep(2)
    status = run("queue", "status")
    assert status.count("Success") == 2, status
    shown = run("exp", "show", "--json")
    for name in TWO_EXPERIMENTS:  # each queued experiment trained its own run to the end
        assert f"metrics/{name}/train.json" in shown


@pytest.mark.slow
def test_changing_one_experiment_reruns_only_its_stages(tmp_path):
    project = make_project(tmp_path, TWO_EXPERIMENTS)
    dvc = dvc_in(project)
    dvc("repro")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["facades-b"]["train"] = {"lr": 1.0e-3}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = {line.rstrip(":") for line in dvc("status").splitlines()
               if line and not line[0].isspace()}
    # `inputs` is always_changed by design (it re-hashes datasets/)
    assert changed == {"train@facades-b", "generate@facades-b", "inputs"}, changed
