/* SPDX-License-Identifier: MIT */
/*
 * memnotify's IHostMemoryManager (the CLR hosting interface), one per
 * process: RegisterMemoryNotificationCallback over mn_memory_subscribe(),
 * GetMemoryLoad over mn_memory_status(), and the Virtual* methods over
 * mmap/munmap/mprotect/madvise (which the range-invalidation hooks see).
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "face.h"

const IID MN_IID_IUnknown = {
	0x00000000, 0x0000, 0x0000, { 0xC0, 0, 0, 0, 0, 0, 0, 0x46 }
};
const IID MN_IID_IHostMemoryManager = {
	0x7BC698D1, 0xF9E3, 0x4460, { 0x9C, 0xDE, 0xD0, 0x42, 0x48, 0xE9, 0xFA, 0x25 }
};
const IID MN_IID_IHostMalloc = {
	0x1831991C, 0xCC53, 0x4A31, { 0xB2, 0x18, 0x04, 0xE9, 0x10, 0x44, 0x64, 0x79 }
};
const IID MN_IID_ICLRMemoryNotificationCallback = {
	0x47EB8E57, 0x0846, 0x4546, { 0xAF, 0x76, 0x6F, 0x42, 0xFC, 0xFC, 0x26, 0x49 }
};

struct clrreg {
	struct clrreg *next;
	ICLRMemoryNotificationCallback *cb;
	mn_sub *sub;
};

/*
 * The face's own VirtualAlloc allocations: VirtualFree(MEM_RELEASE) needs
 * the size, and VirtualQuery the allocation's bounds (the kernel merges
 * neighbouring mappings of the same protection into one line of
 * /proc/self/maps) and which pages are committed (a committed
 * PAGE_NOACCESS page and a reserved one are both PROT_NONE).
 *
 * VirtualQuery must not take a lock (the CLR calls it with other threads
 * suspended, maybe inside the writer), so readers walk this list with no
 * lock and no allocation: nodes are pushed at the head and never freed; a
 * released node gets base 0 and may be reused by a later allocation that
 * fits its bitmap.  Writers hold host.lock.  A reader racing a release or
 * a reuse of the very node it reads may see the old or the new
 * allocation's bounds (it checks that base did not change), as a racing
 * VirtualQuery on Windows sees either state.
 */
struct region {
	struct region *_Atomic next;  /* fixed once published */
	_Atomic uintptr_t base;       /* 0: free for reuse */
	_Atomic size_t size;
	_Atomic DWORD protect;        /* AllocationProtect */
	size_t cap;                   /* pages the bitmap holds; fixed */
	_Atomic uint64_t committed[]; /* a bit per page */
};

static const IHostMemoryManagerVtbl vtbl;

static struct {
	IHostMemoryManager iface;
	_Atomic ULONG refs;
	pthread_mutex_t lock;
	struct clrreg *regs;                /* lock */
	struct region *_Atomic regions;     /* writers: lock; readers: none */
} host = { .iface = { &vtbl }, .lock = PTHREAD_MUTEX_INITIALIZER };

/* fork() takes the lock (core.c's atfork handlers): a child never
   inherits it held. */
__attribute__((constructor)) static void host_init(void)
{
	mn__lock_register(&host.lock, MN__RANK_FACE);
}

#define GRANULARITY ((uintptr_t)64 * 1024) /* Windows' allocation granularity */

static bool page_committed(struct region *r, uintptr_t page, size_t pg)
{
	size_t i = (page - atomic_load(&r->base)) / pg;

	if (i >= r->cap)
		return false;
	return atomic_load_explicit(&r->committed[i / 64], memory_order_relaxed) >>
		       (i % 64) & 1;
}

/* Mark pages [lo, hi) of @r committed or not (lock held). */
static void set_committed(struct region *r, uintptr_t lo, uintptr_t hi, size_t pg,
			  bool on)
{
	uintptr_t base = atomic_load(&r->base);

	for (uintptr_t a = lo; a < hi; a += pg) {
		size_t i = (a - base) / pg;
		uint64_t bit = 1ull << (i % 64);
		if (on)
			atomic_fetch_or(&r->committed[i / 64], bit);
		else
			atomic_fetch_and(&r->committed[i / 64], ~bit);
	}
}

