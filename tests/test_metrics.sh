#!/usr/bin/env bash
# memnotify watch's metrics, read as Prometheus reads them: --format
# openmetrics through prometheus_client's OpenMetrics parser, --textfile
# through its text-format parser (the format node_exporter's textfile
# collector reads), values against `memnotify status --json`, and the
# textfile replaced atomically while a reader keeps reading it.
set -u
bin=$1
# Under a sanitizer each run of the command adds gigabytes (the shadow
# memory) to the group it measures: compare with status more loosely.
export MN_TOLERANCE=0.1
[ -n "${2:-}" ] && MN_TOLERANCE=0.5
# Debian's python3-prometheus-client installs for the system python, not
# for a python3 that comes first on PATH.
py=/usr/bin/python3
if ! "$py" -c 'import prometheus_client.openmetrics.parser, prometheus_client.parser' 2>/dev/null; then
	echo "SKIP: $py cannot import prometheus_client (apt-get install python3-prometheus-client)"
	exit 77
fi
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect_usage NAME ARGS... : exit 2, one line on stderr, nothing on stdout
expect_usage() {
	local name=$1; shift
	local out err rc
	out=$(timeout 10 "$bin" "$@" 2>"$tmp/err"); rc=$?
	err=$(cat "$tmp/err")
	if [ $rc -eq 2 ] && [ -z "$out" ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ]; then
		ok "$name: exit 2: $err"
	else
		bad "$name: rc=$rc stdout='$out' stderr='$err'"
	fi
}
expect_usage "unknown format"            watch --format xml
expect_usage "openmetrics on status"     status --format openmetrics
expect_usage "textfile on status"        status --textfile "$tmp/m.prom"
expect_usage "empty textfile"            watch --textfile ''
expect_usage "zero interval"             watch --format openmetrics --interval 0
expect_usage "bad interval"              watch --format openmetrics --interval 1s
expect_usage "interval on status"        status --interval 1

# The checker: parse, then compare with status --json.
cat >"$tmp/check.py" <<'PY'
import json, os, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as prom_parse

def families(text, fmt):
    if fmt == "openmetrics":
        assert text.endswith("# EOF\n"), "no '# EOF' at the end"
        return {f.name: f for f in om_parse(text)}
    assert "# EOF" not in text
    return {f.name: f for f in prom_parse(text)}

# family -> (type, unit in OpenMetrics)
WANT = {
    "memnotify_build": ("info", ""),
    "memnotify_memory_up": ("gauge", ""),
    "memnotify_memory_level": ("gauge", ""),
    "memnotify_memory_level_state": ("stateset", ""),
    "memnotify_memory_available_bytes": ("gauge", "bytes"),
    "memnotify_memory_limit_bytes": ("gauge", "bytes"),
    "memnotify_memory_usage_bytes": ("gauge", "bytes"),
    "memnotify_memory_low_threshold_bytes": ("gauge", "bytes"),
    "memnotify_memory_high_threshold_bytes": ("gauge", "bytes"),
    "memnotify_memory_load_ratio": ("gauge", "ratio"),
    "memnotify_memory_sample_timestamp_seconds": ("gauge", "seconds"),
    "memnotify_bad_pages": ("counter", ""),
    "memnotify_bad_page_bytes": ("counter", "bytes"),
    "memnotify_bad_pages_lost": ("counter", ""),
    "memnotify_events_lost": ("counter", ""),
    "memnotify_samples": ("counter", ""),
    "memnotify_source_errors": ("counter", ""),
}

