/* SPDX-License-Identifier: MIT */
/*
 * The preloaded side of `memnotify run`: when MEMNOTIFY_RUN_FD names an
 * inherited file descriptor, a listener writes one line per range event of
 * this process (and, through the inherited environment, of its children).
 *
 * The listener runs in synchronous context, possibly in a signal handler:
 * it formats with its own async-signal-safe code and writes each line with
 * one write(2) (lines are shorter than PIPE_BUF, so O_APPEND files and
 * pipes never interleave them).
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/internal.h"
#include "vmrange.h"

static int out_fd = -1;
static bool out_json;
static dev_t out_dev;   /* the identity of the file `memnotify run` handed */
static ino_t out_ino;   /* down: written only while out_fd still names it */

struct buf {
	char *p, *end;
};

static void put(struct buf *b, const char *s)
{
	while (*s && b->p < b->end)
		*b->p++ = *s++;
}

static void put_u(struct buf *b, uint64_t v, int width)
{
	char t[24];
	int n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < 24);
	while (n < width && n < 24)
		t[n++] = '0';
	while (n && b->p < b->end)
		*b->p++ = t[--n];
}

static void put_hex(struct buf *b, uint64_t v)
{
	static const char d[] = "0123456789abcdef";
	char t[16];
	int n = 0;

	do {
		t[n++] = d[v & 15];
		v >>= 4;
	} while (v);
	put(b, "0x");
	while (n && b->p < b->end)
		*b->p++ = t[--n];
}

/* RFC 3339 UTC with milliseconds, without gmtime (not async-signal-safe):
   Howard Hinnant's days-to-civil algorithm. */
static void put_time(struct buf *b)
{
	struct timespec ts;
	int64_t days, secs, z, era, doe, yoe, y, doy, mp, d, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	days = ts.tv_sec / 86400;
	secs = ts.tv_sec % 86400;
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	put_u(b, (uint64_t)y, 4);
	put(b, "-");
	put_u(b, (uint64_t)m, 2);
	put(b, "-");
	put_u(b, (uint64_t)d, 2);
	put(b, "T");
	put_u(b, (uint64_t)(secs / 3600), 2);
	put(b, ":");
	put_u(b, (uint64_t)(secs / 60 % 60), 2);
	put(b, ":");
	put_u(b, (uint64_t)(secs % 60), 2);
	put(b, ".");
	put_u(b, (uint64_t)(ts.tv_nsec / 1000000), 3);
	put(b, "Z");
}

static void put_prot(struct buf *b, int prot)
{
	char s[4] = { prot & PROT_READ ? 'r' : '-', prot & PROT_WRITE ? 'w' : '-',
		      prot & PROT_EXEC ? 'x' : '-', 0 };
	put(b, s);
}

/* Async-signal-safe (fstat, write).  A program that closed the number and
   reused it for a file of its own gets nothing written into that file:
   the line is counted as lost instead. */
static void emit(struct buf *b, char *line)
{
	ssize_t n = b->p - line;
	struct stat st;

	if (fstat(out_fd, &st) < 0 || st.st_dev != out_dev || st.st_ino != out_ino ||
	    write(out_fd, line, (size_t)n) < 0)
		mn__count(lost, 1);
}

/* "FD:DEV:INO" as `memnotify run` writes it; false if malformed. */
static bool parse_run_fd(const char *s)
{
	unsigned long long v[3];
	char *end;

	for (int i = 0; i < 3; i++) {
		if (*s < '0' || *s > '9')
			return false;
		errno = 0;
		v[i] = strtoull(s, &end, 10);
		if (errno || *end != (i < 2 ? ':' : '\0'))
			return false;
		s = end + 1;
	}
	if (v[0] > 1 << 20)
		return false;
	out_fd = (int)v[0];
	out_dev = (dev_t)v[1];
	out_ino = (ino_t)v[2];
	return true;
}

