"""The rehearsal: the whole DAG at the paper's shapes, on inputs in the real upstream layouts.

A loopback HTTP server stands in for the upstream hosts ($REPLICATION_MIRROR): it serves
the three dataset archives in the exact layouts, counts and geometry (replication synth:
facades 400/100/106 and cityscapes 2975/500 at 512x256, maps 1096/1098 at 1200x600), an
FCN-8s caffemodel with the real layer names and shapes (random weights, ~0.5 GB) and
pytorch-fid-shaped Inception weights. `dvc exp run -S scale=rehearsal` then runs every
stage of the real dvc.yaml and params.yaml: download -> weights -> train (256 px, ngf/ndf
64, 2 steps) -> generate -> segmenter -> score -> tables -> notebook.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.conftest import inception_state_bytes
from tests.metrics.test_fcn import write_caffemodel

from replication.data import synthetic
from replication.metrics import fcn, fid, weights
from tests.helpers.http_fixtures import ArchiveServer

REPO = Path(__file__).resolve().parents[2]
DATASETS = ("facades", "cityscapes", "maps")


def full_size_caffemodel(path: Path) -> bytes:
    """Random weights in every layer of the real FCN-8s, shapes taken from FCN8s()."""
    model, rng = fcn.FCN8s(), np.random.default_rng(0)
    blobs = {}
    for attr, name in fcn.CAFFE_LAYER_NAMES.items():
        layer = getattr(model, attr)
        tensors = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
        blobs[name] = [rng.standard_normal(tuple(t.shape), dtype=np.float32) * 0.01
                       for t in tensors]
    return write_caffemodel(path, blobs, unpacked_every=10**9).read_bytes()


def mirror_files(folder: Path) -> dict[str, bytes]:
    """Stand-ins in the upstream layouts. Not the real Cityscapes archive: installing and
    checking its 3,475 pairs, this test took 28 minutes in CI (13 before); tests/data/test_real_data.py
    installs it through the same mirror path."""
    files = {}
    for name in DATASETS:  # quality 75: a third of the bytes, the same layout and geometry
        path = synthetic.write_archive(name, folder, quality=75)
        files[f"/{name}.tar.gz"] = path.read_bytes()
    files[f"/{weights.FCN_FILE}"] = full_size_caffemodel(folder / weights.FCN_FILE)
    files[f"/{fid.WEIGHTS_FILE}"] = inception_state_bytes()
    return files


def disk_gib(folder: Path) -> float:
    """Disk blocks under `folder`, each hard-linked file once (DVC links its cache)."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
    return total / 2**30


def make_project(root: Path) -> Path:
    """A git + DVC copy of the repository's pipeline: the real dvc.yaml and params.yaml."""
    project = root / "project"
    project.mkdir()
    shutil.copytree(REPO / "replication", project / "replication",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", "notebooks/results.ipynb"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, project / name)
    commands = (["git", "init", "-q"], ["dvc", "init", "-q"],
                # link outputs into the cache instead of copying ~10 GB of checkpoints
                ["dvc", "config", "cache.type", "hardlink,symlink"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"])
    for cmd in commands:
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


@pytest.mark.slow
def test_rehearsal_runs_the_whole_dag_at_paper_shapes(tmp_path):
    project = make_project(tmp_path)
    began = time.perf_counter()
    with ArchiveServer(mirror_files(tmp_path / "mirror")) as server:
        env = {**os.environ, "REPLICATION_MIRROR": server.url,
               "TORCH_HOME": str(tmp_path / "torch-home"), "OMP_NUM_THREADS": "2"}
        run = subprocess.run(["dvc", "exp", "run", "-S", "scale=rehearsal"], cwd=project,
                             env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    report = {"seconds": round(seconds, 1), "peak_rss_gb_of_one_process": round(peak_gb, 2),
              "project_disk_gib_at_end": round(disk_gib(project), 2)}
    print(f"rehearsal: {report}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    status = subprocess.run(["python", "-m", "replication", "status", "--check"], cwd=project,
                            env=env, capture_output=True, text=True)
    assert status.returncode == 0, status.stdout

    params = yaml.safe_load((project / "params.yaml").read_text())
    for name in DATASETS:  # installed from the mirror, by content, with the real counts
        record = json.loads((project / "data" / name / ".verified.json").read_text())
        assert record["origin"] == "mirror"
        assert record["counts"] == synthetic.archive_counts(name)  # the registry's, as real
    maps = json.loads((project / "data/maps/.verified.json").read_text())
    assert maps["pair_size"] == [1200, 600]
    fetched = json.loads((project / "data/weights/weights.json").read_text())
    assert fetched["fcn"]["available"] and fetched["inception"]["available"]
    assert (project / "runs/segmenter/fcn8s-cityscapes.pt").is_file()  # converted once

    for experiment in params["experiments"]:  # paper shapes, 2 steps, 2 images, scored
        config = yaml.safe_load((project / f"runs/{experiment}/seed-0/config.yaml").read_text())
        assert config["data"]["image_size"] == 256 and config["generator"]["ngf"] == 64
        run_record = json.loads((project / f"metrics/{experiment}/train.json").read_text())
        assert run_record["seed-0"]["finished"] and run_record["seed-0"]["step"] == 2
        # train.keep_state: false: the 2-step state went once generator.pt was written
        checkpoint_files = (project / f"runs/{experiment}/seed-0/checkpoints").iterdir()
        assert sorted(path.name for path in checkpoint_files) == ["generator.pt"], experiment
        assert len(list((project / f"generated/{experiment}/seed-0").glob("*.png"))) == 2
        scores = json.loads((project / f"metrics/{experiment}/scores.json").read_text())
        assert scores["scale"] == "rehearsal" and scores["task"]["max_images"] == 2
    fid_record = scores["seeds"]["seed-0"]["fid_kid"]
    assert fid_record["available"] is True and fid_record["n_generated"] == 2

    for table in (project / "tables").glob("*.md"):
        if table.name != "README.md":
            assert "REHEARSAL scale" in table.read_text().splitlines()[0], table.name
    assert (project / "notebooks/results.html").is_file()
