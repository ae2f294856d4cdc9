#!/usr/bin/env bash
# contrib/systemd/memnotify-watch.service: systemd-analyze verify finds
# nothing to say about it, and its ExecStart, run as written (with this
# build's binary and this process's memory cgroup), prints JSON lines.
set -u
bin=$1
src=$(cd "$(dirname "$0")/.." && pwd)
unit=$src/contrib/systemd/memnotify-watch.service
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The ExecStart= of the [Service] section (the last non-empty one).
exec_start=$(sed -n 's/^ExecStart=\(..*\)$/\1/p' "$unit" | tail -n1)
[ -n "$exec_start" ] || bad "no ExecStart in $unit"

# Run it: the installed path becomes this build's binary, ${MEMNOTIFY_CGROUP}
# the group status --json names.
cg=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["memory"]["cgroup"])' < <("$bin" status --json))
read -r -a argv <<<"$exec_start"
argv[0]=$bin
for i in "${!argv[@]}"; do
	[ "${argv[$i]}" = '${MEMNOTIFY_CGROUP}' ] && argv[$i]=$cg
done
first=$("${argv[@]}" --duration 0.3 2>"$tmp/err" | head -n1)
if /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["event"]=="memory.status"' "$first" 2>/dev/null; then
	ok "the unit's ExecStart prints JSON lines: ${argv[*]:1}"
else
	bad "ExecStart '${argv[*]}': first line '$first' $(cat "$tmp/err")"
fi

if command -v systemd-analyze >/dev/null; then
	# verify checks that ExecStart's program exists: point it at this build.
	sed "s|/usr/local/bin/memnotify|$bin|" "$unit" >"$tmp/memnotify-watch.service"
	out=$(cd "$tmp" && systemd-analyze verify --man=no memnotify-watch.service 2>&1); rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "systemd-analyze verify: no complaint"
	else
		bad "systemd-analyze verify: rc=$rc: $out"
	fi
else
	echo "skip: no systemd-analyze (the unit's syntax is not checked)"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
