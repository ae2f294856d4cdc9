#!/usr/bin/env bash
# tools/check-wine-headers.sh CFLAGS_AND_LIBS... — compile and run
# tests/win32_after_wine.c and tests/win32_after_wine.cpp with Wine's
# <windows.h> first, against Debian's
# libwine-dev headers (only the package's files are unpacked, nothing is
# installed).  Exit 77 with the reason if the headers cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inc=
for d in /usr/include/wine/wine/windows /usr/include/wine/windows; do
	[ -f "$d/windows.h" ] && inc=$d && break
done
if [ -z "$inc" ]; then
	if ! (cd "$tmp" && apt-get download libwine-dev >/dev/null 2>&1); then
		echo "skipped: Wine's headers are not installed and libwine-dev cannot be downloaded"
		exit 77
	fi
	dpkg -x "$tmp"/libwine-dev_*.deb "$tmp/x"
	inc=$(dirname "$(find "$tmp/x" -path '*windows/windows.h' | head -n1)")
fi
echo "Wine headers: $inc"
cc -std=gnu11 -Wall -Wextra -Werror -I"$inc" tests/win32_after_wine.c "$@" -o "$tmp/after_wine"
"$tmp/after_wine"
c++ -Wall -Wextra -Werror -I"$inc" tests/win32_after_wine.cpp "$@" -o "$tmp/after_wine_cxx"
"$tmp/after_wine_cxx"
echo "win32.h after Wine's windows.h: built and ran (C and C++)"
