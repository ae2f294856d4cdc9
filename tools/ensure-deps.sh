#!/bin/sh
# Make sure the Debian packages a target needs are here.
#   tools/ensure-deps.sh --build   what building and installing need (4)
#   tools/ensure-deps.sh --test    that, plus what the tests, benchmarks,
#                                  sanitizer builds and fuzzers need (15 in all)
#   tools/ensure-deps.sh --vm      what the VM test bed (make check-vm) needs:
#                                  QEMU, Debian's 6.1 kernel, static busybox
# As root, install the missing ones; otherwise name them and stop.
set -eu
build="cmake ninja-build pkg-config gcc"
vm="qemu-system-x86 linux-image-amd64 busybox-static cpio"
test="g++ clang libcmocka-dev stress-ng strace sqlite3 python3 libucx-dev liburing-dev libclang-rt-14-dev python3-prometheus-client"
case "${1:---test}" in
--build) need=$build ;;
--test) need="$build $test" ;;
--vm) need=$vm ;;
*) echo "usage: $0 [--build|--test|--vm]" >&2; exit 2 ;;
esac
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
