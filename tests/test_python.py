# SPDX-License-Identifier: MIT
"""The Python binding (bindings/python/memnotify.py) against the library
just built.

usage: test_python.py LIBMEMNOTIFY MEMNOTIFY_CLI [SANITIZE]

Run by ctest with the system /usr/bin/python3.  Exit 77 (skip) under
sanitizers: their runtime would have to come first in the interpreter.
"""
import ctypes
import errno
import json
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

if len(sys.argv) < 3:
    sys.exit(__doc__)
LIB, CLI = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3 and sys.argv[3]:
    print("skip: a sanitizer build (%s): its runtime would have to be "
          "loaded first into the interpreter" % sys.argv[3])
    sys.exit(77)
del sys.argv[1:]

HERE = os.path.dirname(os.path.abspath(__file__))
BINDING = os.path.join(HERE, "..", "bindings", "python")
os.environ["MEMNOTIFY_LIBRARY"] = LIB
sys.path.insert(0, BINDING)
import memnotify  # noqa: E402

WAIT = 10.0


def page_address(buf):
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


class Binding(unittest.TestCase):

    def test_loads_the_library_asked_for(self):
        self.assertEqual(memnotify.library_path, LIB)
        self.assertRegex(memnotify.version(), r"^\d+\.\d+\.\d+$")

    def test_capabilities_match_the_command(self):
        out = subprocess.run([CLI, "status", "--json"], check=True,
                             stdout=subprocess.PIPE).stdout
        cli = json.loads(out)["capabilities"]
        py = memnotify.capabilities()
        self.assertEqual([c.name for c in py], [c["name"] for c in cli])
        self.assertEqual([c.name for c in py], list(memnotify.CAPABILITIES))
        for p, c in zip(py, cli):
            if p.name == "signal_interpose":
                continue  # differs by loading mode: checked below
            self.assertEqual(p.supported, c["supported"], p.name)
            self.assertEqual(p.error, c["error"], p.name)
        self.assertEqual(memnotify.capability("eventfd").name, "eventfd")
        with self.assertRaises(KeyError):
            memnotify.capability("no_such_capability")

    def test_signal_interpose_says_no_under_ctypes(self):
        # The command is linked with the library: its sigaction() is ours.
        # ctypes loads it RTLD_LOCAL after the C library: it is not.
        c = memnotify.capability("signal_interpose")
        self.assertFalse(c.supported)
        self.assertIn("RTLD_LOCAL", c.detail)
        self.assertIn("LD_PRELOAD", c.detail)

    def test_memory_status(self):
        st = memnotify.memory_status()
        self.assertIn(st.level, (memnotify.LOW, memnotify.NEUTRAL,
                                 memnotify.HIGH))
        self.assertIn(st.level_name, ("low", "neutral", "high"))
        self.assertEqual(st.mechanism_name, "query")
        self.assertGreater(st.limit_bytes, 0)
        self.assertLessEqual(st.available_bytes, st.limit_bytes)
        self.assertEqual(st.usage_bytes, st.limit_bytes - st.available_bytes)
        self.assertEqual((st.low_percent, st.high_percent), (10, 30))
        st = memnotify.memory_status(low_percent=20, high_percent=40)
        self.assertEqual((st.low_percent, st.high_percent), (20, 40))

    def test_level_subscription_initial_level_stats_and_unsubscribe(self):
        before = memnotify.stats()
        got, ev = [], threading.Event()

        def on_level(st):
            got.append((st, threading.get_ident()))
            ev.set()

        sub = memnotify.subscribe_memory(on_level, low_percent=10,
                                         high_percent=30)
        self.addCleanup(lambda: sub.active and sub.unsubscribe())
        self.assertTrue(sub.active)
        self.assertTrue(ev.wait(WAIT), "no initial level within %ss" % WAIT)
        st, tid = got[0]
        self.assertEqual(st.reason, memnotify.INITIAL)
        self.assertEqual(st.previous_level, memnotify.UNKNOWN)
        self.assertIn(st.level_name, ("low", "neutral", "high"))
        # Thread context: memnotify's dispatcher, not this thread.
        self.assertNotEqual(tid, threading.get_ident())
        # The delivery is counted once the callback has returned.
        deadline = time.monotonic() + WAIT
        after = memnotify.stats()
        while (after["events_delivered"] <= before["events_delivered"] and
               time.monotonic() < deadline):
            time.sleep(0.01)
            after = memnotify.stats()
        self.assertGreaterEqual(after["events_delivered"],
                                before["events_delivered"] + 1)
        self.assertGreater(after["samples"], before["samples"])
        self.assertGreaterEqual(after["wakeups"], before["wakeups"] + 1)
        self.assertEqual(set(after), {"events_delivered", "events_lost",
                                      "source_errors", "wakeups", "samples",
                                      "events_coalesced"})
        sub.unsubscribe()
        self.assertFalse(sub.active)
        n = len(got)
        time.sleep(0.3)
        self.assertEqual(len(got), n)
        with self.assertRaises(memnotify.MemnotifyError) as cm:
            sub.unsubscribe()
        self.assertEqual(cm.exception.errno, errno.ENOENT)

    def test_unsubscribe_from_inside_the_callback(self):
        # The initial level may come before subscribe_memory() returns the
        # handle: the callback does not wait for it (it would hold up the
        # dispatcher), it leaves the unsubscribe to the next delivery or
        # to this thread, and the test tells which happened.
        done = threading.Event()
        holder = {}
        lock = threading.Lock()

        def on_level(st):
            with lock:
                sub = holder.get("sub")
            if sub is not None:
                sub.unsubscribe()
                done.set()

        # Own thresholds: a monitor of its own, not one shared with
        # another test's subscription.
        sub = memnotify.subscribe_memory(on_level, low_percent=11,
                                         high_percent=31, poll_min_ms=10,
                                         poll_max_ms=20)
        with lock:
            holder["sub"] = sub
        # A level change may never come: end it from inside a callback of
        # another subscription, which is delivered at once.
        other_done = threading.Event()

        def other(st):
            if sub.active:
                sub.unsubscribe()
            other_done.set()

        with memnotify.subscribe_memory(other, low_percent=12,
                                        high_percent=32):
            self.assertTrue(other_done.wait(WAIT) or done.wait(WAIT))
        self.assertFalse(sub.active)

    def test_with_block_ends_the_subscription(self):
        with memnotify.subscribe_memory(lambda st: None) as sub:
            self.assertTrue(sub.active)
        self.assertFalse(sub.active)

    def test_bad_input_raises_with_the_errno_name(self):
        with self.assertRaises(memnotify.MemnotifyError) as cm:
            memnotify.memory_status(low_percent=50, high_percent=20)
        e = cm.exception
        self.assertIsInstance(e, OSError)
        self.assertEqual(e.errno, errno.EINVAL)
        self.assertEqual(e.errno_name, "EINVAL")
        self.assertIn("EINVAL", str(e))
        self.assertIn("mn_memory_status", str(e))
        with self.assertRaises(memnotify.MemnotifyError) as cm:
            memnotify.subscribe_memory(lambda st: None,
                                       cgroup="/sys/fs/cgroup/no/such/group")
        self.assertEqual(cm.exception.errno_name, "ENOENT")
        with self.assertRaises(ValueError):
            memnotify.memory_status(low_percent=-1)
        with self.assertRaises(TypeError):
            memnotify.subscribe_memory(None)

    def test_bad_memory_event(self):
        got, ev = [], threading.Event()
        buf = mmap.mmap(-1, mmap.PAGESIZE)
        addr = page_address(buf)
        with memnotify.subscribe_badmem(lambda e: (got.append(e), ev.set()),
                                        system=False):
            memnotify.badmem_inject_ao(addr)
            self.assertTrue(ev.wait(WAIT), "no bad-memory event")
        e = got[0]
        self.assertEqual(e.kind, memnotify.BADMEM_PAGE)
        self.assertEqual(e.page.address, addr)
        self.assertEqual(e.page.length, mmap.PAGESIZE)
        self.assertEqual(e.page.scope, memnotify.BADMEM_PROCESS)
        self.assertFalse(e.page.action_required)
        self.assertEqual([p.address for p in
                          memnotify.badmem_query(addr, mmap.PAGESIZE)], [addr])


