#!/usr/bin/env bash
# The memnotify command as a user runs it: usage errors give one line on
# stderr and exit 2; status and watch print what they promise.
set -u
bin=$1
sanitized=${2:-}
probe=${3:-}   # run_fd_probe: a program linked with the library
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_usage NAME ARGS... : exit 2, exactly one line on stderr, nothing on
# stdout (bounded: a command that never ends is a failure, rc 124)
expect_usage() {
	local name=$1; shift
	local out err rc
	out=$(timeout 10 "$bin" "$@" 2>/tmp/mn_cli_err.$$); rc=$?
	err=$(cat /tmp/mn_cli_err.$$)
	if [ $rc -eq 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ]; then
		ok "$name: exit 2: $err"
	else
		bad "$name: rc=$rc stdout='$out' stderr='$err'"
	fi
}

expect_usage "no command"        # (prints usage: several lines) -- checked below
expect_usage "unknown command"    frobnicate
expect_usage "unknown option"     watch --frob
expect_usage "missing argument"   watch --cgroup
expect_usage "bad duration"       watch --duration abc
expect_usage "negative duration"  watch --duration -3
expect_usage "zero duration"      watch --duration 0
expect_usage "NaN duration"       watch --duration nan
expect_usage "NaN duration (-)"   watch --duration -NaN
expect_usage "inf duration"       watch --duration inf
expect_usage "-inf duration"      watch --duration -inf
expect_usage "huge duration"      watch --duration 1e8
expect_usage "negative fraction"  watch --duration -0.5
expect_usage "trailing garbage"   watch --duration 1s
expect_usage "empty duration"     watch --duration ''
expect_usage "underflow duration" watch --duration 1e-400
expect_usage "missing cgroup"     watch --cgroup /nonexistent/cg
expect_usage "file as cgroup"     watch --cgroup /proc/meminfo
expect_usage "non-cgroup dir"     watch --cgroup /tmp
expect_usage "stray argument"     status extra
expect_usage "duration on status" status --duration 1
if [ -d /sys/fs/cgroup/pids ]; then
	expect_usage "no memory controller" watch --cgroup /sys/fs/cgroup/pids
fi

# status: human and JSON
out=$("$bin" status); rc=$?
if [ $rc -eq 0 ] && grep -q '^psi_trigger ' <<<"$out" && grep -q '^level ' <<<"$out"; then
	ok "status lists capabilities and the level"
else
	bad "status: rc=$rc"; echo "$out"
fi
json=$("$bin" status --json); rc=$?
if [ $rc -eq 0 ] && python3 -c '
import json,sys
d=json.loads(sys.stdin.read())
assert d["version"]
caps={c["name"]:c for c in d["capabilities"]}
assert "psi_trigger" in caps and "cgroup_v1_memory" in caps
for c in caps.values():
    assert isinstance(c["supported"], bool) and c["detail"]
m=d["memory"]
assert m["level"] in ("low","neutral","high")
assert 0 < m["limit_bytes"] <= m["physical_bytes"]
assert m["available_bytes"] <= m["limit_bytes"]
' <<<"$json"; then
	ok "status --json is one valid object with capabilities and memory"
else
	bad "status --json: rc=$rc: $json"
fi

# watch: the first line is the status, then it stops at the duration.
start=$(date +%s%N)
out=$("$bin" watch --json --duration 1.5); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
first=$(head -n1 <<<"$out")
if [ $rc -eq 0 ] && python3 -c '
import json,sys,re
d=json.loads(sys.stdin.read())
assert d["event"]=="memory.status", d
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["time"]), d["time"]
for k in ("level","available_bytes","limit_bytes","load_percent","mechanism"):
    assert k in d, k
assert d["level"] in ("low","neutral","high")
' <<<"$first" && [ $ms -ge 1400 ] && [ $ms -lt 10000 ]; then
	ok "watch --json --duration 1.5: status line, exit 0 after ${ms} ms"
else
	bad "watch --json: rc=$rc ms=$ms out=$out"
fi

out=$("$bin" watch --duration 0.5); rc=$?
if [ $rc -eq 0 ] && head -n1 <<<"$out" | grep -q '^TIME' && sed -n 2p <<<"$out" | grep -q ' status ' && grep -q 'MiB' <<<"$out"; then
	ok "watch (plain): header, status line in MiB"
