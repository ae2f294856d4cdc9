#!/usr/bin/env bash
# cgroup v2, end to end (root, a v2 hierarchy with the memory controller:
# the VM bed's guest; skips elsewhere with the reason).
#  1. memory.max 256 MiB and a real hog: `memnotify watch --json --cgroup`
#     goes to low and back to high; its status line has the 256 MiB limit.
#  2. memory.high 128 MiB throttling a hog: memory.events "high" and the
#     group's PSI rise; a watch with only the memory.events mechanism and
#     one with only the group's PSI trigger each report low, by that
#     mechanism; memory.high is the effective limit.
#  3. nested groups: the ancestor's smaller memory.max is the child's
#     limit, and the child's own memory.high when smaller still.
#  4. systemd's $MEMORY_PRESSURE_WATCH / $MEMORY_PRESSURE_WRITE for a watch
#     of the own group: the group's PSI file with systemd's threshold, a
#     FIFO, an AF_UNIX socket, /dev/null, and malformed data.
set -u
cli=$1 lw=$2 hog=$3
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to make cgroups"
mnt=$(awk '$9=="cgroup2"{print $5; exit}' /proc/self/mountinfo)
[ -n "$mnt" ] || skip "no cgroup v2 hierarchy mounted"
grep -qw memory "$mnt/cgroup.subtree_control" 2>/dev/null ||
	skip "the cgroup v2 hierarchy at $mnt has no memory controller for its children"
