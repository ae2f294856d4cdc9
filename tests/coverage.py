#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Coverage of `memnotify run` against an independent oracle: strace.

    coverage.py MEMNOTIFY -- PROGRAM [ARGS...]

Runs PROGRAM under `strace -f` and `memnotify run --json` at once.  Every
successful munmap, mremap (move or shrink), mprotect, pkey_mprotect,
discarding madvise, shrinking brk and shmdt that strace shows in a process
after memnotify started in it (its "run.start" line, written with write(2),
which strace sees too) must appear as a memnotify event with the same range.
Calls before that line — the dynamic loader's start-up, before any
constructor runs — are outside the count, and the figure says how many.
Prints the figure and every miss; exits 1 below 100 %.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

PAGE = os.sysconf("SC_PAGE_SIZE")
DISCARD = {"MADV_DONTNEED", "MADV_FREE", "MADV_REMOVE", "MADV_DONTNEED_LOCKED"}
TRACE = ("munmap,mremap,mprotect,pkey_mprotect,madvise,brk,shmdt,write,"
         "execve,clone,clone3,fork,vfork")
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\w+)")


def page_range(addr, length):
    lo = addr & ~(PAGE - 1)
    hi = (addr + length + PAGE - 1) & ~(PAGE - 1)
    return lo, hi - lo


def args_of(s):
    return [a.strip() for a in s.split(",")]


def num(s):
    return int(s, 0)


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__)
        return 2
    memnotify, cmd = sys.argv[1], sys.argv[3:]
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace")
        events = os.path.join(tmp, "events")
        proc = subprocess.run(
            ["strace", "-f", "-qq", "-s", "64", "-e", "trace=" + TRACE,
             "-o", trace, memnotify, "run", "--json", "--output", events,
             "--"] + cmd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print("coverage: the program failed:", proc.returncode,
                  proc.stderr[-2000:])
            return 1
        with open(events) as f:
            evs = [json.loads(l) for l in f if l.strip()]
        with open(trace) as f:
            lines = f.read().splitlines()

    # strace numbers lines by thread id; memnotify events carry both.
    have = {}
    for e in evs:
        if e["event"] == "run.start":
            continue
        key = (e["tid"], e["event"], e["address"], e["length"])
        have[key] = have.get(key, 0) + 1

    tgid = {}              # thread id -> process id
    started = set()        # processes past their run.start
    expected, before, misses = [], 0, []
    brk_now = {}
    for line in lines:
        m = LINE.match(line)
        if not m:
            # An exec that strace printed in two parts still starts a new
            # image (and a new heap) for that process.
            x = re.match(r"^(\d+)\s+(?:execve\(|<\.\.\. execve resumed)", line)
            if x and "= -1" not in line:
                pid = tgid.setdefault(int(x.group(1)), int(x.group(1)))
                started.discard(pid)
                brk_now.pop(pid, None)
            continue
        tid, call, args, ret = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        pid = tgid.setdefault(tid, tid)
        if call in ("clone", "clone3", "fork", "vfork"):
            if not ret.startswith("-") and ret != "?":
                child = num(ret)
                tgid[child] = pid if "CLONE_THREAD" in args else child
            continue
        if call == "execve":
            started.discard(pid)
            brk_now.pop(pid, None)
            continue
        if call == "write":
            if '"event":"run.start"' in args.replace('\\"', '"'):
                started.add(pid)
            continue
        if ret.startswith("-1"):
            continue
        a = args_of(args)
        want = []
        if call == "munmap":
            want.append(("vm.unmap",) + page_range(num(a[0]), num(a[1])))
        elif call in ("mprotect", "pkey_mprotect"):
            want.append(("vm.protect",) + page_range(num(a[0]), num(a[1])))
        elif call == "madvise":
            if a[2] in DISCARD:
                want.append(("vm.discard",) + page_range(num(a[0]), num(a[1])))
        elif call == "mremap":
            old, osz, nsz = num(a[0]), num(a[1]), num(a[2])
            if nsz < osz:
                want.append(("vm.unmap",) + page_range(old + nsz, osz - nsz))
            if num(ret) != old:
                want.append(("vm.move",) + page_range(old, min(osz, nsz)))
        elif call == "brk":
            new = num(ret)
            prev = brk_now.get(pid)
            brk_now[pid] = new
            if prev is not None and a[0] != "NULL" and new < prev:
                want.append(("vm.unmap",) + page_range(new, prev - new))
        elif call == "shmdt":
            continue  # the length is not in strace's line; see test_vmrange
        for w in want:
            if pid not in started:
                before += 1
                continue
            expected.append((tid, call, line, w))

    matched = 0
    for tid, call, line, w in expected:
        key = (tid,) + w
        if have.get(key, 0) > 0:
            have[key] -= 1
            matched += 1
        else:
            misses.append(line)
    total = len(expected)
    pct = 100.0 * matched / total if total else 100.0
    print(f"coverage: {' '.join(cmd)[:60]}: {matched}/{total} calls matched "
          f"({pct:.2f} %); {before} before memnotify started in their "
          f"process (the loader's start-up)")
    for l in misses[:40]:
        print("  miss:", l)
    if len(misses) > 40:
        print(f"  ... {len(misses) - 40} more")
    return 0 if matched == total else 1


if __name__ == "__main__":
    sys.exit(main())