/* The live allocation holding @a (any address in it, or its base only):
   lock-free, allocation-free; or NULL.  *@base and *@size are its
   bounds as read. */
static struct region *region_find(uintptr_t a, bool base_only, uintptr_t *base,
				  size_t *size)
{
	for (struct region *r = atomic_load_explicit(&host.regions, memory_order_acquire);
	     r; r = atomic_load_explicit(&r->next, memory_order_acquire)) {
		uintptr_t b = atomic_load_explicit(&r->base, memory_order_acquire);
		size_t n = atomic_load(&r->size);
		if (!b || (base_only ? a != b : a < b || a - b >= n))
			continue;
		if (atomic_load(&r->base) != b)
			continue; /* released (or reused) while read */
		*base = b;
		*size = n;
		return r;
	}
	return NULL;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static bool same_iid(REFIID a, const IID *b)
{
	return !memcmp(a, b, sizeof(*b));
}

static HRESULT hm_query_interface(IHostMemoryManager *This, REFIID riid, void **ppv)
{
	if (!riid || !ppv)
		return E_POINTER;
	if (same_iid(riid, &MN_IID_IUnknown) ||
	    same_iid(riid, &MN_IID_IHostMemoryManager)) {
		This->lpVtbl->AddRef(This);
		*ppv = This;
		return S_OK;
	}
	*ppv = NULL;
	return E_NOINTERFACE;
}

static ULONG hm_add_ref(IHostMemoryManager *This)
{
	(void)This;
	return atomic_fetch_add(&host.refs, 1) + 1;
}

static ULONG hm_release(IHostMemoryManager *This)
{
	struct clrreg *r;
	ULONG left;

	(void)This;
	left = atomic_fetch_sub(&host.refs, 1) - 1;
	if (left)
		return left;
	/* The last reference: end every registration and drop its
	   reference on the callback object. */
	pthread_mutex_lock(&host.lock);
	r = host.regs;
	host.regs = NULL;
	pthread_mutex_unlock(&host.lock);
	while (r) {
		struct clrreg *next = r->next;
		mn_unsubscribe(r->sub);
		r->cb->lpVtbl->Release(r->cb);
		free(r);
		r = next;
	}
	return 0;
}

static HRESULT hm_create_malloc(IHostMemoryManager *This, DWORD type, IHostMalloc **pp)
{
	(void)This;
	return mn__w32_create_malloc(type, pp);
}

/* Record a new allocation (lock taken here).  0 or -ENOMEM. */
static int region_add(uintptr_t base, size_t size, DWORD protect, bool commit)
{
	size_t pg = page_size(), pages = size / pg, words = (pages + 63) / 64;
	struct region *r, *fresh = NULL;

	for (;;) {
		pthread_mutex_lock(&host.lock);
		for (r = atomic_load(&host.regions); r; r = atomic_load(&r->next))
			if (!atomic_load(&r->base) && r->cap >= pages)
				break;
		if (r || fresh)
			break;
		pthread_mutex_unlock(&host.lock);
		fresh = calloc(1, sizeof(*fresh) + words * sizeof(fresh->committed[0]));
		if (!fresh)
			return -ENOMEM;
		fresh->cap = pages;
	}
	bool is_new = !r;
	if (is_new) {
		r = fresh;
		fresh = NULL;
	}
	atomic_store(&r->size, size);
	atomic_store(&r->protect, protect);
	for (size_t i = 0; i < (r->cap + 63) / 64; i++)
		atomic_store(&r->committed[i], 0);
	atomic_store_explicit(&r->base, base, memory_order_release);
	if (commit)
		set_committed(r, base, base + size, pg, true);
	if (is_new) {
		/* Publish the new node at the head. */
		atomic_store(&r->next, atomic_load(&host.regions));
		atomic_store_explicit(&host.regions, r, memory_order_release);
	}
	pthread_mutex_unlock(&host.lock);
	free(fresh);
	return 0;
}

static HRESULT hm_virtual_alloc(IHostMemoryManager *This, void *addr, SIZE_T size,
				DWORD type, DWORD protect,
				EMemoryCriticalLevel level, void **out)
{
	int prot = mn__w32_prot_of_page(protect);
	size_t pg = page_size();
	uintptr_t lo, hi, base;
	size_t rsize;
	void *p;

	(void)This;
	(void)level;
	if (!out)
		return E_POINTER;
	*out = NULL;
	if (!size || prot < 0 ||
	    (type & ~(DWORD)(MEM_COMMIT | MEM_RESERVE | MEM_RESET | 0x00100000 /* MEM_TOP_DOWN */)))
		return E_INVALIDARG;
	if ((uintptr_t)addr + size < (uintptr_t)addr ||
	    (uintptr_t)addr + size > UINTPTR_MAX - GRANULARITY)
		return E_INVALIDARG;
	if (type & MEM_RESET) {
		/* The contents are no longer needed: discard them. */
		if (!addr || (type & (MEM_COMMIT | MEM_RESERVE)))
			return E_INVALIDARG;
		lo = ((uintptr_t)addr + pg - 1) & ~(uintptr_t)(pg - 1);
		hi = ((uintptr_t)addr + size) & ~(uintptr_t)(pg - 1);
		if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED))
			return E_INVALIDARG;
		*out = addr;
		return S_OK;
	}
	if (!(type & (MEM_COMMIT | MEM_RESERVE)))
		return E_INVALIDARG;
	hi = ((uintptr_t)addr + size + pg - 1) & ~(uintptr_t)(pg - 1);
	if (!(type & MEM_RESERVE) && addr) {
		/* Commit part of a reservation: [addr, addr + size) widened
		   to pages, wholly inside one of this face's allocations. */
		struct region *r;
		lo = (uintptr_t)addr & ~(uintptr_t)(pg - 1);
		r = region_find(lo, false, &base, &rsize);
		if (!r || hi - base > rsize)
			return E_INVALIDARG;
		if (mprotect((void *)lo, hi - lo, prot))
			return errno == ENOMEM ? E_OUTOFMEMORY : E_FAIL;
		pthread_mutex_lock(&host.lock);
		if (atomic_load(&r->base) == base)
			set_committed(r, lo, hi, pg, true);
		pthread_mutex_unlock(&host.lock);
		*out = (void *)lo;
		return S_OK;
	}
	/* Reserve (and maybe commit).  Windows rounds a given address down to
	   its allocation granularity; MEM_COMMIT alone with no address
	   reserves and commits. */
	lo = (uintptr_t)addr & ~(GRANULARITY - 1);
	rsize = addr ? hi - lo : ((size + pg - 1) & ~(pg - 1));
	p = mmap((void *)lo, rsize, (type & MEM_COMMIT) ? prot : PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			 (addr ? MAP_FIXED_NOREPLACE : 0),
		 -1, 0);
	if (p == MAP_FAILED)
		return errno == EEXIST ? E_INVALIDARG : E_OUTOFMEMORY;
	if (addr && (uintptr_t)p != lo) {
		/* A kernel without MAP_FIXED_NOREPLACE took it as a hint. */
		munmap(p, rsize);
		return E_INVALIDARG;
	}
	if (region_add((uintptr_t)p, rsize, protect, type & MEM_COMMIT)) {
		munmap(p, rsize);
		return E_OUTOFMEMORY;
	}
	*out = p;
	return S_OK;
}

