#!/usr/bin/env bash
# Fail the build unless the shared library exports exactly the API declared
# in the public headers (memnotify.h; memnotify/win32.h, whose user-mode
# functions of the spec are exported under the Windows name and the
# Mn-prefixed one, the generic kernel32 ones only as Mn...) (versioned
# MEMNOTIFY_0.1, as the map says)
# plus the unversioned interposers (signals and memory-map calls).
set -euo pipefail
lib=$1 map=$2 hdr=$3 w32=$4
interposers="sigaction signal munmap mremap mprotect pkey_mprotect madvise mmap mmap64 shmdt brk sbrk syscall"
# (__odr_asan.* are AddressSanitizer's one-definition-rule markers for
# exported data, present only in ASan builds.)
versioned=$(objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" && $(NF-1) == "MEMNOTIFY_0.1" && $NF !~ /^(MEMNOTIFY|__odr_asan)/ {print $NF}' | sort -u)
base=$(objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" && $(NF-1) == "Base" && $NF !~ /^__odr_asan/ {print $NF}' | sort -u)
declared=$( {
	grep -o '^MN_API [^(]*(' "$hdr" "$w32" | grep -v 'MN_W32($' | sed 's/($//; s/.*[ *]//'
	grep -o 'MN_W32([A-Z][A-Za-z]*)' "$w32" | sed 's/MN_W32(\(.*\))/\1\nMn\1/'
	sed -n 's/^extern MN_API const [A-Za-z]* \([A-Za-z_]*\);.*/\1/p' "$w32"
} | sort -u)
mapped=$(sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);$/\1/p' "$map" | sort -u)
want_base=$(printf '%s\n' $interposers | sort -u)
bad=0
if [ "$versioned" != "$declared" ]; then
	echo "check-exports: MEMNOTIFY_0.1 exports differ from the header:" >&2
	diff <(echo "$versioned") <(echo "$declared") >&2 || true
	bad=1
fi
if [ "$mapped" != "$declared" ]; then
	echo "check-exports: the version map differs from the header:" >&2
	diff <(echo "$mapped") <(echo "$declared") >&2 || true
	bad=1
fi
if [ "$base" != "$want_base" ]; then
	echo "check-exports: unversioned exports should be only: $interposers" >&2
	diff <(echo "$base") <(echo "$want_base") >&2 || true
	bad=1
fi
exit $bad
