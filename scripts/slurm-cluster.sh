#!/usr/bin/env bash
# A real SLURM cluster on one machine: munged, slurmctld and one slurmd per node.
#
#   scripts/slurm-cluster.sh up [--nodes N] [--root DIR] [--cpus C] [--min-job-age S]
#                               [--netns | --no-netns] [--net-prefix P] [--subnet A.B.C]
#   scripts/slurm-cluster.sh down [--root DIR]
#   scripts/slurm-cluster.sh status [--root DIR]
#   scripts/slurm-cluster.sh ctld start|stop [--root DIR]       (restart the controller)
#   scripts/slurm-cluster.sh node start|kill NAME [--root DIR]  (a node boots or dies)
#
# Cluster `rlops-test`, default partition `debug`, nodes node1..nodeN. With more than one
# node (or --netns) each slurmd runs in its own network namespace <prefix>nodeI with
# address <subnet>.(10+I), joined to the host by a veth on the bridge <prefix>br, whose
# host side <subnet>.1 is where slurmctld listens: a job's processes live in their node's
# namespace, so Ray's head and workers talk over that network as on separate hosts. A
# single node without --netns is `localhost` on 127.0.0.1. Everything else (munge key and
# socket, slurm.conf, state, per-node spool, logs, pid files) lives under the state root,
# RLOPS_SLURM_ROOT or --root (default /tmp/rlops-slurm). Needs root (Debian's slurm-wlm
# and munge; scripts/setup.sh installs them).
#
# `up` is idempotent and prints `export SLURM_CONF=...` as its last line; `down` stops
# every daemon and every process left in the namespaces, then removes the namespaces,
# veths and the bridge.
set -euo pipefail

ROOT=${RLOPS_SLURM_ROOT:-/tmp/rlops-slurm}
NODES=1
CPUS=$(nproc)
MIN_JOB_AGE=3600
NETNS=auto
PREFIX=${RLOPS_SLURM_NET_PREFIX:-rlops-}
SUBNET=${RLOPS_SLURM_SUBNET:-10.217.0}

die() { echo "slurm-cluster: $*" >&2; exit 2; }

ACTION=${1:-}
[ $# -gt 0 ] && shift
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --cpus) CPUS=${2:?--cpus needs a number}; shift 2 ;;
    --min-job-age) MIN_JOB_AGE=${2:?--min-job-age needs seconds}; shift 2 ;;
    --netns) NETNS=yes; shift ;;
    --no-netns) NETNS=no; shift ;;
    --net-prefix) PREFIX=${2:?--net-prefix needs a name}; shift 2 ;;
    --subnet) SUBNET=${2:?--subnet needs A.B.C}; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || die "--nodes must be 1..99, got '$NODES'"
