"""The DVC pipeline: stage wiring, precise invalidation, and parallel runs via the queue."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.inference.test_released import reference_bytes

from replication.core import codehash, layout
from tests.helpers.http_fixtures import ArchiveServer

REPO = Path(__file__).resolve().parents[2]


def dvc_yaml() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def update_script():
    spec = importlib.util.spec_from_file_location("update_stage_deps",
                                                  REPO / "scripts/update_stage_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # writes nothing: its writing is under __main__
    return module


# the module each stage's command runs (its `python -m replication <command>`)
STAGE_MODULES = update_script().STAGE_MODULES


def stage_deps(name: str) -> list[str]:
    stage = dvc_yaml()["stages"][name]
    return stage.get("do", stage).get("deps", [])


@pytest.mark.parametrize("stage", sorted(set(STAGE_MODULES) - {"inputs"}))  # inputs: no deps
def test_stage_deps_cover_the_code_it_runs(stage):
    # every package file the stage's module imports, directly or not, is a dep (a file or
    # a folder holding it), and no code dep is one the stage never runs; else a code
    # change would leave stale results, or re-run a stage for nothing
    code_deps = [d for d in stage_deps(stage) if d.startswith("replication/")
                 and (d.endswith(".py") or (REPO / d).is_dir())]
    closure = [f"replication/{p}" for p in codehash.code_closure(STAGE_MODULES[stage])]
    missed = [f for f in closure if not any(f == d or f.startswith(d + "/") for d in code_deps)]
    unused = [d for d in code_deps if not any(f == d or f.startswith(d + "/") for f in closure)]
    assert not missed and not unused, (
        f"{stage}: missing {missed}, not run {unused}; run scripts/update_stage_deps.py")


STUDIES = sorted(p.parent for p in (REPO / "studies").glob("*/params.yaml"))


@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_a_study_runs_the_root_pipeline_on_the_root_experiments(study):
    # its dvc.yaml is the root's, paths climbing back to the code; its experiments are the
    # root params.yaml's entries word for word (a study changes the scale, not the science)
    written = update_script().study_pipeline((REPO / "dvc.yaml").read_text())
    assert (study / "dvc.yaml").read_text() == written, "run scripts/update_stage_deps.py"
    ours = yaml.safe_load((study / "params.yaml").read_text())["experiments"]
    root = yaml.safe_load((REPO / "params.yaml").read_text())["experiments"]
    for name, entry in ours.items():
        assert entry == root.get(name), f"{study.name}: {name} differs from params.yaml's"


def test_the_closure_follows_imports_inside_functions():
    # registry.metrics_for imports fcn_score inside a function; cli.py is the dispatcher
    assert "metrics/fcn_score.py" in codehash.code_closure("replication.metrics.registry")
    assert "data/synthetic/__init__.py" in codehash.code_closure("replication.stages.download")
    assert "cli.py" not in codehash.code_closure("replication.stages.train")


def test_train_stage_depends_on_the_code_that_decides_the_weights():
    # a checkpoint records a hash of codehash.weight_code; the stage reruns when it changes
    code = [d for d in stage_deps("train") if d.startswith("replication/")]
    expanded = {f for d in code for f in ([d] if d.endswith(".py") else
                [f"{d}/{p.name}" for p in (REPO / d).glob("*.py")])}
    assert {f"replication/{p}" for p in codehash.weight_code()} <= expanded


def test_tables_and_plots_run_no_network_and_no_metric():
    # they read metrics files: a change to a network or a metric's code reruns neither
    for stage in ("tables", "plots"):
        closure = codehash.code_closure(STAGE_MODULES[stage])
        heavy = [f for f in closure if f.startswith(("models/", "training/"))
                 or f in ("inference/generate.py", "metrics/fcn.py", "metrics/fcn_score.py",
                          "metrics/fid.py", "metrics/segmenter.py", "data/paired.py")]
        assert not heavy, f"{stage} runs {heavy}"


def paths(entries: list) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for o in entries or []]


def test_stage_outputs_follow_the_layout():
    stages = dvc_yaml()["stages"]
    train_outs = paths(stages["train"]["do"]["outs"])
    assert train_outs == [f"{layout.RUNS}/${{key}}", f"{layout.LOGS}/${{key}}",
                          str(layout.train_metrics("${key}"))]
    assert stages["generate"]["do"]["outs"] == [f"{layout.GENERATED}/${{key}}"]
    assert paths(stages["score"]["do"]["outs"]) == [str(layout.score_metrics("${key}")),
                                                    str(layout.per_image_dir("${key}"))]
    assert str(layout.per_image_dir(layout.GROUND_TRUTH)) in paths(stages["segmenter"]["outs"])


def test_dvc_metrics_are_the_headline_files_only():
    # `dvc metrics show` / `dvc exp show`: a few numbers per experiment, not every seed's
    # every key (scores.json, train.json: plain outputs the tables and the notebook read)
    # timings are not results: train.json (steps/s) is a plain output, no DVC metric
    from replication.core.layout import score_headline as headline_path
    stages = dvc_yaml()["stages"]
    declared = {name: paths(stage.get("do", stage).get("metrics")) for name, stage in stages.items()}
    assert {k: v for k, v in declared.items() if v} == {
        "segmenter": [str(headline_path(layout.GROUND_TRUTH))],
        "score": [str(headline_path("${key}"))]}
    for name, path in (("train", layout.train_metrics("${key}")),
                       ("score", layout.score_metrics("${key}")),
                       ("segmenter", layout.score_metrics(layout.GROUND_TRUTH))):
        outs = stages[name].get("do", stages[name])["outs"]
        (entry,) = [o for o in outs if isinstance(o, dict) and str(path) in o]
        assert entry[str(path)] == {"cache": False}, name  # kept in git, beside the headline


def test_headline_numbers():
    from replication.metrics.headline import headline

    def summary(**values):
        return {"summary": {k.replace("__", "/"): {"mean": v, "std": None, "n": 3}
                            for k, v in values.items()}}
    both = summary(fcn_score_official__per_pixel_acc=0.61234, fcn_score_official__per_class_acc=0.2,
                   fcn_score_official__class_iou=0.15, fcn_score_fallback__per_pixel_acc=0.1,
                   fcn_score_corrected__per_pixel_acc=0.7, fid_kid__fid=101.23456,
                   fid_kid__kid_mean=0.0123456, fid_kid__n_generated=500,
                   psnr_ssim__psnr=14.2345, psnr_ssim__ssim=0.51234, color_hist__L=0.8)
    assert headline(both) == {"seg.per_pixel_acc": 0.6123, "seg.per_class_acc": 0.2,
                              "seg.class_iou": 0.15, "fid": 101.23, "kid": 0.01235,
                              "psnr": 14.23, "ssim": 0.5123}  # the paper's protocol first
    fallback = summary(fcn_score_fallback__per_pixel_acc=0.3, fcn_score_fallback__class_iou=0.1)
    assert headline(fallback) == {"seg.per_pixel_acc": 0.3, "seg.class_iou": 0.1}
    labels = summary(labels_score__per_pixel_acc=0.8, psnr_ssim__psnr=20.0)  # photo -> labels
    assert headline(labels) == {"seg.per_pixel_acc": 0.8, "psnr": 20.0}
    assert headline({"summary": {}}) == {}  # e.g. FID without weights: no key, no null


TWO_EXPERIMENTS = {"facades-a": {"data": {"dataset": "facades"}},
                   "facades-b": {"data": {"dataset": "facades"}, "loss": {"gan": "none"}}}


def dvc_in(project: Path):
    def dvc(*args: str) -> str:
        done = subprocess.run(["dvc", *args], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout
    return dvc


TRAIN_STAGES = ("inputs", "download", "train", "generate")


def make_project(tmp_path: Path, experiments: dict, stages: tuple[str, ...] = TRAIN_STAGES) -> Path:
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
    pipeline["stages"] = {k: v for k, v in pipeline["stages"].items() if k in stages}
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    shutil.copytree(REPO / ".dvc" / "plots", project / ".dvc" / "plots")  # the plots' template
    git_commit(project)
    return project


@pytest.mark.slow
def test_queue_runs_experiments_in_parallel(tmp_path):
    # The supported DVC route for a grid on several workers: queue, then start N workers.
    run = dvc_in(make_project(tmp_path, TWO_EXPERIMENTS))
    for name in TWO_EXPERIMENTS:
        run("exp", "run", "--queue", f"train@{name}")
    run("queue", "start", "-j", "2")
    deadline = time.time() + 900  # a guard against a hung queue, not a speed bound (~40 s)
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


@pytest.mark.slow
def test_an_ablation_added_to_a_finished_run_gets_its_row_beside_its_baseline(tmp_path,
                                                                               monkeypatch):
    # The researcher's loop (README "Your own experiments") on facades, scored by PSNR/SSIM
    # (no weights needed); the Cityscapes segmenter is left out with its stage.
    stages = (*TRAIN_STAGES, "weights", "score", "tables")
    project = make_project(tmp_path, {"facades-a": {"data": {"dataset": "facades"}}}, stages)
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())
    score = pipeline["stages"]["score"]["do"]
    score["deps"] = [d for d in score["deps"] if d != "runs/segmenter"]
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    dvc = dvc_in(project)
    dvc("repro")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["facades-a-lr"] = {"data": {"dataset": "facades"},
                                             "train": {"lr": 1.0e-3}, "compare_to": "facades-a"}
    # and the authors' released model (a 32 px stand-in in the reference's layout)
    params["experiments"]["facades-released"] = {
        "data": {"dataset": "facades"}, "released": "facades_label2photo", "compare_to": "facades-a"}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with ArchiveServer({"/facades_label2photo.pth": reference_bytes(5, 4)[0]}) as server:
        monkeypatch.setenv("REPLICATION_MIRROR", server.url)
        log = dvc("repro")
    assert "Stage 'train@facades-a' didn't change" in log, log
    assert "Running stage 'train@facades-a-lr'" in log, log
    assert "released model facades_label2photo" in log, log
    frame = pd.read_csv(project / "tables" / "psnr_ssim_facades.csv")
    assert list(frame.Row) == ["facades-a", "facades-a-lr",
                               "facades-released (the authors' released facades_label2photo)"]
    released = frame.set_index("Row").iloc[2]
    assert 0 < released.psnr_mean < 100 and 0 < released.ssim_mean <= 1
    yours = frame.set_index("Row").loc["facades-a-lr"]
    base = frame.set_index("Row").loc["facades-a"]
    assert 0 < yours.psnr_mean < 100 and 0 < yours.ssim_mean <= 1
    assert yours.psnr_vs_baseline == pytest.approx(yours.psnr_mean - base.psnr_mean, abs=0.01)
    # one seed each: the interval of the difference is over test images, and the verdict
    # follows it (higher / lower when it excludes zero, else within noise)
    lo, hi = yours.psnr_vs_baseline_lo, yours.psnr_vs_baseline_hi
    assert lo <= yours.psnr_vs_baseline <= hi
    assert yours.psnr_vs_baseline_verdict == ("higher" if lo > 0 else "lower" if hi < 0
                                              else "within noise")


def git_commit(project: Path) -> None:
    for cmd in (["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "run"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)


@pytest.mark.slow
def test_dvc_metrics_exp_show_and_plots_stay_small(tmp_path):
    project = make_project(tmp_path, TWO_EXPERIMENTS, (*TRAIN_STAGES, "plots"))
    dvc = dvc_in(project)
    dvc("repro")
    # timings are not results: training declares no DVC metric
    assert dvc("metrics", "show").strip() == "", dvc("metrics", "show")
    # dvc plots show: one chart per loss over both experiments (facades-b is L1 only),
    # one colour per experiment: the `experiment` field, not the file path
    plots = json.loads(dvc("plots", "show", "--json"))
    assert not plots.get("errors"), plots.get("errors")
    lines = {Path(name).stem: {row["experiment"] for row in chart[0]["content"]["data"]["values"]}
             for name, chart in plots["data"].items()}
    assert set(lines) == {f"fid_kid_facades-{loss}" for loss in
                          ("loss_D", "loss_G_gan", "loss_G_l1", "D_real", "D_fake")}
    assert lines["fid_kid_facades-loss_G_l1"] == {"facades-a", "facades-b"}
    assert lines["fid_kid_facades-loss_D"] == {"facades-a"}
    chart = next(iter(plots["data"].values()))[0]["content"]
    assert chart["encoding"]["color"]["field"] == "experiment"
    # a new experiment is on the charts after `dvc repro`, with no other step
    git_commit(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["facades-c"] = {"data": {"dataset": "facades"}, "train": {"lr": 1.0e-3}}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc("repro")
    plots = json.loads(dvc("plots", "show", "--json"))
    (l1,) = [c for n, c in plots["data"].items() if n.endswith("loss_G_l1.csv")]
    assert {r["experiment"] for r in l1[0]["content"]["data"]["values"]} == {
        "facades-a", "facades-b", "facades-c"}
    assert "facades-c" in (project / "plots" / "index.html").read_text()


@pytest.mark.slow
def test_dvc_metrics_show_of_the_whole_grid_fits_200_columns(tmp_path):
    # the real dvc.yaml and params.yaml, and the headline files a full run would write
    from replication.metrics.headline import headline
    project = tmp_path / "grid"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, project / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    seg = {"per_pixel_acc": 0.61234, "per_class_acc": 0.21234, "class_iou": 0.15234}
    rest = {"fid_kid/fid": 123.456, "fid_kid/kid_mean": 0.012345, "psnr_ssim/psnr": 14.234,
            "psnr_ssim/ssim": 0.51234}
    for name in [*params["experiments"], layout.GROUND_TRUTH]:
        family = "labels_score" if "photo2labels" in name else "fcn_score_official"
        values = {**{f"{family}/{k}": v for k, v in seg.items()}, **rest}
        (project / "metrics" / name).mkdir(parents=True)
        (project / "metrics" / name / "headline.json").write_text(
            json.dumps(headline({"summary": {k: {"mean": v} for k, v in values.items()}})))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    shown = dvc_in(project)("metrics", "show").splitlines()
    assert len(shown) == 1 + len(params["experiments"]) + 1
    assert max(map(len, shown)) <= 200, max(map(len, shown))


def test_dvc_exp_run_set_changes_only_the_value_it_sets(tmp_path):
    # `dvc exp run -S scale=smoke` (README command 1) rewrites params.yaml with DVC's YAML
    # writer: lists and long flow mappings would be restyled and comments after a list
    # dropped. params.yaml is written so that its diff is the one line it sets.
    project = tmp_path / "p"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")
    (project / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo hi > out.txt\n"
                                      "    params: [scale]\n    outs: [out.txt]\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    git_commit(project)
    dvc_in(project)("exp", "run", "-S", "scale=smoke", "-q")
    diff = subprocess.run(["git", "diff", "-U0", "params.yaml"], cwd=project, check=True,
                          capture_output=True, text=True).stdout
    changed = [line for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-scale: paper", "+scale: smoke"], diff
