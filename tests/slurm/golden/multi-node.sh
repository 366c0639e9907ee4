#!/bin/bash
# rlops batch script for RLExperiment team/cartpole (uid 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0).
# Rendered by rlops.backends.slurm.render_batch_script; every value below is quoted.
#SBATCH --job-name=rlops-cartpole-0f1e2d3c
#SBATCH --comment=rlops-uid=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
#SBATCH --output=/shared/rlops-runs/team/cartpole/slurm-%j.out
#SBATCH --chdir=/shared/rlops-runs/team/cartpole
#SBATCH --open-mode=append
#SBATCH --requeue
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=36
#SBATCH --mem=65536M
#SBATCH --partition=standard
#SBATCH --account=rl-project
#SBATCH --qos=high
#SBATCH --time=1-00:00:00
#SBATCH --signal=B:USR1@120
#SBATCH --exclusive
#SBATCH --mail-type=END
set -uo pipefail

RUN_DIR=/shared/rlops-runs/team/cartpole
SPEC="$RUN_DIR"/spec.yaml
MAX_REQUEUES=0
# This job runs attempt 1 of the experiment; each requeue is the next one.
REQUEUES=${SLURM_RESTART_COUNT:-0}
ATTEMPT=$(( 1 + REQUEUES ))
export RLOPS_RUN_DIR="$RUN_DIR" PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0
unset RLOPS_PAUSE_AT_ITERATION
RUN=()
PYTHON=(/opt/rlops/bin/python)

echo "rlops: job ${SLURM_JOB_ID} attempt ${ATTEMPT} on $(hostname) at $(date -Is)"
# Multi-node: a Ray head on the first node, workers on the rest, on per-job ports and a
# short node-local temp dir so that jobs sharing a node never clash. No Ray client server:
# the runtime is a driver on the head node, and the port needs `ray[client]`.
RAY_TMP="/tmp/rlops-${SLURM_JOB_ID}"
PORT=$(( 20000 + (SLURM_JOB_ID % 400) * 100 ))
NODES=($(scontrol show hostnames "$SLURM_JOB_NODELIST"))
HEAD=${NODES[0]}
# Each Ray node binds to its SLURM NodeAddr (an address, or a name resolved here): the
# address other nodes reach it at, which `hostname` need not resolve to.
node_ip() {
  local addr
  addr=$(scontrol show node "$1" | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p')
  if [[ "$addr" =~ ^[0-9.]+$ ]]; then echo "$addr"; else getent ahostsv4 "$addr" | awk '{print $1; exit}'; fi
}
HEAD_IP=$(node_ip "$HEAD")
# Ray's token authentication with a token of this job's own: every srun step and the
# runtime inherit it, nothing else on the network can join or submit.
export RAY_AUTH_MODE=token
RAY_AUTH_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export RAY_AUTH_TOKEN
RAY_ADDRESS="${HEAD_IP}:${PORT}"
RAY_COMMON=(--block --num-gpus="${SLURM_GPUS_ON_NODE:-0}"
  --min-worker-port=$(( PORT + 10 )) --max-worker-port=$(( PORT + 99 )))
# The driver (this script's runtime) runs on the head and keeps its CPUs there.
HEAD_CPUS=$(( ${SLURM_CPUS_PER_TASK:-1} - 1 ))
(( HEAD_CPUS < 0 )) && HEAD_CPUS=0
RAY_START=$(date +%s.%N)
srun --nodes=1 --ntasks=1 -w "$HEAD" "${RUN[@]}" "${PYTHON[@]}" -m ray.scripts.scripts start --head \
  --node-ip-address="$HEAD_IP" --port="$PORT" --node-manager-port=$(( PORT + 1 )) \
  --object-manager-port=$(( PORT + 2 )) --dashboard-agent-grpc-port=$(( PORT + 4 )) --metrics-export-port=$(( PORT + 5 )) \
  --dashboard-agent-listen-port=$(( PORT + 6 )) --runtime-env-agent-port=$(( PORT + 7 )) \
  --include-dashboard=false --temp-dir="$RAY_TMP" --num-cpus="$HEAD_CPUS" "${RAY_COMMON[@]}" &
HEAD_PID=$!
for ((i = 0; i < 120; i++)); do
  "${RUN[@]}" "${PYTHON[@]}" -m ray.scripts.scripts health-check --address "$RAY_ADDRESS" \
    >/dev/null 2>&1 && break
  kill -0 "$HEAD_PID" 2>/dev/null || { echo "rlops: the Ray head exited" >&2; exit 1; }
  sleep 1
done
# A worker whose raylet did not register in time (Ray waits 30 s; a loaded node can take
# longer) exits: it is started again, up to twice, while the others wait.
declare -A WORKERS
start_worker() {
  srun --nodes=1 --ntasks=1 -w "$1" "${RUN[@]}" "${PYTHON[@]}" -m ray.scripts.scripts start \
    --address="$RAY_ADDRESS" --node-ip-address="$(node_ip "$1")" \
    --node-manager-port=$(( PORT + 1 )) \
    --object-manager-port=$(( PORT + 2 )) --dashboard-agent-grpc-port=$(( PORT + 4 )) \
    --metrics-export-port=$(( PORT + 5 )) --dashboard-agent-listen-port=$(( PORT + 6 )) \
    --runtime-env-agent-port=$(( PORT + 7 )) --num-cpus="${SLURM_CPUS_PER_TASK:-1}" \
    "${RAY_COMMON[@]}" &
  WORKERS[$1]=$!
}
for node in "${NODES[@]:1}"; do start_worker "$node"; done
# Ready: every node of the allocation registered with the head (the runtime's ray.init
# needs no more); the time from here to there is the Ray start-up cost of this job.
for ((try = 0; try < 3; try++)); do
  READY=$("${RUN[@]}" "${PYTHON[@]}" -c "
import sys, time, ray
ray.init(address=sys.argv[1], logging_level='error')
deadline = time.monotonic() + 60
while (live := sum(n['Alive'] for n in ray.nodes())) < int(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.5)
print(live)" "$RAY_ADDRESS" "${SLURM_JOB_NUM_NODES}" 2>/dev/null | tail -n 1)
  [ "${READY:-0}" -ge "${SLURM_JOB_NUM_NODES}" ] && break
  for node in "${NODES[@]:1}"; do
    if ! kill -0 "${WORKERS[$node]}" 2>/dev/null; then
      echo "rlops: the Ray worker on ${node} exited; starting it again" >&2
      start_worker "$node"
    fi
  done
done
if [ "${READY:-0}" -lt "${SLURM_JOB_NUM_NODES}" ]; then
  echo "rlops: only ${READY:-0} of ${SLURM_JOB_NUM_NODES} Ray nodes joined" >&2
  exit 1
fi
echo "rlops: Ray cluster of ${READY:-0}/${SLURM_JOB_NUM_NODES} nodes ready in $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $RAY_START}") s"
RUNTIME_ARGS=(--ray-address "$RAY_ADDRESS")

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
