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

#include "../core/core.h"
#include "face.h"

const IID MN_IID_IUnknown = {
	0x00000000, 0x0000, 0x0000, { 0xC0, 0, 0, 0, 0, 0, 0, 0x46 }
};
const IID MN_IID_IHostMemoryManager = {
	0x7BC698D1, 0xF9E3, 0x4460, { 0x9C, 0xDE, 0xD0, 0x42, 0x48, 0xE9, 0xFA, 0x25 }
};
const IID MN_IID_ICLRMemoryNotificationCallback = {
	0x47EB8E57, 0x0846, 0x4546, { 0xAF, 0x76, 0x6F, 0x42, 0xFC, 0xFC, 0x26, 0x49 }
};

struct clrreg {
	struct clrreg *next;
	ICLRMemoryNotificationCallback *cb;
	mn_sub *sub;
};

/* A VirtualAlloc reservation: VirtualFree(MEM_RELEASE) needs its size. */
struct region {
	struct region *next;
	uintptr_t base;
	size_t size;
};

static const IHostMemoryManagerVtbl vtbl;

static struct {
	IHostMemoryManager iface;
	_Atomic ULONG refs;
	pthread_mutex_t lock;
	struct clrreg *regs;     /* lock */
	struct region *regions;  /* lock */
} host = { .iface = { &vtbl }, .lock = PTHREAD_MUTEX_INITIALIZER };

/* fork() takes the lock (core.c's atfork handlers): a child never
   inherits it held. */
__attribute__((constructor)) static void host_init(void)
{
	mn__lock_register(&host.lock, MN__RANK_FACE);
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

static HRESULT hm_create_malloc(IHostMemoryManager *This, DWORD type, void **pp)
{
	(void)This;
	(void)type;
	if (pp)
		*pp = NULL;
	return E_NOTIMPL;
}

static HRESULT hm_virtual_alloc(IHostMemoryManager *This, void *addr, SIZE_T size,
				DWORD type, DWORD protect,
				EMemoryCriticalLevel level, void **out)
{
	int prot = mn__w32_prot_of_page(protect);
	size_t pg = page_size();
	void *p;

	(void)This;
	(void)level;
	if (!out)
		return E_POINTER;
	*out = NULL;
	if (!size || prot < 0 ||
	    (type & ~(DWORD)(MEM_COMMIT | MEM_RESERVE | MEM_RESET | 0x00100000 /* MEM_TOP_DOWN */)))
		return E_INVALIDARG;
	if (type & MEM_RESET) {
		/* The contents are no longer needed: discard them. */
		if (!addr || (type & (MEM_COMMIT | MEM_RESERVE)))
			return E_INVALIDARG;
		uintptr_t lo = ((uintptr_t)addr + pg - 1) & ~(uintptr_t)(pg - 1);
		uintptr_t hi = ((uintptr_t)addr + size) & ~(uintptr_t)(pg - 1);
		if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED))
			return E_INVALIDARG;
		*out = addr;
		return S_OK;
	}
	if (!(type & (MEM_COMMIT | MEM_RESERVE)))
		return E_INVALIDARG;
	if (!(type & MEM_RESERVE)) {
		/* Commit part of a reservation. */
		if (!addr)
			return E_INVALIDARG;
		uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)(pg - 1);
		uintptr_t hi = ((uintptr_t)addr + size + pg - 1) & ~(uintptr_t)(pg - 1);
		if (mprotect((void *)lo, hi - lo, prot))
			return E_INVALIDARG;
		*out = (void *)lo;
		return S_OK;
	}
	size = (size + pg - 1) & ~(pg - 1);
	p = mmap(addr, size, (type & MEM_COMMIT) ? prot : PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			 (addr ? MAP_FIXED_NOREPLACE : 0),
		 -1, 0);
	if (p == MAP_FAILED)
		return errno == EEXIST ? E_INVALIDARG : E_OUTOFMEMORY;
	struct region *r = malloc(sizeof(*r));
	if (!r) {
		munmap(p, size);
		return E_OUTOFMEMORY;
	}
	r->base = (uintptr_t)p;
	r->size = size;
	pthread_mutex_lock(&host.lock);
	r->next = host.regions;
	host.regions = r;
	pthread_mutex_unlock(&host.lock);
	*out = p;
	return S_OK;
}

