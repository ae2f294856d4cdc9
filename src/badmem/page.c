/* SPDX-License-Identifier: MIT */
/*
 * mn_page_query(): what the kernel knows of each page of a range, from
 * /proc/self/pagemap, the mapping's smaps entry (core/procfs.c),
 * get_mempolicy(2), the PAGEMAP_SCAN ioctl and, where this process may
 * read them, /proc/kpagecount and /proc/kpageflags; "bad" also from this
 * source's own table (mn_badmem_query()).  QueryWorkingSetEx translates it.
 * Thread context only.
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/internal.h"

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

/* /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst). */
#define PM_PFN_MASK ((1ull << 55) - 1)
#define PM_EXCLUSIVE (1ull << 56)
#define PM_FILE (1ull << 61)
#define PM_SWAP (1ull << 62)
#define PM_PRESENT (1ull << 63)
#define KPF_HWPOISON 19
#define KPF_HUGE 17 /* hugetlb or the head/tail of a compound page */
#define KPF_THP 22
#define MPOL_F_NODE_ (1 << 0)
#define MPOL_F_ADDR_ (1 << 1)
#define CHUNK 512 /* pagemap entries read at once */

/* The files one query reads; -1 where absent or refused. */
struct page_files {
	int pagemap, kpagecount, kpageflags;
};

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

/* The 64-bit word for @pfn in a /proc/kpage* file, or 0. */
static uint64_t kpage_word(int fd, uint64_t pfn)
{
	uint64_t w = 0;

	if (fd < 0 || !pfn ||
	    pread(fd, &w, sizeof(w), (off_t)(pfn * sizeof(w))) != sizeof(w))
		return 0;
	return w;
}

/* What a resident page adds: share count, node, huge page. */
static void describe_resident(struct mn_page_info *p, uint64_t pm,
			      const struct mn__vma *v,
			      const struct page_files *f, size_t pg)
{
	uint64_t count = kpage_word(f->kpagecount, pm & PM_PFN_MASK);
	int node = -1, huge = scan_huge(f->pagemap, p->addr, pg);

	/* Before Linux 6.7 (no PAGEMAP_SCAN): the kernel's page flags, where
	   this process may read them; else only a hugetlb mapping says so. */
	if (huge < 0 && f->kpageflags >= 0) {
		uint64_t kf = kpage_word(f->kpageflags, pm & PM_PFN_MASK);
		if (kf)
			huge = ((kf >> KPF_THP) & 1) || ((kf >> KPF_HUGE) & 1);
	}

	p->share_count = (unsigned int)(count ? count
					      : (pm & PM_EXCLUSIVE) ? 1 : 2);
	if ((huge >= 0 ? huge : v->hugetlb))
		p->flags |= MN_PAGE_HUGE;
	if (syscall(SYS_get_mempolicy, &node, NULL, 0UL, (void *)p->addr,
		    MPOL_F_NODE_ | MPOL_F_ADDR_) == 0 && node >= 0)
		p->node = node;
}

/* One page, from its pagemap word @pm and its mapping @v (NULL: none). */
static void describe(struct mn_page_info *p, uint64_t pm,
		     const struct mn__vma *v, const struct page_files *f,
		     size_t pg)
{
	bool present = pm & PM_PRESENT;

	p->node = -1;
	if (v) {
		p->flags |= MN_PAGE_MAPPED;
		p->prot = v->m.prot;
		if (present)
			p->flags |= MN_PAGE_RESIDENT;
		if (pm & PM_SWAP)
			p->flags |= MN_PAGE_SWAPPED;
		if (pm & PM_FILE)
			p->flags |= MN_PAGE_FILE;
		if (present && (pm & PM_EXCLUSIVE))
			p->flags |= MN_PAGE_EXCLUSIVE;
		if (v->image)
			p->flags |= MN_PAGE_IMAGE;
		if (v->locked)
			p->flags |= MN_PAGE_LOCKED;
		/* Image pages are shared until written (then the page is
		   a private copy: not a file page). */
		if (v->m.shared || (v->image && (!present || (pm & PM_FILE))))
			p->flags |= MN_PAGE_SHARED;
		if (present)
			describe_resident(p, pm, v, f, pg);
		else if (v->hugetlb)
			p->flags |= MN_PAGE_HUGE;
	}
	if (mn_badmem_query((void *)p->addr, pg, NULL, 0) > 0 ||
	    (kpage_word(f->kpageflags, pm & PM_PFN_MASK) >> KPF_HWPOISON) & 1)
		p->flags |= MN_PAGE_BAD;
}

/* Pages [@first, @first + @count * pg) into @out (stride @stride). */
static int query_pages(uintptr_t first, size_t count, struct mn_page_info *out,
		       size_t stride, const struct page_files *f, size_t pg)
{
	uint64_t pm[CHUNK];
	struct mn__vma vma;
	bool mapped = false; /* vma holds the mapping of the last page */

	for (size_t i = 0; i < count; i++) {
		uintptr_t page = first + i * pg;
		struct mn_page_info p = { .sz = stride, .addr = page };
		if (i % CHUNK == 0) {
			size_t k = count - i < CHUNK ? count - i : CHUNK;
			ssize_t got = pread(f->pagemap, pm, k * sizeof(pm[0]),
					    (off_t)(page / pg * sizeof(pm[0])));
			if (got < 0)
				return -errno;
			memset((char *)pm + got, 0, k * sizeof(pm[0]) - (size_t)got);
		}
		if (!mapped || page < vma.m.lo || page >= vma.m.hi) {
			int err = mn__vma_lookup(page, &vma);
			if (err && err != -ENOENT)
				return err;
			mapped = err == 0;
		}
		describe(&p, pm[i % CHUNK], mapped ? &vma : NULL, f, pg);
		memcpy((char *)out + i * stride, &p,
		       stride < sizeof(p) ? stride : sizeof(p));
	}
	return 0;
}

int mn_page_query(const void *addr, size_t len, unsigned int flags,
		  struct mn_page_info *out, size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), stride, count;
	uintptr_t a = (uintptr_t)addr, first, last;
	struct page_files f;
	int err;

	mn__check(len > 0 && a + len > a && flags == 0 && out && n > 0, -EINVAL);
	stride = out->sz;
	mn__check(stride >= sizeof(struct mn_page_info) &&
			  stride % _Alignof(struct mn_page_info) == 0,
		  -EINVAL);
	first = a & ~(uintptr_t)(pg - 1);
	last = (a + len - 1) & ~(uintptr_t)(pg - 1);
	count = (last - first) / pg + 1;
	if (count > n)
		count = n;
	mn__check(count <= INT32_MAX, -EINVAL);
	f.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (f.pagemap < 0)
		return -errno;
	f.kpagecount = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
	f.kpageflags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	err = query_pages(first, count, out, stride, &f, pg);
	close(f.pagemap);
	if (f.kpagecount >= 0)
		close(f.kpagecount);
	if (f.kpageflags >= 0)
		close(f.kpageflags);
	return err ? err : (int)count;
}
