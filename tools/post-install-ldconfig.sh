#!/bin/sh
# After `make install PREFIX=... [DESTDIR=...]`: refresh the dynamic
# loader's cache when that is what makes libmemnotify.so.0 findable.
#
# It runs ldconfig only when all three hold: no DESTDIR (a staged install
# is not the running system), root (the cache is the system's), and the
# library's directory is one the loader already searches (/usr/local/lib,
# /usr/lib/<triplet>, ...: /etc/ld.so.conf).  Anywhere else it changes
# nothing and says how a program finds the library: LD_LIBRARY_PATH, an
# rpath, or an ld.so.conf.d entry (see the README, "Installing and linking").
set -eu
prefix=$1 destdir=${2:-}
lib=$(find "$destdir$prefix" -maxdepth 3 -name libmemnotify.so.0 2>/dev/null | head -n 1)
[ -n "$lib" ] || exit 0
dir=$(dirname "$lib")
dir=${dir#"$destdir"}
if [ -n "$destdir" ]; then
	exit 0
fi
# Compare real paths (/lib is /usr/lib on a merged-/usr system).
real=$(readlink -f "$dir")
searched=$(ldconfig -v -N -X 2>/dev/null | sed -n 's,^\(/[^:]*\):.*,\1,p' |
	while read -r d; do readlink -f "$d" || true; done)
if printf '%s\n' "$searched" | grep -qxF "$real"; then
	if [ "$(id -u)" -eq 0 ]; then
		ldconfig
		echo "memnotify: ran ldconfig ($dir is in the loader's search path)"
	else
		echo "memnotify: $dir is in the loader's search path; run 'ldconfig' as root to refresh its cache"
	fi
else
	echo "memnotify: $dir is not in the loader's search path: run programs with" \
	     "LD_LIBRARY_PATH=$dir, link them with -Wl,-rpath,$dir, or add $dir to" \
	     "/etc/ld.so.conf.d/ and run ldconfig"
fi
