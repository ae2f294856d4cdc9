#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/levels_hierarchy.sh MEMNOTIFY HOG - issue 16 item 1, measured: a
# parent memory cgroup limited to 600 MiB, child a idle, child b holding a
# 500 MiB hog; prints what `memnotify status --cgroup a` says.  Root, v1 or
# v2 (exit 77 otherwise).
set -eu
MN=$1 HOG=$2
own=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
base=/sys/fs/cgroup/memory$own
[ "$(id -u)" = 0 ] && [ -d "$base" ] || { echo "skipped: needs root and v1 memory"; exit 77; }
p=$base/mnbench-h-$$
mkdir "$p" "$p/a" "$p/b"
cleanup() {
	[ -n "${hog:-}" ] && kill -9 "$hog" 2>/dev/null && wait "$hog" 2>/dev/null || true
	rmdir "$p/a" "$p/b" "$p" 2>/dev/null || true
}
trap cleanup EXIT
echo $((600 << 20)) > "$p/memory.limit_in_bytes"
sh -c "echo \$\$ > $p/b/cgroup.procs; exec $HOG 500" & hog=$!
sleep 3
echo "parent usage:  $(($(cat $p/memory.usage_in_bytes) >> 20)) MiB of 600 MiB"
"$MN" status --json --cgroup "$p/a" | grep -o '"level":"[a-z]*"\|"available_bytes":[0-9]*\|"limit_bytes":[0-9]*' | tr '\n' ' '
echo
