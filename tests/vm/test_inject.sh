#!/usr/bin/env bash
# memnotify inject, and memnotify watch --json on a real AO.
# Everywhere: usage errors (exit 2), refusals with the reason (exit 1).
# Where the injector runs (the VM bed, as root):
#  - a running program with the library's handlers (mn_vm_victim) gets the
#    kernel's BUS_MCEERR_AO for the page inject poisons, then survives the
#    AR when it touches it;
#  - a running `memnotify watch --json` prints memory.bad_page for a real
#    AO (inject --early on a page preloaded into it, which it never uses);
#  - inject --unpoison gives each frame back.
set -u
cli=$1 victim=$2 sacrifice=$3 sanitize=${4:-}
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# expect CODE PATTERN CMD...: exit status and a line of stderr.
expect() {
	local code=$1 pat=$2 rc
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq "$code" ] && grep -q -- "$pat" "$tmp/err"; then
		ok "$* -> $code ($pat)"
	else
		bad "$* -> $rc, stderr: $(cat "$tmp/err")"
	fi
}
expect 2 "needs a process id" "$cli" inject
expect 2 "needs a process id" "$cli" inject 1
expect 2 "needs a process id" "$cli" inject x 0x1000
expect 2 "unknown option" "$cli" inject --bogus 1 2
expect 2 "unexpected argument" "$cli" inject 1 2 3
expect 2 "needs an argument" "$cli" inject --unpoison
expect 2 "one page frame number" "$cli" inject --unpoison 0
expect 2 "one page frame number" "$cli" inject --early --unpoison 5

avail=$("$cli" status --json | python3 -c 'import json,sys; i=json.load(sys.stdin)["inject"]; print("yes" if i["available"] else i["reason"])')
if [ "$avail" != yes ]; then
	expect 1 "refused: $avail" "$cli" inject $$ 0x1000
	"$cli" status | grep "^inject " | grep -qF "$avail" && ok "status says why: $avail" ||
		bad "status: $("$cli" status | grep ^inject)"
	echo "test_inject: $pass passed, $fail failed"
	[ "$fail" -eq 0 ] || exit 1
	echo "skipped: the real injection: $avail"
	exit 77
fi
"$cli" status | grep -q "^inject  *available" && ok "status: inject available" ||
	bad "status: $("$cli" status | grep ^inject)"
if command -v setpriv >/dev/null; then
	expect 1 "refused: needs root" setpriv --reuid=65534 --regid=65534 --clear-groups "$cli" inject $$ 0x1000
fi
# A page that is not there: this shell's page 0.
expect 1 "no page there" "$cli" inject $$ 0x0

# wait_for FILE PATTERN SECONDS
wait_for() {
	for _ in $(seq $(($3 * 20))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
hc() { awk '/HardwareCorrupted/{print $2}' /proc/meminfo; }
pfn_of() { sed -n 's/^poisoned pfn \(0x[0-9a-f]*\) .*/\1/p' "$1"; }

# --- a running program with handlers ---------------------------------------
"$victim" >"$tmp/victim" 2>&1 &
vpid=$!
pids+=("$vpid")
if wait_for "$tmp/victim" "^page " 10; then
	addr=$(awk '/^page /{print $2}' "$tmp/victim")
	hc0=$(hc)
	if "$cli" inject "$vpid" "$addr" >"$tmp/inj" 2>&1; then
		ok "inject $vpid $addr: $(cat "$tmp/inj")"
	else
		bad "inject $vpid $addr: $(cat "$tmp/inj")"
	fi
	wait "$vpid"
	rc=$?
	if [ "$rc" -eq 0 ] && grep -q "^ao $addr code 5" "$tmp/victim" && grep -q recovered "$tmp/victim"; then
		ok "victim: real AO for $addr, then AR recovered: $(tr '\n' ' ' <"$tmp/victim")"
	else
		bad "victim exited $rc: $(cat "$tmp/victim")"
	fi
	[ "$(hc)" -gt "$hc0" ] && ok "HardwareCorrupted $hc0 -> $(hc) kB" || bad "HardwareCorrupted stayed $(hc) kB"
	pfn=$(pfn_of "$tmp/inj")
	[ -n "$pfn" ] && { "$cli" inject --unpoison "$pfn" && ok "unpoison $pfn (HardwareCorrupted $(hc) kB)" || bad "unpoison $pfn"; }
else
	bad "victim printed no page: $(cat "$tmp/victim")"
fi

# --- memnotify watch --json, a real AO -------------------------------------
# (Not under sanitizers: a preloaded library would come before their
# runtime, which refuses to start.)
if [ -n "$sanitize" ]; then
	echo "note: watch --json with a real AO not run under -fsanitize=$sanitize"
	echo "test_inject: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
fi
MN_VM_SACRIFICE_FILE=$tmp/addr LD_PRELOAD=$sacrifice "$cli" watch --json >"$tmp/watch" 2>&1 &
wpid=$!
pids+=("$wpid")
if wait_for "$tmp/addr" "^0x" 10 && wait_for "$tmp/watch" memory.status 10; then
	addr=$(cat "$tmp/addr")
	if "$cli" inject --early "$wpid" "$addr" >"$tmp/inj" 2>&1; then
		ok "inject --early $wpid $addr: $(cat "$tmp/inj")"
	else
		bad "inject --early: $(cat "$tmp/inj")"
	fi
	dec=$((addr))
	if wait_for "$tmp/watch" "\"event\":\"memory.bad_page\",\"address\":$dec,.*\"action_required\":false,\"scope\":\"process\"" 10; then
		ok "watch: $(grep memory.bad_page "$tmp/watch" | head -n1)"
	else
		bad "watch printed no bad_page for $addr ($dec): $(cat "$tmp/watch")"
	fi
	kill -0 "$wpid" 2>/dev/null && ok "watch still runs" || bad "watch died"
	[ "$(cat /proc/sys/vm/memory_failure_early_kill)" = 0 ] &&
		ok "vm.memory_failure_early_kill back to 0" || bad "early kill left on"
	kill "$wpid"; wait "$wpid" 2>/dev/null
	pfn=$(pfn_of "$tmp/inj")
	[ -n "$pfn" ] && { "$cli" inject --unpoison "$pfn" && ok "unpoison $pfn (HardwareCorrupted $(hc) kB)" || bad "unpoison $pfn"; }
else
	bad "watch did not start: $(cat "$tmp/watch")"
fi
echo "test_inject: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
