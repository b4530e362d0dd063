"""The template of tables/README.md: how each number in the rendered tables was produced.

replication/results/tables.py (`readme`) fills it in: the scale marker, the file list, which
experiments have numbers, the segmenter calibration and the claims' verdict rule.
"""

README_TEMPLATE = """\
# Results tables ({scale})

Rendered by `replication tables` from `params.yaml`, `replication/results/paper_numbers.yaml` (the
paper's numbers, docs/protocols.md, docs/results.md) and `metrics/<experiment>/scores.json` — no number in these
files is typed by hand. {scored} of {total} experiments in params.yaml have numbers{missing}.
Plots, loss curves and image grids: [notebooks/results.html](../notebooks/results.html)
(source: [notebooks/results.ipynb](../notebooks/results.ipynb), `replication notebook`);
every table's loss curves on one chart per loss: [plots/index.html](../plots/index.html)
(`replication plots`).

Computed at {scale}, on (scores.json `machine` of each experiment):

{machines}

Floats differ in their low digits between CPU instruction sets (oneDNN picks other
kernels), thread counts and GPUs, and GAN training amplifies that: at smoke scale a rerun
with other instruction sets or another thread count moves scores from the first or second
decimal on. A rerun with the same instruction sets (the list above; a CPU model name such
as "AMD EPYC" alone does not tell them apart), thread count and torch repeats them bit
for bit.

{files}
- [claims.md](claims.md) ([csv](claims.csv), [spearman.csv](spearman.csv),
  [comparisons.csv](comparisons.csv)): the paper's orderings judged on our runs, rank
  correlations with the paper's numbers, and your experiments against their baselines.

## How each number was produced

- **Ours** = mean over the seeds listed in params.yaml [95 % interval]; `n` = seeds
  that produced a number (the CSVs also hold the sample standard deviation). The
  interval is a hierarchical bootstrap over seeds and test images (2000 resamples,
  percentile; docs/statistics.md): each table lists under it what its intervals account
  for — seeds and test images; test images only with one seed; seeds only for FID/KID
  and the colour histograms (one number per image set) or scores without per-image
  files. **Δ** = ours − paper (its interval is ours shifted by the paper's value). The
  paper reports single runs and notes large run-to-run variation (docs/results.md).
- **FCN-score (Tables 1-3)**, one confusion matrix pooled over all val frames (docs/protocols.md).
  `fcn_score_official` is the paper's protocol: the authors' FCN-8s, the original `gtFine`
  labelIds at 1024×2048, each generated photo upsampled to that size, and the official
  code's arithmetic with its quirks (a prediction of the FCN's 20th output counted as
  "road" of the next class, frames with a bicycle pixel predicted so dropped). The
  column `fcn_score_corrected` beside it scores the same predictions without the
  quirks (docs/protocols.md). Without those
  inputs the scorer uses `fcn_score_fallback`: a segmenter of our own and labels decoded
  from the colour label images by nearest palette colour — its numbers are comparable
  only with each other and with the ground-truth row scored the same way, not with the
  paper's values. Every row names the protocol and segmenter that produced it (rows
  mixing protocols are marked MIXED), and the number of frames.
- **Segmenter calibration**: the ground-truth row of Table 1 scores the real val photos
  with the same protocol; its difference from the paper's ground-truth row measures how
  far our segmenter and protocol are from the authors', independent of any generator
  (read a method row's Δ against the ground-truth row's Δ, not against zero).
  Ours: {calibration}
- **Table 6 (photo → labels)**: generated label maps decoded to the nearest Cityscapes
  label colour, same confusion-matrix scores.
- **Table 4** was a human (AMT) study and cannot be reproduced by a program: its table
  shows the paper's "% labelled real" next to our FID/KID on the same runs.
- **FID/KID** (not in the paper): pytorch-fid InceptionV3 pool3 features. With fewer than
  2048 images FID is biased, so every row states the image counts; KID (unbiased) is
  shown as the mean over seeds of each run's subset-mean KID.
- **PSNR / SSIM** (not in the paper): against the target image, RGB, data range 255,
  per image then averaged (scikit-image); they need no downloaded weights, so every task
  has a number on any machine. Per-pixel measures favour blurry averages (the reason the
  paper scores with an FCN and human studies instead): a sanity check, not a verdict.
- **Map pixel accuracy** (maps photo → map, not in the paper): the share of pixels whose
  colour is within a tolerance of the target's in every channel (replication/metrics/pixel.py).
- **Colour statistics (Fig. 7d)**: histogram intersection of generated vs real Lab
  colour distributions per channel, 1 Lab unit per bin.
- A gap "—" marks an experiment that was not run, a missing metrics file, or a metric
  that could not be computed (e.g. FID without Inception weights); each reason is stated
  once, under its table ("No number"), with the rows it concerns.
- **Your experiments** (entries of params.yaml that are no row of the paper, e.g. an
  ablation) have a row in every table of their task, right after the row of the
  experiment they are compared with: params.yaml `compare_to: <experiment>`, else the
  paper experiment of the same dataset and direction whose settings differ least (named
  in "Compared with"), or at the end of the task's first table without one. "Δ vs
  baseline" = ours − the baseline's ours [the interval of the paired difference] and the
  verdict of the claims' rule (higher / lower when the interval excludes zero, within
  noise, no verdict); all of them in claims.md and [comparisons.csv](comparisons.csv).
- **Test-time study** (`test_time_<dataset>_<direction>`, for the experiments whose
  params ask for it with `generate.modes` / `generate.samples`): the ways of running G at
  test time side by side — the paper's (dropout on, test-batch BatchNorm statistics),
  eval, dropout off, a larger test batch — each with its paired difference to the
  paper's mode, and the spread over K dropout draws with the output diversity
  (docs/test_time.md).

## Claims

{rule}
Rank agreement with the paper: Spearman's rho of our row means against the paper's
values per table and column; "n/a" with fewer than 3 rows.
"""
