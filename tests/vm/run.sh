#!/usr/bin/env bash
# The VM test bed: boot a second kernel (Debian's 6.1 by default) under
# QEMU and run tests inside it, on real cgroup v2 and real memory failure.
#
#   tests/vm/run.sh BUILD_DIR [SUITE]
#     SUITE  "vm"    (default) the tests labelled "vm": real poison, inject,
#                    cgroup v2, $MEMORY_PRESSURE_WATCH, the guest's status
#            "check" the whole ctest suite of BUILD_DIR (make check-vm-full)
#            "bench" pressure_latency in the guest (v2 table)
#
# The guest is a busybox initramfs (busybox, the kernel modules it needs,
# one init script) whose root becomes this machine's root, shared
# read-only over virtio-9p with a tmpfs overlay on top: the build, its
# shared libraries and every Debian package are where the host has them,
# at the same paths, and nothing is copied.  A second 9p share (read-write)
# brings the results back: the guest's log, exit code and outputs land in
# $MN_VM_OUT (default BUILD_DIR/vm).  The serial console is printed live.
#
# Exit: 0 all passed; 1 a test failed, the guest did not finish or timed
# out; 77 (ctest's skip code) when this machine cannot run the VM (no
# QEMU, no kernel, no busybox), with the reason.
# Environment: MN_VM_KERNEL (vmlinuz), MN_VM_TIMEOUT (seconds, default 300
# for "vm", 1800 for "check"), MN_VM_MEM (MiB, default 1024), MN_VM_SMP (2),
# MN_VM_CTEST_ARGS (more ctest arguments in the guest, e.g. "-R test_inject"),
# MN_VM_TIMEOUT_SCALE (suite "check": each test's time limit is multiplied
# by it in the guest; default 10 under TCG, 1 with KVM), MN_VM_ACCEL (tcg or
# kvm; default kvm when a probe boot shows it runs a guest, else tcg).
set -euo pipefail

build=$(realpath "${1:?usage: $0 BUILD_DIR [vm|check|bench]}")
suite=${2:-vm}
src=$(realpath "$(dirname "$0")/../..")
skip() { echo "check-vm: skipped: $*" >&2; exit 77; }
case $suite in vm | check | bench) ;; *) echo "unknown suite $suite" >&2; exit 2 ;; esac

qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "no qemu-system-x86_64 (tools/ensure-deps.sh --vm installs qemu-system-x86)"
[ "$(uname -m)" = x86_64 ] || skip "the VM bed boots an x86-64 guest; this is $(uname -m)"
kernel=${MN_VM_KERNEL:-$(ls -1 /boot/vmlinuz-6.1.* 2>/dev/null | sort -V | tail -n1 || true)}
[ -n "$kernel" ] || kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$kernel" ] && [ -r "$kernel" ] ||
	skip "no readable guest kernel (/boot/vmlinuz-6.1.*; Debian bookworm's linux-image-amd64, or set MN_VM_KERNEL)"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -d "$moddir" ] || skip "no modules for $kver in $moddir"
busybox=
for b in /bin/busybox /usr/bin/busybox; do
	[ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1 && { busybox=$b; break; }
done
[ -n "$busybox" ] || skip "no static busybox (busybox-static)"
command -v cpio >/dev/null || skip "no cpio to pack the initramfs"
[ -x "$build/bin/memnotify" ] || { echo "check-vm: no $build/bin/memnotify: build first" >&2; exit 1; }

out=${MN_VM_OUT:-$build/vm}
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# --- the initramfs -------------------------------------------------------
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,host,rw,newroot,mod}
cp "$busybox" "$root/bin/busybox"
: >"$root/modules.list"
for m in virtio_pci 9pnet_virtio 9p overlay hwpoison_inject; do
	modprobe -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" "$root/mod/"
	basename "$ko" >>"$root/modules.list"
done
cp "$src/tests/vm/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initrd.gz"

# What the guest runs, read by tests/vm/guest.sh through the results share.
cat >"$out/config" <<EOF
MN_SRC='$src'
MN_BUILD='$build'
MN_SUITE='$suite'
MN_OUT='$out'
MN_CTEST_ARGS='${MN_VM_CTEST_ARGS:-}'
EOF

# --- boot --------------------------------------------------------------
# /dev/kvm can be there and still run no guest (seen: nested in a microVM,
# KVM refused `-cpu max`'s MSR 0x10a and QEMU aborted; without that MSR the
# guest printed nothing).  So KVM is used only when the kernel prints its
# first line under it within 8 s; MN_VM_ACCEL=tcg|kvm decides instead.
kvm_boots() {
	local log=$work/kvm-probe.log pid i
	[ -w /dev/kvm ] || return 1
	"$qemu" -machine q35,accel=kvm -cpu max -m 256 -nographic -no-reboot \
		-nodefaults -serial stdio -monitor none -kernel "$kernel" \
		-append "console=ttyS0 earlyprintk=serial panic=-1" \
		</dev/null >"$log" 2>&1 &
	pid=$!
	for i in $(seq 40); do
		grep -q "Linux version" "$log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	grep -q "Linux version" "$log"
}
accel=${MN_VM_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	if kvm_boots; then
		accel=kvm
	elif [ -e /dev/kvm ]; then
		echo "check-vm: /dev/kvm runs no guest here (tests/vm/run.sh kvm_boots): tcg"
	fi
fi
scale=${MN_VM_TIMEOUT_SCALE:-$([ $accel = kvm ] && echo 1 || echo 10)}
echo "MN_TIMEOUT_SCALE='$scale'" >>"$out/config"
case $suite in check) deftime=3600 ;; *) deftime=300 ;; esac
timeout=${MN_VM_TIMEOUT:-$deftime}
echo "check-vm: kernel $kver, $accel, ${MN_VM_MEM:-1024} MiB, ${MN_VM_SMP:-2} CPUs, suite $suite, timeout ${timeout}s"
start=$(date +%s)
: >"$out/console.log" # before tail follows it
"$qemu" -machine q35,accel=$accel -cpu max -m "${MN_VM_MEM:-1024}" -smp "${MN_VM_SMP:-2}" \
	-nographic -no-reboot -nodefaults -serial stdio -monitor none \
	-kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet loglevel=4 panic=-1 psi=1 mn.out=$out" \
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev local,id=results,path="$out",security_model=none \
	-device virtio-9p-pci,fsdev=results,mount_tag=results \
	</dev/null >"$out/console.log" 2>&1 &
qpid=$!
tail -n +1 -f "$out/console.log" --pid=$qpid &
tpid=$!
deadline=$((start + timeout))
while kill -0 "$qpid" 2>/dev/null; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "check-vm: FAIL: the guest did not finish within ${timeout}s" >&2
		kill "$qpid"; wait "$qpid" 2>/dev/null || true; qpid=
		wait "$tpid" 2>/dev/null || true
		exit 1
	fi
	sleep 1
done
wait "$qpid" || true
qpid=
wait "$tpid" 2>/dev/null || true
secs=$(($(date +%s) - start))
echo "check-vm: the guest ran for ${secs}s (boot to power-off)"
echo "$secs" >"$out/seconds"
if [ ! -f "$out/exit" ]; then
	echo "check-vm: FAIL: the guest stopped without an exit code (see $out/console.log)" >&2
	exit 1
fi
rc=$(cat "$out/exit")
[ -f "$out/summary" ] && cat "$out/summary"
if [ "$rc" != 0 ]; then
	echo "check-vm: FAIL: the guest's tests exited $rc (log: $out/console.log)" >&2
	exit 1
fi
echo "check-vm: passed"
