#!/usr/bin/env bash
# The study preset's wall time, before and after a change, on one slice of every experiment.
#
#   bash benchmarks/preset_slice.sh BEFORE_COMMIT [STUDY_DIR] [SHARD]
#
# Trains shard SHARD (default 0/20) of the cpu preset -- a slice of every
# experiment -- once with BEFORE_COMMIT (a git worktree) and once with the
# checkout, one after the other in the same way (one process, all cores), each in
# a fresh directory seeded with STUDY_DIR's calibration records (default
# runs/study, a finished `experiments.figures --preset cpu` run), and prints
# both walls and whether every run's summary (timing fields aside) is the same.
# Uses the checkout's .venv. About 2 x 10 minutes for 0/20 on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:?usage: preset_slice.sh BEFORE_COMMIT [STUDY_DIR] [SHARD]}"
STUDY="${2:-runs/study}"
SHARD="${3:-0/20}"
PY="$PWD/.venv/bin/python"
WORK="$(mktemp -d)"
trap 'git worktree remove --force "$WORK/before-tree" 2>/dev/null || true; rm -rf "$WORK"' EXIT
git worktree add --detach --force "$WORK/before-tree" "$BEFORE" >/dev/null
for side in before after; do
  mkdir -p "$WORK/$side"
  cp "$STUDY/preset.json" "$WORK/$side/"
  for calibration in "$STUDY"/*/calibration*.json; do
    experiment="$(basename "$(dirname "$calibration")")"
    mkdir -p "$WORK/$side/$experiment"
    cp "$calibration" "$WORK/$side/$experiment/"
  done
done
for side in before after; do
  tree="$PWD"; [ "$side" = before ] && tree="$WORK/before-tree"
  start=$(date +%s.%N)
  (cd "$tree" && "$PY" -m experiments.figures --preset cpu --workdir "$WORK/$side" \
      --shard "$SHARD" --no-progress > "$WORK/$side.log" 2>&1)
  end=$(date +%s.%N)
  echo "$side ($(git -C "$tree" rev-parse --short HEAD)): shard $SHARD trained in" \
       "$(echo "$end - $start" | bc) s"
done
"$PY" - "$WORK" <<'EOF'
import json, pathlib, sys
from regan_jax.walltime import TIMING_FIELDS
work = pathlib.Path(sys.argv[1])
same, differ = 0, []
for path in sorted((work / "before").glob("*/*/summary.json")):
    a = json.loads(path.read_text())
    b = json.loads((work / "after" / path.relative_to(work / "before")).read_text())
    for key in TIMING_FIELDS:
        a.pop(key, None), b.pop(key, None)
    same += a == b
    if a != b:
        differ.append(str(path.parent.relative_to(work / "before")))
print(f"runs: {same + len(differ)}; identical summaries: {same}; differ: {differ or 'none'}")
EOF