else
	bad "watch plain: rc=$rc out=$out"
fi

# A duration shorter than the first sample still prints the status line.
for fmt in plain json; do
	flag=; [ $fmt = json ] && flag=--json
	out=$(timeout 10 "$bin" watch $flag --duration 0.0000001); rc=$?
	if [ $rc -eq 0 ] && grep -qE '( status |"event":"memory.status")' <<<"$out"; then
		ok "watch $flag --duration 0.0000001: the status line, exit 0"
	else
		bad "watch $flag --duration 0.0000001: rc=$rc out=$out"
	fi
done

# --interval: a status line every interval between changes, as well as
# the first; each a whole JSON object (the run is bounded by --duration).
out=$(timeout 20 "$bin" watch --json --interval 0.2 --duration 1.5); rc=$?
n=$(grep -c '"event":"memory.status"' <<<"$out")
if [ $rc -eq 0 ] && [ "$n" -ge 3 ] && /usr/bin/python3 -c '
import json, sys
for l in sys.stdin:
    json.loads(l)' <<<"$out"; then
	ok "watch --interval 0.2 --duration 1.5: $n status lines"
else
	bad "watch --interval: rc=$rc n=$n out=$out"
fi
out=$(timeout 20 "$bin" watch --interval 0.3 --duration 1); rc=$?
n=$(grep -c ' status ' <<<"$out")
if [ $rc -eq 0 ] && [ "$n" -ge 2 ]; then
	ok "watch --interval (text): $n status lines"
else
	bad "watch --interval (text): rc=$rc out=$out"
fi

# SIGINT ends watch with exit 0
"$bin" watch --json >/tmp/mn_cli_out.$$ 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s /tmp/mn_cli_out.$$ ] && break; sleep 0.05; done
kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 0 ] && grep -q memory.status /tmp/mn_cli_out.$$; then
	ok "watch stops cleanly on SIGINT"
else
	bad "watch SIGINT: rc=$rc"
fi

# bad threshold environment: a clear error
err=$(MEMNOTIFY_LOW_PERCENT=abc "$bin" watch --duration 1 2>&1 >/dev/null); rc=$?
if [ $rc -ne 0 ] && grep -q "MEMNOTIFY_LOW_PERCENT='abc'" <<<"$err"; then
	ok "bad MEMNOTIFY_LOW_PERCENT refused: $(head -n1 <<<"$err")"
else
	bad "bad env: rc=$rc err=$err"
fi

# status names the bad-memory and signal capabilities, with reasons
out=$("$bin" status); rc=$?
if [ $rc -eq 0 ] && grep -qE '^signal_interpose +yes' <<<"$out" &&
   grep -qE '^(memory_failure|mce_early_kill|patrol_scrubber|hwpoison_inject|memory_failure_tracepoint) ' <<<"$out"; then
	ok "status lists signal and bad-memory capabilities"
else
	bad "status capabilities: $out"
fi
out=$(MEMNOTIFY_NO_INTERPOSE=1 "$bin" status); rc=$?
if [ $rc -eq 0 ] && grep -qE '^signal_interpose +no +turned off by MEMNOTIFY_NO_INTERPOSE' <<<"$out"; then
	ok "MEMNOTIFY_NO_INTERPOSE=1 turns interposition off, and status says so"
else
	bad "MEMNOTIFY_NO_INTERPOSE: $(grep signal_interpose <<<"$out")"
fi

# run: usage errors, exit status, events
expect_usage "run without --"       run /bin/true

# run from an install prefix with a space in it: LD_PRELOAD would split the
# library's path and trace nothing, so run refuses (exit 2, one line).
lib=$(ldd "$bin" | awk '$1 ~ /^libmemnotify\.so/ { print $3; exit }')
if [ -n "$lib" ] && [ -f "$lib" ]; then
	for sep in ' ' ':' $'\t'; do
		d=$(mktemp -d)
		pfx="$d/memnotify${sep}prefix"
		mkdir -p "$pfx/bin" "$pfx/lib"
		cp "$bin" "$pfx/bin/memnotify"
		cp "$lib" "$pfx/lib/"
		# LD_LIBRARY_PATH itself splits at ':': reach the copy through
		# a symlink (run preloads the library's real path).
		ln -s "$pfx/lib" "$d/lib"
		out=$(LD_LIBRARY_PATH="$d/lib" timeout 10 "$pfx/bin/memnotify" \
			run -- sh -c 'echo traced' 2>/tmp/mn_cli_err.$$); rc=$?
		err=$(cat /tmp/mn_cli_err.$$)
		if [ $rc -eq 2 ] && [ -z "$out" ] && [ "$(wc -l <<<"$err")" -eq 1 ] &&
		   grep -qF "$pfx/lib/" <<<"$err" && grep -q "LD_PRELOAD" <<<"$err"; then
			ok "run under a prefix with '${sep/$'\t'/\\t}': refused, exit 2: $err"
		else
			bad "run under a prefix with '${sep/$'\t'/\\t}': rc=$rc out=$out err=$err"
		fi
		rm -rf "$d"
	done