/* The reservation holding @a (lock held), or NULL. */
static struct region **region_of(uintptr_t a, bool base_only)
{
	for (struct region **pp = &host.regions; *pp; pp = &(*pp)->next)
		if (base_only ? (*pp)->base == a
			      : a >= (*pp)->base && a - (*pp)->base < (*pp)->size)
			return pp;
	return NULL;
}

static HRESULT hm_virtual_free(IHostMemoryManager *This, LPVOID addr, SIZE_T size,
			       DWORD type)
{
	size_t pg = page_size();

	(void)This;
	if (type == MEM_RELEASE) {
		struct region **pp, *r = NULL;
		if (size)
			return E_INVALIDARG; /* Windows: dwSize must be 0 */
		pthread_mutex_lock(&host.lock);
		pp = region_of((uintptr_t)addr, true);
		if (pp) {
			r = *pp;
			*pp = r->next;
		}
		pthread_mutex_unlock(&host.lock);
		if (!r)
			return E_INVALIDARG;
		int rc = munmap((void *)r->base, r->size);
		free(r);
		return rc ? E_FAIL : S_OK;
	}
	if (type == MEM_DECOMMIT) {
		uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)(pg - 1), hi;
		if (!addr)
			return E_INVALIDARG;
		if (!size) {
			pthread_mutex_lock(&host.lock);
			struct region **pp = region_of(lo, true);
			size = pp ? (*pp)->size : 0;
			pthread_mutex_unlock(&host.lock);
			if (!size)
				return E_INVALIDARG;
		}
		hi = ((uintptr_t)addr + size + pg - 1) & ~(uintptr_t)(pg - 1);
		if (madvise((void *)lo, hi - lo, MADV_DONTNEED) ||
		    mprotect((void *)lo, hi - lo, PROT_NONE))
			return E_INVALIDARG;
		return S_OK;
	}
	return E_INVALIDARG;
}

static HRESULT hm_virtual_query(IHostMemoryManager *This, void *addr, void *buf,
				SIZE_T len, SIZE_T *result)
{
	MEMORY_BASIC_INFORMATION mbi = { 0 };
	uintptr_t pg = page_size(), page = (uintptr_t)addr & ~(pg - 1), s, e;
	int prot, err;

	(void)This;
	if (!result)
		return E_POINTER;
	*result = 0;
	if (!buf || len < sizeof(mbi))
		return E_INVALIDARG;
	mbi.BaseAddress = (PVOID)page;
	err = mn__maps_lookup(page, &s, &e, &prot);
	if (err == -ENOENT) {
		mbi.State = MEM_FREE;
		mbi.Protect = PAGE_NOACCESS;
		mbi.RegionSize = pg;
	} else if (err) {
		return E_FAIL;
	} else {
		pthread_mutex_lock(&host.lock);
		struct region **pp = region_of(page, false);
		mbi.AllocationBase = (PVOID)(pp ? (*pp)->base : s);
		pthread_mutex_unlock(&host.lock);
		mbi.AllocationProtect = mn__w32_page_of_prot(prot);
		mbi.RegionSize = e - page;
		mbi.State = prot || !pp ? MEM_COMMIT : MEM_RESERVE;
		mbi.Protect = mbi.State == MEM_RESERVE ? 0 : mn__w32_page_of_prot(prot);
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
	if (mn_memory_subscribe(NULL, on_level, cb, &r->sub)) {
		cb->lpVtbl->Release(cb);
		free(r);
		return E_FAIL;
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
