#!/usr/bin/env bash
# Data-parallel DCGAN training with MindSpore's msrun: one process per device, on one or more nodes.
#
#   scripts/run_distributed.sh DEVICES_PER_NODE [dcgan_ms.train flags...]
#
# Environment (multi-node): NODES (default 1), NODE_RANK (this node, 0..NODES-1, default 0),
# MASTER_ADDR (address of node 0; required when NODES > 1), MASTER_PORT (default 8118),
# LOG_DIR (msrun's per-worker logs, default runs/msrun_logs). Run the same command on every node.
# Relative paths (LOG_DIR, --output_dir, --data_root, --resume) are taken from the folder it is run in.
# --batch_size is per device: the global batch is batch_size x DEVICES_PER_NODE x NODES.
#
# Ctrl-C (or SIGTERM, or SIGHUP when the terminal or ssh session closes): the workers finish their step, save and exit; this script
# exits 130. A second Ctrl-C aborts at once (msrun kills the workers; the last checkpoint is kept).
# msrun alone would kill the workers at the first Ctrl-C, losing what was done since the last save.
set -uo pipefail
# The workers run python -m dcgan_ms.train: the installed package, or the checkout this script is in.
checkout="$(cd "$(dirname "$0")/.." && pwd)"
if [ -f "$checkout/dcgan_ms/train.py" ]; then
  export PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/run_distributed.sh DEVICES_PER_NODE [dcgan_ms.train flags...]" >&2
  exit 2
fi
per_node=$1
shift
nodes=${NODES:-1}
if ! [[ "$nodes" =~ ^[1-9][0-9]*$ ]]; then
  echo "error: NODES must be a whole number of nodes, got '$nodes'" >&2
  exit 2
fi
if [ "$nodes" -gt 1 ] && [ -z "${MASTER_ADDR:-}" ]; then
  echo "error: NODES=$nodes needs MASTER_ADDR, the address of node 0 that every node can reach" >&2
  exit 2
fi
if ! command -v msrun >/dev/null; then
  echo "error: msrun not found: activate the virtual environment that has mindspore (msrun comes with it)" >&2
  exit 2
fi

logs=${LOG_DIR:-runs/msrun_logs}
if ! mkdir -p -m 700 "$logs" 2>/dev/null || ! [ -w "$logs" ]; then
  echo "error: cannot write msrun's logs into $logs: run from a folder of yours, or set LOG_DIR to one" >&2
  exit 2
fi

started=$(date +%s)
# msrun in a session of its own: the terminal's Ctrl-C reaches this script, which passes it on.
setsid msrun --worker_num=$((per_node * nodes)) --local_worker_num="$per_node" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-8118}" --node_rank="${NODE_RANK:-0}" \
  --log_dir="$logs" --join=True \
  python -m dcgan_ms.train --distributed "$@" &
msrun_pid=$!

has_role() {  # has_role PID ROLE: msrun's child PID has MS_ROLE=ROLE in its environment
  # braces: the redirection's own error (a child this account may not read) is silenced too
  { tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null | grep -qx "MS_ROLE=$2"
}

workers() {  # msrun's children that train (not its scheduler)
  local pid
  for pid in $(pgrep -P "$msrun_pid"); do
    if has_role "$pid" MS_WORKER; then
      echo "$pid"
    fi
  done
}

# msrun waits for its scheduler, which, once the workers have left without ending the cluster (a stop, an
# error), waits out its heartbeat time-out: tens of seconds of a launcher that looks hung. So once this
# node's workers are all gone, their logs say they stopped (interrupted, or an error) and msrun still runs
# 3 s later, its scheduler is stopped: nothing is left for it to coordinate.
release_scheduler() {
  local seen=0 pid
  while kill -0 "$msrun_pid" 2>/dev/null; do
    if [ -n "$(workers)" ]; then
      seen=1
    elif [ "$seen" -eq 1 ] && find "$logs" -maxdepth 1 -name 'worker_*.log' -newermt "@$((started - 1))" \
        -exec grep -qs -e '^rank [0-9]*: interrupted after step' -e '^error: ' {} \; -print | grep -q .; then
      sleep 3
      for pid in $(pgrep -P "$msrun_pid"); do
        if has_role "$pid" MS_SCHED; then
          kill -TERM "$pid" 2>/dev/null
        fi
      done
      return
    fi
    sleep 1
  done
}
release_scheduler &
releaser=$!

interrupts=0
on_interrupt() {
  interrupts=$((interrupts + 1))
  local pids
  pids=$(workers)
  if [ "$interrupts" -eq 1 ] && [ -n "$pids" ]; then
    echo "stopping: every worker finishes its step and saves (Ctrl-C again to abort at once)" >&2
    kill -TERM $pids 2>/dev/null
  else  # a second Ctrl-C, or no worker started yet
    echo "aborting: the workers are killed; the newest checkpoint is kept" >&2
    kill -INT "$msrun_pid" 2>/dev/null
  fi
}
trap on_interrupt INT TERM HUP  # HUP: a closed terminal would leave msrun training, detached

status=0
while true; do
  wait "$msrun_pid"
  status=$?
  kill -0 "$msrun_pid" 2>/dev/null || break  # wait returned for a signal: msrun still runs
done
kill "$releaser" 2>/dev/null
# This node's workers' logs, of this run: msrun names them by rank; older ones may lie in the folder.
local_logs=$(find "$logs" -maxdepth 1 -name 'worker_*.log' -newermt "@$((started - 1))" | sort | tr '\n' ' ')
stopped_together() {  # every local worker wrote train.py's closing line of an interrupted run
  local log
  [ -n "$local_logs" ] || return 1
  for log in $local_logs; do
    grep -q '^rank [0-9]*: interrupted after step' "$log" || return 1
  done
}
if [ "$interrupts" -gt 1 ]; then
  echo "aborted: the newest resume checkpoint is kept; run the same command with --resume to continue" >&2
  exit 130
elif [ "$interrupts" -eq 1 ] || { [ "$status" -ne 0 ] && stopped_together; }; then
  # Ctrl-C here, or a signal to a worker or another node's launcher: the ranks stopped together and saved
  echo "interrupted: the workers stopped together and saved (see ${local_logs% }); run the same command" \
       "with --resume to continue" >&2
  exit 130
fi
if [ "$status" -ne 0 ]; then
  echo "msrun ended with status $status: the last lines of ${local_logs:-the logs in $logs/} say why" >&2
fi
exit "$status"