def check(text, fmt, status):
    fam = families(text, fmt)
    mem = status["memory"]
    for name, (typ, unit) in WANT.items():
        if fmt == "prometheus":
            # text format 0.0.4: no info, stateset or units; the parser
            # takes "_total" off a counter's name
            if typ == "info":
                name, typ = name + "_info", "gauge"
            elif typ == "stateset":
                typ = "gauge"
            unit = ""
        assert name in fam, "missing family %s" % name
        assert fam[name].type == typ, (name, fam[name].type, typ)
        assert fam[name].unit == unit, (name, fam[name].unit, unit)
        assert fam[name].documentation, "no HELP for %s" % name
    if mem.get("psi_some_avg10") is not None:
        ps = fam["memnotify_memory_pressure_stall_ratio"]
        assert ps.type == "gauge"
        assert {(s.labels["kind"], s.labels["window"]) for s in ps.samples} == \
            {("some", "10s"), ("some", "60s"), ("full", "10s"), ("full", "60s")}
        for s in ps.samples:
            assert 0 <= s.value <= 1, s
    def one(name):
        (s,) = fam[name].samples
        return s
    cg = mem["cgroup"] or "/"
    # every per-group sample names the watched group
    for f in fam.values():
        for s in f.samples:
            if f.name.startswith("memnotify_memory_"):
                assert s.labels["cgroup"] == cg, (s, cg)
    assert one("memnotify_memory_up").value == 1
    limit = one("memnotify_memory_limit_bytes").value
    avail = one("memnotify_memory_available_bytes").value
    # sampled at another moment than status: within 10 % of the limit
    tol = float(os.environ.get("MN_TOLERANCE", "0.1"))
    assert abs(limit - mem["limit_bytes"]) <= 0.1 * mem["limit_bytes"], (limit, mem)
    assert abs(avail - mem["available_bytes"]) <= tol * mem["limit_bytes"], (avail, mem)
    used = one("memnotify_memory_usage_bytes").value
    assert used == limit - avail, (used, limit, avail)
    load = one("memnotify_memory_load_ratio").value
    assert abs(load - mem["load_percent"] / 100) <= tol, (load, mem)
    levels = {"unknown": 0, "low": 1, "neutral": 2, "high": 3}
    lvl = one("memnotify_memory_level").value
    states = {s.labels["memnotify_memory_level_state"]: s.value
              for s in fam["memnotify_memory_level_state"].samples}
    assert sorted(states) == ["high", "low", "neutral"], states
    assert sum(states.values()) == 1 and levels[[k for k, v in states.items() if v == 1][0]] == lvl, (states, lvl)
    # the level has hysteresis, status has none: equal unless near a threshold
    if mem["level"] != "neutral" and tol <= 0.1:
        assert lvl == levels[mem["level"]], (lvl, mem["level"])
    low = one("memnotify_memory_low_threshold_bytes").value
    high = one("memnotify_memory_high_threshold_bytes").value
    assert 0 < low < high <= limit, (low, high, limit)
    for name in ("memnotify_bad_pages", "memnotify_bad_page_bytes"):
        assert {s.labels["scope"] for s in fam[name].samples} == {"process", "system"}
        for s in fam[name].samples:
            assert s.name == name + "_total" and s.value == 0, s
    for name in ("memnotify_events_lost", "memnotify_bad_pages_lost", "memnotify_source_errors"):
        (s,) = fam[name].samples
        assert s.name == name + "_total" and s.value == 0, s
    (s,) = fam["memnotify_samples"].samples
    assert s.value >= 1, s
    info = fam["memnotify_build"] if fmt == "openmetrics" else fam["memnotify_build_info"]
    (s,) = info.samples
    assert s.labels["version"] == status["version"], (s, status["version"])

if __name__ == "__main__":
    fmt, path, status_path = sys.argv[1:4]
    text = open(path).read()
    status = json.load(open(status_path))
    if fmt == "openmetrics-stream":
        # one exposition per change and per interval, each with its # EOF
        parts = [p + "# EOF\n" for p in text.split("# EOF\n")[:-1]]
        assert text.endswith("# EOF\n") and parts, "no complete exposition"
        for p in parts:
            check(p, "openmetrics", status)
        print(len(parts))
    else:
        check(text, fmt, status)
PY

"$bin" status --json >"$tmp/status.json" || bad "status --json failed"

