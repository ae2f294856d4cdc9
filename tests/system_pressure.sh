#!/usr/bin/env bash
# System test (root): a child memory cgroup with a 256 MiB limit, a real
# memory hog inside it — stress-ng, then our own mn_hog — while
# `memnotify watch --json --cgroup` runs outside.  The levels must go to
# "low" while each hog runs and back to "high" after it exits.  Then a hog
# larger than the limit is OOM-killed: a memory.oom line with its
# oom_kill_count; and a watch of its own group, moved to another group,
# prints a memory.moved line with the new group and its limit.
set -u
bin=$1 hog=$2
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to make a memory cgroup"
command -v stress-ng >/dev/null || skip "stress-ng is not installed (make check installs it as root)"

# Our own memory cgroup, v2 if it has the memory controller, else v1.
self_dir() {
	local v2 v1 mnt
	v2=$(sed -n 's/^0:://p' /proc/self/cgroup)
	mnt=$(awk '$9=="cgroup2"{print $5; exit}' /proc/self/mountinfo)
	if [ -n "$mnt" ] && [ -f "$mnt$v2/memory.current" ]; then
		echo "v2 $mnt${v2%/}"; return
	fi
	v1=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
	mnt=$(awk '$9=="cgroup" && $NF ~ /(^|,)memory(,|$)/ {print $5; exit}' /proc/self/mountinfo)
	if [ -n "$mnt" ] && [ -f "$mnt$v1/memory.usage_in_bytes" ]; then
		echo "v1 $mnt${v1%/}"; return
	fi
}
read -r ver parent < <(self_dir)
[ -n "${parent:-}" ] || skip "no memory cgroup controller for this process"
# cgroup v2 has no internal processes: if our group (which has processes)
# cannot give its children the memory controller, go beside it.
if [ "$ver" = v2 ] && ! echo +memory 2>/dev/null >"$parent/cgroup.subtree_control"; then
	parent=${parent%/*}
fi
cg="$parent/mn-system-$$"
mkdir "$cg" || skip "cannot create $cg"
if [ "$ver" = v2 ]; then
	echo $((256 << 20)) > "$cg/memory.max"
	echo 0 > "$cg/memory.swap.max" 2>/dev/null
else
	echo $((256 << 20)) > "$cg/memory.limit_in_bytes"
fi
out=$(mktemp)
watch_pid=
cleanup() {
	jobs -p | xargs -r kill 2>/dev/null
	wait 2>/dev/null
	for g in "$cg" "$cg-b"; do
		for p in $(cat "$g/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		for _ in $(seq 100); do [ -d "$g" ] || break; rmdir "$g" 2>/dev/null && break; sleep 0.05; done
	done
	rm -f "$out" "$out.moved"
}
trap cleanup EXIT

"$bin" watch --json --cgroup "$cg" >"$out" 2>&1 &
watch_pid=$!

# wait_level LEVEL SECONDS: until a memory.level line with that level
# appears after line $seen.
seen=0
wait_level() {
	local want=$1 secs=$2 n
	for _ in $(seq $((secs * 20))); do
		n=$(wc -l <"$out")
		if tail -n +$((seen + 1)) "$out" | grep -q "\"event\":\"memory.level\",\"level\":\"$want\""; then
			seen=$n
			return 0
		fi
		kill -0 "$watch_pid" 2>/dev/null || { echo "watch exited:"; cat "$out"; return 1; }
		sleep 0.05
	done
	echo "no '$want' within ${secs}s; watch printed:"; cat "$out"
	return 1
}

pass=0 fail=0
check() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi; }

# The first line is the status: high, with the group's limit.
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
if head -n1 "$out" | grep -q '"event":"memory.status","level":"high"' &&
   head -n1 "$out" | grep -q "\"limit_bytes\":$((256 << 20))"; then
	echo "ok   status line: high, limit 256 MiB"; pass=$((pass + 1))
else
	echo "FAIL status line: $(head -n1 "$out")"; fail=$((fail + 1))
fi
seen=1

run_hog() {
	local name=$1; shift
	# Enter the group first, then become the hog.
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@" >/dev/null 2>&1 &
	local hp=$!
	if wait_level low 30; then
		echo "ok   $name: low while it runs"; pass=$((pass + 1))
	else
		echo "FAIL $name: never low"; fail=$((fail + 1))
	fi
	kill "$hp" 2>/dev/null; wait "$hp" 2>/dev/null
	for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	if wait_level high 30; then
		echo "ok   $name: high after it exits"; pass=$((pass + 1))
	else
		echo "FAIL $name: never back to high"; fail=$((fail + 1))
	fi
}

run_hog "stress-ng --vm 1 --vm-bytes 240M --vm-keep" \
	stress-ng --vm 1 --vm-bytes 240M --vm-keep --timeout 60s
run_hog "mn_hog 240" "$hog" 240

# A hog over the limit: the kernel's OOM killer kills it (no swap is
# assumed: with swap the hog may be swapped instead, which is said).
if [ "$(awk '/^SwapTotal:/{print $2}' /proc/meminfo)" != 0 ] && [ "$ver" = v1 ] &&
   [ ! -f "$cg/memory.memsw.limit_in_bytes" ]; then
	echo "skip OOM case: swap is on and the group's swap cannot be limited"
else
	[ "$ver" = v1 ] && [ -f "$cg/memory.memsw.limit_in_bytes" ] &&
		echo $((256 << 20)) >"$cg/memory.memsw.limit_in_bytes"
	sh -c 'echo $$ > "$1/cgroup.procs" && exec "$2" 400' sh "$cg" "$hog" >/dev/null 2>&1 &
	hp=$!
	got=
	for _ in $(seq 600); do # 30 s
		if tail -n +$((seen + 1)) "$out" | grep '"event":"memory.oom"' |
		   grep -q '"oom_kill_count":[1-9]'; then got=1; break; fi
		sleep 0.05
	done
	wait "$hp"; hrc=$?
	if [ -n "$got" ] && [ $hrc -eq 137 ]; then
		echo "ok   OOM kill: a memory.oom line with oom_kill_count >= 1, the hog died by SIGKILL"
		pass=$((pass + 1))
	else
		echo "FAIL OOM kill: line seen: ${got:-no}, hog exit $hrc"; fail=$((fail + 1))
	fi
fi

# A watch of its own group follows the process into another group.
mkdir "$cg-b" || skip "cannot create $cg-b"
if [ "$ver" = v2 ]; then echo $((128 << 20)) > "$cg-b/memory.max"
else echo $((128 << 20)) > "$cg-b/memory.limit_in_bytes"; fi
sh -c 'echo $$ > "$1/cgroup.procs" && exec "$2" watch --json' sh "$cg" "$bin" >"$out.moved" 2>&1 &
mp=$!
for _ in $(seq 200); do grep -q memory.status "$out.moved" && break; sleep 0.05; done
echo "$mp" >"$cg-b/cgroup.procs"
got=
for _ in $(seq 400); do # 20 s: the group is compared at the slow sampling rate
	if grep '"event":"memory.moved"' "$out.moved" | grep -q "\"limit_bytes\":$((128 << 20)).*\"cgroup\":\"$cg-b\""; then
		got=1; break
	fi
	sleep 0.05
done
kill "$mp" 2>/dev/null; wait "$mp" 2>/dev/null
if [ -n "$got" ]; then
	echo "ok   moved: a memory.moved line with the new group and its 128 MiB limit"; pass=$((pass + 1))
else
	echo "FAIL moved: watch printed:"; cat "$out.moved"; fail=$((fail + 1))
fi

echo "--- what watch printed"
cat "$out"
echo "system_pressure: $pass passed, $fail failed"
[ $fail -eq 0 ]
