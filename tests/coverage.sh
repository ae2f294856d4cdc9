#!/usr/bin/env bash
# memnotify run against strace on real programs: python3 allocating and
# freeing large buffers in threads (and importing extension modules, which
# the dynamic loader maps and protects), the sqlite3 shell on a real
# workload, gcc compiling and linking.  Every matching call must be seen.
set -u
memnotify=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
for t in strace sqlite3 python3 gcc; do
	command -v $t >/dev/null || { echo "skipped: $t is not installed (make check installs it as root)"; exit 77; }
done
# ptrace must be allowed (a container may forbid it).
strace -qq -e trace=none true 2>/dev/null || { echo "skipped: strace cannot trace here"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > alloc.py <<'PY'
import threading, mmap, ctypes, json, decimal, zlib, hashlib, sqlite3
def work():
    for i in range(50):
        b = bytearray((1 + i % 7) << 20)
        m = mmap.mmap(-1, 1 << 20); m[0] = 1; m.close()
        del b
ts = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
cat > work.sql <<'SQL'
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 50000)
INSERT INTO t(b, c) SELECT hex(randomblob(16)), randomblob(200) FROM n;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(length(c)) FROM t;
DELETE FROM t WHERE a % 3 = 0;
VACUUM;
SQL
cat > hello.c <<'C'
#include <stdio.h>
#include <stdlib.h>
int main(void) { char *p = malloc(1 << 20); puts(p ? "hello" : "no"); free(p); return 0; }
C
pass=0 fail=0
run() {
	if python3 "$here/coverage.py" "$memnotify" -- "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
	fi
}
run "$(command -v python3)" alloc.py
run sqlite3 db.sqlite ".read work.sql"
run gcc -O2 hello.c -o hello
echo "coverage: $pass passed, $fail failed"
[ $fail -eq 0 ]
