#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD_DIR SECONDS: run every libFuzzer target for
# SECONDS each, starting from the seed corpus (copied: the repository keeps
# only the seeds).  Any crash, leak or timeout fails the run.
set -euo pipefail
build=$1 secs=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
for bin in "$build"/tests/fuzz/fuzz_*; do
	name=$(basename "$bin"); name=${name#fuzz_}
	mkdir -p "$work/$name"
	cp -r "$here/corpus/$name/." "$work/$name/" 2>/dev/null || true
	if "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$work/$name-" "$work/$name" >"$work/$name.log" 2>&1; then
		echo "ok   fuzz_$name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/$name.log" || tail -n1 "$work/$name.log")"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz_$name"; tail -n 40 "$work/$name.log"
		ls "$work"/"$name"-* 2>/dev/null && for a in "$work"/"$name"-*; do echo "input: $(xxd "$a" | head -n 8)"; done
		fail=$((fail + 1))
	fi
done
echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ]
