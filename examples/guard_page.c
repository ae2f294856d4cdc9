/*
 * Build: cc guard_page.c $(pkg-config --cflags --libs memnotify) -o guard_page
 *
 * A garbage collector's read barrier in miniature: a PROT_NONE page whose
 * first touch is repaired by a handler in memnotify's SIGSEGV chain
 * (KeRegisterNmiCallback semantics: newest first, the Handled flag), and a
 * bad-memory handler that replaces a poisoned page so the thread goes on.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memnotify.h>

static char *page;
static size_t page_size;

/* Signal context: async-signal-safe calls only. */
static int repair(int sig, siginfo_t *info, void *uc, int handled, void *ctx)
{
	(void)sig;
	(void)uc;
	(void)ctx;
	if (handled || (char *)info->si_addr < page ||
	    (char *)info->si_addr >= page + page_size)
		return 0; /* not ours: the next handler, or the default, decides */
	mprotect(page, page_size, PROT_READ | PROT_WRITE);
	return 1; /* the faulting store is retried and succeeds */
}

static int replace_poisoned(const struct mn_bad_page *bad, siginfo_t *info,
			    void *uc, int handled, void *ctx)
{
	(void)info;
	(void)uc;
	(void)ctx;
	if (handled)
		return 0;
	return mn_badmem_replace((void *)(uintptr_t)bad->address, bad->length) == 0;
}

int main(void)
{
	mn_sub *segv, *ar;
	int err;

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	page = mmap(NULL, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((err = mn_signal_register(SIGSEGV, repair, NULL, &segv)) ||
	    (err = mn_badmem_register_ar(replace_poisoned, NULL, &ar))) {
		fprintf(stderr, "memnotify: %s\n", mn_strerror(err));
		return 1;
	}
	strcpy(page, "written after a repaired fault");
	printf("%s\n", page);

	/* Pretend this thread touched poisoned memory (a real SIGBUS with
	   BUS_MCEERR_AR): the page is replaced with zeroes, and we go on. */
	mn_badmem_inject(0, page, 12, 1);
	printf("after recovery the page reads \"%s\" (zero-filled)\n", page);

	mn_unsubscribe(ar);
	mn_unsubscribe(segv);
	return 0;
}
