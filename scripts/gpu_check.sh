#!/usr/bin/env bash
# One-call GPU check of the fast training mode: CUDA correctness, then the benchmark table.
#
#   scripts/gpu_check.sh                 # on a GPU machine, from the repository root
#   scripts/gpu_check.sh --cpu-dry-run   # the same steps on the CPU at toy sizes (~3 min)
#
# Needs python3 with torch, numpy, pillow, pyyaml, tqdm, pytest (no dvc, dvclive,
# pytorch-fid: nothing here imports them; training logs no curves without dvclive).
# Steps, each under its own time limit, each run even if an earlier one failed:
#   env      the card, driver, torch
#   verify   `pytest -m gpu tests/test_gpu.py`: G and D on the GPU vs the CPU; fast vs
#            faithful step (fp32 and bf16 tolerances); CUDA graph vs eager (same dropout
#            draws); fast-mode L1 falls over 200 steps; exact resume of train() in fast
#            mode (the measured values are in verify.log). The dry run hides CUDA, so
#            those are skipped, and runs the file's CPU test instead: fast fp32 vs
#            faithful step on the CPU, which also catches other dropout draws
#            Also: the faithful step as a CUDA graph vs eager faithful, and seeds stepped
#            on their own streams in one process vs each alone (both bit for bit)
#   b1       256 px batch 1, default L1+cGAN model: faithful, faithful as a CUDA graph
#            (train.faithful_cuda_graph), fast and fast variants (which ingredient helps),
#            generation images/s, the 200-step loss curves of faithful and fast
#   runs     several runs sharing the card, 1/2/4/8 of them: in ONE process on their own
#            streams (train.seeds_per_process), fast and faithful-graph; as separate
#            processes, plain and under CUDA MPS (nvidia-cuda-mps-control -d, if present)
#   b10      256 px batch 10: faithful vs fast
#   plan     `replication plan` of the paper grid at the measured batch-1 rates, 1 and 8 GPUs
# Results go to $OUT (default benchmarks/gpu-check): one JSON and one log per step, and
# RESULTS-section.md, ready to paste into benchmarks/RESULTS.md. The step limits add up to
# 12 minutes (expected: about 7 on an H100). Exit status: the number of failed steps.
set -u
cd "$(dirname "$0")/.."

DRY=${GPU_CHECK_DRY_RUN:-0}
[ "${1:-}" = "--cpu-dry-run" ] && DRY=1
OUT=${OUT:-benchmarks/gpu-check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export REPLICATION_COMMIT=${REPLICATION_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}

if [ "$DRY" = 1 ]; then  # same steps, toy sizes: catches bugs without a GPU
  DEVICE=cpu; SIZE=32; B10=4; NETS=(--set generator.ngf=8 --set discriminator.ndf=8)
  TIMING=(--blocks 2 --block-seconds 0.2 --warmup 1); CONC=(--concurrent 1,2 --concurrent-seconds 1)
  COUNTS=1,2; RUNS_SECONDS=1
  CURVES=20
  VERIFY=(env CUDA_VISIBLE_DEVICES= "$PY" -m pytest -q -rA tests/test_gpu.py)
else
  DEVICE=cuda; SIZE=256; B10=10; NETS=()
  TIMING=(--blocks 5 --block-seconds 1.0 --warmup 3); CONC=(--concurrent 1,2,4 --concurrent-seconds 8)
  COUNTS=1,2,4,8; RUNS_SECONDS=8
  CURVES=200
  VERIFY=("$PY" -m pytest -q -rA -m gpu tests/test_gpu.py)
fi
BENCH=("$PY" -m replication.bench --device "$DEVICE" --image-size "$SIZE" "${NETS[@]}")

log() { echo "[$(date +%H:%M:%S)] gpu_check: $*"; }
FAILED=()
step() {  # step NAME SECONDS COMMAND...: run it, keep its log, go on whatever happens
  local name=$1 limit=$2; shift 2
  log "start $name (limit ${limit}s): $*"
  # SIGINT first: the bench then stops its concurrent workers; KILL 10 s later if need be
  timeout -s INT -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local status=${PIPESTATUS[0]}
  if [ "$status" = 0 ]; then log "ok $name"; else log "FAILED $name (exit $status)"; FAILED+=("$name"); fi
}

step env 30 "$PY" - "$DEVICE" <<'EOF'
import sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda)
if sys.argv[1] != "cuda":
    print("card: none, CPU dry run")
