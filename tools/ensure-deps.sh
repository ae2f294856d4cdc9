#!/bin/sh
# Make sure the Debian packages the build and the tests need are here.
# As root, install the missing ones; otherwise name them and stop.
set -eu
need="cmake ninja-build pkg-config gcc g++ clang libcmocka-dev stress-ng strace sqlite3 python3 libucx-dev libclang-rt-14-dev python3-prometheus-client"
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "memnotify: missing Debian packages:$missing" >&2
	echo "memnotify: install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "memnotify: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends $missing >&2
