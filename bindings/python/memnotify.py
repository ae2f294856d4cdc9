# SPDX-License-Identifier: MIT
"""memnotify from Python: the thread-context parts of the native API.

Built on ctypes from the standard library: no build step, one file.  What
it offers:

- memory levels: subscribe_memory(callback, ...) calls ``callback(status)``
  on a memnotify delivery thread (thread context; ctypes takes the GIL
  for it) with the initial level, then on every change;
- memory_status(...): the status now;
- bad-memory events: subscribe_badmem(callback, ...) (thread context);
  badmem_query(); badmem_inject_ao() for tests;
- range events: watch_range(address, length, callback) and
  listen_ranges(callback) call ``callback(event)`` for munmap(),
  mprotect(), mremap(), madvise() ... of a watched range or of any range;
  made with MN_VM_DISPATCH, they run in thread context too: the hooked
  call (in any thread, in a signal handler even) only queues the event in
  a fixed ring, and a memnotify delivery thread runs the callback later —
  after the call went ahead.  A full ring is reported as a VM_LOST event;
- capabilities(), capability(name), stats(), version(), strerror().

What it does not offer, and why: nothing of memnotify's runs Python code in
signal context, so the signal chain (mn_signal_register, the
action-required handlers) is not exposed, nor are synchronous range
callbacks (those without MN_VM_DISPATCH).

Loaded this way (dlopen with RTLD_LOCAL), memnotify does not interpose the
program's sigaction(): capability("signal_interpose") says no, and a later
sigaction() (faulthandler.enable(), for one) replaces memnotify's SIGBUS
handler, which the bad-memory events of this process need.  Run Python with
LD_PRELOAD=libmemnotify.so.0 to keep it.

The library is found, in this order, at $MEMNOTIFY_LIBRARY, in the build
tree next to this file (build/default/libmemnotify.so), by
ctypes.util.find_library("memnotify"), or as "libmemnotify.so.0".

Errors are raised as MemnotifyError, an OSError whose errno is the native
code's errno and whose message names it (e.g. "EINVAL").
"""

import atexit
import ctypes
import ctypes.util
import errno as _errno
import os
import threading
from types import SimpleNamespace

__all__ = [
    "MemnotifyError", "Subscription", "library_path", "version", "strerror",
    "capabilities", "capability", "stats", "memory_status",
    "subscribe_memory", "subscribe_badmem", "badmem_query",
    "badmem_inject_ao", "CAPABILITIES", "LOW", "NEUTRAL", "HIGH", "UNKNOWN",
    "watch_range", "listen_ranges", "VM_UNMAP", "VM_MOVE", "VM_DISCARD",
    "VM_PROTECT", "VM_LOST",
]

# enum mn_memory_level
UNKNOWN, LOW, NEUTRAL, HIGH = 0, 1, 2, 3
# enum mn_memory_reason
INITIAL, CHANGE, ERROR = 1, 2, 3
# mn_memory_opts.flags
MEMORY_NO_PSI, MEMORY_NO_EVENTS, MEMORY_NO_POLL = 1, 2, 4
# mn_badmem_opts.flags, kinds and scopes
BADMEM_EARLY_KILL, BADMEM_NO_SYSTEM = 1, 2
BADMEM_PAGE, BADMEM_LOST = 1, 2
# enum mn_vm_kind, via values, mn_vm_watch flags
VM_UNMAP, VM_MOVE, VM_DISCARD, VM_PROTECT, VM_LOST = 1, 2, 3, 4, 5
VM_VIA_HOOK, VM_VIA_USERFAULTFD = 1, 2
_VM_NO_USERFAULTFD, _VM_DISPATCH = 1, 2
BADMEM_PROCESS, BADMEM_SYSTEM = 1, 2

_u64 = ctypes.c_uint64
_uint = ctypes.c_uint


class _Capability(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("name", ctypes.c_char_p),
                ("supported", ctypes.c_int), ("error", ctypes.c_int),
                ("detail", ctypes.c_char * 160)]


class _Stats(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("events_delivered", _u64),
                ("events_lost", _u64), ("source_errors", _u64),
                ("wakeups", _u64), ("samples", _u64),
                ("events_coalesced", _u64)]


class _MemoryOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("cgroup", ctypes.c_char_p),
                ("low_percent", _uint), ("high_percent", _uint),
                ("hysteresis_percent", _uint), ("psi_stall_us", _uint),
                ("poll_min_ms", _uint), ("poll_max_ms", _uint),
                ("flags", _uint), ("low_bytes", _u64), ("high_bytes", _u64)]


