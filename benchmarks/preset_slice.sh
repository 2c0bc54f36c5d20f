#!/usr/bin/env bash
# The study preset's wall time, before and after a change, on one slice of every experiment.
#
#   bash benchmarks/preset_slice.sh BEFORE_COMMIT [RECORDS_DIR] [SHARD]
#
# Trains shard SHARD (default 0/20) of the cpu preset -- a round-robin slice of
# every experiment, as a preset worker trains it -- once with BEFORE_COMMIT (a
# git worktree) and once with the checkout, each in a fresh directory seeded
# with the same calibration records, and prints both walls, their ratio, and
# whether every run did the same work (config.json) with the same results
# (summary.json within 1e-6 relative; benchmarks/slice_compare.py).
#
# The same work on both sides: against a commit from before study v2 (no
# experiments/study/presets.py), whose cpu preset was the first study's, the
# checkout trains those grids (benchmarks/preset_v1.py), not today's cpu preset.
#
# Calibration records: RECORDS_DIR's <experiment>/calibration*.json (e.g. a
# finished `experiments.figures --preset cpu` directory); without one, BEFORE
# calibrates first (untimed, into the scratch directory).
#
# The two sides run at the same time, each pinned to one core (cores 0 and 1),
# as the preset's two workers run, so a shared machine's load falls on both; on
# a 1-core machine they run one after the other. Uses the checkout's .venv.
# About 15 minutes for 0/20 of the first study's preset on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:?usage: preset_slice.sh BEFORE_COMMIT [RECORDS_DIR] [SHARD]}"
RECORDS="${2:-}"
SHARD="${3:-0/20}"
PY="$PWD/.venv/bin/python"
WORK="$(mktemp -d)"
trap 'git worktree remove --force "$WORK/before-tree" 2>/dev/null || true; rm -rf "$WORK"' EXIT
git worktree add --detach --force "$WORK/before-tree" "$BEFORE" >/dev/null
BEFORE_TREE="$WORK/before-tree"
if [ -f "$BEFORE_TREE/experiments/study/presets.py" ]; then
  AFTER_CMD=(-m experiments.figures --preset cpu --workdir "$WORK/after" --shard "$SHARD" --no-progress)
  BEFORE_RUNNER="experiments.study.runner"
else
  AFTER_CMD=(-m benchmarks.preset_v1 --workdir "$WORK/after" --shard "$SHARD")
  BEFORE_RUNNER="experiments.figures"
fi
BEFORE_CMD=(-m experiments.figures --preset cpu --workdir "$WORK/before" --shard "$SHARD" --no-progress)

if [ -z "$RECORDS" ] || ! ls "$RECORDS"/*/calibration*.json >/dev/null 2>&1; then
  RECORDS="$WORK/records"
  echo "calibrating with $BEFORE (untimed) into $RECORDS"
  (cd "$BEFORE_TREE" && PYTHONPATH="$BEFORE_TREE" "$PY" -c "
import sys
from $BEFORE_RUNNER import preset_members
preset_members('cpu', sys.argv[1], calibrate=True, progress=False)" "$RECORDS" \
      > "$WORK/calibrate.log" 2>&1)
fi
for side in before after; do
  for calibration in "$RECORDS"/*/calibration*.json; do
    experiment="$(basename "$(dirname "$calibration")")"
    mkdir -p "$WORK/$side/$experiment"
    cp "$calibration" "$WORK/$side/$experiment/"
  done
done

side() {  # side NAME CORE TREE ARGS...: trains one side, writes its wall to $WORK/NAME.wall
  local name="$1" core="$2" tree="$3"
  shift 3
  local pin=()
  [ -n "$core" ] && pin=(taskset -c "$core")
  local start end
  start=$(date +%s.%N)
  (cd "$tree" && PYTHONPATH="$tree" "${pin[@]}" "$PY" "$@" > "$WORK/$name.log" 2>&1) \
    || { echo "$name side failed; its log:"; tail -20 "$WORK/$name.log"; return 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc > "$WORK/$name.wall"
}
if [ "$(nproc)" -ge 2 ]; then
  side before 0 "$BEFORE_TREE" "${BEFORE_CMD[@]}" &
  BEFORE_PID=$!
  side after 1 "$PWD" "${AFTER_CMD[@]}" &
  AFTER_PID=$!
  wait "$BEFORE_PID" && wait "$AFTER_PID"
else
  side before "" "$BEFORE_TREE" "${BEFORE_CMD[@]}"
  side after "" "$PWD" "${AFTER_CMD[@]}"
fi
before_s=$(cat "$WORK/before.wall")
after_s=$(cat "$WORK/after.wall")
echo "machine: $(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) cores;" \
     "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before ($(git -C "$BEFORE_TREE" rev-parse --short HEAD)): shard $SHARD trained in $before_s s"
echo "after ($(git rev-parse --short HEAD)): shard $SHARD trained in $after_s s" \
     "($(echo "scale=2; $before_s / $after_s" | bc)x)"
"$PY" -m benchmarks.slice_compare "$WORK/before" "$WORK/after" || true
if [ -n "${KEEP:-}" ]; then  # KEEP=DIR: keep both sides' runs and logs (e.g. for profile_preset)
  mkdir -p "$KEEP" && cp -r "$WORK/before" "$WORK/after" "$WORK"/*.log "$KEEP"/
fi
