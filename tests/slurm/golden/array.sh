#!/bin/bash
# rlops array script: 3 trial(s) with the same batch directives, one array task each.
# Rendered by rlops.backends.slurm.render_array_script; every value below is quoted.
#SBATCH --job-name=rlops-array-b9062ba0480e
#SBATCH --comment=rlops-array=b9062ba0480e
#SBATCH --output=/shared/rlops-runs/lr/trials/.slurm-arrays/rlops-array-b9062ba0480e/%a/slurm-%A_%a.out
#SBATCH --chdir=/shared/rlops-runs/lr/trials/.slurm-arrays/rlops-array-b9062ba0480e
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH --partition=debug
#SBATCH --time=00:30:00
#SBATCH --signal=B:USR1@120
#SBATCH --array=0-2
set -uo pipefail

# Task i trains TRIALS[i] in RUN_DIRS[i], as attempt FIRST_ATTEMPTS[i] (each requeue of the
# task is the next attempt), and pauses itself after iteration PAUSE_ATS[i] (0: never).
# SLURM writes task i's output through the link <chdir>/i to its run directory:
# slurm-<array job>_<task>.out lands next to the trial's files.
TRIALS=(lr-0 lr-1 lr-2)
RUN_DIRS=(
  /shared/rlops-runs/lr/trials/lr-0
  /shared/rlops-runs/lr/trials/lr-1
  /shared/rlops-runs/lr/trials/lr-2
)
FIRST_ATTEMPTS=(1 2 1)
PAUSE_ATS=(0 0 0)
TASK=${SLURM_ARRAY_TASK_ID:?rlops: this script runs as a job array task}
RUN_DIR=${RUN_DIRS[$TASK]}
SPEC="$RUN_DIR"/spec.yaml
cd "$RUN_DIR" || exit 1
MAX_REQUEUES=2
REQUEUES=${SLURM_RESTART_COUNT:-0}
ATTEMPT=$(( FIRST_ATTEMPTS[TASK] + REQUEUES ))
export RLOPS_RUN_DIR="$RUN_DIR" PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
if (( PAUSE_ATS[TASK] > 0 )); then
  export RLOPS_PAUSE_AT_ITERATION=${PAUSE_ATS[$TASK]}
else
  unset RLOPS_PAUSE_AT_ITERATION
fi
echo "rlops: array task ${SLURM_ARRAY_JOB_ID}_${TASK} trains ${TRIALS[$TASK]}"
RUN=()
PYTHON=(/opt/rlops/bin/python)

echo "rlops: job ${SLURM_JOB_ID} attempt ${ATTEMPT} on $(hostname) at $(date -Is)"
RUNTIME_ARGS=()

# SLURM sends USR1 (--signal=B:USR1@...) to this shell before the time limit: forward it so
# that the runtime checkpoints and exits 75, then requeue this job to resume from there.
# A stop or pause is TERM to this shell alone (`scancel --batch --signal=TERM`): forwarded
# the same way, so the runtime ends its iteration and checkpoints while Ray still runs; a
# runtime that has not exited 300 s later is killed.
REQUEUE_ASKED=0
WATCHDOG=
forward() { REQUEUE_ASKED=$1; kill -"$2" "$RUNTIME_PID" 2>/dev/null; }
stop() {
  forward 0 TERM
  if [ -z "$WATCHDOG" ]; then
    { sleep 300; kill -KILL "$RUNTIME_PID"; } </dev/null >/dev/null 2>&1 &
    WATCHDOG=$!
  fi
}
trap 'forward 1 USR1' USR1
trap stop TERM

"${RUN[@]}" "${PYTHON[@]}" -m rlops.runtime --spec "$SPEC" --run-dir "$RUN_DIR" \
  --attempt "$ATTEMPT" "${RUNTIME_ARGS[@]}" &
RUNTIME_PID=$!
CODE=0
while kill -0 "$RUNTIME_PID" 2>/dev/null; do
  wait "$RUNTIME_PID"
  CODE=$?
done
wait "$RUNTIME_PID" 2>/dev/null
LAST=$?
[ "$LAST" -ne 127 ] && CODE=$LAST
[ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null
echo "rlops: runtime exited ${CODE} (attempt ${ATTEMPT}) at $(date -Is)"

# 75: checkpointed. 138 (USR1's default action): signalled before the runtime could listen
# (while Ray started); the next attempt resumes from the latest checkpoint either way.
if { [ "$CODE" -eq 75 ] || [ "$CODE" -eq 138 ]; } && [ "$REQUEUE_ASKED" -eq 1 ] \
  && [ "$REQUEUES" -lt "$MAX_REQUEUES" ]; then
  echo "rlops: requeueing for attempt $(( ATTEMPT + 1 )) (requeue $(( REQUEUES + 1 )) of ${MAX_REQUEUES})"
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" && exit 0
fi
exit "$CODE"
