#!/usr/bin/env bash
# Starts worker INDEX of a multi-host MultiWorkerMirroredStrategy cluster: builds its TF_CONFIG
# from the host list and runs the command. Run it once on every host, with the same host list,
# the same command and the same --out on storage every host sees (NFS, a cloud bucket mount).
#
#   recipes/cluster/launch_hosts.sh HOSTS INDEX -- COMMAND...
#
#   HOSTS  comma-separated host:port of every worker, in the same order on every host;
#          the first is the chief (writes logs, best.keras, last.keras)
#   INDEX  this host's position in HOSTS, from 0
#
# Example, two machines (run the first line on gpu-a, the second on gpu-b):
#   recipes/cluster/launch_hosts.sh gpu-a:2222,gpu-b:2222 0 -- python recipes/train_dmtl.py --out /shared/runs/mw
#   recipes/cluster/launch_hosts.sh gpu-a:2222,gpu-b:2222 1 -- python recipes/train_dmtl.py --out /shared/runs/mw
#
# If a worker dies, stop the others and run every line again: training resumes from the last
# checkpoint. On one host, python -m facezoo.train.launch --workers N does all of this for you.
set -euo pipefail

usage() {
  echo "usage: $0 HOST:PORT[,HOST:PORT...] INDEX -- COMMAND..." >&2
  exit 2
}

[ "$#" -ge 4 ] || usage
hosts="$1"
index="$2"
[ "$3" = "--" ] || usage
shift 3

IFS=',' read -r -a workers <<< "$hosts"
count="${#workers[@]}"
[[ "$index" =~ ^[0-9]+$ ]] || { echo "$0: INDEX must be a number, got '$index'" >&2; exit 2; }
[ "$index" -lt "$count" ] || { echo "$0: INDEX $index is outside the $count hosts in '$hosts'" >&2; exit 2; }
for w in "${workers[@]}"; do
  [[ "$w" =~ ^[^:,\"[:space:]]+:[0-9]+$ ]] || { echo "$0: '$w' is not host:port" >&2; exit 2; }
done

list=""
for w in "${workers[@]}"; do
  list="${list:+$list, }\"$w\""
done
export TF_CONFIG="{\"cluster\": {\"worker\": [$list]}, \"task\": {\"type\": \"worker\", \"index\": $index}}"
echo "[launch_hosts] worker $index of $count: $*" >&2
exec "$@"
