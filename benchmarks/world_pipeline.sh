#!/usr/bin/env bash
# Reproduces the world-model figures in docs/BENCHMARKS.md (issue 4) on this CPU.
#   bash benchmarks/world_pipeline.sh [DATA_ROOT] [RUNS_ROOT]
# Datasets: worldjepa collect env=<task> episodes=150 workers=2 out=DATA_ROOT/<task>
set -euo pipefail
DATA=${1:-data}
RUNS=${2:-runs}
PRE_STEPS=${PRE_STEPS:-400}
WM_STEPS=${WM_STEPS:-600}        # docs/BENCHMARKS.md: 600 for reach, 300 for tworoom and push (time)
ABL_STEPS=${ABL_STEPS:-150}
mkdir -p "$RUNS"
t() { local s=$(date +%s); "$@"; echo "wall_s $(( $(date +%s) - s )) :: $*" >> "$RUNS/timings.txt"; }
for task in reach tworoom push; do
  t worldjepa pretrain env=$task data=$DATA/$task run_dir=$RUNS/pretrain_$task train.steps=$PRE_STEPS train.progress=false > "$RUNS/pretrain_$task.log" 2>&1
done
for task in reach tworoom push; do
  t worldjepa train env=$task data=$DATA/$task encoder=$RUNS/pretrain_$task/final run_dir=$RUNS/world_$task train.steps=$WM_STEPS train.progress=false > "$RUNS/world_$task.log" 2>&1
done
# ablations on reach: K and recipe
for K in 1 4 16 0; do
  t worldjepa train env=reach data=$DATA/reach encoder=$RUNS/pretrain_reach/final run_dir=$RUNS/abl_reach_K$K predictor.num_state_tokens=$K train.steps=$ABL_STEPS train.warmup=20 train.progress=false > "$RUNS/abl_reach_K$K.log" 2>&1
done
t worldjepa train env=reach data=$DATA/reach encoder=scratch objective.recipe=joint objective.batch_size=16 run_dir=$RUNS/abl_reach_joint train.steps=$ABL_STEPS train.warmup=20 train.progress=false > "$RUNS/abl_reach_joint.log" 2>&1
echo done >> "$RUNS/timings.txt"
