"""`replication plan`: the grid's steps and GPU-hours, checked against numbers worked out
by hand here (not by the code's own formula)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from replication import cli
from replication.grid.plan import greedy_makespan

REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"

# Three experiments, two seeds by default, facades with three:
#   facades-b1     400 train images, batch 1, 200 epochs -> 400 x 200        =  80,000 steps, x3 = 240,000
#   cityscapes-b10 2975 images, batch 10 -> ceil(297.5) = 298 x 200          =  59,600 steps, x2 = 119,200
#   maps-b1        1096 images, batch 1 -> 1096 x 200                        = 219,200 steps, x2 = 438,400
#   total_steps = 240,000 + 119,200 + 438,400 = 797,600
# At 100 steps/s: facades 800 s a run, cityscapes 596 s, maps 2,192 s;
#   all runs: 7,976 s = 2.21556 h on one GPU.
SMALL_GRID = {
    "datasets": ["facades", "cityscapes", "maps"],
    "defaults": {"seeds": [0, 1]},
    "experiments": {
        "facades-b1": {"data": {"dataset": "facades"}, "seeds": [0, 1, 2]},
        "cityscapes-b10": {"data": {"dataset": "cityscapes"}, "train": {"batch_size": 10}},
        "maps-b1": {"data": {"dataset": "maps", "direction": "AtoB"}},
    },
    "scales": {"short": {"seeds": [0], "train": {"iterations": 5}}},
}


def write_params(folder: Path, params: dict = SMALL_GRID) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def write_bench(path: Path, modes: dict, batch_size: int = 1, image_size: int = 256) -> Path:
    report = {"setup": {"device_name": "Test GPU", "batch_size": batch_size,
                        "image_size": image_size, "model": "unet ngf 64, D 70x70 ndf 64"},
              "modes": {m: {"seconds_per_step": 1 / r if r else None, "steps_per_second": r}
                        for m, r in modes.items()},
              "ratios": {}}
    path.write_text(json.dumps(report))
    return path


def plan_json(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "plan.json"
    assert cli.main(["plan", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def one_line_error(capsys, *argv: str) -> str:
    code = cli.main(["plan", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err, err
    return err


def test_small_grid_steps_and_hours(tmp_path, capsys):
    params = write_params(tmp_path)
    plan = plan_json(tmp_path, "--params", str(params), "--steps-per-second", "100")
    rows = {r["experiment"]: r for r in plan["experiments"]}
    assert [r["experiment"] for r in plan["experiments"]] == ["facades-b1", "cityscapes-b10",
                                                              "maps-b1"]
    assert rows["facades-b1"]["training_images"] == 400
    assert rows["cityscapes-b10"]["training_images"] == 2975
    assert rows["maps-b1"]["training_images"] == 1096
    assert rows["facades-b1"]["steps_per_run"] == 80_000
    assert rows["cityscapes-b10"]["steps_per_run"] == 59_600
    assert rows["maps-b1"]["steps_per_run"] == 219_200
    assert rows["facades-b1"]["steps"] == 240_000 and rows["facades-b1"]["runs"] == 3
    assert plan["total_steps"] == 797_600 and plan["runs"] == 7
    assert rows["facades-b1"]["hours_per_run"] == pytest.approx(800 / 3600)
    assert rows["maps-b1"]["hours"] == pytest.approx(2 * 2192 / 3600)
    assert plan["hours"]["one_gpu"] == pytest.approx(7976 / 3600)
    assert plan["hours"]["gpus"] == 1 and plan["hours"]["makespan"] == pytest.approx(7976 / 3600)
    out = capsys.readouterr().out
    assert "797,600" in out and "2.22 h" in out and "80,000" in out and "59,600" in out
    # one rate for batch 1 and batch 10: the plan says so
    assert "batch sizes 1, 10 alike" in out


def test_without_a_rate_no_hours(tmp_path, capsys):
    plan = plan_json(tmp_path, "--params", str(write_params(tmp_path)))
    assert plan["total_steps"] == 797_600 and "hours" not in plan
    assert "steps/s" not in capsys.readouterr().out


def test_greedy_longest_first_makespan_by_hand():
    # longest first, each to the least-loaded GPU (lowest number on a tie):
    # 3 -> g0, 3 -> g1, 2 -> g0 (5), 2 -> g1 (5), 2 -> g0 (7): makespan 7 (the best split,
    # 3+3 | 2+2+2, is 6: greedy is not optimal, and the plan reports what greedy gives)
    makespan, assigned = greedy_makespan([2, 3, 2, 3, 2], 2)
    assert makespan == 7 and assigned == [[1, 0, 4], [3, 2]]
    assert greedy_makespan([5, 1], 4)[0] == 5  # more GPUs than runs: the longest run
    assert greedy_makespan([1, 1, 1, 1], 1)[0] == 4


def test_gpus_divide_the_runs_but_never_split_one(tmp_path, capsys):
    # the small grid at 100 steps/s, runs in seconds: maps 2192 x2, facades 800 x3,
    # cityscapes 596 x2. On 2 GPUs: maps g0, maps g1, facades g0 (2992), facades g1
    # (2992), facades g0 (3792), cityscapes g1 (3588), cityscapes g1 (4184):
    # g0 = 3792 s, g1 = 4184 s -> makespan 4184 s; the floor is 7976 / 2 = 3988 s.
    plan = plan_json(tmp_path, "--params", str(write_params(tmp_path)),
                     "--steps-per-second", "100", "--gpus", "2")
    hours = plan["hours"]
    assert hours["makespan"] == pytest.approx(4184 / 3600)
    assert hours["lower_bound"] == pytest.approx(3988 / 3600)
    assert sorted(round(g["hours"] * 3600) for g in hours["per_gpu"]) == [3792, 4184]
    assert sum(len(g["runs"]) for g in hours["per_gpu"]) == 7
    out = capsys.readouterr().out
    assert "on 2 GPUs: 1.16 h" in out and "greedy longest-first" in out and "no run split" in out
    # 7 runs on 10 GPUs: the longest run, maps' 2192 s
    plan = plan_json(tmp_path, "--params", str(write_params(tmp_path)),
                     "--steps-per-second", "100", "--gpus", "10")
    assert plan["hours"]["makespan"] == pytest.approx(2192 / 3600)


def test_the_repository_grid_at_paper_scale(tmp_path):
    # params.yaml, 20 experiments x seeds [0, 1, 2] (defaults):
    #   cityscapes at batch 1: Table 1 (l1, gan, cgan, l1-gan, l1-cgan) 5 + Table 3
    #     (d1, d16, d286) 3 + Table 6 (photo2labels l1, cgan, l1-cgan) 3 = 11 x 595,000 = 6,545,000
    #   cityscapes at batch 10 (Table 2): 4 x 59,600                        =   238,400
    #   maps (photo2map, map2photo; l1, l1-cgan): 4 x 219,200               =   876,800
    #   facades-l1-cgan: 1 x 80,000                                         =    80,000
    #   one seed each: 7,740,200; three seeds: total_steps = 23,220,600
    plan = plan_json(tmp_path, "--params", str(REPO_PARAMS), "--scale", "paper",
                     "--steps-per-second", "65", "--gpus", "8")
    rows = {r["experiment"]: r for r in plan["experiments"]}
    assert len(rows) == 20 and plan["runs"] == 60
    assert plan["total_steps"] == 23_220_600
    assert rows["facades-l1-cgan"]["steps_per_run"] == 80_000
    assert rows["cityscapes-l1-cgan"]["steps_per_run"] == 595_000
    assert rows["cityscapes-unet-l1-cgan-b10"]["steps_per_run"] == 59_600
    assert rows["maps-map2photo-l1"]["steps_per_run"] == 219_200
    # 23,220,600 / 65 = 357,240 s = 99.233 h on one GPU; 8 GPUs: at least 99.233 / 8
    assert plan["hours"]["one_gpu"] == pytest.approx(357_240 / 3600)
    assert plan["hours"]["makespan"] >= 357_240 / 3600 / 8


def test_scale_option_plans_another_profile(tmp_path):
    # the repository's rehearsal: one seed, 2 iterations -> 20 x 2 = 40 steps
    assert plan_json(tmp_path, "--params", str(REPO_PARAMS),
                     "--scale", "rehearsal")["total_steps"] == 40
    # small grid `short`: seeds [0], iterations 5 -> 3 experiments x 5 steps
    plan = plan_json(tmp_path, "--params", str(write_params(tmp_path)), "--scale", "short")
    assert plan["scale"] == "short" and plan["total_steps"] == 15
    assert all(r["epochs"] is None and r["iterations"] == 5 for r in plan["experiments"])


def test_synthetic_data_counts_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path, {
        "datasets": ["facades", "mine"],
        "defaults": {"data": {"source": "synthetic"}, "seeds": [0]},
        "experiments": {"facades-synth": {"data": {"dataset": "facades"},
                                          "train": {"batch_size": 2, "epochs": 3}},
                        "mine-x": {"data": {"dataset": "mine", "source": "upstream"}}}})
    train = tmp_path / "data" / "facades" / "train"
    train.mkdir(parents=True)
    for i in range(5):
        (train / f"{i}.jpg").write_bytes(b"")
    (train / "notes.txt").write_text("not an image")
    plan = plan_json(tmp_path, "--params", str(params))
    rows = {r["experiment"]: r for r in plan["experiments"]}
    # 5 images at batch 2: ceil(5 / 2) = 3 steps an epoch x 3 epochs = 9
    assert rows["facades-synth"]["training_images"] == 5
    assert rows["facades-synth"]["steps_per_run"] == 9
    # a dataset outside the registry, no folder: unknown, and so is the total
    assert rows["mine-x"]["training_images"] is None and rows["mine-x"]["steps_per_run"] is None
    assert plan["total_steps"] is None


def test_bench_rate_per_mode_and_batch_notes(tmp_path, capsys):
    params = write_params(tmp_path)
    bench = write_bench(tmp_path / "bench.json", {"faithful": 50.0, "fast": 200.0})
    plan = plan_json(tmp_path, "--params", str(params), "--bench", str(bench))
    rows = {r["experiment"]: r for r in plan["experiments"]}
    assert all(r["mode"] == "faithful" and r["steps_per_second"] == 50.0 for r in rows.values())
    # 797,600 steps / 50 = 15,952 s
    assert plan["hours"]["one_gpu"] == pytest.approx(15_952 / 3600)
    assert "rate measured at batch 1, not 10" in rows["cityscapes-b10"]["notes"]
    assert not rows["facades-b1"]["notes"]
    out = capsys.readouterr().out
    assert "rate measured at batch 1, not 10" in out and "bench " in out and "faithful 50" in out

    plan = plan_json(tmp_path, "--params", str(params), "--bench", str(bench), "--mode", "fast",
                     "--steps-per-second-at-batch", "10=20")
    rows = {r["experiment"]: r for r in plan["experiments"]}
    assert rows["maps-b1"]["steps_per_second"] == 200.0
    assert rows["cityscapes-b10"]["steps_per_second"] == 20.0
    assert not any("measured at batch" in n for n in rows["cityscapes-b10"]["notes"])
    # facades 3 x 80,000 / 200 + maps 2 x 219,200 / 200 + cityscapes 2 x 59,600 / 20
    #   = 1,200 + 2,192 + 5,960 = 9,352 s
    assert plan["hours"]["one_gpu"] == pytest.approx(9_352 / 3600)


def test_bench_at_another_image_size_is_noted(tmp_path):
    bench = write_bench(tmp_path / "bench.json", {"faithful": 50.0}, image_size=128)
    plan = plan_json(tmp_path, "--params", str(write_params(tmp_path)), "--bench", str(bench))
    assert "rate measured at 128 px, not 256" in plan["experiments"][0]["notes"]


def test_a_cpu_bench_gives_no_gpu_hours(tmp_path, capsys):
    bench = write_bench(tmp_path / "bench.json", {"faithful": 0.9})
    report = json.loads(bench.read_text())
    report["setup"].update(device="cpu", device_name="Intel Xeon CPU, 2 threads")
    bench.write_text(json.dumps(report))
    err = one_line_error(capsys, "--params", str(write_params(tmp_path)), "--bench", str(bench))
    assert "measured on the CPU (Intel Xeon CPU, 2 threads)" in err
    assert "replication bench --scale paper" in err


def test_json_is_written_atomically_and_complete(tmp_path):
    out = tmp_path / "sub" / "plan.json"
    assert cli.main(["plan", "--params", str(write_params(tmp_path)), "--steps-per-second", "100",
                     "--json", str(out)]) == 0
    plan = json.loads(out.read_text())
    assert {"total_steps", "experiments", "hours", "scale", "runs"} <= set(plan)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    row = plan["experiments"][0]
    for key in ("experiment", "dataset", "training_images", "batch_size", "epochs",
                "steps_per_run", "seeds", "runs", "steps", "steps_per_second", "hours"):
        assert key in row, key


@pytest.mark.parametrize("gpus", ["0", "-2", "two", "1.5"])
def test_bad_gpus(tmp_path, capsys, gpus):
    err = one_line_error(capsys, "--params", str(write_params(tmp_path)),
                         "--steps-per-second", "1", f"--gpus={gpus}")
    assert f"--gpus {gpus!r}" in err and ">= 1" in err


def test_missing_bench_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    err = one_line_error(capsys, "--params", str(write_params(tmp_path)), "--bench", str(missing))
    assert str(missing) in err and "replication bench --json" in err


def test_bench_without_the_mode(tmp_path, capsys):
    bench = write_bench(tmp_path / "bench.json", {"faithful": 50.0})
    err = one_line_error(capsys, "--params", str(write_params(tmp_path)), "--bench", str(bench),
                         "--mode", "fast")
    assert "no 'fast' mode" in err and "['faithful']" in err and "--modes fast" in err


def test_bench_that_is_not_a_bench_report(tmp_path, capsys):
    params = str(write_params(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not a JSON file" in one_line_error(capsys, "--params", params, "--bench", str(bad))
    bad.write_text('{"setup": {}}')
    assert "no `modes`" in one_line_error(capsys, "--params", params, "--bench", str(bad))
    write_bench(bad, {"faithful": 0.0})
    assert "positive" in one_line_error(capsys, "--params", params, "--bench", str(bad))


def test_other_bad_inputs(tmp_path, capsys):
    params = str(write_params(tmp_path))
    bench = str(write_bench(tmp_path / "bench.json", {"faithful": 50.0}))
    assert "not both" in one_line_error(capsys, "--params", params, "--bench", bench,
                                        "--steps-per-second", "5")
    assert "'abc' is not a number" in one_line_error(capsys, "--params", params,
                                                     "--steps-per-second", "abc")
    assert "BATCH=STEPS_PER_SECOND" in one_line_error(capsys, "--params", params,
                                                      "--steps-per-second-at-batch", "ten=3")
    # per-batch rates alone must cover every batch size of the grid
    err = one_line_error(capsys, "--params", params, "--steps-per-second-at-batch", "1=60")
    assert "cityscapes-b10" in err and "--steps-per-second-at-batch 10=X" in err
    assert "scale='huge'" in one_line_error(capsys, "--params", params, "--scale", "huge")
    assert "params file not found" in one_line_error(capsys, "--params",
                                                     str(tmp_path / "none.yaml"))


# --- fused groups (train.fuse) -------------------------------------------------------
# --fuse seeds, 100 steps/s unfused, 2 fused runs 150 steps/s, 3 fused runs 180:
#   facades-b1  3 runs fused: 80,000 x 3 / 180 = 1,333.33 s
#   maps-b1     2 runs fused: 219,200 x 2 / 150 = 2,922.67 s
#   cityscapes-b10 batch 10: no fused rate at batch 10, 2 separate runs x 596 s = 1,192 s
#   one GPU: 5,448 s = 1.51333 h

def test_fused_groups_take_their_aggregate_rate(tmp_path):
    params = write_params(tmp_path)
    plan = plan_json(tmp_path, "--params", str(params), "--steps-per-second", "100",
                     "--fuse", "seeds", "--fused-rate", "2=150", "--fused-rate", "3=180")
    rows = {r["experiment"]: r for r in plan["experiments"]}
    assert rows["facades-b1"]["fused"]
    assert rows["facades-b1"]["hours"] == pytest.approx(1333.333 / 3600)
    assert rows["maps-b1"]["hours_per_run"] == pytest.approx(2922.667 / 3600)
    assert rows["maps-b1"]["steps_per_second"] == pytest.approx(75)
    assert rows["cityscapes-b10"]["hours"] == pytest.approx(1192 / 3600)
    assert plan["hours"]["one_gpu"] == pytest.approx(5448 / 3600)
    # 2 GPUs: the groups are indivisible: maps (2,922.67 s) on one, facades + cityscapes
    # runs (1,333.33 + 596 + 596 = 2,525.33 s) on the other
    plan = plan_json(tmp_path, "--params", str(params), "--steps-per-second", "100",
                     "--fuse", "seeds", "--fused-rate", "2=150", "--fused-rate", "3=180",
                     "--gpus", "2")
    assert plan["hours"]["makespan"] == pytest.approx(2922.667 / 3600)


def test_fused_rates_between_measured_sizes_interpolate_the_step_time(tmp_path):
    # 2 runs 150/s (13.33 ms a fused step), 4 runs 200/s (20 ms): 3 runs 16.67 ms = 180/s
    params = write_params(tmp_path)
    plan = plan_json(tmp_path, "--params", str(params), "--steps-per-second", "100",
                     "--fuse", "seeds", "--fused-rate", "2=150", "--fused-rate", "4=200")
    group = next(g for g in plan["fused_groups"] if g["experiments"] == ["facades-b1"])
    assert group["aggregate_steps_per_second"] == pytest.approx(180)


def test_fuse_experiments_groups_the_fusable_ones(tmp_path, capsys):
    grid = yaml.safe_load(yaml.safe_dump(SMALL_GRID))
    grid["experiments"]["facades-b1-l1w10"] = {"data": {"dataset": "facades"},
                                               "seeds": [0, 1, 2], "loss": {"l1_weight": 10}}
    params = write_params(tmp_path, grid)
    plan = plan_json(tmp_path, "--params", str(params), "--steps-per-second", "100",
                     "--fuse", "experiments", "--fused-rate", "2=150", "--fused-rate", "6=300")
    facades = next(g for g in plan["fused_groups"] if "facades-b1" in g["experiments"])
    assert facades["experiments"] == ["facades-b1", "facades-b1-l1w10"] and facades["runs"] == 6
    assert facades["hours"] == pytest.approx(80_000 * 6 / 300 / 3600)
    err = one_line_error(capsys, "--params", str(params), "--steps-per-second", "100",
                         "--fuse", "experiments", "--fused-rate", "2=150")
    assert "group of 6 runs" in err and "--fused-rate 6=X" in err
