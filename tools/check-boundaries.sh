#!/bin/sh
# The layering ARCHITECTURE.md states, checked on every #include "...":
#   src/core/      the core: the public header and the core only
#   src/<source>/  memory, badmem, vmrange, sigchain: itself and the core
#                  (badmem also the signal chain, its shared infrastructure)
#   src/rcache/    the registration cache: the core and range invalidation,
#                  the layer it is built on (watches, the range index)
#   src/win32/     the Windows face: the public headers, itself, and
#                  core/faceapi.h only (translation, no internals)
#   src/run/       the preloaded side of `memnotify run`: the public header,
#                  and core/internal.h for the loss counter it feeds
#   src/caps_table.c  assembles the library: any source's capability rows
#   tools/         the command: the public headers and itself
# Prints each forbidden include as "file:line: includes X (module -> module)"
# and exits 1 if there is one.  Run from the repository's top.
set -eu
cd "$(dirname "$0")/.."

module_of() { # a repository path -> its module
	case $1 in
	include/*) echo public ;;
	src/core/faceapi.h) echo faceapi ;;
	src/core/*) echo core ;;
	src/vmrange/*) echo vmrange ;;
	src/caps_table.c) echo assembly ;;
	src/*/*) echo "${1#src/}" | cut -d/ -f1 ;;
	tools/*) echo tools ;;
	*) echo other ;;
	esac
}

allowed() { # from to
	[ "$1" = "$2" ] && return 0
	[ "$2" = public ] && return 0
	case "$1:$2" in
	core:faceapi) return 0 ;;
	memory:core | memory:faceapi | badmem:core | badmem:faceapi) return 0 ;;
	vmrange:core | vmrange:faceapi | sigchain:core | sigchain:faceapi) return 0 ;;
	badmem:sigchain) return 0 ;;
	rcache:core | rcache:faceapi | rcache:vmrange) return 0 ;;
	win32:faceapi) return 0 ;;
	run:core) return 0 ;; # core/internal.h only, checked below
	assembly:*) return 0 ;;
	esac
	return 1
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for f in $(git ls-files 'src/*.c' 'src/*.h' 'tools/memnotify/*.c' 'tools/memnotify/*.h'); do
	from=$(module_of "$f")
	dir=$(dirname "$f")
	grep -n '^#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r line; do
		n=${line%%:*}
		inc=$(printf '%s\n' "$line" | sed 's/^[^"]*"\([^"]*\)".*/\1/')
		if [ -e "$dir/$inc" ]; then
			target=$(realpath -m --relative-to=. "$dir/$inc")
		elif [ -e "include/$inc" ]; then
			target=include/$inc
		elif [ -e "src/$inc" ]; then
			target=src/$inc
		else
			echo "$f:$n: includes \"$inc\", which is not in the tree"
			echo x >>"$tmp"
			continue
		fi
		to=$(module_of "$target")
		if ! allowed "$from" "$to" ||
		   { [ "$from" = run ] && [ "$to" = core ] && [ "$target" != src/core/internal.h ]; }; then
			echo "$f:$n: includes $target ($from -> $to)"
			echo x >>"$tmp"
		fi
	done
done
if [ -s "$tmp" ]; then
	echo "check-boundaries: $(wc -l <"$tmp") include(s) across a forbidden boundary (see the rules at the top of $0)"
	exit 1
fi
echo "check-boundaries: every include keeps the layering"
