/* SPDX-License-Identifier: MIT */
/*
 * IHostMalloc: the heap IHostMemoryManager::CreateMalloc gives a CLR-style
 * host.  Ordinary blocks come from the C library's malloc (thread-safe, so
 * MALLOC_THREADSAFE always holds); MALLOC_EXECUTABLE blocks each get their
 * own anonymous mapping with PROT_READ | PROT_WRITE | PROT_EXEC.  Every
 * block starts with a header naming its heap, so Free refuses a block
 * another heap gave.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "face.h"

#define HDR_MAGIC 0x4d6e486d616c6c63ull /* "MnHmallc" */

struct heap {
	IHostMalloc iface;
	_Atomic ULONG refs;
	DWORD type;
};

/* 16 bytes: the block after it keeps malloc's alignment. */
struct hdr {
	uint64_t magic;      /* HDR_MAGIC ^ (uintptr_t)heap */
	uint64_t mapped;     /* executable: the mapping's size; else 0 */
};

static const IHostMallocVtbl heap_vtbl;

static HRESULT mh_query_interface(IHostMalloc *This, REFIID riid, void **ppv)
{
	if (!riid || !ppv)
		return E_POINTER;
	if (!memcmp(riid, &MN_IID_IUnknown, sizeof(IID)) ||
	    !memcmp(riid, &MN_IID_IHostMalloc, sizeof(IID))) {
		This->lpVtbl->AddRef(This);
		*ppv = This;
		return S_OK;
	}
	*ppv = NULL;
	return E_NOINTERFACE;
}

static ULONG mh_add_ref(IHostMalloc *This)
{
	return atomic_fetch_add(&((struct heap *)This)->refs, 1) + 1;
}

/* The blocks outlive the heap object (Free after the last Release is the
   caller's error, and is refused only if the header was overwritten). */
static ULONG mh_release(IHostMalloc *This)
{
	ULONG left = atomic_fetch_sub(&((struct heap *)This)->refs, 1) - 1;

	if (!left)
		free(This);
	return left;
}

static HRESULT mh_alloc(IHostMalloc *This, SIZE_T size, EMemoryCriticalLevel level,
			void **out)
{
	struct heap *h = (struct heap *)This;
	struct hdr *b;

	(void)level; /* Linux has no per-allocation criticality */
	if (!out)
		return E_POINTER;
	*out = NULL;
	if (size > SIZE_MAX - sizeof(*b) - (size_t)sysconf(_SC_PAGESIZE))
		return E_OUTOFMEMORY;
	if (h->type & MALLOC_EXECUTABLE) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		size_t len = (sizeof(*b) + size + pg - 1) & ~(pg - 1);
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return E_OUTOFMEMORY;
		b = p;
		b->mapped = len;
	} else {
		b = malloc(sizeof(*b) + size);
		if (!b)
			return E_OUTOFMEMORY;
		b->mapped = 0;
	}
	b->magic = HDR_MAGIC ^ (uint64_t)(uintptr_t)h;
	*out = b + 1;
	return S_OK;
}

static HRESULT mh_debug_alloc(IHostMalloc *This, SIZE_T size, EMemoryCriticalLevel level,
			      char *file, int line, void **out)
{
	(void)file;
	(void)line;
	return mh_alloc(This, size, level, out);
}

static HRESULT mh_free(IHostMalloc *This, void *mem)
{
	struct hdr *b;

	if (!mem)
		return S_OK;
	b = (struct hdr *)mem - 1;
	if (b->magic != (HDR_MAGIC ^ (uint64_t)(uintptr_t)This))
		return E_INVALIDARG;
	b->magic = 0;
	if (b->mapped)
		munmap(b, b->mapped);
	else
		free(b);
	return S_OK;
}

static const IHostMallocVtbl heap_vtbl = {
	.QueryInterface = mh_query_interface,
	.AddRef = mh_add_ref,
	.Release = mh_release,
	.Alloc = mh_alloc,
	.DebugAlloc = mh_debug_alloc,
	.Free = mh_free,
};

HRESULT mn__w32_create_malloc(DWORD type, IHostMalloc **out)
{
	struct heap *h;

	if (!out)
		return E_POINTER;
	*out = NULL;
	if (type & ~(DWORD)(MALLOC_THREADSAFE | MALLOC_EXECUTABLE))
		return E_INVALIDARG;
	h = calloc(1, sizeof(*h));
	if (!h)
		return E_OUTOFMEMORY;
	h->iface.lpVtbl = &heap_vtbl;
	h->refs = 1;
	h->type = type;
	*out = &h->iface;
	return S_OK;
}