class _MemoryStatus(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("level", ctypes.c_int),
                ("previous_level", ctypes.c_int), ("reason", ctypes.c_int),
                ("error", ctypes.c_int), ("mechanism", _uint),
                ("mechanisms_active", _uint), ("time_usec", _u64),
                ("available_bytes", _u64), ("limit_bytes", _u64),
                ("usage_bytes", _u64), ("physical_bytes", _u64),
                ("load_percent", _uint), ("low_percent", _uint),
                ("high_percent", _uint), ("psi_valid", ctypes.c_int),
                ("psi_some_avg10", ctypes.c_double),
                ("psi_some_avg60", ctypes.c_double),
                ("psi_full_avg10", ctypes.c_double),
                ("psi_full_avg60", ctypes.c_double),
                ("cgroup_version", ctypes.c_int),
                ("cgroup_path", ctypes.c_char * 256),
                ("low_bytes", _u64), ("high_bytes", _u64),
                ("skipped_changes", _u64)]


class _BadPage(ctypes.Structure):
    _fields_ = [("address", _u64), ("length", _u64), ("pfn", _u64),
                ("time_usec", _u64), ("scope", ctypes.c_int),
                ("action_required", ctypes.c_int), ("tid", ctypes.c_int),
                ("si_code", ctypes.c_int)]


class _BadmemEvent(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("kind", ctypes.c_int),
                ("page", _BadPage), ("lost", _u64),
                ("hw_corrupted_bytes", _u64)]


class _BadmemOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("flags", _uint),
                ("system_poll_ms", _uint)]


class _VmEvent(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("kind", ctypes.c_int),
                ("address", _u64), ("length", _u64), ("new_address", _u64),
                ("new_length", _u64), ("prot", ctypes.c_int),
                ("advice", ctypes.c_int), ("via", ctypes.c_int),
                ("late", ctypes.c_int), ("tid", ctypes.c_int),
                ("watch_address", _u64), ("watch_length", _u64),
                ("lost", _u64)]


_VM_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(_VmEvent), ctypes.c_void_p)
_MEMORY_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(_MemoryStatus),
                              ctypes.c_void_p)
_BADMEM_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(_BadmemEvent),
                              ctypes.c_void_p)


def _candidates():
    env = os.environ.get("MEMNOTIFY_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    out = [os.path.join(here, "..", "..", "build", "default",
                        "libmemnotify.so")]
    found = ctypes.util.find_library("memnotify")
    if found:
        out.append(found)
    out.append("libmemnotify.so.0")
    return out


