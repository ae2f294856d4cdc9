#!/bin/sh
# Functions longer than a limit (default 80 lines, opening to closing
# brace) in the C files given or under src/ and tools/.  Prints each as
# "file:line: name: N lines" and exits 1 if any; 0 otherwise.
#   tools/check-function-length.sh [--max N] [FILE...]
set -eu
max=80
if [ "${1:-}" = "--max" ]; then max=$2; shift 2; fi
[ $# -gt 0 ] || set -- $(find src tools -name '*.c' | sort)
awk -v max="$max" '
FNR == 1 { infn = 0 }
# A definition: a line at column 0 that names a function, then "{" alone.
/^[A-Za-z_].*\(/ && !/;[ \t]*$/ { head = $0; headline = FNR }
/^\{/ && head != "" { infn = 1; start = headline; name = head; head = ""; next }
/^}/ && infn {
	n = FNR - start + 1
	if (n > max) {
		sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
		printf "%s:%d: %s: %d lines\n", FILENAME, start, name, n
		bad = 1
	}
	infn = 0
}
END { exit bad }
' "$@"
