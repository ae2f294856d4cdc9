#!/usr/bin/env bash
# bench/run.sh BUILD_DIR — run every benchmark program in BUILD_DIR/bench/
# and show its output.  Exit 77 from a benchmark means "skipped" (its reason
# is the line it printed starting with "skip:"); that does not fail the run.
# Any other non-zero exit does, after the remaining benchmarks have run.
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
dir=$1/bench
if [ ! -d "$dir" ]; then
	echo "bench/run.sh: $dir: no such directory (build target bench-all first)" >&2
	exit 2
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

ran=0 failed=0 skipped=0
summary=()
for bin in "$dir"/*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	case $name in *_bare|*_ucm|*_ucx) continue ;; esac # peers vm_overhead runs itself
	echo "=== $name"
	"$bin" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	ran=$((ran + 1))
	case $rc in
	0)
		summary+=("$name: ok") ;;
	77)
		skipped=$((skipped + 1))
		reason=$(sed -n 's/^skip: *//p' "$out" | tail -n 1)
		[ -n "$reason" ] || reason=$(tail -n 1 "$out")
		echo "$name: skipped: ${reason:-no reason given}"
		summary+=("$name: skipped: ${reason:-no reason given}") ;;
	*)
		failed=$((failed + 1))
		echo "$name: FAILED (exit $rc)"
		summary+=("$name: FAILED (exit $rc)") ;;
	esac
	echo
done

if [ $ran -eq 0 ]; then
	echo "bench/run.sh: no benchmark programs in $dir" >&2
	exit 1
fi
echo "=== summary: $ran run, $skipped skipped, $failed failed"
for line in "${summary[@]}"; do
	echo "  $line"
done
[ $failed -eq 0 ]
