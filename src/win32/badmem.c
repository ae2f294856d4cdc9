/* SPDX-License-Identifier: MIT */
/*
 * RegisterBadMemoryNotification over mn_badmem_subscribe(), and
 * QueryWorkingSetEx over /proc/self/pagemap, /proc/self/smaps,
 * get_mempolicy(2), the PAGEMAP_SCAN ioctl and mn_badmem_query().
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/core.h"
#include "face.h"

struct badreg {
	struct mn__w32_link link; /* regs, lock */
	MN_PBAD_MEMORY_CALLBACK_ROUTINE fn;
	mn_sub *sub;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mn__w32_link *regs;

/* fork() takes the lock (core.c's atfork handlers): a child never
   inherits it held. */
__attribute__((constructor)) static void badmem_face_init(void)
{
	mn__lock_register(&lock, MN__RANK_FACE);
}

/* Thread context (the dispatcher): one call per bad range, per rise of
   HardwareCorrupted, or per overflow report. */
static void on_bad(const struct mn_badmem_event *ev, void *ctx)
{
	(void)ev;
	((struct badreg *)ctx)->fn();
}

PVOID RegisterBadMemoryNotification(MN_PBAD_MEMORY_CALLBACK_ROUTINE fn)
{
	struct mn_capability cap = { .sz = sizeof(cap) };
	struct mn_badmem_opts o = { .sz = sizeof(o) };
	struct badreg *r;
	int err;

	if (!fn)
		return mn__w32_fail(-EINVAL, NULL);
	r = calloc(1, sizeof(*r));
	if (!r)
		return mn__w32_fail(-ENOMEM, NULL);
	r->fn = fn;
	/* Early notice where the kernel has it: Windows calls back when the
	   page is found bad, not when it is touched. */
	mn_capability(MN_CAP_MCE_EARLY_KILL, &cap);
	o.flags = cap.supported ? MN_BADMEM_EARLY_KILL : 0;
	err = mn_badmem_subscribe(&o, on_bad, r, &r->sub);
	if (err && o.flags) {
		o.flags = 0;
		err = mn_badmem_subscribe(&o, on_bad, r, &r->sub);
	}
	if (err) {
		free(r);
		return mn__w32_fail(err, NULL);
	}
	pthread_mutex_lock(&lock);
	mn__w32_push(&regs, r);
	pthread_mutex_unlock(&lock);
	return r;
}
MN__W32_ALIAS(RegisterBadMemoryNotification);

BOOL UnregisterBadMemoryNotification(PVOID handle)
{
	struct badreg *r;

	pthread_mutex_lock(&lock);
	r = mn__w32_take(&regs, handle);
	pthread_mutex_unlock(&lock);
	if (!r)
		return mn__w32_fail(-ENOENT, FALSE);
	mn_unsubscribe(r->sub);
	free(r);
	return TRUE;
}
MN__W32_ALIAS(UnregisterBadMemoryNotification);

BOOL GetMemoryErrorHandlingCapabilities(PULONG caps)
{
	struct mn_capability cap = { .sz = sizeof(cap) };

	if (!caps)
		return mn__w32_fail(-EINVAL, FALSE);
	mn_capability(MN_CAP_PATROL_SCRUBBER, &cap);
	*caps = cap.supported ? MEHC_PATROL_SCRUBBER_PRESENT : 0;
	return TRUE;
}
MN__W32_ALIAS(GetMemoryErrorHandlingCapabilities);

/* --- QueryWorkingSetEx ---------------------------------------------------- */

/* The kernel's PAGEMAP_SCAN uapi (linux/fs.h, Linux 6.7), for C library
   headers that predate it; the kernel answers EINVAL/ENOTTY without it. */
#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask;
	uint64_t return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_HUGE (1 << 6)
#endif

#define PM_PRESENT (1ull << 63)
#define MPOL_F_NODE_ (1 << 0)
#define MPOL_F_ADDR_ (1 << 1)

struct vma_info {
	int prot;
	bool shared, locked, hugetlb;
	bool image; /* a private file mapping of a file this process also
		       maps executable: the program or a library (MEM_IMAGE) */
};

/* Does some mapping map the file (@dev, @ino) executable? */
static bool file_mapped_exec(const char *dev, unsigned long ino)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, i;
		char perms[5], d[32];

		if (sscanf(line, "%lx-%lx %4s %lx %31s %lu", &lo, &hi, perms,
			   &off, d, &i) == 6)
			found = perms[2] == 'x' && i == ino && !strcmp(d, dev);
	}
	fclose(f);
	return found;
}

/* The mapping that holds @addr, from /proc/self/smaps.  0, -ENOENT if
   none, or -errno. */
