#!/usr/bin/env bash
# Runs inside the VM (tests/vm/init starts it as root, on the host's root
# with a tmpfs overlay, in the cgroup v2 group /guest).  Writes what the
# host reads back into the results share: status.txt (memnotify status),
# ctest.log, summary, and for "bench" pressure_latency.txt.
set -u
out=$1
# shellcheck disable=SC1091
. "$out/config"
cd "$MN_BUILD" || exit 1
cli=$MN_BUILD/bin/memnotify
{
	echo "== guest: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/{print int($2/1024)" MiB"}' /proc/meminfo)"
	echo "== cgroup: $(cat /proc/self/cgroup); controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
} | tee "$out/summary"
"$cli" status >"$out/status.txt" 2>&1
cat "$out/status.txt"

rc=0
# The guest kernel has each of these: the probes must say so.
for cap in memory_failure mce_early_kill hwpoison_inject cgroup_v2_memory cgroup_v2_psi; do
	if grep -q "^$cap  *yes " "$out/status.txt"; then
		echo "ok   probe $cap: yes" | tee -a "$out/summary"
	else
		echo "FAIL probe $cap: $(grep "^$cap " "$out/status.txt")" | tee -a "$out/summary"
		rc=1
	fi
done
grep -q "^inject  *available" "$out/status.txt" || { echo "FAIL status: inject not available"; rc=1; }
case $MN_SUITE in
vm)
	ctest -L vm --no-tests=error --output-on-failure --timeout 240 $MN_CTEST_ARGS 2>&1 | tee "$out/ctest.log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	;;
check)
	# The whole suite, as `make check` runs it.  Under TCG emulation code
	# runs tens of times slower than on the host, so each test's time
	# limit is multiplied (MN_VM_TIMEOUT_SCALE, default 10 under TCG, 1
	# with KVM) in the guest's copy of the ctest files (the overlay; the
	# host's build is untouched).
	scale=${MN_TIMEOUT_SCALE:-1}
	echo "== test time limits x$scale" | tee -a "$out/summary"
	find "$MN_BUILD" -name CTestTestfile.cmake -exec perl -pi -e \
		's/TIMEOUT "(\d+(?:\.\d+)?)"/"TIMEOUT \"" . int($1 * '"$scale"') . "\""/ge' {} +
	ctest --output-on-failure --timeout $((600 * scale)) $MN_CTEST_ARGS 2>&1 | tee "$out/ctest.log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	;;
bench)
	if [ -x "$MN_BUILD/bench/pressure_latency" ]; then
		"$MN_BUILD/bench/pressure_latency" 2>&1 | tee "$out/pressure_latency.txt"
		[ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
	else
		echo "no $MN_BUILD/bench/pressure_latency: make bench builds it first"
		rc=1
	fi
	;;
esac
cp Testing/Temporary/LastTest.log "$out/LastTest.log" 2>/dev/null
grep -E "tests passed|tests failed|Skipped|Failed|\*\*\*" "$out/ctest.log" 2>/dev/null >>"$out/summary"
exit "$rc"