static HRESULT hm_virtual_free(IHostMemoryManager *This, LPVOID addr, SIZE_T size,
			       DWORD type)
{
	size_t pg = page_size(), rsize;
	uintptr_t base;
	struct region *r;

	(void)This;
	if (type == MEM_RELEASE) {
		if (size)
			return E_INVALIDARG; /* Windows: dwSize must be 0 */
		pthread_mutex_lock(&host.lock);
		r = region_find((uintptr_t)addr, true, &base, &rsize);
		if (r)
			atomic_store_explicit(&r->base, 0, memory_order_release);
		pthread_mutex_unlock(&host.lock);
		if (!r)
			return E_INVALIDARG;
		return munmap((void *)base, rsize) ? E_FAIL : S_OK;
	}
	if (type == MEM_DECOMMIT) {
		uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)(pg - 1), hi;
		if (!addr)
			return E_INVALIDARG;
		r = region_find(lo, false, &base, &rsize);
		if (!r)
			return E_INVALIDARG;
		if (!size) {
			/* The whole allocation, given its base. */
			if (lo != base)
				return E_INVALIDARG;
			size = rsize;
		}
		if ((uintptr_t)addr + size < (uintptr_t)addr)
			return E_INVALIDARG;
		hi = ((uintptr_t)addr + size + pg - 1) & ~(uintptr_t)(pg - 1);
		if (hi - base > rsize)
			return E_INVALIDARG;
		if (madvise((void *)lo, hi - lo, MADV_DONTNEED) ||
		    mprotect((void *)lo, hi - lo, PROT_NONE))
			return E_FAIL;
		pthread_mutex_lock(&host.lock);
		if (atomic_load(&r->base) == base)
			set_committed(r, lo, hi, pg, false);
		pthread_mutex_unlock(&host.lock);
		return S_OK;
	}
	return E_INVALIDARG;
}