MiB=$((1 << 20))
pass=0 fail=0
ok() { echo "ok   [${SECONDS}s] $*"; pass=$((pass + 1)); }
bad() { echo "FAIL [${SECONDS}s] $*"; fail=$((fail + 1)); }
base=$mnt/mn-v2-$$
tmp=$(mktemp -d)
mkdir "$base" && echo +memory >"$base/cgroup.subtree_control" || skip "cannot make $base"
cleanup() {
	jobs -p | xargs -r kill 2>/dev/null
	wait 2>/dev/null
	for d in $(find "$base" -depth -type d 2>/dev/null); do
		for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	done
	for d in $(find "$base" -depth -type d 2>/dev/null); do
		for _ in $(seq 100); do rmdir "$d" 2>/dev/null && break; sleep 0.05; done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

group() { # group NAME [FILE=VALUE...]: make $base/NAME and set its files
	local g=$base/$1 kv
	shift
	mkdir -p "$g"
	for kv in "$@"; do echo "${kv#*=}" >"$g/${kv%%=*}"; done
	echo "$g"
}
in_group() { # in_group GROUP CMD...: run CMD inside GROUP, in the background
	local g=$1
	shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$g" "$@" &
}
wait_for() { # wait_for FILE PATTERN SECONDS
	for _ in $(seq $(($3 * 20))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
wait_pid() { # wait_pid PID SECONDS: its exit status, or 124 after SECONDS
	for _ in $(seq $(($2 * 20))); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return; }
		sleep 0.05
	done
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}
json_field() { python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
limit_of() { "$cli" status --json --cgroup "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["memory"]["limit_bytes"])'; }

# --- 1. memory.max, memnotify watch --json --cgroup -----------------------
g=$(group max memory.max=$((256 * MiB)) memory.swap.max=0)
"$cli" watch --json --cgroup "$g" >"$tmp/watch" 2>&1 &
wpid=$!
if wait_for "$tmp/watch" memory.status 10 &&
	[ "$(head -n1 "$tmp/watch" | json_field limit_bytes)" = $((256 * MiB)) ] &&
	[ "$(head -n1 "$tmp/watch" | json_field level)" = high ]; then
	ok "max: status line high, limit 256 MiB"
else
	bad "max: status line: $(head -n1 "$tmp/watch")"
fi
in_group "$g" "$hog" 240
hpid=$!
if wait_for "$tmp/watch" '"level":"low"' 30; then
	ok "max: low while mn_hog 240 runs: $(grep -m1 '"level":"low"' "$tmp/watch")"
else
	bad "max: never low: $(cat "$tmp/watch")"
fi
kill "$hpid"; wait "$hpid" 2>/dev/null
# high after the first low line (it may come before this line runs).
n=$(grep -n -m1 '"level":"low"' "$tmp/watch" | cut -d: -f1)
for _ in $(seq 300); do
	tail -n +$((${n:-1} + 1)) "$tmp/watch" | grep -q '"level":"high"' && break
	sleep 0.1
done
tail -n +$((${n:-1} + 1)) "$tmp/watch" | grep -q '"level":"high"' &&
	ok "max: high again after the hog exits" || bad "max: never high again: $(cat "$tmp/watch")"
kill "$wpid"; wait "$wpid" 2>/dev/null

# --- 2. memory.high throttling; each mechanism's contribution --------------
g=$(group high memory.high=$((128 * MiB)) memory.swap.max=0)
[ "$(limit_of "$g")" = $((128 * MiB)) ] && ok "high: memory.high is the effective limit (128 MiB)" ||
	bad "high: limit $(limit_of "$g")"
"$lw" events "$g" 60 >"$tmp/ev" 2>&1 &
epid=$!
"$lw" psi "$g" 60 >"$tmp/psi" 2>&1 &
ppid=$!
wait_for "$tmp/ev" "^reason 1" 10 && wait_for "$tmp/psi" "^reason 1" 10 ||
	bad "high: the watches did not start: $(cat "$tmp/ev" "$tmp/psi")"
grep -q "^reason 1 .* active cgroup_v2_events limit" "$tmp/ev" || bad "events-only watch: $(cat "$tmp/ev")"
grep -q "^reason 1 .* active psi limit" "$tmp/psi" || bad "psi-only watch: $(cat "$tmp/psi")"
psi0=$(awk '/^some/{sub("total=","",$5); print $5}' "$g/memory.pressure")
in_group "$g" "$hog" 200
hpid=$!
wait_pid "$epid" 60 && grep -q "level low mechanism cgroup_v2_events" "$tmp/ev" &&
	ok "high: memory.events alone reports low: $(grep -m1 'level low' "$tmp/ev")" ||
	bad "high: no low from memory.events: $(cat "$tmp/ev")"
wait_pid "$ppid" 60 && grep -q "level low mechanism psi" "$tmp/psi" &&
	ok "high: the group's PSI trigger alone reports low: $(grep -m1 'level low' "$tmp/psi")" ||
	bad "high: no low from the group's PSI: $(cat "$tmp/psi")"
highs=$(awk '$1=="high"{print $2}' "$g/memory.events")
psi1=$(awk '/^some/{sub("total=","",$5); print $5}' "$g/memory.pressure")
[ "${highs:-0}" -gt 0 ] && ok "high: memory.events high=$highs" || bad "high: memory.events: $(cat "$g/memory.events")"
[ "$psi1" -gt "$psi0" ] && ok "high: group PSI some total $psi0 -> $psi1 us" || bad "high: PSI total stayed $psi1"
kill "$hpid"; wait "$hpid" 2>/dev/null

# --- 3. nested groups ---------------------------------------------------------
o=$(group outer memory.max=$((200 * MiB)) cgroup.subtree_control=+memory)
i=$(group outer/inner memory.max=$((1024 * MiB)))
[ "$(limit_of "$i")" = $((200 * MiB)) ] && ok "nested: the ancestor's memory.max (200 MiB) limits the child" ||
	bad "nested: limit $(limit_of "$i")"
echo $((150 * MiB)) >"$i/memory.high"
[ "$(limit_of "$i")" = $((150 * MiB)) ] && ok "nested: the child's smaller memory.high (150 MiB) wins" ||
	bad "nested: limit with memory.high $(limit_of "$i")"
"$lw" poll "$i" 0 | grep -q "limit $((150 * MiB))" && ok "nested: a watch's limit is 150 MiB too" ||
	bad "nested: watch limit: $("$lw" poll "$i" 0)"

# --- 4. systemd's MEMORY_PRESSURE_WATCH / MEMORY_PRESSURE_WRITE -------------
s=$(group sd memory.high=$((96 * MiB)) memory.swap.max=0)
b64=$(printf 'some 150000 1000000\0' | base64)
sd() { # sd OUT WATCH WRITE MODE SECONDS: levelwatch on its own group $s
	in_group "$s" env MEMORY_PRESSURE_WATCH="$2" MEMORY_PRESSURE_WRITE="$3" \
		MEMNOTIFY_LOG=info "$lw" "$4" - "$5" >"$1" 2>&1
}
sd "$tmp/sd" "$s/memory.pressure" "$b64" psi 60
spid=$!
wait_for "$tmp/sd" "^reason 1" 10
in_group "$s" "$hog" 160
hpid=$!
if wait_pid "$spid" 60 && grep -q "level low mechanism psi" "$tmp/sd" &&
	grep -q "pressure from MEMORY_PRESSURE_WATCH=$s/memory.pressure" "$tmp/sd"; then
	ok "systemd: the group's PSI file with systemd's threshold reports low"
else
	bad "systemd: PSI file: $(cat "$tmp/sd")"
fi
kill "$hpid"; wait "$hpid" 2>/dev/null
# A FIFO: whatever arrives on it is pressure.
mkfifo "$tmp/fifo"
sd "$tmp/sdf" "$tmp/fifo" "" psi 20
spid=$!
if wait_for "$tmp/sdf" "^reason 1 .*active psi" 10; then
	echo pressure >"$tmp/fifo"
	wait_pid "$spid" 20 && grep -q "level low mechanism psi" "$tmp/sdf" &&
		ok "systemd: a FIFO's data reports low" || bad "systemd: FIFO: $(cat "$tmp/sdf")"
else
	bad "systemd: FIFO watch did not start: $(cat "$tmp/sdf")"
fi
# An AF_UNIX stream socket: it receives the decoded MEMORY_PRESSURE_WRITE,
# and a byte back is pressure.
python3 - "$tmp/sock" "$tmp/got" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1); s.settimeout(30)
c, _ = s.accept(); c.settimeout(10)
open(sys.argv[2], "wb").write(c.recv(256))
c.sendall(b"x"); c.recv(1)
EOF
for _ in $(seq 100); do [ -S "$tmp/sock" ] && break; sleep 0.05; done
sd "$tmp/sds" "$tmp/sock" "$b64" psi 20
spid=$!
if wait_pid "$spid" 20 && grep -q "level low mechanism psi" "$tmp/sds" &&
	[ "$(od -An -c "$tmp/got" | tr -s ' ')" = "$(printf 'some 150000 1000000\0' | od -An -c | tr -s ' ')" ]; then
	ok "systemd: an AF_UNIX socket got the decoded data and its byte reports low"
else
	bad "systemd: socket: $(cat "$tmp/sds"); got: $(od -c "$tmp/got" 2>&1)"
fi
# /dev/null: no PSI trigger; without the variables there is one.
sd "$tmp/sdn" /dev/null "" all 0
wait_pid $! 10
grep -q "^reason 1 " "$tmp/sdn" && ! grep -q "^reason 1 .* psi" "$tmp/sdn" &&
	ok "systemd: /dev/null turns the PSI trigger off: $(grep '^reason 1' "$tmp/sdn")" ||
	bad "systemd: /dev/null: $(cat "$tmp/sdn")"
in_group "$s" "$lw" all - 0 >"$tmp/sd0" 2>&1
wait_pid $! 10
grep -q "^reason 1 .* psi" "$tmp/sd0" && ok "systemd: without the variables the own PSI trigger is armed" ||
	bad "systemd: no variables: $(cat "$tmp/sd0")"
# Malformed: logged, memnotify's own trigger instead.
sd "$tmp/sdm" "$s/memory.pressure" '!!not base64' all 0
wait_pid $! 10
grep -q "not base64" "$tmp/sdm" && grep -q "^reason 1 .* psi" "$tmp/sdm" &&
	ok "systemd: malformed MEMORY_PRESSURE_WRITE is logged, own trigger used" ||
	bad "systemd: malformed: $(cat "$tmp/sdm")"
sd "$tmp/sdx" "$tmp/missing" "" all 0
wait_pid $! 10
grep -q "MEMORY_PRESSURE_WATCH=$tmp/missing: No such file" "$tmp/sdx" && grep -q "^reason 1 .* psi" "$tmp/sdx" &&
	ok "systemd: a missing path is logged, own trigger used" ||
	bad "systemd: missing path: $(cat "$tmp/sdx")"

echo "test_cgroup_v2: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
