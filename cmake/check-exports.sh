#!/usr/bin/env bash
# Fail the build if the shared library exports anything but the mn_* API
# declared in the public header, or if the version map and header disagree.
set -eu
lib=$1 map=$2 hdr=$3
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDBRW]/ {print $3}' | sed 's/@.*//' | grep -v '^MEMNOTIFY_' | sort -u)
declared=$(grep -o '^MN_API [^(]*(' "$hdr" | sed 's/($//; s/.*[ *]//' | sort -u)
mapped=$(sed -n 's/^[[:space:]]*\(mn_[a-z0-9_]*\);$/\1/p' "$map" | sort -u)
bad=0
if [ "$exported" != "$declared" ]; then
	echo "check-exports: exported symbols differ from the header:" >&2
	diff <(echo "$exported") <(echo "$declared") >&2 2>/dev/null || printf 'exported:\n%s\ndeclared:\n%s\n' "$exported" "$declared" >&2
	bad=1
fi
if [ "$mapped" != "$declared" ]; then
	echo "check-exports: version map differs from the header" >&2
	printf 'mapped:\n%s\ndeclared:\n%s\n' "$mapped" "$declared" >&2
	bad=1
fi
exit $bad