/* Lock-free and allocation-free: the CLR calls it with threads suspended. */
static HRESULT hm_virtual_query(IHostMemoryManager *This, void *addr, void *buf,
				SIZE_T len, SIZE_T *result)
{
	MEMORY_BASIC_INFORMATION mbi = { 0 };
	uintptr_t pg = page_size(), page = (uintptr_t)addr & ~(pg - 1), s, e, base;
	size_t rsize;
	struct region *r;
	int prot, err;

	(void)This;
	if (!result)
		return E_POINTER;
	*result = 0;
	if (!buf || len < sizeof(mbi))
		return E_INVALIDARG;
	mbi.BaseAddress = (PVOID)page;
	err = mn__maps_lookup(page, &s, &e, &prot);
	r = err ? NULL : region_find(page, false, &base, &rsize);
	if (err == -ENOENT) {
		mbi.State = MEM_FREE;
		mbi.Protect = PAGE_NOACCESS;
		mbi.RegionSize = pg;
	} else if (err) {
		return E_FAIL;
	} else if (r) {
		/* One of ours: the run of pages from @page with the same
		   state and protection, never past the allocation's end. */
		uintptr_t end = base + rsize, cur = page;
		bool committed = page_committed(r, page, pg);
		int p2 = prot;

		for (;;) {
			uintptr_t seg = MN__MIN(e, end);
			while (cur < seg && page_committed(r, cur, pg) == committed)
				cur += pg;
			if (cur < seg || cur >= end)
				break;
			if (mn__maps_lookup(cur, &s, &e, &p2) || (committed && p2 != prot))
				break;
		}
		mbi.AllocationBase = (PVOID)base;
		mbi.AllocationProtect = atomic_load(&r->protect);
		mbi.RegionSize = cur - page;
		mbi.State = committed ? MEM_COMMIT : MEM_RESERVE;
		mbi.Protect = committed ? mn__w32_page_of_prot(prot) : 0;
		mbi.Type = MEM_PRIVATE;
	} else {
		mbi.AllocationBase = (PVOID)s;
		mbi.AllocationProtect = mn__w32_page_of_prot(prot);
		mbi.RegionSize = e - page;
		mbi.State = MEM_COMMIT;
		mbi.Protect = mn__w32_page_of_prot(prot);
		mbi.Type = MEM_PRIVATE;
	}
	memcpy(buf, &mbi, sizeof(mbi));
	*result = sizeof(mbi);
	return S_OK;
}