[[ "$CPUS" =~ ^[1-9][0-9]*$ ]] || die "--cpus must be a positive number, got '$CPUS'"
[[ "$MIN_JOB_AGE" =~ ^[0-9]+$ ]] || die "--min-job-age must be seconds, got '$MIN_JOB_AGE'"
[[ "$PREFIX" =~ ^[a-z0-9][a-z0-9-]{0,6}$ ]] || die "--net-prefix must be 1-7 of [a-z0-9-], got '$PREFIX'"
[[ "$SUBNET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "--subnet must be A.B.C, got '$SUBNET'"
if [ "$NETNS" = auto ]; then
  if [ "$NODES" -gt 1 ]; then NETNS=yes; else NETNS=no; fi
fi
ROOT=$(realpath -m "$ROOT")
CONF="$ROOT/slurm.conf"
STATE_FILE="$ROOT/cluster.env"
export SLURM_CONF="$CONF"

# --- helpers -----------------------------------------------------------------------------

pidfile() { echo "$ROOT/run/$1.pid"; }
alive() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

# spawn NAME ARGV...: a daemon in the foreground of its own session; its pid in run/NAME.pid.
spawn() {
  local name=$1; shift
  setsid "$@" >>"$ROOT/log/$name.stdout" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

stop_daemon() {
  local f pid i; f=$(pidfile "$1")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -TERM "$pid" 2>/dev/null; then
    for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds; fail early when a
# daemon this script started has exited.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout)) f
  until "$@" >/dev/null 2>&1; do
    for f in "$ROOT"/run/*.pid; do
      [ -f "$f" ] && ! kill -0 "$(cat "$f")" 2>/dev/null || continue
      f=$(basename "$f" .pid)
      echo "slurm-cluster: $f exited while waiting for $what:" >&2
      tail -n 5 "$ROOT/log/$f.stdout" >&2
      return 1
    done
    if [ $SECONDS -ge $deadline ]; then
      echo "slurm-cluster: timed out after ${timeout}s waiting for $what; logs in $ROOT/log" >&2
      return 1
    fi
    sleep 0.2
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

node_name() { if [ "$NETNS" = yes ]; then echo "node$1"; else echo localhost; fi; }
node_ns() { echo "${PREFIX}node$1"; }
node_addr() { if [ "$NETNS" = yes ]; then echo "$SUBNET.$((10 + $1))"; else echo 127.0.0.1; fi; }
node_index() {
  local i
  for ((i = 1; i <= NODES; i++)); do [ "$(node_name "$i")" = "$1" ] && { echo "$i"; return; }; done
  die "no node '$1' (nodes: $(for ((i = 1; i <= NODES; i++)); do printf '%s ' "$(node_name "$i")"; done))"
}

load_state() {
  [ -f "$STATE_FILE" ] || die "no cluster under $ROOT (run: $0 up --root $ROOT)"
  # shellcheck disable=SC1090
  source "$STATE_FILE"
}

controller_up() { scontrol ping 2>/dev/null | grep -q UP; }
nodes_idle() {
  local states
  states=$(sinfo -h -N -o '%T' 2>/dev/null) || return 1
  [ "$(grep -cE '^(idle|mixed|allocated)\*?$' <<<"$states")" -eq "$NODES" ]
}
healthy() {
  local i
  alive munged && alive slurmctld || return 1
  for ((i = 1; i <= NODES; i++)); do alive "slurmd-$(node_name "$i")" || return 1; done
  controller_up
}

# --- network -----------------------------------------------------------------------------

net_up() {
  local br="${PREFIX}br" i ns veth
  ip link show "$br" >/dev/null 2>&1 || ip link add "$br" type bridge
  ip addr replace "$SUBNET.1/24" dev "$br"
  ip link set "$br" up
  for ((i = 1; i <= NODES; i++)); do
    ns=$(node_ns "$i"); veth="${PREFIX}v$i"
    ip netns list | grep -qx "$ns\( .*\)\?" || ip netns add "$ns"
    if ! ip link show "$veth" >/dev/null 2>&1; then
      ip link add "$veth" type veth peer name eth0 netns "$ns"
    fi
    ip link set "$veth" master "$br" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr replace "$(node_addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    # A default route through the host side: programs that find their own address by
    # "connecting" a UDP socket (Ray does) see the node's address; nothing is forwarded.
    ip -n "$ns" route replace default via "$SUBNET.1"
  done
}

net_down() {
  local i ns pids
  for ((i = 1; i <= NODES; i++)); do
    ns=$(node_ns "$i")
    ip netns list | grep -q "^$ns\b" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    ip link delete "${PREFIX}v$i" 2>/dev/null || true
  done
  ip link delete "${PREFIX}br" 2>/dev/null || true
}

# --- slurm.conf ----------------------------------------------------------------------------

write_conf() {
  local memory ctld_addr i nodelist=""
  memory=$(awk '/MemTotal/ {m = int($2 / 1024 * 0.9); print (m < 512 ? 512 : m)}' /proc/meminfo)
  if [ "$NETNS" = yes ]; then ctld_addr="$SUBNET.1"; else ctld_addr=127.0.0.1; fi
  cat >"$CONF" <<EOF
ClusterName=rlops-test
SlurmctldHost=localhost($ctld_addr)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also the requeue delay (default 120 s): short for the tests.
AuthInfo=socket=$ROOT/munge/munge.sock,cred_expire=10
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool/%n
SlurmctldPidFile=$ROOT/state/slurmctld.pid
SlurmdPidFile=$ROOT/spool/slurmd-%n.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$ROOT/log/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
MinJobAge=$MIN_JOB_AGE
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
# A node that stops answering is DOWN (its jobs NODE_FAIL) after SlurmdTimeout.
SlurmdTimeout=$([ "$NETNS" = yes ] && echo 15 || echo 60)
MessageTimeout=10
EOF
  for ((i = 1; i <= NODES; i++)); do
    echo "NodeName=$(node_name "$i") NodeAddr=$(node_addr "$i") CPUs=$CPUS RealMemory=$memory" >>"$CONF"
    nodelist+="${nodelist:+,}$(node_name "$i")"
  done
  echo "PartitionName=debug Nodes=$nodelist Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO" >>"$CONF"
}

# --- daemons -------------------------------------------------------------------------------

start_ctld() {
  alive slurmctld && return 0
  # -i: ignore state files that cannot be recovered; a restart keeps jobs (no -c).
  spawn slurmctld /usr/sbin/slurmctld -D -i -f "$CONF"
  wait_until 30 "slurmctld to answer 'scontrol ping'" controller_up
}

start_node() {
  local i=$1 name; name=$(node_name "$i")
  alive "slurmd-$name" && return 0
  mkdir -p "$ROOT/spool/$name"
  if [ "$NETNS" = yes ]; then
    ip link set "${PREFIX}v$i" up
    # nsenter, not `ip netns exec`: the latter mounts a fresh /sys without the cgroup
    # hierarchy that slurmd needs.
    spawn "slurmd-$name" nsenter --net="/run/netns/$(node_ns "$i")" \
      /usr/sbin/slurmd -D -f "$CONF" -N "$name"
  else
    spawn "slurmd-$name" /usr/sbin/slurmd -D -f "$CONF" -N "$name"
  fi
}

# A node dies: its link goes down first (peers see silence, not closed connections, as
# with a real crash), then its slurmd and every process in its namespace are killed.
kill_node() {
  local i=$1 f pids
  [ "$NETNS" = yes ] || die "'node kill' needs a cluster with network namespaces"
  ip link set "${PREFIX}v$i" down
  f=$(pidfile "slurmd-$(node_name "$i")")
  pids=$(ip netns pids "$(node_ns "$i")" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  rm -f "$f"
}

cmd_up() {
  local wanted_nodes=$NODES wanted_netns=$NETNS i
  if [ -f "$STATE_FILE" ]; then
    (
      load_state
      if [ "$NODES" = "$wanted_nodes" ] && [ "$NETNS" = "$wanted_netns" ] && healthy; then
        exit 0
      fi
      cmd_down >/dev/null
      exit 1
    ) && { echo "export SLURM_CONF=$CONF"; return 0; }
  fi
  for d in munge state spool log run; do mkdir -p -m 0700 "$ROOT/$d"; done
  if [ ! -f "$ROOT/munge/munge.key" ]; then
    head -c 1024 /dev/urandom >"$ROOT/munge/munge.key"
    chmod 0400 "$ROOT/munge/munge.key"
  fi
  CTLD_PORT=$(free_port); SLURMD_PORT=$(free_port)
  cat >"$STATE_FILE" <<EOF
NODES=$NODES
NETNS=$NETNS
PREFIX=$PREFIX
SUBNET=$SUBNET
CTLD_PORT=$CTLD_PORT
SLURMD_PORT=$SLURMD_PORT
EOF
  [ "$NETNS" = yes ] && net_up
  write_conf
  spawn munged /usr/sbin/munged --foreground --force --key-file="$ROOT/munge/munge.key" \
    --socket="$ROOT/munge/munge.sock" --pid-file="$ROOT/munge/munged.pid" \
    --seed-file="$ROOT/munge/munged.seed" --log-file="$ROOT/log/munged.log"
  wait_until 15 "munged's socket" test -S "$ROOT/munge/munge.sock"
  start_ctld
  for ((i = 1; i <= NODES; i++)); do start_node "$i"; done
  wait_until 90 "$NODES node(s) to be idle (sinfo)" nodes_idle
  echo "export SLURM_CONF=$CONF"
}

cmd_down() {
  [ -f "$STATE_FILE" ] || return 0
  load_state
  local i
  if alive slurmctld; then timeout 15 scancel --full --user="$(id -un)" 2>/dev/null || true; fi
  stop_daemon slurmrestd
  for ((i = 1; i <= NODES; i++)); do stop_daemon "slurmd-$(node_name "$i")"; done
  stop_daemon slurmctld
  stop_daemon munged
  [ "$NETNS" = yes ] && net_down
  rm -f "$STATE_FILE"
}

cmd_status() {
  load_state
  local i
  for name in munged slurmctld; do
    printf '%-16s %s\n' "$name" "$(alive "$name" && echo running || echo stopped)"
  done
  for ((i = 1; i <= NODES; i++)); do
    printf '%-16s %s %s\n' "$(node_name "$i")" "$(node_addr "$i")" \
      "$(alive "slurmd-$(node_name "$i")" && echo running || echo stopped)"
  done
  sinfo -N 2>/dev/null || true
}

case "$ACTION" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  ctld)
    load_state
    case "${ARGS[0]:-}" in
      start) start_ctld ;;
      stop) stop_daemon slurmctld ;;
      *) die "usage: $0 ctld start|stop" ;;
    esac ;;
  node)
    load_state
    [ ${#ARGS[@]} -eq 2 ] || die "usage: $0 node start|kill NAME"
    i=$(node_index "${ARGS[1]}")
    case "${ARGS[0]}" in
      start) start_node "$i" ;;
      kill) kill_node "$i" ;;
      *) die "usage: $0 node start|kill NAME" ;;
    esac ;;
  *) die "usage: $0 up|down|status|ctld|node (see --help)" ;;
esac
