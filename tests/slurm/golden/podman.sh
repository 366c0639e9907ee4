#!/bin/bash
# rlops batch script for RLExperiment team/cartpole (uid 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0).
# Rendered by rlops.backends.slurm.render_batch_script; every value below is quoted.
#SBATCH --job-name=rlops-cartpole-0f1e2d3c
#SBATCH --comment=rlops-uid=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
#SBATCH --output=/shared/rlops-runs/team/cartpole/slurm-%j.out
#SBATCH --chdir=/shared/rlops-runs/team/cartpole
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=1
#SBATCH --time=02:00:00
#SBATCH --signal=B:USR1@120
set -uo pipefail

RUN_DIR=/shared/rlops-runs/team/cartpole
SPEC="$RUN_DIR"/spec.yaml
MAX_REQUEUES=1
# This job runs attempt 1 of the experiment; each requeue is the next one.
REQUEUES=${SLURM_RESTART_COUNT:-0}
ATTEMPT=$(( 1 + REQUEUES ))
export RLOPS_RUN_DIR="$RUN_DIR" PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
unset RLOPS_PAUSE_AT_ITERATION
# The image runs under podman: on the host's network and IPC (Ray, the progress URL), as
# this job's user, with the job's RLOPS_/RAY_/SLURM_ variables, and the run directory,
# storage and custom code (RLOPS_PYTHONPATH) bound at their own paths. podman relays the
# USR1/TERM this script forwards to it; --init hands them on to the runtime.
BINDS=(/shared/rlops-runs "$RUN_DIR")
IFS=: read -ra CODE_PATHS <<< "${RLOPS_PYTHONPATH:-}"
for path in "${CODE_PATHS[@]}"; do [ -d "$path" ] && BINDS+=("$path"); done
RUN=(podman run --rm --init --network=host --ipc=host --workdir="$RUN_DIR"
  --env='RLOPS_*' --env='RAY_*' --env='SLURM_*' --env=PYTHONUNBUFFERED
  --label="rlops.dev/slurm-job=${SLURM_JOB_ID}")
# Killing `podman run` (the stop's grace period ran out) leaves its container running:
# whatever this job started goes when the script ends.
trap 'podman ps -q --filter "label=rlops.dev/slurm-job=${SLURM_JOB_ID}" \
  | xargs -r podman rm --force --time=5 >/dev/null 2>&1' EXIT
if [ "$(id -u)" -eq 0 ]; then RUN+=(--user=0:0); else RUN+=(--userns=keep-id); fi
for path in "${BINDS[@]}"; do RUN+=(--volume="$path:$path"); done
RUN+=(--shm-size=2g localhost/rlops:0.1.0)
PYTHON=(python)

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
  scontrol requeue "$SLURM_JOB_ID" && exit 0
fi
exit "$CODE"