static HRESULT hm_virtual_protect(IHostMemoryManager *This, void *addr, SIZE_T size,
				  DWORD protect, DWORD *old)
{
	uintptr_t pg = page_size(), lo = (uintptr_t)addr & ~(pg - 1), hi, s, e;
	int prot = mn__w32_prot_of_page(protect), was;

	(void)This;
	if (!old)
		return E_POINTER;
	if (!size || prot < 0)
		return E_INVALIDARG;
	if (mn__maps_lookup(lo, &s, &e, &was))
		return E_INVALIDARG;
	hi = ((uintptr_t)addr + size + pg - 1) & ~(pg - 1);
	if (mprotect((void *)lo, hi - lo, prot))
		return E_INVALIDARG;
	*old = mn__w32_page_of_prot(was);
	return S_OK;
}

static HRESULT hm_get_memory_load(IHostMemoryManager *This, DWORD *load,
				  SIZE_T *avail)
{
	struct mn_memory_status st = { .sz = sizeof(st) };

	(void)This;
	if (!load || !avail)
		return E_POINTER;
	if (mn_memory_status(NULL, &st))
		return E_FAIL;
	*load = st.load_percent;
	*avail = (SIZE_T)st.available_bytes;
	return S_OK;
}

/* Thread context (the dispatcher). */
static void on_level(const struct mn_memory_status *st, void *ctx)
{
	ICLRMemoryNotificationCallback *cb = ctx;

	if (st->reason == MN_MEMORY_ERROR || st->level == MN_MEMORY_LEVEL_UNKNOWN)
		return;
	cb->lpVtbl->OnMemoryNotification(cb, (EMemoryAvailable)st->level);
}

static HRESULT hm_register(IHostMemoryManager *This, ICLRMemoryNotificationCallback *cb)
{
	struct clrreg *r;

	(void)This;
	if (!cb)
		return E_POINTER;
	r = calloc(1, sizeof(*r));
	if (!r)
		return E_OUTOFMEMORY;
	r->cb = cb;
	cb->lpVtbl->AddRef(cb);
	int err = mn_memory_subscribe(NULL, on_level, cb, &r->sub);
	if (err) {
		cb->lpVtbl->Release(cb);
		free(r);
		/* -ENOMEM, and the other exhausted resources the last-error
		   table calls ERROR_NOT_ENOUGH_MEMORY (-EMFILE, -ENFILE,
		   -EAGAIN). */
		return mn__w32_error_of(err) == ERROR_NOT_ENOUGH_MEMORY ? E_OUTOFMEMORY
									: E_FAIL;
	}
	pthread_mutex_lock(&host.lock);
	r->next = host.regs;
	host.regs = r;
	pthread_mutex_unlock(&host.lock);
	return S_OK;
}

static HRESULT hm_address_space(IHostMemoryManager *This, LPVOID start, SIZE_T size)
{
	(void)This;
	(void)start;
	(void)size;
	return S_OK;
}

static HRESULT hm_released(IHostMemoryManager *This, LPVOID start)
{
	(void)This;
	(void)start;
	return S_OK;
}

static const IHostMemoryManagerVtbl vtbl = {
	.QueryInterface = hm_query_interface,
	.AddRef = hm_add_ref,
	.Release = hm_release,
	.CreateMalloc = hm_create_malloc,
	.VirtualAlloc = hm_virtual_alloc,
	.VirtualFree = hm_virtual_free,
	.VirtualQuery = hm_virtual_query,
	.VirtualProtect = hm_virtual_protect,
	.GetMemoryLoad = hm_get_memory_load,
	.RegisterMemoryNotificationCallback = hm_register,
	.NeedsVirtualAddressSpace = hm_address_space,
	.AcquiredVirtualAddressSpace = hm_address_space,
	.ReleasedVirtualAddressSpace = hm_released,
};

HRESULT MnGetHostMemoryManager(IHostMemoryManager **pp)
{
	if (!pp)
		return E_POINTER;
	hm_add_ref(&host.iface);
	*pp = &host.iface;
	return S_OK;
}