elif not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch")
else:
    p = torch.cuda.get_device_properties(0)
    print(f"card: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability "
          f"{p.major}.{p.minor}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/env.log"

step verify 120 "${VERIFY[@]}"
step b1 200 "${BENCH[@]}" --batch-size 1 "${TIMING[@]}" \
  --modes faithful,faithful-graph,fast,fast-eager,fast-fp32,fast-nchw --curves "$CURVES" \
  --json "$OUT/bench-b1.json" --markdown "$OUT/bench-b1.md"
RUNS=("${BENCH[@]}" --batch-size 1 --blocks 0 --no-gen --concurrent-seconds "$RUNS_SECONDS")
step runs-fast 150 "${RUNS[@]}" --in-process "$COUNTS" --concurrent "$COUNTS" \
  --concurrent-mode fast --json "$OUT/runs-fast.json" --markdown "$OUT/runs-fast.md"
step runs-faithful-graph 120 "${RUNS[@]}" --in-process "$COUNTS" \
  --concurrent-mode faithful-graph --json "$OUT/runs-faithful-graph.json" \
  --markdown "$OUT/runs-faithful-graph.md"
if command -v nvidia-cuda-mps-control >/dev/null && [ "$DRY" = 0 ]; then
  export CUDA_MPS_PIPE_DIRECTORY="$OUT/mps-pipe" CUDA_MPS_LOG_DIRECTORY="$OUT/mps-log"
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d && log "MPS daemon started"
  step runs-mps 120 "${RUNS[@]}" --concurrent "$COUNTS" --concurrent-mode fast \
    --json "$OUT/runs-mps.json" --markdown "$OUT/runs-mps.md"
  echo quit | nvidia-cuda-mps-control && log "MPS daemon stopped"
else
  log "no nvidia-cuda-mps-control here (or a dry run): MPS not measured"
fi
step b10 90 "${BENCH[@]}" --batch-size "$B10" "${TIMING[@]}" --modes faithful,fast \
  --json "$OUT/bench-b10.json" --markdown "$OUT/bench-b10.md"
step plan 60 bash -c 'for m in faithful faithful-graph fast; do
  r=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\"modes\"][sys.argv[2]][\"steps_per_second\"])" "$0" "$m") || continue
  echo "== $m: $r steps/s at batch 1"; "$1" -m replication plan --steps-per-second "$r" --gpus 8 | tail -3
done' "$OUT/bench-b1.json" "$PY"

{
  echo "## $(grep -m1 '^card: ' "$OUT/env.log" | cut -c7-) — $(date +%Y-%m-%d), commit $REPLICATION_COMMIT"
  echo
  echo "Command: \`OUT=$OUT scripts/gpu_check.sh${1:+ $1}\` (failed steps: ${FAILED[*]:-none})"
  echo
  echo "Equivalence checks (\`${VERIFY[*]}\`):"
  echo
  # pytest's summary: one line per test (-rA), then the counts
  SUMMARY=$(grep -E '^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) |^[0-9]+ (passed|failed|skipped|deselected|errors?)|^no tests ran' "$OUT/verify.log")
  [ -n "$SUMMARY" ] && echo "$SUMMARY" | sed 's/^/- /' || echo "- (no pytest summary: see $OUT/verify.log)"
  for md in "$OUT/bench-b1.md" "$OUT"/runs-*.md "$OUT/bench-b10.md"; do
    echo; [ -f "$md" ] && cat "$md" || echo "($md missing: its step failed)"
  done
  echo; echo "Projected grid hours (\`replication plan\`):"; echo; sed 's/^/    /' "$OUT/plan.log"
} > "$OUT/RESULTS-section.md"
log "wrote $OUT/RESULTS-section.md; failed steps: ${FAILED[*]:-none}"
exit "${#FAILED[@]}"
