#!/usr/bin/env bash
# One device call (at most 9 minutes) that decides how to fuse runs (issue 22).
#
#   scripts/gpu_check.sh                 # on a GPU machine, from the repository root
#   scripts/gpu_check.sh --cpu-dry-run   # the same steps on the CPU at toy sizes (~2 min)
#
# Needs python3 with torch, numpy, pillow, pyyaml, tqdm, pytest (no dvc, dvclive,
# pytorch-fid). Every measurement is appended to $OUT/measurements.jsonl as ONE JSON LINE
# the moment it is made, and every step's output is tee'd to $OUT/<step>.log as it goes:
# a step cut off by its time limit (or the whole call cut off) loses nothing already
# measured. Steps, most decisive first, each run even if an earlier one failed, each
# within its own limit and within the call's budget (BUDGET_S, default 520 s; a step
# that cannot get 20 s is skipped and says so):
#   env       the card, driver, torch
#   fused     aggregate steps/s of N = 1 2 3 6 12 runs fused into one step (train.fuse,
#             grouped convolutions), fast mode, 256 px batch 1; then N = 1 3 in faithful
#             mode as one CUDA graph (faithful-graph)
#   adam      one Adam step over G's 54M parameters: fused vs foreach vs the flat bf16
#             Adam (flat_adam.py), eager and compiled: ms and GB/s
#   b1        256 px batch 1 (alternating blocks): faithful, faithful-graph, fast
#   verify    `pytest -m gpu tests/e2e/test_gpu.py`: the faithful graph bit-equal to eager
#             faithful under cudnn.deterministic, fused vs separate runs, the fused graph
#             vs the fused step eager, per-run generators of interleaved graphs, and the
#             earlier checks (fast vs faithful, graph vs eager, resume)
#   branches  N separate models as parallel streams in ONE graph (design b of the issue),
#             only where $FUSION_PROBE names a copy of ../shared/tools/fusion-probe
#             (the measurement tool; run, never copied into the project): its
#             gpu_decide.py --only branches
#   plan      `replication plan --fuse experiments` of the paper grid at the measured rates
# Results: $OUT (default benchmarks/gpu-check): measurements.jsonl, one log per step, the
# bench JSON files, and RESULTS-section.md to paste into benchmarks/RESULTS.md.
# Exit status: the number of failed (or skipped) steps.
set -u
cd "$(dirname "$0")/.."

DRY=${GPU_CHECK_DRY_RUN:-0}
[ "${1:-}" = "--cpu-dry-run" ] && DRY=1
OUT=${OUT:-benchmarks/gpu-check}
PY=${PYTHON:-python3}
BUDGET_S=${BUDGET_S:-520}
mkdir -p "$OUT"
LINES="$OUT/measurements.jsonl"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export REPLICATION_COMMIT=${REPLICATION_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}

if [ "$DRY" = 1 ]; then  # same steps, toy sizes: catches bugs without a GPU
  DEVICE=cpu; SIZE=32; NETS=(--set generator.ngf=8 --set discriminator.ndf=8)
  NS=1,2,3; NS_FAITHFUL=1,2; SECONDS_PER=0.5; TIMING=(--blocks 2 --block-seconds 0.2 --warmup 1)
  VERIFY=(env CUDA_VISIBLE_DEVICES= "$PY" -m pytest -q -rA tests/e2e/test_gpu.py)
else
  DEVICE=cuda; SIZE=256; NETS=()
  NS=1,2,3,6,12; NS_FAITHFUL=1,3; SECONDS_PER=3; TIMING=(--blocks 3 --block-seconds 1.0 --warmup 3)
  VERIFY=("$PY" -m pytest -q -rA -m gpu tests/e2e/test_gpu.py)
fi
BENCH=("$PY" -m replication.grid.bench.measure --device "$DEVICE" --image-size "$SIZE" --batch-size 1
       "${NETS[@]}" --jsonl "$LINES")

log() { echo "[$(date +%H:%M:%S)] gpu_check: $*"; }
FAILED=()
step() {  # step NAME SECONDS COMMAND...: run it within its limit and the budget, keep its log
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET_S - SECONDS))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -lt 20 ]; then
    log "SKIPPED $name: ${left}s of the budget left"; FAILED+=("$name(skipped)")
    echo "{\"step\": \"$name\", \"skipped\": \"budget\"}" >> "$LINES"; return
  fi
  log "start $name (limit ${limit}s): $*"
  # SIGINT first (Python unwinds, files close), KILL 10 s later if need be
  timeout -s INT -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local status=${PIPESTATUS[0]}
  echo "{\"step\": \"$name\", \"exit\": $status, \"seconds_used\": $SECONDS}" >> "$LINES"
  if [ "$status" = 0 ]; then log "ok $name"; else log "FAILED $name (exit $status)"; FAILED+=("$name"); fi
}

