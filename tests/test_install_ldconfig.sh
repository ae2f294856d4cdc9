#!/usr/bin/env bash
# tools/post-install-ldconfig.sh decides as the README says: ldconfig runs
# only as root, without DESTDIR, for a library in a directory the loader
# searches; otherwise nothing changes and the message says what to do.
# A stub ldconfig on PATH lists the searched directories and records a run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
script=$here/../tools/post-install-ldconfig.sh
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

d=$(mktemp -d); chmod 755 "$d"
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/bin" "$d/searched/lib" "$d/other/lib" "$d/stage/searched/lib"
for p in "$d/searched/lib" "$d/other/lib" "$d/stage/searched/lib"; do
	: >"$p/libmemnotify.so.0"
done
cat >"$d/bin/ldconfig" <<STUB
#!/bin/sh
case " \$* " in
*" -v "*) echo "$d/searched/lib: (from stub)"; echo "	libc.so.6 -> libc.so.6" ;;
*) echo ran >>"$d/ran" ;;
esac
STUB
chmod 755 "$d/bin/ldconfig"
export PATH="$d/bin:$PATH"

ran() { [ -f "$d/ran" ] && rm -f "$d/ran"; }

if [ "$(id -u)" -eq 0 ]; then
	out=$("$script" "$d/searched" "" 2>&1)
	if ran && grep -q "ran ldconfig" <<<"$out"; then
		ok "root, no DESTDIR, searched directory: ldconfig runs"
	else
		bad "root, searched directory: out='$out'"
	fi
else
	echo "skip the root case: not root"
fi
out=$("$script" "$d/other" "" 2>&1)
if ! ran && grep -q "LD_LIBRARY_PATH=$d/other/lib" <<<"$out" &&
	grep -q -- "-Wl,-rpath,$d/other/lib" <<<"$out"; then
	ok "a directory the loader does not search: no ldconfig, the ways to find it named"
else
	bad "other directory: out='$out'"
fi
out=$("$script" /searched "$d/stage" 2>&1)
if ! ran && [ -z "$out" ]; then
	ok "DESTDIR: no ldconfig, nothing said"
else
	bad "DESTDIR: out='$out'"
fi
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		env PATH="$PATH" "$script" "$d/searched" "" 2>&1)
	if ! ran && grep -q "run 'ldconfig' as root" <<<"$out"; then
		ok "not root, searched directory: no ldconfig, says to run it as root"
	else
		bad "not root: out='$out'"
	fi
fi
echo "test_install_ldconfig: $pass passed, $fail failed"
[ $fail -eq 0 ]