# --format openmetrics --duration 1: one exposition, parsed and compared.
"$bin" watch --format openmetrics --duration 1 >"$tmp/om.txt" 2>"$tmp/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '^# EOF$' "$tmp/om.txt")" -ge 1 ] &&
   out=$("$py" "$tmp/check.py" openmetrics-stream "$tmp/om.txt" "$tmp/status.json" 2>&1); then
	ok "watch --format openmetrics --duration 1: $out exposition(s), names, types, units and values as status --json"
else
	bad "watch --format openmetrics: rc=$rc $(cat "$tmp/err") ${out:-}"; head -40 "$tmp/om.txt"
fi
# The first exposition alone is what a scrape would see: one '# EOF', last.
sed '/^# EOF$/q' "$tmp/om.txt" >"$tmp/om1.txt"
if out=$("$py" "$tmp/check.py" openmetrics "$tmp/om1.txt" "$tmp/status.json" 2>&1); then
	ok "the first exposition parses alone as OpenMetrics"
else
	bad "first exposition: $out"
fi

# --interval: a new exposition every interval between level changes.
"$bin" status --json >"$tmp/status.json"
"$bin" watch --format openmetrics --interval 0.2 --duration 1.5 >"$tmp/om.txt" 2>"$tmp/err"; rc=$?
n=$("$py" "$tmp/check.py" openmetrics-stream "$tmp/om.txt" "$tmp/status.json" 2>&1)
if [ $rc -eq 0 ] && [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 4 ]; then
	ok "--interval 0.2 --duration 1.5: $n expositions, each valid"
else
	bad "--interval: rc=$rc n=$n $(cat "$tmp/err")"
fi

# --format json is --json.
first=$("$bin" watch --format json --duration 0.2 | head -n1)
if "$py" -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["event"]=="memory.status"' "$first" 2>/dev/null; then
	ok "--format json prints the JSON lines of --json"
else
	bad "--format json: $first"
fi

if "$bin" status --format json | "$py" -c 'import json,sys; d=json.load(sys.stdin); assert d["memory"]["limit_bytes"] > 0' 2>/dev/null; then
	ok "status --format json prints the object of status --json"
else
	bad "status --format json"
fi

# --textfile: Prometheus text format, 0644, no temporary file left, and the
# event lines still on stdout.
"$bin" status --json >"$tmp/status.json"
mkdir "$tmp/tf"
"$bin" watch --json --textfile "$tmp/tf/memnotify.prom" --duration 0.5 >"$tmp/out.txt" 2>"$tmp/err"; rc=$?
mode=$(stat -c %a "$tmp/tf/memnotify.prom" 2>/dev/null)
left=$(ls -A "$tmp/tf")
if [ $rc -eq 0 ] && [ "$mode" = 644 ] && [ "$left" = memnotify.prom ] &&
   grep -q '"event":"memory.status"' "$tmp/out.txt" &&
   out=$("$py" "$tmp/check.py" prometheus "$tmp/tf/memnotify.prom" "$tmp/status.json" 2>&1); then
	ok "--textfile: Prometheus text format, mode 644, nothing else left in the directory, events still on stdout"
else
	bad "--textfile: rc=$rc mode=$mode left='$left' $(cat "$tmp/err") ${out:-}"
fi

# A --textfile that cannot be written: exit 1 before any output.
out=$("$bin" watch --textfile "$tmp/nodir/m.prom" --duration 0.2 2>"$tmp/err"); rc=$?
if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q 'textfile' "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then
	ok "--textfile in a missing directory: exit 1: $(cat "$tmp/err")"
else
	bad "--textfile missing dir: rc=$rc out='$out' err='$(cat "$tmp/err")'"
fi

