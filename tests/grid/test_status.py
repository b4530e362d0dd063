"""`replication status` on a tiny hand-made workspace: what was scored, and what was not."""

import argparse
import json

import pytest
import yaml

from replication.config.params import Params
from replication.grid import status
from replication.stages import status as status_stage

FID_REASON = "no Inception weights (run `replication weights`)"
OLD_FID_REASON = ("no Inception weights (`replication weights` downloads them; offline, place "
                  "pt_inception-2015-12-05-6726825d.pth at scoring.inception_weights = None)")


def touch(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def write_workspace(root, scores: dict[str, dict], images=2):
    """params.yaml (facades and maps photo -> map, seeds 0 and 1), `images` test pairs
    each, every seed trained and generated; metrics/<exp>/scores.json as given."""
    experiments = {"facades_l1_cgan": {"data": {"dataset": "facades"}},
                   "maps_l1_cgan": {"data": {"dataset": "maps", "direction": "AtoB"}}}
    (root / "params.yaml").write_text(yaml.safe_dump({
        "scale": "paper", "datasets": ["facades", "maps"], "defaults": {"seeds": [0, 1]},
        "experiments": experiments}))
    for name, split in (("facades", "test"), ("maps", "val")):
        for n in range(images):
            touch(root / "data" / name / split / f"{n}.jpg")
    for name in experiments:
        for seed in (0, 1):
            touch(root / "runs" / name / f"seed-{seed}" / "checkpoints" / "generator.pt")
            for n in range(images):
                touch(root / "generated" / name / f"seed-{seed}" / f"{n}.png")
    for name, record in scores.items():
        touch(root / "metrics" / name / "scores.json", json.dumps(record))


def seeds(*records_per_seed):
    return {"seeds": {f"seed-{k}": r for k, r in enumerate(records_per_seed)}}


NO_FID = {"protocol": "fid_kid", "available": False, "reason": FID_REASON}
PSNR = {"protocol": "psnr_ssim", "psnr": 20.0, "ssim": 0.5}
PIXEL = {"protocol": "pixel_accuracy", "pixel_acc": 0.4}


def run_status(capsys, *flags) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    status_stage.add_arguments(parser)
    code = status_stage.run(parser.parse_args(["--params", "params.yaml", *flags]))
    return code, capsys.readouterr().out


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_each_seed_says_which_metrics_have_numbers(tmp_path, capsys):
    write_workspace(tmp_path, {
        "facades_l1_cgan": seeds({"fid_kid": NO_FID, "psnr_ssim": PSNR},
                                 {"fid_kid": NO_FID, "psnr_ssim": PSNR}),
        "maps_l1_cgan": seeds({"fid_kid": NO_FID, "psnr_ssim": PSNR,
                               "pixel_accuracy": PIXEL}),  # seed 1 not scored
    })
    rows = status.experiment_rows(Params.load("params.yaml"))
    assert rows[0]["metrics"] == {"numbers": ["psnr_ssim"], "unavailable": {"fid_kid": FID_REASON},
                                  "not_run": []}
    assert [r["scored"] for r in rows] == [True, True, True, False]

    code, out = run_status(capsys, "--check")
    lines = out.splitlines()
    facades = [line for line in lines if line.startswith("facades_l1_cgan")]
    assert len(facades) == 2
    assert all(line.split()[4] == "partial" for line in facades)
    assert facades[0].endswith("psnr_ssim; no number: fid_kid")
    maps_0, maps_1 = [line for line in lines if line.startswith("maps_l1_cgan")]
    assert maps_0.endswith("psnr_ssim pixel_accuracy; no number: fid_kid")
    assert maps_1.split()[4] == "NO" and "psnr" not in maps_1
    # the reason once, below the table, with how many seeds it concerns
    assert out.count(FID_REASON) == 1 and f"fid_kid: {FID_REASON} (3 seeds)" in out
    assert code == 1  # maps seed 1 is not scored (and no tables, no notebook)
    # --check says what is missing and why, then what to run
    assert "  maps_l1_cgan seed 1: not scored (metrics/maps_l1_cgan/scores.json has no seed-1)" \
        in lines
    assert "  tables/README.md: not written yet (stage tables)" in lines
    assert lines[-1] == ("next: `dvc repro` (runs only what is missing or stale); one "
                         "experiment: `dvc repro score@maps_l1_cgan`")
    assert lines[0] == "scale: paper (params.yaml `scale`; data: upstream)"


def test_metrics_the_rule_names_but_scores_json_lacks_are_not_run(tmp_path, capsys):
    # scores.json from before psnr_ssim / pixel_accuracy, FID with numbers, old long reason
    fid = {"protocol": "fid_kid", "available": True, "fid": 80.0}
    old = {"protocol": "fid_kid", "available": False, "reason": OLD_FID_REASON}
    write_workspace(tmp_path, {"facades_l1_cgan": seeds({"fid_kid": fid}, {"fid_kid": fid}),
                               "maps_l1_cgan": seeds({"fid_kid": old}, {"fid_kid": old})})
    rows = status.experiment_rows(Params.load("params.yaml"))
    assert rows[0]["metrics"]["not_run"] == ["psnr_ssim"]
    assert rows[2]["metrics"] == {"numbers": [], "unavailable": {"fid_kid": "no Inception weights"},
                                  "not_run": ["psnr_ssim", "pixel_accuracy"]}
    _, out = run_status(capsys)
    assert "fid_kid; not run: psnr_ssim" in out
    assert "no numbers; no number: fid_kid; not run: psnr_ssim pixel_accuracy" in out
    assert "fid_kid: no Inception weights (2 seeds)" in out and "offline, place" not in out


def test_all_metrics_with_numbers_is_yes_and_check_passes(tmp_path, capsys):
    fid = {"protocol": "fid_kid", "available": True, "fid": 80.0}
    write_workspace(tmp_path, {
        "facades_l1_cgan": seeds(*[{"fid_kid": fid, "psnr_ssim": PSNR}] * 2),
        "maps_l1_cgan": seeds(*[{"fid_kid": fid, "psnr_ssim": PSNR, "pixel_accuracy": PIXEL}] * 2)})
    for product in status.PIPELINE_PRODUCTS:
        touch(tmp_path / product)
    code, out = run_status(capsys, "--check")
    rows = [line for line in out.splitlines() if line.startswith(("facades", "maps"))]
    assert [line.split()[4] for line in rows] == ["yes"] * 4
    assert "no number" not in out and "missing" not in out and code == 0


def test_an_unavailable_metric_is_listed_but_not_a_check_failure(tmp_path, capsys):
    write_workspace(tmp_path, {
        "facades_l1_cgan": seeds(*[{"fid_kid": NO_FID, "psnr_ssim": PSNR}] * 2),
        "maps_l1_cgan": seeds(*[{"fid_kid": NO_FID, "psnr_ssim": PSNR,
                                 "pixel_accuracy": PIXEL}] * 2)})
    for product in status.PIPELINE_PRODUCTS:
        touch(tmp_path / product)
    code, out = run_status(capsys, "--check")
    assert code == 0 and f"fid_kid: {FID_REASON} (4 seeds)" in out


def test_an_unreadable_scores_file_counts_as_not_scored(tmp_path, capsys):
    write_workspace(tmp_path, {})
    touch(tmp_path / "metrics/facades_l1_cgan/scores.json", "{not json")
    rows = status.experiment_rows(Params.load("params.yaml"))
    assert not any(r["scored"] for r in rows)
    assert rows[0]["metrics"] == {"numbers": [], "unavailable": {}, "not_run": []}


@pytest.mark.parametrize("reason, short", [
    (FID_REASON, FID_REASON),
    (OLD_FID_REASON, "no Inception weights"),
    (None, "no reason given"),
    ("x" * 200, "x" * 137 + "..."),
])
def test_short_reason(reason, short):
    assert status.short_reason(reason) == short


@pytest.mark.parametrize("text, why", [("{not json", "Expecting property name"),
                                       ('{"seeds": {"seed-0": [1]}}', "seeds.seed-0 is a list")])
def test_status_says_why_a_scores_file_is_not_used(text, why, tmp_path, capsys):
    write_workspace(tmp_path, {"maps_l1_cgan": seeds({"psnr_ssim": PSNR}, {"psnr_ssim": PSNR})})
    touch(tmp_path / "metrics/facades_l1_cgan/scores.json", text)
    code, out = run_status(capsys, "--check")
    assert code == 1
    (line,) = [l for l in out.splitlines() if "metrics/facades_l1_cgan/scores.json:" in l]
    assert out.splitlines()[out.splitlines().index(line) - 1] == "not scored, why:"
    assert why in line and "rerun its score stage" in line


def age(path, seconds: float) -> None:
    """Make `path` look `seconds` older than now."""
    import os
    import time
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_outputs_older_than_their_inputs_are_stale(tmp_path, capsys):
    record = {"fid_kid": {"protocol": "fid_kid", "available": True, "fid": 80.0},
              "psnr_ssim": PSNR, "pixel_accuracy": PIXEL}
    write_workspace(tmp_path, {"facades_l1_cgan": seeds(record, record),
                               "maps_l1_cgan": seeds(record, record)})
    for product in status.PIPELINE_PRODUCTS:
        touch(tmp_path / product)
    touch(tmp_path / "logs/maps_l1_cgan/seed-0/plots/metrics/train/loss_D.tsv")
    code, out = run_status(capsys, "--check")
    assert "STALE" not in out and code == 0
    assert out.splitlines()[-1].startswith("next: `replication compare`")
    # a scores.json rewritten after the tables, a loss log after the plots page, the
    # tables after the notebook; maps' seed-0 images after their scores
    age(tmp_path / "tables/README.md", 60)
    age(tmp_path / "plots/index.html", 60)
    age(tmp_path / "notebooks/results.html", 120)
    age(tmp_path / "metrics/maps_l1_cgan/scores.json", 30)
    code, out = run_status(capsys, "--check")
    lines = out.splitlines()
    assert "tables/README.md                         STALE (older than a scores.json)" in lines
    assert "plots/index.html                         STALE (older than a loss log)" in lines
    assert "notebooks/results.html                   STALE (older than the tables)" in lines
    maps = [line.split() for line in lines if line.startswith("maps_l1_cgan")]
    assert [m[4] for m in maps] == ["STALE", "STALE"]
    assert code == 0  # stale is not missing: --check passes, the hint says what to run
    assert lines[-1] == ("next: `dvc repro` (runs only what is missing or stale); one "
                         "experiment: `dvc repro score@maps_l1_cgan`")
    # within the clock slack (a checkout writing everything at once): not stale
    age(tmp_path / "tables/README.md", status.SLACK_S / 2)
    assert "tables/README.md                         present" in run_status(capsys)[1]