def _load():
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append("%s: no such file" % path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append(str(e))
    raise ImportError("memnotify: cannot load libmemnotify (set "
                      "MEMNOTIFY_LIBRARY to its path): " + "; ".join(errors))


_lib, library_path = _load()


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_version = _fn("mn_version", ctypes.c_char_p)
_strerror = _fn("mn_strerror", ctypes.c_char_p, ctypes.c_int)
_capability = _fn("mn_capability", ctypes.c_int, _uint,
                  ctypes.POINTER(_Capability))
_stats = _fn("mn_stats", ctypes.c_int, ctypes.POINTER(_Stats))
_memory_status = _fn("mn_memory_status", ctypes.c_int,
                     ctypes.POINTER(_MemoryOpts),
                     ctypes.POINTER(_MemoryStatus))
_memory_subscribe = _fn("mn_memory_subscribe", ctypes.c_int,
                        ctypes.POINTER(_MemoryOpts), _MEMORY_CB,
                        ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
_level_name = _fn("mn_memory_level_name", ctypes.c_char_p, ctypes.c_int)
_mechanism_name = _fn("mn_memory_mechanism_name", ctypes.c_char_p, _uint)
_badmem_subscribe = _fn("mn_badmem_subscribe", ctypes.c_int,
                        ctypes.POINTER(_BadmemOpts), _BADMEM_CB,
                        ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
_badmem_query = _fn("mn_badmem_query", ctypes.c_int, ctypes.c_void_p,
                    ctypes.c_size_t, ctypes.POINTER(_BadPage),
                    ctypes.c_size_t)
_badmem_inject = _fn("mn_badmem_inject", ctypes.c_int, ctypes.c_int,
                     ctypes.c_void_p, _uint, ctypes.c_int)
_unsubscribe = _fn("mn_unsubscribe", ctypes.c_int, ctypes.c_void_p)
_vm_watch = _fn("mn_vm_watch", ctypes.c_int, ctypes.c_void_p,
                ctypes.c_size_t, _uint, _VM_CB, ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_void_p))
_vm_listen = _fn("mn_vm_listen", ctypes.c_int, _uint, _VM_CB,
                 ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
_vm_event_name = _fn("mn_vm_event_name", ctypes.c_char_p, ctypes.c_int)

# The capabilities in enum mn_cap order (asking about one probes it, with
# the probe's side effects, so nothing is asked at import).
CAPABILITIES = (
    "meminfo", "psi", "psi_trigger", "cgroup_v1_memory",
    "cgroup_v1_pressure_level", "cgroup_v2_memory", "cgroup_v2_psi",
    "eventfd", "timerfd", "signal_interpose", "memory_failure",
    "mce_early_kill", "patrol_scrubber", "hwpoison_inject",
    "memory_failure_tracepoint", "vm_interpose", "vm_libc_patch",
    "userfaultfd",
)


class MemnotifyError(OSError):
    """A memnotify call failed: .errno is the errno value (positive),
    .strerror memnotify's description, and str() names both, e.g.
    "mn_memory_subscribe: EINVAL: Invalid argument"."""

    def __init__(self, func, code):
        err = -code
        name = _errno.errorcode.get(err, "E?%d" % err)
        desc = _strerror(code).decode()
        super().__init__(err, "%s: %s: %s" % (func, name, desc))
        self.errno_name = name
        self.function = func


def _check(func, code):
    if code < 0:
        raise MemnotifyError(func, code)
    return code


def version():
    """The library's version string, e.g. "0.1.0"."""
    return _version().decode()


def strerror(code):
    """memnotify's description of a return code (negative errno or 0)."""
    return _strerror(code).decode()


def _cap(index):
    c = _Capability(sz=ctypes.sizeof(_Capability))
    _check("mn_capability", _capability(index, ctypes.byref(c)))
    return SimpleNamespace(name=c.name.decode(), supported=bool(c.supported),
                           error=c.error, detail=c.detail.decode())


def capabilities():
    """Every capability, in the library's order: a list of objects with
    .name, .supported (bool), .error (0 or -errno) and .detail (str).
    Probes each (as `memnotify status` does)."""
    return [_cap(i) for i in range(len(CAPABILITIES))]


def capability(name):
    """One capability by its name ("psi_trigger", "signal_interpose", ...);
    KeyError for an unknown name."""
    try:
        index = CAPABILITIES.index(name)
    except ValueError:
        raise KeyError(name) from None
    return _cap(index)


def stats():
    """The process-wide counters: a dict of events_delivered, events_lost,
    source_errors, wakeups, samples, events_coalesced."""
    s = _Stats(sz=ctypes.sizeof(_Stats))
    _check("mn_stats", _stats(ctypes.byref(s)))
    return {f: getattr(s, f) for f, _ in _Stats._fields_ if f != "sz"}


def _memory_opts(cgroup, low_percent, high_percent, hysteresis_percent,
                 psi_stall_us, poll_min_ms, poll_max_ms, flags, low_bytes,
                 high_bytes):
    for k, v in (("low_percent", low_percent), ("high_percent", high_percent),
                 ("hysteresis_percent", hysteresis_percent),
                 ("psi_stall_us", psi_stall_us), ("poll_min_ms", poll_min_ms),
                 ("poll_max_ms", poll_max_ms), ("flags", flags),
                 ("low_bytes", low_bytes), ("high_bytes", high_bytes)):
        if not isinstance(v, int) or v < 0:
            raise ValueError("%s must be a non-negative int, not %r" % (k, v))
    o = _MemoryOpts(sz=ctypes.sizeof(_MemoryOpts))
    o.cgroup = os.fsencode(cgroup) if cgroup else None
    o.low_percent, o.high_percent = low_percent, high_percent
    o.hysteresis_percent, o.psi_stall_us = hysteresis_percent, psi_stall_us
    o.poll_min_ms, o.poll_max_ms, o.flags = poll_min_ms, poll_max_ms, flags
    o.low_bytes, o.high_bytes = low_bytes, high_bytes
    return o


def _status(st):
    fields = {f: getattr(st, f) for f, _ in _MemoryStatus._fields_
              if f not in ("sz", "cgroup_path")}
    fields["cgroup_path"] = os.fsdecode(st.cgroup_path)
    fields["level_name"] = _level_name(st.level).decode()
    fields["previous_level_name"] = _level_name(st.previous_level).decode()
    fields["mechanism_name"] = _mechanism_name(st.mechanism).decode()
    return SimpleNamespace(**fields)


def memory_status(cgroup=None, low_percent=0, high_percent=0,
                  hysteresis_percent=0, psi_stall_us=0, poll_min_ms=0,
                  poll_max_ms=0, flags=0, low_bytes=0, high_bytes=0):
    """Sample the memory status now (mn_memory_status()).  Returns an object
    with the fields of struct mn_memory_status (bytes in *_bytes, percent in
    *_percent) plus level_name, previous_level_name, mechanism_name.
    Raises MemnotifyError (EINVAL, ENOENT, EACCES, ...)."""
    o = _memory_opts(cgroup, low_percent, high_percent, hysteresis_percent,
                     psi_stall_us, poll_min_ms, poll_max_ms, flags, low_bytes,
                     high_bytes)
    st = _MemoryStatus(sz=ctypes.sizeof(_MemoryStatus))
    _check("mn_memory_status", _memory_status(ctypes.byref(o),
                                              ctypes.byref(st)))
    return _status(st)


# Live subscriptions, so that exit ends them before the interpreter goes.
_live = set()
_live_lock = threading.Lock()
# Callback thunks of subscriptions ended from inside a callback: memnotify
# frees the handle only after the running call returns, so the thunk must
# outlive it; kept for the life of the process (a few hundred bytes each).
_retired = []
_in_callback = threading.local()


def _guarded(fn):
    """Run @fn(*args) as a callback: mark the thread as inside one."""
    def call(*args):
        _in_callback.depth = getattr(_in_callback, "depth", 0) + 1
        try:
            fn(*args)
        finally:
            _in_callback.depth -= 1
    return call


class Subscription:
    """A memnotify subscription.  unsubscribe() (or leaving a with block)
    ends it: from outside a callback it returns once the callback cannot
    run any more; from inside one it does not wait."""

    def __init__(self, kind, thunk):
        self.kind = kind
        self._thunk = thunk
        self._handle = ctypes.c_void_p()

    @property
    def active(self):
        return self._handle.value is not None

    def unsubscribe(self):
        h = self._handle.value
        if h is None:
            raise MemnotifyError("mn_unsubscribe", -_errno.ENOENT)
        self._handle.value = None
        with _live_lock:
            _live.discard(self)
        # ctypes releases the GIL for the call: the dispatcher can finish
        # a callback that waits for it.
        code = _unsubscribe(h)
        if getattr(_in_callback, "depth", 0):
            _retired.append(self._thunk)
        self._thunk = None
        _check("mn_unsubscribe", code)

    close = unsubscribe

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.active:
            self.unsubscribe()

    def __repr__(self):
        return "<memnotify.Subscription %s %s>" % (
            self.kind, "active" if self.active else "ended")


def _register(sub):
    with _live_lock:
        _live.add(sub)
    return sub


def subscribe_memory(callback, cgroup=None, low_percent=0, high_percent=0,
                     hysteresis_percent=0, psi_stall_us=0, poll_min_ms=0,
                     poll_max_ms=0, flags=0, low_bytes=0, high_bytes=0):
    """Call ``callback(status)`` with the memory level: once soon with the
    current level (status.reason == INITIAL), then on every change (CHANGE),
    and once with ERROR if the source fails.  The callback runs on a
    memnotify delivery thread (thread context); a slow one holds up no
    other subscriber and gets, when it returns, the newest status with
    status.skipped_changes counting the changes folded into it.
    The options are those of struct mn_memory_opts (0: the default).
    Returns a Subscription; raises MemnotifyError (EINVAL for bad
    thresholds, ENOENT for a missing cgroup, ...)."""
    if not callable(callback):
        raise TypeError("callback must be callable")
    o = _memory_opts(cgroup, low_percent, high_percent, hysteresis_percent,
                     psi_stall_us, poll_min_ms, poll_max_ms, flags, low_bytes,
                     high_bytes)

    def on_level(st, ctx):
        callback(_status(st.contents))

    sub = Subscription("memory", _MEMORY_CB(_guarded(on_level)))
    _check("mn_memory_subscribe",
           _memory_subscribe(ctypes.byref(o), sub._thunk, None,
                             ctypes.byref(sub._handle)))
    return _register(sub)


def _page(p):
    return SimpleNamespace(address=p.address, length=p.length, pfn=p.pfn,
                           time_usec=p.time_usec, scope=p.scope,
                           action_required=bool(p.action_required),
                           tid=p.tid, si_code=p.si_code)


def subscribe_badmem(callback, early_kill=False, system=True,
                     system_poll_ms=0):
    """Call ``callback(event)`` for each bad page recorded (event.kind ==
    BADMEM_PAGE, event.page with address, length, scope, ...), each rise of
    the machine's HardwareCorrupted (scope BADMEM_SYSTEM) and a table
    overflow (BADMEM_LOST, event.lost).  Thread context (a delivery
    thread).
    Returns a Subscription; raises MemnotifyError."""
    if not callable(callback):
        raise TypeError("callback must be callable")
    o = _BadmemOpts(sz=ctypes.sizeof(_BadmemOpts))
    o.flags = (BADMEM_EARLY_KILL if early_kill else 0) | \
        (0 if system else BADMEM_NO_SYSTEM)
    o.system_poll_ms = system_poll_ms

    def on_bad(ev, ctx):
        e = ev.contents
        callback(SimpleNamespace(kind=e.kind, page=_page(e.page), lost=e.lost,
                                 hw_corrupted_bytes=e.hw_corrupted_bytes))

    sub = Subscription("badmem", _BADMEM_CB(_guarded(on_bad)))
    _check("mn_badmem_subscribe",
           _badmem_subscribe(ctypes.byref(o), sub._thunk, None,
                             ctypes.byref(sub._handle)))
    return _register(sub)


def _vm_thunk(callback):
    def on_vm(ev, ctx):
        e = ev.contents
        callback(SimpleNamespace(
            kind=e.kind, kind_name=_vm_event_name(e.kind).decode(),
            address=e.address, length=e.length, new_address=e.new_address,
            new_length=e.new_length, prot=e.prot, advice=e.advice,
            via=e.via, late=bool(e.late), tid=e.tid,
            watch_address=e.watch_address, watch_length=e.watch_length,
            lost=e.lost))
    return _VM_CB(_guarded(on_vm))


def watch_range(address, length, callback, userfaultfd=True):
    """Call ``callback(event)`` for every change to [address, address +
    length) (widened to whole pages): event.kind is VM_UNMAP, VM_MOVE,
    VM_DISCARD, VM_PROTECT (kind_name "vm.unmap", ...), with .address and
    .length (the part of the range the call touched), .prot (PROTECT),
    .advice (DISCARD), .new_address/.new_length (MOVE), .tid (the calling
    thread), .via (VM_VIA_HOOK or VM_VIA_USERFAULTFD); or VM_LOST with
    .lost, the events dropped because the subscription's ring (256 events)
    was full.  Thread context (a memnotify delivery thread), never the
    thread making the call nor a signal handler: the callback runs after the
    call went ahead, so treat what the range held as stale from the call on.
    userfaultfd=False: no kernel safety net for raw system calls.
    Returns a Subscription; raises MemnotifyError (EINVAL for length 0 or
    a range that wraps)."""
    if not callable(callback):
        raise TypeError("callback must be callable")
    flags = _VM_DISPATCH | (0 if userfaultfd else _VM_NO_USERFAULTFD)
    sub = Subscription("vm-watch", _vm_thunk(callback))
    _check("mn_vm_watch", _vm_watch(address, length, flags, sub._thunk, None,
                                    ctypes.byref(sub._handle)))
    return _register(sub)


def listen_ranges(callback):
    """Call ``callback(event)`` for every hooked munmap(), mprotect(),
    mremap(), madvise(), ... anywhere in the process (the events of
    watch_range(), for the call's whole range).  Thread context, as for
    watch_range(); the interpreter's own allocator makes such calls too.
    Returns a Subscription; raises MemnotifyError."""
    if not callable(callback):
        raise TypeError("callback must be callable")
    sub = Subscription("vm-listener", _vm_thunk(callback))
    _check("mn_vm_listen", _vm_listen(_VM_DISPATCH, sub._thunk, None,
                                      ctypes.byref(sub._handle)))
    return _register(sub)


def badmem_query(address, length, max_pages=64):
    """The known bad ranges overlapping [address, address + length): a list
    of page objects (at most max_pages)."""
    out = (_BadPage * max_pages)()
    n = _check("mn_badmem_query",
               _badmem_query(address, length, out, max_pages))
    return [_page(out[i]) for i in range(min(n, max_pages))]


def badmem_inject_ao(address, lsb=0):
    """Queue a real SIGBUS with BUS_MCEERR_AO (action optional) for
    @address to the calling thread, as the kernel sends for poison found in
    a mapped page: for testing without poisoned hardware.  The process goes
    on; a subscribe_badmem() callback hears of it."""
    _check("mn_badmem_inject", _badmem_inject(0, address, lsb, 0))


@atexit.register
def _end_all():
    # Before the interpreter is finalised: no callback may start after.
    with _live_lock:
        subs = list(_live)
    for s in subs:
        try:
            s.unsubscribe()
        except MemnotifyError:
            pass