else
	bad "run prefix test: no libmemnotify in ldd $bin"
fi
if [ -n "$sanitized" ]; then
	# A library built with -fsanitize=$sanitized cannot be preloaded into
	# programs that are not: the plain build runs these.
	echo "skip run: preloading a $sanitized build into plain programs"
else
expect_usage "run without program"  run --json --
expect_usage "run missing program"  run -- /nonexistent/program
"$bin" run -- sh -c 'exit 7' >/dev/null; rc=$?
if [ $rc -eq 7 ]; then ok "run exits with the program's status"; else bad "run status: $rc"; fi
out=$("$bin" run --json -- python3 -c '
import mmap
m = mmap.mmap(-1, 3 << 20); m.close()
' 2>&1 >/dev/null); rc=$?
if [ $rc -eq 0 ] && python3 -c '
import json,sys
evs=[json.loads(l) for l in sys.stdin if l.strip()]
assert evs[0]["event"] == "run.start", evs[0]
un=[e for e in evs if e["event"]=="vm.unmap" and e["length"]==3<<20]
assert un, evs
e=un[0]
for k in ("time","pid","tid","address","via"):
    assert k in e, k
assert e["via"]=="hook" and isinstance(e["address"], int)
' <<<"$out"; then
	ok "run --json: a 3 MiB munmap in python3 is a vm.unmap line"
else
	bad "run --json: rc=$rc out=$(head -c 600 <<<"$out")"
fi
# The events go to stderr by default: the program's stdout is its own.
out=$("$bin" run -- sh -c 'echo program-output' 2>/tmp/mn_cli_err.$$); rc=$?
if [ $rc -eq 0 ] && [ "$out" = program-output ] &&
	grep -q "pid [0-9]*  run.start  " /tmp/mn_cli_err.$$; then
	ok "run: events on stderr, the program's stdout untouched"
else
	bad "run default output: rc=$rc stdout='$(head -c 400 <<<"$out")' stderr='$(head -c 400 /tmp/mn_cli_err.$$)'"
fi
# --output - asks for both on stdout.
out=$("$bin" run --output - -- sh -c 'echo program-output' 2>/tmp/mn_cli_err.$$); rc=$?
if [ $rc -eq 0 ] && grep -qx program-output <<<"$out" && grep -q "run.start" <<<"$out" &&
	! grep -q "run.start" /tmp/mn_cli_err.$$; then
	ok "run --output -: events and the program's output on stdout"
else
	bad "run --output -: rc=$rc stdout='$(head -c 400 <<<"$out")' stderr='$(head -c 400 /tmp/mn_cli_err.$$)'"
fi
rm -f /tmp/mn_cli_err.$$
# run.start names the program: a chain of execs in one process gives one
# run.start per program, told apart by exe and argv; arguments with
# quotes, backslashes, control characters, UTF-8 and bytes that are not
# UTF-8 are escaped into valid JSON (the last as U+FFFD).
out=$("$bin" run --json -- python3 -c '
import os
os.execv(b"/bin/sh", [b"sh", b"-c", b"exec \"$0\" \"$@\"", b"/bin/true",
                      b"q\"x\\y", b"\x01\xc3\xa9\n", b"\xff\xfe"])
' 2>&1 >/dev/null); rc=$?
if [ $rc -eq 0 ] && python3 -c '
import json, sys
# (python3 may itself be a chain: a pyenv shim execs env, bash, ...)
starts = [json.loads(l) for l in sys.stdin if "run.start" in l]
assert len(starts) >= 3, starts
assert len({s["pid"] for s in starts[-3:]}) == 1, starts[-3:]
py, sh, true = starts[-3:]
assert "python" in py["exe"].split("/")[-1], py
assert py["argv"][-2] == "-c", py
assert sh["exe"].endswith("sh") and sh["argv"][:2] == ["sh", "-c"], sh
assert sh["argv"][2].replace(chr(34), "") == "exec $0 $@", sh
assert true["exe"] == "/usr/bin/true", true
want = ["/bin/true", "q" + chr(34) + "x" + chr(92) + "y", "\x01\u00e9\n", "\ufffd\ufffd"]
assert true["argv"] == want, (true["argv"], want)
assert "argv_truncated" not in true
' <<<"$out"; then
	ok "run.start: exe and argv tell a chain of execs apart, JSON-escaped"
else
	bad "run.start exe/argv: rc=$rc out=$(head -c 1200 <<<"$out")"
fi
# A command line longer than one line can hold: cut at an argument,
# still one valid line of at most PIPE_BUF bytes, and marked.
out=$("$bin" run --json -- python3 -c '
import os
os.execv("/bin/true", ["true"] + ["x" * 40] * 400)
' 2>&1 >/dev/null); rc=$?
if [ $rc -eq 0 ] && python3 -c '
import json, sys
lines = [l for l in sys.stdin if "run.start" in l]
s = json.loads(lines[-1])
assert len(lines[-1].encode()) <= 4096, len(lines[-1])
assert s["exe"] == "/usr/bin/true" and s["argv_truncated"] is True, s
assert 1 < len(s["argv"]) < 401 and all(a == "x" * 40 for a in s["argv"][1:]), s
' <<<"$out"; then
	ok "run.start: a long command line is cut at an argument, marked argv_truncated"
else
	bad "run.start long argv: rc=$rc out=$(head -c 600 <<<"$out")"
fi
# The text form: executable and the arguments as a shell would read them.
out=$("$bin" run -- /bin/sh -c 'exec /bin/true "a b" "it'"'"'s"' 2>&1 >/dev/null)
if grep -qF "run.start  /usr/bin/true  argv /bin/true 'a b' 'it'\''s'" <<<"$out"; then
	ok "run.start text: exe and shell-quoted argv"
else
	bad "run.start text: $(head -c 600 <<<"$out")"
fi
f=$(mktemp)
"$bin" run --output "$f" -- python3 -c 'import mmap; m = mmap.mmap(-1, 1 << 20); m.close()' >/dev/null
if grep -q "vm.unmap" "$f" && grep -q "run.start" "$f"; then
	ok "run --output FILE writes plain lines there"
else
	bad "run --output: $(cat "$f")"
fi
rm -f "$f"
# A program that closes the output's number and opens a file of its own
# there: the library writes no event line into that file.
if [ -n "$probe" ]; then
	f=$(mktemp); own=$(mktemp)
	"$bin" run --output "$f" -- "$probe" reuse "$own" >/dev/null; rc=$?
	if [ $rc -eq 0 ] && [ "$(cat "$own")" = own ] && grep -q "run.start" "$f"; then
		ok "run --output: a program that reuses the output's number keeps its own file free of event lines"
	else
		bad "run --output, number reused: rc=$rc own='$(head -c 400 "$own")' output='$(head -c 400 "$f")'"
	fi
	rm -f "$f" "$own"
fi
fi

# A set-user-ID program linked with the library ignores MEMNOTIFY_RUN_FD
# (secure_getenv): run as nobody with MEMNOTIFY_RUN_FD naming its stderr,
# the library writes nothing there.  The same program without the bit
# writes its run.start line there: the control.
if [ -z "$probe" ]; then
	echo "skip setuid: no program linked with the library given"
elif [ "$(id -u)" -ne 0 ]; then
	echo "skip setuid: not root (chown root and chmod u+s need it)"
elif ! command -v setpriv >/dev/null; then
	echo "skip setuid: no setpriv"
else
	d=$(mktemp -d); chmod 755 "$d"
	cp "$probe" "$d/plain"; cp "$probe" "$d/suid"
	chown root:root "$d/plain" "$d/suid"
	chmod 755 "$d/plain"; chmod 4755 "$d/suid"
	for kind in plain suid; do
		err=$d/$kind.err; : >"$err"
		out=$(env -u LD_PRELOAD MEMNOTIFY_RUN_FD="2:$(stat -c '%d:%i' "$err")" \
			setpriv --reuid=65534 --regid=65534 --clear-groups "$d/$kind" unmap 2>>"$err"); rc=$?
		eval "${kind}_rc=\$rc ${kind}_out=\$out"
	done
	if [ "$plain_rc" -eq 0 ] && [ "$plain_out" = "euid 65534" ] && grep -q "run.start" "$d/plain.err"; then
		if [ "$suid_rc" -eq 0 ] && [ "$suid_out" = "euid 0" ] && [ ! -s "$d/suid.err" ]; then
			ok "set-user-ID program: MEMNOTIFY_RUN_FD ignored, nothing written to its stderr"
		else
			bad "set-user-ID program: rc=$suid_rc '$suid_out' stderr='$(head -c 400 "$d/suid.err")'"
		fi
	else
		bad "setuid control (no bit): rc=$plain_rc '$plain_out' stderr='$(head -c 400 "$d/plain.err")'"
	fi
	rm -rf "$d"
fi

# nmi: the signal `status` reports is the one `nmi` sends.
expect_usage "nmi without pid"      nmi
expect_usage "nmi bad pid"          nmi 12abc
expect_usage "nmi bad signal"       nmi --signal SIGSEGV 1
nmi=$("$bin" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nmi_signal"])')
usr2=$(MEMNOTIFY_NMI_SIGNAL=USR2 "$bin" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nmi_signal"])')
if [ "$nmi" -gt 0 ] && [ "$usr2" = 12 ] && "$bin" status | grep -q "^nmi signal *$nmi "; then
	ok "status reports the NMI signal ($nmi; 12 with MEMNOTIFY_NMI_SIGNAL=USR2)"
else
	bad "status nmi signal: '$nmi' '$usr2'"
fi
sleep 30 &
victim=$!
"$bin" nmi "$victim" >/dev/null
wait "$victim"; rc=$?
if [ "$rc" -eq $((128 + nmi)) ]; then
	ok "nmi PID: a process without NMI callbacks dies by signal $nmi"
else
	bad "nmi PID: victim exit $rc, wanted $((128 + nmi))"
fi
if "$bin" nmi 2147483646 2>/dev/null; then
	bad "nmi to a missing process succeeded"
else
	ok "nmi to a missing process fails"
fi

# The man page's OUTPUT section names every JSON key the command prints:
# status (with its capabilities and memory), watch's memory lines, and
# run's run.start and event lines (an mprotect, madvise, mremap and munmap).
man=$(dirname "$0")/../docs/memnotify.1
if [ -n "$sanitized" ]; then
	echo "skip OUTPUT keys: run under a $sanitized build"
elif [ ! -f "$man" ]; then
	bad "OUTPUT keys: no man page at $man"
else
	keys=$( {
		"$bin" status --json
		"$bin" run --json -- python3 -c '
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
p = libc.mmap(None, 1 << 20, 3, 0x22, -1, 0)
libc.mprotect(ctypes.c_void_p(p), 4096, 1)
libc.madvise(ctypes.c_void_p(p + 8192), 4096, 4)
q = libc.mremap(ctypes.c_void_p(p), 1 << 20, 2 << 20, 1)
libc.munmap(ctypes.c_void_p(q), 2 << 20)
' 2>&1 >/dev/null
	} | python3 -c '
import json, sys
keys = set()
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            keys.add(k); walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
for l in sys.stdin:
    if l.startswith("{"):
        walk(json.loads(l))
print(" ".join(sorted(keys)))')
	section=$(sed -n '/^\.SH OUTPUT/,/^\.SH /p' "$man")
	missing=""
	for k in $keys; do
		grep -q "^\.BR\? .*\b$k\b" <<<"$section" || missing="$missing $k"
	done
	for k in new_address prot advice exe argv via; do
		grep -qw "$k" <<<"$keys" || missing="$missing (no $k in the output)"
	done
	if [ -z "$missing" ] && [ -n "$keys" ]; then
		ok "man OUTPUT names every JSON key printed ($(wc -w <<<"$keys") keys)"
	else
		bad "man OUTPUT lacks:$missing"
	fi
fi

rm -f /tmp/mn_cli_err.$$ /tmp/mn_cli_out.$$
echo "test_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