# Atomic replacement: rewritten every 20 ms for 3 s while a reader opens
# and parses it in a loop; every read must be one whole exposition, and
# the reader must have seen many different samples.
"$bin" watch --textfile "$tmp/tf/memnotify.prom" --interval 0.02 --duration 3 >/dev/null 2>"$tmp/err" &
wpid=$!
cat >"$tmp/reader.py" <<'PY'
import os, sys, time
from prometheus_client.parser import text_string_to_metric_families as parse
path, pid = sys.argv[1], int(sys.argv[2])
reads, stamps = 0, set()
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    with open(path) as f:
        text = f.read()
    fams = {fam.name: fam for fam in parse(text)}
    names = set(fams)
    stamps.add(fams["memnotify_memory_sample_timestamp_seconds"].samples[0].value)
    assert text.endswith("memnotify_source_errors_total 0\n"), "a partial file: %r" % text[-80:]
    assert "memnotify_memory_available_bytes" in names and "memnotify_source_errors" in names, names
    reads += 1
print(reads, len(stamps))
assert reads >= 50 and len(stamps) >= 20, (reads, len(stamps))
PY
res=$("$py" "$tmp/reader.py" "$tmp/tf/memnotify.prom" $wpid 2>&1); prc=$?
wait $wpid; rc=$?
left=$(ls -A "$tmp/tf")
if [ $rc -eq 0 ] && [ $prc -eq 0 ] && [ "$left" = memnotify.prom ]; then
	ok "--textfile replaced atomically: reads and distinct samples seen: $res; no temporary file left"
else
	bad "atomic --textfile: watch rc=$rc reader rc=$prc: $res left='$left' $(cat "$tmp/err")"
fi

# Both at once: OpenMetrics on stdout, Prometheus text in the file.
"$bin" status --json >"$tmp/status.json"
"$bin" watch --format openmetrics --textfile "$tmp/tf/both.prom" --duration 0.3 >"$tmp/om.txt" 2>"$tmp/err"; rc=$?
if [ $rc -eq 0 ] && "$py" "$tmp/check.py" openmetrics-stream "$tmp/om.txt" "$tmp/status.json" >/dev/null 2>&1 &&
   "$py" "$tmp/check.py" prometheus "$tmp/tf/both.prom" "$tmp/status.json" >/dev/null 2>&1; then
	ok "--format openmetrics with --textfile: both valid"
else
	bad "openmetrics + textfile: rc=$rc $(cat "$tmp/err")"
fi

# A watched group that vanishes: watch exits 1 and the textfile says
# memnotify_memory_up 0 for it (needs a group we may make: root, usually).
own=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["memory"]["cgroup"])' "$tmp/status.json")
# cgroup v2 has no internal processes: if our group cannot give its
# children the memory controller, the group goes beside ours.
if [ -f "$own/cgroup.subtree_control" ] && ! grep -qw memory "$own/cgroup.subtree_control" &&
	! echo +memory 2>/dev/null >"$own/cgroup.subtree_control"; then
	own=${own%/*}
fi
child=$own/mn_metrics.$$
if [ -n "$own" ] && mkdir "$child" 2>/dev/null; then
	"$bin" watch --cgroup "$child" --textfile "$tmp/tf/gone.prom" --interval 0.1 --duration 20 >/dev/null 2>"$tmp/err" &
	wpid=$!
	for _ in $(seq 100); do [ -s "$tmp/tf/gone.prom" ] && break; sleep 0.05; done
	sleep 0.3
	rmdir "$child"
	wait $wpid; rc=$?
	up=$(grep '^memnotify_memory_up{' "$tmp/tf/gone.prom")
	if [ $rc -eq 1 ] && [ "$up" = "memnotify_memory_up{cgroup=\"$child\"} 0" ] &&
	   "$py" -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; list(p(open(sys.argv[1]).read()))' "$tmp/tf/gone.prom"; then
		ok "a removed --cgroup: exit 1, the textfile says $up"
	else
		bad "removed group: rc=$rc up='$up' $(cat "$tmp/err")"
	fi
	rmdir "$child" 2>/dev/null
else
	echo "skip: cannot make a child of '$own' (the removed-group case)"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