static int smaps_lookup(uintptr_t addr, struct vma_info *v)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[8192]; /* longer than any path */
	char dev[32] = "";
	unsigned long ino = 0;
	bool in = false;
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, i;
		char perms[5], d[32];

		/* A mapping's first line; its attribute lines ("Rss:",
		   "Anonymous:", ...) never parse as "hex-hex perms". */
		if (sscanf(line, "%lx-%lx %4s %lx %31s %lu", &lo, &hi, perms,
			   &off, d, &i) == 6) {
			if (in)
				break; /* next mapping: VmFlags was missing */
			if (addr < lo || addr >= hi)
				continue;
			in = true;
			err = 0;
			memset(v, 0, sizeof(*v));
			v->prot = (perms[0] == 'r' ? PROT_READ : 0) |
				  (perms[1] == 'w' ? PROT_WRITE : 0) |
				  (perms[2] == 'x' ? PROT_EXEC : 0);
			v->shared = perms[3] == 's';
			if (i != 0 && !v->shared) {
				memcpy(dev, d, sizeof(dev));
				ino = i;
			}
			continue;
		}
		if (!in)
			continue;
		if (!strncmp(line, "VmFlags:", 8)) {
			v->locked = strstr(line, " lo") != NULL;
			v->hugetlb = strstr(line, " ht") != NULL;
			break;
		}
	}
	fclose(f);
	if (!err && ino)
		v->image = (v->prot & PROT_EXEC) || file_mapped_exec(dev, ino);
	return err;
}

#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_EXCLUSIVE (1ull << 56)
#define PM_FILE (1ull << 61)

/* ShareCount (3 bits): how many page-table entries map the page, from
   /proc/kpagecount where this process may read it (CAP_SYS_ADMIN: the PFN
   in pagemap is 0 otherwise); else 1 for a page mapped exclusively
   (pagemap bit 56) and 2, a lower bound, for one that is not. */
static unsigned share_count(uint64_t pm)
{
	uint64_t pfn = pm & PM_PFN_MASK, count = 0;
	int fd;

	if (pfn && (fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (pread(fd, &count, sizeof(count), (off_t)(pfn * 8)) != sizeof(count))
			count = 0;
		close(fd);
	}
	if (!count)
		count = (pm & PM_EXCLUSIVE) ? 1 : 2;
	return count > 7 ? 7 : (unsigned)count;
}

/* Is the page at @page part of a huge page?  PAGEMAP_SCAN's PAGE_IS_HUGE
   where the kernel has it (transparent and hugetlb pages); else -1. */
static int scan_huge(int pagemap, uintptr_t page, size_t pg)
{
	struct page_region r;
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.start = page,
		.end = page + pg,
		.vec = (uintptr_t)&r,
		.vec_len = 1,
		.return_mask = PAGE_IS_PRESENT | PAGE_IS_HUGE,
	};
	int n = ioctl(pagemap, PAGEMAP_SCAN, &a);

	if (n < 0)
		return -1;
	return n > 0 && (r.categories & PAGE_IS_HUGE);
}

BOOL QueryWorkingSetEx(HANDLE process, PVOID pv, DWORD cb)
{
	PSAPI_WORKING_SET_EX_INFORMATION *e = pv;
	size_t n = cb / sizeof(*e);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	int pagemap;

	if (process != GetCurrentProcess())
		return mn__w32_fail(-ENOENT, FALSE);
	if (!pv)
		return mn__w32_fail(-EINVAL, FALSE);
	if (n == 0) {
		/* Windows: a buffer too small for one entry is a bad length. */
		SetLastError(ERROR_BAD_LENGTH);
		return FALSE;
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap < 0)
		return mn__w32_fail(-errno, FALSE);
	for (size_t i = 0; i < n; i++) {
		uintptr_t page = (uintptr_t)e[i].VirtualAddress & ~(uintptr_t)(pg - 1);
		PSAPI_WORKING_SET_EX_BLOCK b = { .Flags = 0 };
		struct vma_info v;
		uint64_t pm = 0;

		if (smaps_lookup(page, &v) == 0) {
			if (pread(pagemap, &pm, sizeof(pm),
				  (off_t)(page / pg * sizeof(pm))) != sizeof(pm))
				pm = 0;
			/* Image pages are shared until written (then the
			   page is a private copy: not a file page). */
			bool shared = v.shared || (v.image && (!(pm & PM_PRESENT) ||
							       (pm & PM_FILE)));
			/* Windows: an inaccessible page is not in the working
			   set (Valid 0, protection 0), resident or not. */
			if ((pm & PM_PRESENT) && v.prot != PROT_NONE) {
				int node = 0, huge = scan_huge(pagemap, page, pg);

				b.Valid = 1;
				b.Win32Protection = mn__w32_page_of_prot(v.prot);
				b.Shared = shared;
				if (shared)
					b.ShareCount = share_count(pm);
				b.Locked = v.locked;
				b.LargePage = huge >= 0 ? (unsigned)huge : v.hugetlb;
				if (syscall(SYS_get_mempolicy, &node, NULL, 0UL,
					    (void *)page, MPOL_F_NODE_ | MPOL_F_ADDR_) == 0 &&
				    node >= 0 && node < 64)
					b.Node = (unsigned)node;
			} else {
				b.Invalid.Shared = shared;
			}
		}
		if (mn_badmem_query((void *)page, pg, NULL, 0) > 0)
			b.Flags |= MN_WORKING_SET_EX_BAD;
		e[i].VirtualAttributes = b;
	}
	close(pagemap);
	return TRUE;
}
MN__W32_ALIAS(QueryWorkingSetEx);