# A child: a bad-memory subscription (memnotify's SIGBUS handler), then
# faulthandler.enable() (a later sigaction for SIGBUS), then an action-
# optional SIGBUS.  The chain survives exactly when the capability says so.
CHILD = r"""
import ctypes, faulthandler, mmap, sys, threading
sys.path.insert(0, sys.argv[1])
import memnotify
cap = memnotify.capability("signal_interpose")
print("capability", int(cap.supported), cap.detail, flush=True)
ev = threading.Event()
sub = memnotify.subscribe_badmem(lambda e: ev.set(), system=False)
faulthandler.enable()
buf = mmap.mmap(-1, mmap.PAGESIZE)
memnotify.badmem_inject_ao(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
print("survived", int(ev.wait(10)), flush=True)
sub.unsubscribe()
"""


class RangeListeners(unittest.TestCase):
    """watch_range() and listen_ranges() on a real mapping: the events of a
    real mprotect() and munmap() come on a memnotify delivery thread."""

    PROT_READ, PROT_WRITE = 1, 2

    def setUp(self):
        if not (memnotify.capability("vm_libc_patch").supported or
                memnotify.capability("vm_interpose").supported):
            self.skipTest("no hook reaches memnotify here")
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.mmap.restype = ctypes.c_void_p
        self.libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                   ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_long]
        self.libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                       ctypes.c_int]
        self.ps = mmap.PAGESIZE
        self.addr = self.libc.mmap(None, 4 * self.ps,
                                   self.PROT_READ | self.PROT_WRITE,
                                   mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                                   -1, 0)
        self.assertNotEqual(self.addr, ctypes.c_void_p(-1).value)

    def collector(self):
        got, cond = [], threading.Condition()

        def on_vm(ev):
            with cond:
                got.append((ev, threading.get_ident()))
                cond.notify_all()

        def wait_for(pred):
            with cond:
                self.assertTrue(cond.wait_for(
                    lambda: any(pred(e) for e, _ in got), timeout=WAIT),
                    "no such range event within %ss: %r" % (WAIT, got))
                return next((e, t) for e, t in got if pred(e))
        return on_vm, wait_for, got

    def test_watch_and_listener_get_real_mprotect_and_munmap(self):
        a, ps = self.addr, self.ps
        on_w, wait_w, got_w = self.collector()
        on_l, wait_l, _ = self.collector()
        with memnotify.watch_range(a + ps, 2 * ps, on_w) as w, \
                memnotify.listen_ranges(on_l) as li:
            self.assertTrue(w.active and li.active)
            self.assertEqual(self.libc.mprotect(a + ps, ps, self.PROT_READ),
                             0)
            ev, tid = wait_w(lambda e: e.kind == memnotify.VM_PROTECT)
            self.assertEqual(ev.kind_name, "vm.protect")
            self.assertEqual((ev.address, ev.length), (a + ps, ps))
            self.assertEqual(ev.prot, self.PROT_READ)
            self.assertEqual((ev.watch_address, ev.watch_length),
                             (a + ps, 2 * ps))
            self.assertEqual(ev.via, memnotify.VM_VIA_HOOK)
            # Thread context: not the thread that called mprotect().
            self.assertNotEqual(tid, threading.get_ident())
            self.assertEqual(ev.tid, threading.get_native_id())
            ev, tid = wait_l(lambda e: e.kind == memnotify.VM_PROTECT and
                             e.address == a + ps)
            self.assertNotEqual(tid, threading.get_ident())
            # The whole mapping goes: the watch hears of its part, the
            # listener of the call's whole range.
            self.assertEqual(self.libc.munmap(a, 4 * ps), 0)
            ev, _ = wait_w(lambda e: e.kind == memnotify.VM_UNMAP)
            self.assertEqual((ev.address, ev.length), (a + ps, 2 * ps))
            ev, _ = wait_l(lambda e: e.kind == memnotify.VM_UNMAP and
                           e.address == a)
            self.assertEqual(ev.length, 4 * ps)
        self.assertFalse(w.active or li.active)
        n = len(got_w)
        time.sleep(0.2)
        self.assertEqual(len(got_w), n)  # none after unsubscribe
        self.assertFalse(any(e.kind == memnotify.VM_LOST for e, _ in got_w))

    def test_bad_arguments(self):
        with self.assertRaises(memnotify.MemnotifyError) as cm:
            memnotify.watch_range(self.addr, 0, lambda ev: None)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(TypeError):
            memnotify.listen_ranges(None)
        self.libc.munmap(self.addr, 4 * self.ps)


class SignalInterposeTruth(unittest.TestCase):

    def run_child(self, preload):
        env = dict(os.environ)
        if preload:
            env["LD_PRELOAD"] = LIB
        else:
            env.pop("LD_PRELOAD", None)
        return subprocess.run([sys.executable, "-c", CHILD, BINDING],
                              env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)

    def test_ctypes_load_capability_no_and_faulthandler_replaces_chain(self):
        r = self.run_child(preload=False)
        out = r.stdout.decode()
        self.assertIn("capability 0", out)
        # The chain is gone: faulthandler takes the SIGBUS, and the process
        # dies by it.
        self.assertEqual(r.returncode, -signal.SIGBUS, out + r.stderr.decode())
        self.assertNotIn("survived", out)

    def test_preloaded_capability_yes_and_chain_survives(self):
        r = self.run_child(preload=True)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("capability 1", out)
        self.assertIn("survived 1", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
