#!/usr/bin/env bash
# Data-parallel DCGAN training with MindSpore's msrun: one process per device, on one or more nodes.
#
#   scripts/run_distributed.sh DEVICES_PER_NODE [dcgan_ms.train flags...]
#
# Environment (multi-node): NODES (default 1), NODE_RANK (this node, 0..NODES-1, default 0),
# MASTER_ADDR (address of node 0, default 127.0.0.1), MASTER_PORT (default 8118),
# LOG_DIR (msrun's per-worker logs, default runs/msrun_logs). Run the same command on every node.
# --batch_size is per device: the global batch is batch_size x DEVICES_PER_NODE x NODES.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/run_distributed.sh DEVICES_PER_NODE [dcgan_ms.train flags...]" >&2
  exit 2
fi
per_node=$1
shift
nodes=${NODES:-1}
exec msrun --worker_num=$((per_node * nodes)) --local_worker_num="$per_node" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-8118}" --node_rank="${NODE_RANK:-0}" \
  --log_dir="${LOG_DIR:-runs/msrun_logs}" --join=True \
  dcgan_ms/train.py --distributed "$@"