/* Synchronous context, maybe a signal handler: async-signal-safe. */
static void on_event(const struct mn_vm_event *ev, void *ctx)
{
	char line[400];
	struct buf b = { line, line + sizeof(line) - 1 };
	int saved = errno;

	(void)ctx;
	if (out_json) {
		put(&b, "{\"time\":\"");
		put_time(&b);
		put(&b, "\",\"pid\":");
		put_u(&b, (uint64_t)getpid(), 1);
		put(&b, ",\"tid\":");
		put_u(&b, (uint64_t)ev->tid, 1);
		put(&b, ",\"event\":\"");
		put(&b, mn_vm_event_name(ev->kind));
		put(&b, "\",\"address\":");
		put_u(&b, ev->address, 1);
		put(&b, ",\"length\":");
		put_u(&b, ev->length, 1);
		if (ev->kind == MN_VM_MOVE) {
			put(&b, ",\"new_address\":");
			put_u(&b, ev->new_address, 1);
			put(&b, ",\"new_length\":");
			put_u(&b, ev->new_length, 1);
		}
		if (ev->kind == MN_VM_PROTECT) {
			put(&b, ",\"prot\":\"");
			put_prot(&b, ev->prot);
			put(&b, "\"");
		}
		if (ev->kind == MN_VM_DISCARD) {
			put(&b, ",\"advice\":");
			put_u(&b, (uint64_t)ev->advice, 1);
		}
		put(&b, ",\"via\":\"");
		put(&b, ev->via == MN_VM_VIA_USERFAULTFD ? "userfaultfd" : "hook");
		put(&b, "\"}\n");
	} else {
		put_time(&b);
		put(&b, "  pid ");
		put_u(&b, (uint64_t)getpid(), 1);
		put(&b, "  tid ");
		put_u(&b, (uint64_t)ev->tid, 1);
		put(&b, "  ");
		put(&b, mn_vm_event_name(ev->kind));
		put(&b, "  ");
		put_hex(&b, ev->address);
		put(&b, " +");
		put_u(&b, ev->length, 1);
		if (ev->kind == MN_VM_MOVE && ev->new_address) {
			put(&b, " -> ");
			put_hex(&b, ev->new_address);
		}
		if (ev->kind == MN_VM_PROTECT) {
			put(&b, "  ");
			put_prot(&b, ev->prot);
		}
		put(&b, "  via ");
		put(&b, ev->via == MN_VM_VIA_USERFAULTFD ? "userfaultfd" : "hook");
		put(&b, "\n");
	}
	if (b.p == b.end) { /* cut short: still one line */
		b.p[-1] = '\n';
	}
	emit(&b, line);
	errno = saved;
}

/*
 * In a process started by `memnotify run`: listen and write.  The first
 * line a process writes is a "run.start" record: what it reports from
 * then on is complete; calls before it (the dynamic loader's start-up)
 * happened before memnotify was initialised.
 */
__attribute__((constructor(200))) static void run_init(void)
{
	/* secure_getenv: a set-user-ID program never writes its layout to a
	   descriptor its caller chose. */
	const char *fd = secure_getenv("MEMNOTIFY_RUN_FD");
	const char *json = secure_getenv("MEMNOTIFY_RUN_JSON");
	char line[200];
	struct buf b = { line, line + sizeof(line) - 1 };
	struct stat st;
	mn_sub *sub;

	if (!fd || !*fd || !parse_run_fd(fd))
		return;
	if (fstat(out_fd, &st) < 0 || st.st_dev != out_dev || st.st_ino != out_ino) {
		out_fd = -1; /* not the file `memnotify run` opened */
		return;
	}
	out_json = json && *json == '1';
	if (mn_vm_listen(0, on_event, NULL, &sub) < 0)
		return;
	if (out_json) {
		/* "event" first: a tracer that shows only the start of the
		   write (strace -s) still sees what it is. */
		put(&b, "{\"event\":\"run.start\",\"pid\":");
		put_u(&b, (uint64_t)getpid(), 1);
		put(&b, ",\"time\":\"");
		put_time(&b);
		put(&b, "\"}\n");
	} else {
		put_time(&b);
		put(&b, "  pid ");
		put_u(&b, (uint64_t)getpid(), 1);
		put(&b, "  run.start\n");
	}
	emit(&b, line);
}
