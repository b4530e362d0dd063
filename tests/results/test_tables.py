"""Tables rendered from hand-made metrics files: values, verdicts, gaps, scale marker, Spearman.

Every expected number below is computed by hand from the numbers the test writes, or
taken from the paper (docs/protocols.md, docs/results.md); none comes from the code under test.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from replication.config.params import Params
from replication.core.errors import ConfigError
from replication.metrics import per_image
from replication.metrics.segmentation import official_scores
from replication.results import paper as paper_numbers
from replication.results import tables
from replication.stages import tables as tables_stage

EXACT = "exact: gtFine labelIds, photos upsampled to 1024x2048"
SEGMENTER = "fcn-8s-cityscapes.caffemodel sha256:1234abcd"
FID_REASON = "Inception weights not found: put pt_inception-2015-12-05-6726825d.pth in $TORCH_HOME"

PARAMS = {
    "scale": "paper",
    "scales": {"paper": {}, "smoke": {"seeds": [0], "data": {"source": "synthetic"}}},
    "datasets": ["cityscapes", "maps"],
    "defaults": {"seeds": [0, 1]},
    "experiments": {
        "cityscapes-l1": {"data": {"dataset": "cityscapes"}, "loss": {"gan": "none"}},
        "cityscapes-gan": {"data": {"dataset": "cityscapes"},
                           "loss": {"gan": "unconditional", "l1_weight": 0}},
        "cityscapes-cgan": {"data": {"dataset": "cityscapes"}, "loss": {"l1_weight": 0}},
        "cityscapes-l1-cgan": {"data": {"dataset": "cityscapes"}},
        "cityscapes-photo2labels-l1": {"data": {"dataset": "cityscapes", "direction": "AtoB"}},
        "cityscapes-photo2labels-cgan": {"data": {"dataset": "cityscapes", "direction": "AtoB"}},
        "maps-photo2map-l1": {"data": {"dataset": "maps", "direction": "AtoB"}},
    },
}

# (per_pixel_acc, per_class_acc, class_iou) per seed
FCN = {
    "cityscapes-l1": [(0.30, 0.20, 0.14), (0.34, 0.22, 0.16)],
    "cityscapes-cgan": [(0.33, 0.15, 0.09), (0.37, 0.17, 0.11)],
    "cityscapes-l1-cgan": [(0.60, 0.10, 0.19), (0.64, 0.12, 0.21)],
    "ground-truth": [(0.75, 0.25, 0.20)],
}
LABELS = {
    "cityscapes-photo2labels-l1": [(0.80, 0.40, 0.30)],  # one seed of the two in params
    "cityscapes-photo2labels-cgan": [(0.70, 0.30, 0.20), (0.72, 0.32, 0.22)],
}


def scores_file(metric: str, per_seed: list[dict], scale: str = "paper") -> dict:
    return {"experiment": "x", "scale": scale,
            "task": {"dataset": "cityscapes", "direction": "BtoA", "split": "val", "images": 500},
            "seeds": {f"seed-{k}": {metric: values} for k, values in enumerate(per_seed)},
            "summary": {}, "timing": {}}


def segmentation_dict(pp, pc, iou, protocol=EXACT) -> dict:
    return {"per_pixel_acc": pp, "per_class_acc": pc, "class_iou": iou,
            "protocol": protocol, "segmenter": SEGMENTER, "frames": 500}


def write_workspace(root: Path, scale: str = "paper") -> Path:
    params = {**PARAMS, "scale": scale}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    metrics = root / "metrics"
    for name, seeds in FCN.items():
        write(metrics / name / "scores.json", scores_file(
            "fcn_score_official", [segmentation_dict(*s) for s in seeds], scale))
    for name, seeds in LABELS.items():
        write(metrics / name / "scores.json", scores_file(
            "labels_score", [segmentation_dict(*s, protocol="nearest label colour") for s in seeds],
            scale))
    unavailable = {"available": False, "reason": FID_REASON, "n_generated": 30, "n_real": 30}
    write(metrics / "maps-photo2map-l1" / "scores.json",
          scores_file("fid_kid", [unavailable, unavailable], scale))
    write(metrics / "cityscapes-l1-cgan" / "train.json", {
        "seed-0": {"step": 100, "total_steps": 100, "finished": True},
        "seed-1": {"step": 50, "total_steps": 100, "finished": False}})
    return root


def write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def render(root: Path) -> Path:
    parser = argparse.ArgumentParser()
    tables_stage.add_arguments(parser)
    args = parser.parse_args(["--params", str(root / "params.yaml"),
                              "--metrics", str(root / "metrics"), "--out", str(root / "tables")])
    assert tables_stage.run(args) == 0
    return root / "tables"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return render(write_workspace(tmp_path_factory.mktemp("ws")))


def csv_row(out: Path, table: str, label: str) -> pd.Series:
    frame = pd.read_csv(out / f"{table}.csv", keep_default_na=False, na_values=[""])
    return frame[frame.Row == label].iloc[0]


def md_row(out: Path, table: str, label: str) -> str:
    """The Markdown line of one row, cells stripped of their padding: 'a | b | c'."""
    (line,) = [l for l in (out / f"{table}.md").read_text().splitlines()
               if l.startswith(f"| {label} ")]
    return " | ".join(cell.strip() for cell in line.strip("|").split(" | "))


def verdict(out: Path, claim: str, column: str) -> pd.Series:
    frame = pd.read_csv(out / "claims.csv", keep_default_na=False)
    return frame[(frame.claim == claim) & (frame.column == column)].iloc[0]


def test_mean_std_and_difference_by_hand(rendered):
    row = csv_row(rendered, "table1", "L1")
    # seeds 0.30 and 0.34: mean 0.32, sample std sqrt(2 * 0.02^2 / 1); paper 0.42 (docs/results.md)
    assert row.per_pixel_acc_mean == pytest.approx(0.32)
    assert row.per_pixel_acc_std == pytest.approx(math.sqrt(0.0008))
    assert row.per_pixel_acc_n == 2
    assert row.per_pixel_acc_paper == pytest.approx(0.42)
    assert row.per_pixel_acc_diff == pytest.approx(-0.10)
    assert row.Protocol == f"fcn_score_official ({EXACT})"
    assert row.Segmenter == SEGMENTER and row.Images == "500 frames"
    # no per-image files here: the interval resamples the two seeds only, and the 2.5 %
    # and 97.5 % quantiles of a mean of 2 resampled seeds are the seeds (P = 1/4 each)
    assert (row.per_pixel_acc_lo, row.per_pixel_acc_hi) == (0.30, 0.34)
    assert row.per_pixel_acc_interval.startswith("seeds only (no per-image scores")
    assert "0.320 [0.300, 0.340] (n=2) | 0.420 | -0.100" in md_row(rendered, "table1", "L1")


def test_ground_truth_row_calibrates_the_segmenter(rendered):
    row = csv_row(rendered, "table1", "Ground truth")
    # one "seed" of real photos: 0.75 vs the paper's 0.80; no std from one value
    assert row.per_pixel_acc_mean == pytest.approx(0.75)
    assert row.per_pixel_acc_diff == pytest.approx(-0.05)
    assert pd.isna(row.per_pixel_acc_std) and row.per_pixel_acc_n == 1
    assert "0.750 (n=1)" in md_row(rendered, "table1", "Ground truth")
    assert "per_pixel_acc 0.750 vs paper 0.800" in (rendered / "README.md").read_text()


def test_verdicts(rendered):
    # No per-image files here: the difference is resampled over seeds, paired by name.
    # per-pixel: L1+cGAN 0.60, 0.64 vs L1 0.30, 0.34: seed differences 0.30, 0.30, so every
    # replicate is 0.30: interval [0.30, 0.30], above zero
    row = verdict(rendered, "l1cgan-beats-l1", "per_pixel_acc")
    assert row.verdict == "reproduced"
    assert (float(row.diff_lo), float(row.diff_hi)) == (pytest.approx(0.3), pytest.approx(0.3))
    assert row.reason == ("seeds paired by name (2); test images not resampled (no per-image "
                          "scores (metrics/<experiment>/per_image/: rerun `replication score`))")
    # per-class: L1+cGAN 0.10, 0.12 vs L1 0.20, 0.22: differences -0.10, -0.10: below zero
    assert verdict(rendered, "l1cgan-beats-l1", "per_class_acc").verdict == "contradicted"
    # per-pixel: cGAN 0.33, 0.37 vs L1 0.30, 0.34 overlap as mean ± std, but seed by seed
    # cGAN is 0.03 higher both times: paired, [0.03, 0.03]
    row = verdict(rendered, "cgan-beats-l1", "per_pixel_acc")
    assert row.verdict == "reproduced" and float(row["diff"]) == pytest.approx(0.03)
    # photo -> labels: L1 has seed-0 only, cGAN seed-0 and seed-1: not paired; L1's one
    # seed is fixed, cGAN's mean of 2 resampled seeds is 0.70, 0.71 or 0.72 (P 1/4, 1/2,
    # 1/4): differences 0.10, 0.09, 0.08, interval [0.08, 0.10]
    row = verdict(rendered, "photo2labels-l1-beats-cgan", "per_pixel_acc")
    assert row.verdict == "reproduced"
    assert (float(row.diff_lo), float(row.diff_hi)) == (pytest.approx(0.08), pytest.approx(0.10))
    assert row.reason.startswith("seeds resampled independently (1 vs 2)")
    rule = (rendered / "claims.md").read_text()
    assert "**within noise** when it holds zero" in rule
    assert "2000 resamples, resampling seed 0" in rule
    assert "| +0.300 [+0.300, +0.300] |" in rule  # the difference and its interval


def gap_notes(out: Path, table: str) -> list[str]:
    """The reasons listed under a table ('- reason — rows')."""
    text = (out / f"{table}.md").read_text()
    return [l for l in text.split("No number (— above):", 1)[-1].splitlines() if l.startswith("- ")]


def test_missing_experiment_is_a_marked_gap(rendered):
    line = md_row(rendered, "table1", "GAN")
    assert line.startswith("GAN | cityscapes-gan | — | 0.220 | —") and "not run" not in line
    # each reason once, with the rows it concerns (L1+GAN is not in these params at all)
    assert gap_notes(rendered, "table1") == [
        "- not run yet (no metrics/<experiment>/scores.json) — GAN",
        "- not in params.yaml experiments — L1+GAN"]
    row = verdict(rendered, "cgan-beats-gan", "class_iou")
    assert row.verdict.startswith("— (cityscapes-gan: not run")
    # an experiment params.yaml does not list at all (Table 3 rows) is marked too
    assert "- not in params.yaml experiments — 1×1, 16×16, 286×286" in gap_notes(rendered, "table3")
    assert csv_row(rendered, "table3", "1×1").gap == "not in params.yaml experiments"


def test_fid_unavailable_shows_its_reason_once_under_the_table(rendered):
    for table, label in (("table4", "L1, photo → map"), ("fid_kid_maps", "maps-photo2map-l1")):
        line = md_row(rendered, table, label)
        assert FID_REASON not in line and "| — | — |" in f"| {line} |"
        text = (rendered / f"{table}.md").read_text()
        assert text.count(FID_REASON) == 1, table  # one reason for the row's two cells
        assert f"- fid_kid: {FID_REASON}" in "\n".join(gap_notes(rendered, table))
    assert csv_row(rendered, "table4", "L1, photo → map").gap == f"fid_kid: {FID_REASON}"
    assert csv_row(rendered, "table4", "L1, photo → map")["paper: % Turkers labelled real"] == 2.8


def test_table4_paper_values_print_as_the_paper_does(rendered):
    # "2.8", not the float repr "2.800000" of a pandas float column
    assert " | 2.8 | " in md_row(rendered, "table4", "L1, photo → map")
    assert " | 18.9 | " in md_row(rendered, "table4", "L1+cGAN, map → photo")
    assert "2.800000" not in (rendered / "table4.md").read_text()


def test_seed_count_and_unfinished_training_are_noted(rendered):
    assert "1 of 2 seeds scored" in md_row(rendered, "table6", "L1")
    assert "seed-1 training unfinished (step 50/100)" in md_row(rendered, "table1", "L1+cGAN")


def test_spearman_by_hand(rendered):
    frame = pd.read_csv(rendered / "spearman.csv", keep_default_na=False)
    iou = frame[(frame.table == "table1") & (frame.column == "class_iou")].iloc[0]
    # ours L1 0.15, cGAN 0.10, L1+cGAN 0.20 -> ranks 2, 1, 3; paper 0.11, 0.16, 0.17 -> 1, 2, 3
    # rho = 1 - 6 * (1 + 1 + 0) / (3 * (3^2 - 1)) = 0.5
    assert iou.n == 3 and float(iou.spearman_rho) == pytest.approx(0.5)
    two_rows = frame[(frame.table == "table6") & (frame.column == "per_pixel_acc")].iloc[0]
    assert two_rows.spearman.startswith("n/a") and two_rows.spearman_rho == ""


def test_scale_marker_in_every_title(rendered, tmp_path):
    assert "(paper scale)" in (rendered / "table1.md").read_text().splitlines()[0]
    smoke = render(write_workspace(tmp_path, scale="smoke"))
    for name in ("table1.md", "table3.md", "fid_kid_maps.md", "claims.md"):
        title = (smoke / name).read_text().splitlines()[0]
        assert "SMOKE scale — synthetic data" in title and "not a paper result" in title, name


def test_a_scale_title_states_size_schedule_and_seeds():
    from replication.results.tables import schedule_text
    params = {"datasets": ["cityscapes"], "scale": "cpu",
              "scales": {"cpu": {"seeds": [0, 1], "data": {"image_size": 128},
                                 "train": {"epochs": 1}}},
              "experiments": {"a": {"data": {"dataset": "cityscapes"}},
                              "b": {"data": {"dataset": "cityscapes"}, "train": {"batch_size": 10}}}}
    # the paper: 200 epochs of 2,975 Cityscapes pairs; 1 epoch is 2,975 steps at batch 1
    # and ceil(2975 / 10) = 298 at batch 10, 0.5% of 595,000 and of 59,600
    assert schedule_text(Params.of(params), ["a"]) == (
        "128 px, 2,975 steps = 0.5% of the paper's schedule, 2 seed(s)")
    assert schedule_text(Params.of(params), ["a", "b"]) == (
        "128 px, 2,975 steps / 298 steps = 0.5% of the paper's schedule, 2 seed(s)")


def test_stale_smoke_scores_under_paper_params_are_flagged(tmp_path):
    root = write_workspace(tmp_path)
    write(root / "metrics" / "cityscapes-l1" / "scores.json", scores_file(
        "fcn_score_official", [segmentation_dict(*s) for s in FCN["cityscapes-l1"]], "smoke"))
    out = render(root)
    assert "SMOKE scale" in (out / "table1.md").read_text().splitlines()[0]
    assert "scored at smoke scale but params.yaml says paper" in md_row(out, "table1", "L1")


def test_mixed_protocols_are_marked_and_not_judged(tmp_path):
    root = write_workspace(tmp_path)
    (a, b) = FCN["cityscapes-l1"]
    scores = scores_file("fcn_score_official", [segmentation_dict(*a), segmentation_dict(*b)])
    scores["seeds"]["seed-1"] = {"fcn_score_fallback": segmentation_dict(*b, protocol="fallback")}
    write(root / "metrics" / "cityscapes-l1" / "scores.json", scores)
    out = render(root)
    assert csv_row(out, "table1", "L1").Protocol == (
        f"MIXED: fcn_score_fallback (fallback) + fcn_score_official ({EXACT})")
    row = verdict(out, "l1cgan-beats-l1", "per_pixel_acc")
    assert row.verdict == "no verdict" and "not one protocol" in row.reason


def test_output_folder_is_replaced_whole(tmp_path):
    root = write_workspace(tmp_path)
    render(root)
    (root / "tables" / "stale.md").write_text("old")  # in an earlier `tables` output
    out = render(root)
    assert not (out / "stale.md").exists()
    expected = {"table1", "table2", "table3", "table4", "table6", "color", "fid_kid_cityscapes",
                "fid_kid_maps", "psnr_ssim_cityscapes_AtoB", "psnr_ssim_cityscapes_BtoA",
                "psnr_ssim_maps", "pixel_accuracy_maps"}
    assert {p.stem for p in out.glob("*.csv")} == expected | {"claims", "spearman", "comparisons"}
    text = (out / "README.md").read_text()
    assert "../notebooks/results.html" in text and "../plots/index.html" in text
    assert "none yet for: none" not in text
    assert "have numbers; none yet for: " in text  # this workspace leaves some unscored


def test_dataset_tables_list_the_tasks_their_metric_applies_to(tmp_path):
    root = write_workspace(tmp_path)
    per_seed = [{"psnr": 20.0, "ssim": 0.5, "frames": 30}, {"psnr": 22.0, "ssim": 0.7, "frames": 30}]
    write(root / "metrics" / "maps-photo2map-l1" / "scores.json",
          scores_file("psnr_ssim", per_seed))
    out = render(root)
    psnr = csv_row(out, "psnr_ssim_maps", "maps-photo2map-l1")
    assert psnr["psnr_mean"] == pytest.approx(21.0) and psnr["ssim_mean"] == pytest.approx(0.6)
    labels = lambda table: set(pd.read_csv(out / f"{table}.csv").Row)
    assert labels("pixel_accuracy_maps") == {"maps-photo2map-l1"}
    # photo -> labels is scored by labels_score, not FID; PSNR/SSIM applies to every task
    assert "cityscapes-photo2labels-l1" not in labels("fid_kid_cityscapes")
    # ... and one table per direction: photo -> labels is another task than labels -> photo
    assert "cityscapes-photo2labels-l1" in labels("psnr_ssim_cityscapes_AtoB")
    assert "cityscapes-photo2labels-l1" not in labels("psnr_ssim_cityscapes_BtoA")
    assert "cityscapes-l1" in labels("psnr_ssim_cityscapes_BtoA")
    assert "cityscapes label colours → photo test images" in \
        (out / "psnr_ssim_cityscapes_BtoA.md").read_text().splitlines()[0]


def test_paper_numbers_match_the_paper():
    paper = paper_numbers.load_paper_numbers()["tables"]
    rows = {(t, r["label"]): r for t, s in paper.items() for r in paper_numbers.table_rows(s)}
    # spot checks against docs/protocols.md, docs/results.md
    assert rows["table1", "Ground truth"]["paper"] == [0.80, 0.26, 0.21]
    assert rows["table2", "Encoder-decoder (L1+cGAN)"]["paper"] == [0.29, 0.09, 0.05]
    assert rows["table3", "286×286"]["paper"] == [0.42, 0.16, 0.11]
    assert rows["table6", "cGAN"]["paper"] == [0.74, 0.28, 0.22]
    assert rows["color", "PixelGAN"]["paper"] == [0.83, 0.68, 0.78]
    assert rows["table4", "L1+cGAN, map → photo"]["amt_percent_real"] == 18.9
    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    for (table, label), row in rows.items():
        assert row["experiment"] in {*params["experiments"], "ground-truth"}, (table, label)


def test_a_claim_the_paper_numbers_contradict_is_rejected(tmp_path):
    paper = yaml.safe_load(paper_numbers.PAPER_NUMBERS.read_text())
    paper["claims"] = [{"id": "bad", "statement": "s", "table": "table3", "better": "1×1",
                        "worse": "70×70", "columns": ["class_iou"]}]
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(paper, allow_unicode=True))
    with pytest.raises(paper_numbers.TablesError, match="do not show 1×1 > 70×70") as info:
        paper_numbers.load_paper_numbers(path)
    assert "\n" not in str(info.value)


def test_missing_params_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.yaml: params file not found"):
        tables.load_results(Params.load(tmp_path / "nowhere.yaml"), tmp_path)


def test_ground_truth_row_follows_the_protocol_of_the_method_rows(tmp_path):
    root = write_workspace(tmp_path)
    for name, seeds in FCN.items():  # every run scored with the fallback protocol only ...
        fallback = [segmentation_dict(*s, protocol="fallback") for s in seeds]
        write(root / "metrics" / name / "scores.json", scores_file("fcn_score_fallback", fallback))
    gt = scores_file("fcn_score_fallback", [segmentation_dict(0.5, 0.2, 0.1, protocol="fallback")])
    gt["seeds"]["seed-0"]["fcn_score_official"] = segmentation_dict(0.75, 0.25, 0.2)  # ... GT both
    write(root / "metrics" / "ground-truth" / "scores.json", gt)
    row = csv_row(render(root), "table1", "Ground truth")
    assert row.per_pixel_acc_mean == pytest.approx(0.5)
    assert row.Protocol == "fcn_score_fallback (fallback)"


def test_corrected_arithmetic_is_shown_beside_the_official_numbers(tmp_path):
    root = write_workspace(tmp_path)
    scores = scores_file("fcn_score_official", [segmentation_dict(0.40, 0.14, 0.10),
                                                 segmentation_dict(0.44, 0.16, 0.12)])
    for k, seed in enumerate(scores["seeds"].values()):
        seed["fcn_score_corrected"] = segmentation_dict(0.41 + 0.02 * k, 0.15, 0.11,
                                                        protocol="corrected")
    write(root / "metrics" / "cityscapes-l1" / "scores.json", scores)
    out = render(root)
    row = md_row(out, "table1", "L1")
    assert "0.420 [0.400, 0.440] (n=2)" in row  # the official numbers sit beside the paper's
    assert "0.420 / 0.150 / 0.110" in row  # corrected means: (0.41 + 0.43) / 2, 0.15, 0.11
    header = (out / "table1.md").read_text()
    assert "fcn_score_corrected (per_pixel_acc / per_class_acc / class_iou)" in header


# --- your experiments: rows beside their baseline -----------------------------------------

ABLATION = "cityscapes-l1-cgan-lr1e-4"


def with_experiments(root: Path, datasets: list[str] | None = None, **experiments) -> Path:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["experiments"].update(experiments)
    if datasets:
        params["datasets"] = datasets
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def table_rows_in_order(out: Path, table: str) -> list[str]:
    return list(pd.read_csv(out / f"{table}.csv", keep_default_na=False).Row)


@pytest.fixture(scope="module")
def ablation(tmp_path_factory) -> Path:
    root = write_workspace(tmp_path_factory.mktemp("ablation"))
    with_experiments(root, **{ABLATION: {"data": {"dataset": "cityscapes"}, "train": {"lr": 1e-4},
                                         "compare_to": "cityscapes-l1-cgan"}})
    # per_pixel_acc 0.50, 0.52 against the baseline's 0.60, 0.64 (FCN above);
    # per_class_acc 0.11, 0.13 against 0.10, 0.12; class_iou 0.30, 0.34 against 0.19, 0.21
    write(root / "metrics" / ABLATION / "scores.json", scores_file(
        "fcn_score_official", [segmentation_dict(0.50, 0.11, 0.30),
                               segmentation_dict(0.52, 0.13, 0.34)]))
    return render(root)


def test_your_ablation_has_a_row_beside_its_baseline_with_the_difference(ablation):
    rows = table_rows_in_order(ablation, "table1")
    assert rows[rows.index("L1+cGAN") + 1] == ABLATION  # right after the row it derives from
    line = md_row(ablation, "table1", ABLATION)
    # seeds paired by name, no per-image files: the mean of 2 resampled seed differences
    # takes the seed differences as its 2.5 % and 97.5 % quantiles (P 1/4 each)
    # per-pixel 0.50, 0.52 vs 0.60, 0.64: differences -0.10, -0.12: lower
    assert "0.510 [0.500, 0.520] (n=2)" in line and "-0.110 [-0.120, -0.100] (lower)" in line
    # per-class 0.11, 0.13 vs 0.10, 0.12: +0.01 on each seed (mean ± std would overlap)
    assert "+0.010 [+0.010, +0.010] (higher)" in line
    # class IoU 0.30, 0.34 vs 0.19, 0.21: +0.11, +0.13
    assert "+0.120 [+0.110, +0.130] (higher)" in line
    assert "L1+cGAN (cityscapes-l1-cgan)" in line
    row = csv_row(ablation, "table1", ABLATION)
    assert row.per_pixel_acc_mean == pytest.approx(0.51)
    assert row.per_pixel_acc_vs_baseline == pytest.approx(-0.11)
    assert row.per_pixel_acc_vs_baseline_verdict == "lower"
    assert (row.per_pixel_acc_vs_baseline_lo, row.per_pixel_acc_vs_baseline_hi) == (
        pytest.approx(-0.12), pytest.approx(-0.10))
    assert row.per_class_acc_vs_baseline_verdict == "higher"
    assert row["Compared with"] == "cityscapes-l1-cgan" and pd.isna(row.per_pixel_acc_paper)
    # paper rows keep their paper comparison and no baseline one
    assert pd.isna(csv_row(ablation, "table1", "L1").per_pixel_acc_vs_baseline)


def test_your_ablation_is_in_every_table_of_its_task_that_holds_its_baseline(ablation):
    for table, baseline in (("table3", "70×70"), ("color", "L1+cGAN"),
                            ("fid_kid_cityscapes", "cityscapes-l1-cgan")):
        rows = table_rows_in_order(ablation, table)
        assert rows[rows.index(baseline) + 1] == ABLATION, table
    assert ABLATION not in table_rows_in_order(ablation, "table2")  # no baseline row there
    assert ABLATION not in table_rows_in_order(ablation, "table6")  # another task
    readme = (ablation / "README.md").read_text()
    assert "6 of 8 experiments" in readme and ABLATION not in readme.split("none\nyet for:")[-1]


def test_claims_list_your_experiments_against_their_baselines(ablation):
    claims = (ablation / "claims.md").read_text()
    assert "## Your experiments against their baselines" in claims
    frame = pd.read_csv(ablation / "comparisons.csv", keep_default_na=False)
    fcn = frame[(frame.experiment == ABLATION) & (frame.metric == "fcn_score")]
    assert list(fcn.column) == ["per_pixel_acc", "per_class_acc", "class_iou"]  # once, not per table
    assert list(fcn.verdict) == ["lower", "higher", "higher"]
    assert list(fcn.diff_lo) == pytest.approx([-0.12, 0.01, 0.11])
    assert set(fcn.how) == {"compare_to"}


def test_one_seed_against_two_and_a_baseline_without_numbers_is_a_gap(tmp_path):
    root = with_experiments(write_workspace(tmp_path), **{
        ABLATION: {"data": {"dataset": "cityscapes"}, "train": {"lr": 1e-4},
                   "compare_to": "cityscapes-l1-cgan"},
        "cityscapes-gan-lr1e-4": {"data": {"dataset": "cityscapes"}, "train": {"lr": 1e-4},
                                  "compare_to": "cityscapes-gan"}})
    for name in (ABLATION, "cityscapes-gan-lr1e-4"):
        write(root / "metrics" / name / "scores.json",
              scores_file("fcn_score_official", [segmentation_dict(0.10, 0.11, 0.30)]))
    out = render(root)
    # seed-0 alone against seed-0 and seed-1: not paired; ours fixed at 0.10, the
    # baseline's mean of 2 resampled seeds 0.60, 0.62 or 0.64: differences -0.50 .. -0.54
    assert "-0.520 [-0.540, -0.500] (lower)" in md_row(out, "table1", ABLATION)
    line = md_row(out, "table1", "cityscapes-gan-lr1e-4")
    assert "0.100 (n=1)" in line and "GAN (cityscapes-gan)" in line and "not run" not in line
    assert ("- baseline cityscapes-gan: not run yet (no metrics/<experiment>/scores.json) — "
            "cityscapes-gan-lr1e-4") in gap_notes(out, "table1")


def test_a_baseline_is_derived_when_compare_to_is_not_given(tmp_path):
    root = with_experiments(write_workspace(tmp_path), datasets=["cityscapes", "maps", "facades"], **{
        # differs from cityscapes-l1-cgan in generator.ngf only (from cityscapes-l1 in two keys)
        "cityscapes-l1-cgan-ngf32": {"data": {"dataset": "cityscapes"}, "generator": {"ngf": 32}},
        # maps photo -> map, L1, batch 4: closest to maps-photo2map-l1
        "maps-photo2map-l1-b4": {"data": {"dataset": "maps", "direction": "AtoB"},
                                 "train": {"batch_size": 4}},
        # no paper experiment on facades: no baseline, at the end of its FID/KID table
        "facades-mine": {"data": {"dataset": "facades"}},
    })
    out = render(root)
    row = md_row(out, "table1", "cityscapes-l1-cgan-ngf32")
    assert "L1+cGAN (cityscapes-l1-cgan); closest paper experiment (differs in generator.ngf)" in row
    rows = table_rows_in_order(out, "table4")
    assert rows[rows.index("L1, photo → map") + 1] == "maps-photo2map-l1-b4"
    assert table_rows_in_order(out, "fid_kid_facades") == ["facades-mine"]
    assert "— (no paper experiment of this dataset and direction" in md_row(
        out, "fid_kid_facades", "facades-mine")


def test_your_experiment_without_a_baseline_closes_its_tasks_first_table(tmp_path):
    root = with_experiments(write_workspace(tmp_path), **{
        "cityscapes-mine": {"data": {"dataset": "cityscapes"}, "compare_to": "maps-photo2map-l1"}})
    out = render(root)
    # its baseline has no row in the FCN tables: the end of Table 1 (before the reference)
    assert table_rows_in_order(out, "table1")[-2:] == ["cityscapes-mine", "Ground truth"]
    assert "cityscapes-mine" not in table_rows_in_order(out, "table3")


def test_compare_to_must_name_an_experiment_of_params(tmp_path):
    root = with_experiments(write_workspace(tmp_path), **{
        ABLATION: {"data": {"dataset": "cityscapes"}, "compare_to": "cityscapes-nowhere"}})
    with pytest.raises(ConfigError, match="compare_to='cityscapes-nowhere' names no other "
                                          "experiment of params.yaml") as info:
        tables.load_results(Params.load(root / "params.yaml"), root / "metrics")
    assert "\n" not in str(info.value)


def test_tables_say_what_machine_and_torch_computed_them(tmp_path):
    root = write_workspace(tmp_path)
    scores = scores_file("fcn_score_official", [segmentation_dict(0.4, 0.1, 0.1)])
    scores["machine"] = {"cpu": "AMD EPYC", "threads": 2, "gpu": None, "torch": "2.14.1",
                         "python": "3.11.7"}
    write(root / "metrics" / "cityscapes-l1" / "scores.json", scores)
    isa = {**scores["machine"], "cpu": "AMD EPYC", "isa": "AVX512 (avx2 fma avx512f)"}
    write(root / "metrics" / "cityscapes-gan" / "scores.json", {**scores, "machine": isa})
    out = render(root)
    # a scores.json from before `isa` was recorded, and one with it: two machines
    line = "AMD EPYC, 2 threads, torch 2.14.1: 1 experiment(s)"
    with_isa = "AMD EPYC, AVX512 (avx2 fma avx512f), 2 threads, torch 2.14.1: 1 experiment(s)"
    for text in ((out / "README.md").read_text(), (out / "table1.md").read_text()):
        assert line in text and with_isa in text


# --- what tables may replace, and scores files of the wrong shape ----------------------

def tables_cli(root: Path, out, capsys) -> tuple[int, str]:
    from replication import cli
    capsys.readouterr()
    code = cli.main(["tables", "--params", str(root / "params.yaml"),
                     "--metrics", str(root / "metrics"), "--out", str(out)])
    return code, capsys.readouterr().err.strip()


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("where", ["metrics", "workspace", "a folder of mine", "a file",
                                   "inside metrics"])
def test_tables_never_replace_what_they_did_not_write(where, tmp_path, capsys, monkeypatch):
    root = write_workspace(tmp_path)
    monkeypatch.chdir(root)
    (root / "mine").mkdir()
    (root / "mine" / "notes.md").write_text("mine")
    (root / "notes.txt").write_text("mine")
    out = {"metrics": root / "metrics", "workspace": root, "a folder of mine": root / "mine",
           "a file": root / "notes.txt", "inside metrics": root / "metrics" / "tables"}[where]
    before = tree(root)
    code, err = tables_cli(root, out, capsys)
    assert code == 1 and err.startswith("error: ") and "\n" not in err and str(out) in err
    assert tree(root) == before


def test_a_read_only_tables_folder_is_one_line(tmp_path, capsys, read_only):
    (tmp_path / "ws").mkdir()
    root = write_workspace(tmp_path / "ws")
    (tmp_path / "ro").mkdir()
    read_only(tmp_path / "ro")
    code, err = tables_cli(root, tmp_path / "ro" / "tables", capsys)
    assert code == 1 and "\n" not in err and "read-only" in err


@pytest.mark.parametrize("text, why", [
    ('{"experiment": "x", "seeds": {"seed-0": {"fcn_score_official": {"per_pixel_a', "unreadable"),
    ('[1, 2]', "not a mapping"),
    ('{"seeds": {"seed-0": "fcn_score_official"}}', "seed-0"),
    ('{"seeds": {"seed-0": {"fcn_score_official": [0.6, 0.1, 0.2]}}}', "fcn_score_official"),
    ('{"seeds": {"seed-0": {"fcn_score_official": {"per_pixel_acc": "high"}}}}', "no number"),
    ('{"task": [1], "seeds": {}}', "task"),
    ('{"machine": "laptop", "seeds": {}}', "machine"),
    ('{"scale": 3, "seeds": {}}', "scale"),
])
def test_a_scores_file_of_the_wrong_shape_is_a_gap_with_its_reason(text, why, tmp_path):
    root = write_workspace(tmp_path)
    (root / "metrics" / "cityscapes-l1-cgan" / "scores.json").write_text(text)
    out = render(root)
    row = csv_row(out, "table1", "L1+cGAN")
    assert pd.isna(row.per_pixel_acc_mean) and why in row.gap
    assert why in (out / "table1.md").read_text()


# --- intervals from per-image scores (metrics/<experiment>/per_image/) ---------------------

ROAD, CAR = 0, 13


def official_frames(right: int) -> list[np.ndarray]:
    """4 frames of official (19, 19) counts: 100 road and 100 car pixels each, frame k
    has right + 5k of each class right (the rest confused with the other class)."""
    frames = []
    for k in range(4):
        m = np.zeros((19, 19), np.int64)
        ok = right + 5 * k
        m[ROAD, ROAD], m[ROAD, CAR], m[CAR, CAR], m[CAR, ROAD] = ok, 100 - ok, ok, 100 - ok
        frames.append(m)
    return frames


def write_per_image(root: Path, experiment: str, per_seed: list[list[np.ndarray]],
                    stale: bool = False) -> None:
    """scores.json whose numbers are segmentation.official_scores of the pooled frames
    (the scorer's arithmetic), and per_image/seed-<k>.npz with the frames' counts."""
    seeds = []
    for k, frames in enumerate(per_seed):
        s = official_scores(sum(frames))
        seeds.append(segmentation_dict(s["per_pixel_acc"] + (0.01 if stale else 0),
                                       s["per_class_acc"], s["class_iou"]))
        per_image.save(root / "metrics" / experiment / "per_image" / f"seed-{k}.npz",
                       ["a", "b", "c", "d"], {"fcn_score_official": per_image.confusion_counts(
                           frames, 19, official=True)})
    write(root / "metrics" / experiment / "scores.json", scores_file("fcn_score_official", seeds))


def test_identical_per_image_scores_are_within_noise_and_a_clear_gain_is_reproduced(tmp_path):
    root = write_workspace(tmp_path)
    same = [official_frames(60), official_frames(62)]
    write_per_image(root, "cityscapes-l1-cgan", same)
    write_per_image(root, "cityscapes-l1", same)
    write_per_image(root, "cityscapes-cgan", [official_frames(80), official_frames(82)])
    out = render(root)
    row = verdict(out, "l1cgan-beats-l1", "class_iou")
    # the same counts on both sides, the same draw: every replicate's difference is 0
    assert row.verdict == "within noise"
    assert (float(row.diff_lo), float(row.diff_hi)) == (0.0, 0.0)
    assert row.reason == "seeds paired by name (2); test images paired by name (4)"
    # cGAN gets 20 more pixels of 100 right on every frame of every seed: any resample
    # of seeds and frames keeps the difference positive
    gain = verdict(out, "cgan-beats-l1", "per_pixel_acc")
    assert gain.verdict == "reproduced" and float(gain.diff_lo) > 0
    assert float(gain["diff"]) == pytest.approx(0.20)  # (80 + 7.5) / 100 - (60 + 7.5) / 100
    l1 = csv_row(out, "table1", "L1")
    assert l1.per_pixel_acc_interval == "seeds and test images"
    # pooled per-pixel accuracy of seed 0 is 67.5 %, of seed 1 69.5 %; resampling frames
    # (57.5 % .. 77.5 % each) and seeds widens the interval beyond the seeds' span
    assert l1.per_pixel_acc_lo < 0.675 and l1.per_pixel_acc_hi > 0.695
    assert "- seeds and test images — L1, cGAN, L1+cGAN" in (out / "table1.md").read_text()


def test_per_image_scores_that_disagree_with_scores_json_are_not_resampled(tmp_path):
    root = write_workspace(tmp_path)
    write_per_image(root, "cityscapes-l1", [official_frames(60), official_frames(62)],
                    stale=True)
    l1 = csv_row(render(root), "table1", "L1")
    assert l1.per_pixel_acc_interval.startswith("seeds only (per-image scores of seed-0 "
                                                "disagree with scores.json (stale")
    # class IoU was written unchanged: its per-image scores agree and are resampled
    assert l1.class_iou_interval == "seeds and test images"
