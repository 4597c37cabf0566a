# Shared by the study scripts (sourced, not run). A study is a set of arms. An arm's learning rate is
# chosen on the validation split by a small grid at seed 1 (Hydra's basic sweeper, in the order given:
# the method's usual rate first); seeds 2 and 3 then run at the chosen rate, and the study's table groups
# the three seeds of each arm (the other grid points stay in it as one-seed rows, with their validation
# score). With 3 points (4 when an edge wins: `beyond`) a grid is exhaustive, so it replaces
# sweep=lr_search's TPE.
# FIRST_PASS=1 runs only each arm's first grid point (seed 1): a quick look at every arm before the rest.
# ARMS="lora full" runs only those arms: two launches with disjoint ARMS share a 2-core machine without one
# choosing a rate from the other's unfinished grid (launches of the same arms share jobs, not grids).
# Re-running a script skips every job that already completed (same sweep folder, same config) and
# continues unfinished ones from their last checkpoint (resume=auto): a stopped session loses nothing.
set -euo pipefail
OUT=${OUT:-outputs/studies}                   # run folders (git-ignored); the tables go to results/<study>/
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one core per study: two studies share a 2-core machine
FIRST_PASS=${FIRST_PASS:-0}
ARMS=${ARMS:-}

train() {  # TABLE_ONLY=1: runs nothing. A sweep with a job that did not complete (failed, or held by
  # another launch of the study) does not stop the study: its other sweeps go on, and the table lists it.
  [[ ${TABLE_ONLY:-0} == 1 ]] && return
  python -m research.train --multirun "$@" trainer.enable_progress_bar=false resume=auto ||
    echo "study $STUDY: a sweep ended with jobs not completed (see the table's last section); going on" >&2
}

completed() {  # completed <run folder>: its run.json says so
  python -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["status"] != "completed")' "$1/run.json" 2>/dev/null
}

skip() { [[ ${TABLE_ONLY:-0} == 1 ]] || completed "$1"; }  # skip <run folder>: done, or only tables asked for

best() {  # best <folder> [--key KEY]: the best run there by the validation metric
  python -m research.compare.best "$1" --metric "$SELECT" --direction "$DIRECTION" "${@:2}"
}

# beyond <grid> <best>: when the best rate is the grid's highest (lowest), the next rate above (below) it
# on the 1-3-10 ladder, else nothing. The grid's edge is then not taken for an optimum unseen: the search
# goes one half-decade further, once (the point beyond is off the grid, so it is never extended again).
beyond() {
  python - "$1" "$2" <<'PY'
import sys
grid, best = sorted(float(v) for v in sys.argv[1].split(",")), float(sys.argv[2])
ladder = sorted(m * 10.0**e for e in range(-8, 2) for m in (1, 3))
if len(grid) > 1 and best == grid[-1]:
    print(f"{min(v for v in ladder if v > 1.5 * best):g}")
elif len(grid) > 1 and best == grid[0]:
    print(f"{max(v for v in ladder if v < best / 1.5):g}")
PY
}

selected() { [[ -z $ARMS || " $ARMS " == *" $1 "* ]]; }  # selected <arm>: in ARMS, or ARMS unset

# arm <arm> <lr grid, usual rate first> <overrides...>: called from the study's `arms` function once per
# phase (run_arms): PHASE=search runs the grid (and the rate beyond its edge when the edge wins), PHASE=seeds
# the other seeds at the chosen rate. Every arm's search runs before any arm's seeds, so an interrupted study
# has looked at every arm.
arm() {
  [[ ${TABLE_ONLY:-0} == 1 ]] && return
  selected "$1" || return 0
  local name=$1 grid=$2
  shift 2
  local search="$OUT/$STUDY/$name/lr_search"
  if [[ $PHASE == search ]]; then
    [[ $FIRST_PASS == 1 ]] && grid=${grid%%,*}
    train method.lr="$grid" seed=1 +optimized_metric="$SELECT" hydra.sweep.dir="$search" "${BASE[@]}" "$@"
    local chosen next
    chosen=$(chosen_rate "$name" "$search") || return 0
    next=$(beyond "$grid" "$chosen")
    [[ -z $next ]] || train method.lr="$next" seed=1 +optimized_metric="$SELECT" hydra.sweep.dir="$search" \
      "${BASE[@]}" "$@"
  elif [[ $FIRST_PASS != 1 ]]; then
    local chosen
    chosen=$(chosen_rate "$name" "$search") || return 0
    train method.lr="$chosen" seed=2,3 +optimized_metric="$SELECT" hydra.sweep.dir="$OUT/$STUDY/$name/seeds" \
      "${BASE[@]}" "$@"
  fi
}

# chosen_rate <arm> <search folder>: the best rate of the arm's search; an arm whose every search run failed
# is reported and left there (its runs' errors are in the study's table), and the other arms go on.
chosen_rate() {
  best "$2" --key method.lr || { echo "arm $1: no completed run in its search: no seeds" >&2; return 1; }
}

run_arms() {  # the study's `arms`, searches first
  PHASE=search arms
  PHASE=seeds arms
}

# fixed <arm> <overrides...>: seeds 1, 2, 3 (FIRST_PASS=1: seed 1) at the rate the overrides give.
fixed() {
  local name=$1
  shift
  [[ $FIRST_PASS == 1 ]] && set -- "$@" seed=1
  train sweep=seeds hydra.sweep.dir="$OUT/$STUDY/$name" "${BASE[@]}" "$@"
}

# table [--metric KEY] [--also KEYS]: comparison.{md,csv,html} of every run of the study in results/$STUDY.
# TABLE_ONLY=1 bash <study>.sh writes the tables of what has run so far, and runs nothing.
table() {
  python -m research.compare "$OUT/$STUDY" --out "results/$STUDY" "$@"
}

# Every invocation, finished or stopped, appends its machine, wall and CPU time to results/$STUDY/invocations.md.
STARTED=$SECONDS
invocation() {
  local status=$? stat
  read -ra stat </proc/$$/stat  # fields 16 and 17: CPU time of the waited-for child processes, in ticks
  mkdir -p "results/$STUDY"
  printf -- '- %s: `%s` (FIRST_PASS=%s TABLE_ONLY=%s), exit %s, on %s with %s cores: %d s wall, %d s CPU\n' \
    "$(date -u +%FT%TZ)" "$0" "$FIRST_PASS" "${TABLE_ONLY:-0}" "$status" "$(uname -m)" \
    "$(getconf _NPROCESSORS_ONLN)" $((SECONDS - STARTED)) $(((stat[15] + stat[16]) / $(getconf CLK_TCK))) \
    >>"results/$STUDY/invocations.md"
}
trap invocation EXIT