step env 20 "$PY" - "$DEVICE" <<'EOF'
import sys, torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda)
if sys.argv[1] != "cuda":
    print("card: none, CPU dry run")
elif not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch")
else:
    p = torch.cuda.get_device_properties(0)
    print(f"card: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability "
          f"{p.major}.{p.minor}, cudnn {torch.backends.cudnn.version()}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$OUT/env.log"

step fused 150 "${BENCH[@]}" --blocks 0 --no-gen --fused "$NS" --concurrent-mode fast \
  --concurrent-seconds "$SECONDS_PER" --json "$OUT/fused.json" --markdown "$OUT/fused.md"
step fused-faithful 70 "${BENCH[@]}" --blocks 0 --no-gen --fused "$NS_FAITHFUL" \
  --concurrent-mode faithful-graph --concurrent-seconds "$SECONDS_PER" \
  --json "$OUT/fused-faithful.json" --markdown "$OUT/fused-faithful.md"
step adam 60 "${BENCH[@]}" --blocks 0 --no-gen --adam --concurrent-seconds 2 \
  --json "$OUT/adam.json" --markdown "$OUT/adam.md"
step b1 90 "${BENCH[@]}" "${TIMING[@]}" --no-gen --modes faithful,faithful-graph,fast \
  --json "$OUT/bench-b1.json" --markdown "$OUT/bench-b1.md"
step verify 110 "${VERIFY[@]}"
if [ -n "${FUSION_PROBE:-}" ] && [ -f "$FUSION_PROBE/gpu_decide.py" ] && [ "$DRY" = 0 ]; then
  step branches 60 env REPO=. OUT="$OUT" "$PY" "$FUSION_PROBE/gpu_decide.py" --only branches,grouped --ns 1,3,6
else
  log "branches not measured: FUSION_PROBE unset (or a dry run)"
fi
step plan 20 "$PY" - "$OUT/bench-b1.json" "$OUT/fused.json" <<'EOF'
# the paper grid at the measured rates: fast batch 1, and the fused groups' aggregate rates
import json, subprocess, sys
fused = json.load(open(sys.argv[2])).get("fused", [])
rates = [f"--fused-rate={r['runs']}={r['aggregate_steps_per_second']:.1f}"
         for r in fused if "aggregate_steps_per_second" in r]
for fuse in ("off", "experiments"):
    print(f"== --fuse {fuse}", flush=True)
    out = subprocess.run([sys.executable, "-m", "replication", "plan", "--mode", "fast",
                          "--fuse", fuse, "--bench", sys.argv[1], *rates],
                         capture_output=True, text=True)
    print("\n".join((out.stdout + out.stderr).splitlines()[-16:]), flush=True)
EOF

{
  echo "## $(grep -m1 '^card: ' "$OUT/env.log" | cut -c7-) — $(date +%Y-%m-%d), commit $REPLICATION_COMMIT"
  echo
  echo "Command: \`OUT=$OUT scripts/gpu_check.sh${1:+ $1}\` (failed or skipped steps: ${FAILED[*]:-none}; ${SECONDS} s)"
  echo
  echo "Equivalence checks (\`${VERIFY[*]}\`):"
  echo
  SUMMARY=$(grep -E '^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) |^[0-9]+ (passed|failed|skipped|deselected|errors?)|^no tests ran' "$OUT/verify.log" 2>/dev/null)
  [ -n "$SUMMARY" ] && echo "$SUMMARY" | sed 's/^/- /' || echo "- (no pytest summary: see $OUT/verify.log)"
  for md in "$OUT/fused.md" "$OUT/fused-faithful.md" "$OUT/adam.md" "$OUT/bench-b1.md"; do
    echo; [ -f "$md" ] && cat "$md" || echo "($md missing: its step failed or was skipped)"
  done
  echo; echo "Projected grid hours (\`replication plan --mode fast --fuse experiments\`):"; echo
  sed 's/^/    /' "$OUT/plan.log" 2>/dev/null
} > "$OUT/RESULTS-section.md"
log "wrote $OUT/RESULTS-section.md and $LINES; failed or skipped steps: ${FAILED[*]:-none}"
exit "${#FAILED[@]}"
