/* SPDX-License-Identifier: MIT */
/*
 * The preloaded side of `memnotify run`: when MEMNOTIFY_RUN_FD names an
 * inherited file descriptor, a listener writes one line per range event of
 * this process (and, through the inherited environment, of its children).
 * It lives in the library (it must run inside the program) but is a user
 * of the public API (mn_vm_listen()), as the command is: no source's
 * internals, only the core's loss counter.
 *
 * The listener runs in synchronous context, possibly in a signal handler:
 * it formats with its own async-signal-safe code and writes each line with
 * one write(2) (lines are shorter than PIPE_BUF, so O_APPEND files and
 * pipes never interleave them).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../core/internal.h" /* mn__count() only: its losses count in mn_stats */

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

/* Bytes [s, s + n) as the contents of a JSON string: quote, backslash and
   control characters escaped, valid UTF-8 kept, any other byte (a path or
   argument need not be UTF-8) as U+FFFD.  False, with nothing written
   beyond b->end, if it did not fit. */
static bool put_json_bytes(struct buf *b, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = 1;
		char esc[7];

		if (c == '"' || c == '\\') {
			esc[0] = '\\'; esc[1] = (char)c; esc[2] = 0;
			put(b, esc);
		} else if (c < 0x20 || c == 0x7f) {
			esc[0] = '\\'; esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hex[c >> 4]; esc[5] = hex[c & 15]; esc[6] = 0;
			put(b, esc);
		} else if (c < 0x80) {
			esc[0] = (char)c; esc[1] = 0;
			put(b, esc);
		} else {
			/* A well-formed sequence (no overlong form, no
			   surrogate, at most U+10FFFF) is copied as it is. */
			uint32_t cp;
			size_t k;

			len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
			cp = len == 4 ? c & 7u : len == 3 ? c & 15u : c & 31u;
			for (k = 1; k < len && i + k < n && (s[i + k] & 0xc0) == 0x80; k++)
				cp = cp << 6 | (s[i + k] & 0x3fu);
			if (!len || k < len || (len == 3 && cp < 0x800) ||
			    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
			    (cp >= 0xd800 && cp <= 0xdfff)) {
				put(b, "\\ufffd");
				len = 1;
			} else {
				for (k = 0; k < len && b->p < b->end; k++)
					*b->p++ = (char)s[i + k];
			}
		}
		i += len;
		if (b->p >= b->end)
			return false;
	}
	return true;
}

/* For the text line: bytes a shell would read back as one word unquoted
   are kept; anything else is put in single quotes ('\'' for a quote),
   with control characters as '?' so the line stays one line. */
static void put_shell_word(struct buf *b, const char *s)
{
	bool plain = *s != 0;

	for (const char *c = s; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '/' || *c == '.' ||
		      *c == '_' || *c == '-' || *c == '+' || *c == '=' ||
		      *c == ':' || *c == ',' || *c == '@' || *c == '%'))
			plain = false;
	if (plain) {
		put(b, s);
		return;
	}
	put(b, "'");
	for (const char *c = s; *c; c++) {
		char one[2] = { (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c, 0 };
		put(b, *c == '\'' ? "'\\''" : one);
	}
	put(b, "'");
}

/* What this process runs, for its run.start line: the executable's path
   (readlink of /proc/self/exe; empty if unreadable) and the arguments
   (/proc/self/cmdline, NUL-separated, cut at the buffer's size).
   System calls only: no allocation, no stdio. */
static ssize_t read_exe(char *exe, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", exe, size - 1);

	exe[n > 0 ? n : 0] = 0;
	return n > 0 ? n : -1;
}

static size_t read_cmdline(char *buf, size_t size, bool *cut)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	*cut = false;
	if (fd < 0)
		return 0;
	while (n < size && (r = read(fd, buf + n, size - n)) > 0)
		n += (size_t)r;
	if (n == size) {
		char extra;
		*cut = read(fd, &extra, 1) > 0;
	}
	close(fd);
	return n;
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

/* The run.start record as JSON: pid, time, exe (null if unreadable or
   not text), argv (arguments that do not fit left out: argv_truncated).
   @line_end: where the buffer really ends (b->end keeps room). */
static void start_json(struct buf *b, char *line_end, const char *exe,
		       ssize_t exe_len, const char *args, size_t nargs, bool cut)
{
	/* "event" first: a tracer that shows only the start of the
	   write (strace -s) still sees what it is. */
	put(b, "{\"event\":\"run.start\",\"pid\":");
	put_u(b, (uint64_t)getpid(), 1);
	put(b, ",\"time\":\"");
	put_time(b);
	put(b, "\",\"exe\":");
	char *mark = b->p;
	if (exe_len < 0) {
		put(b, "null");
	} else {
		put(b, "\"");
		if (!put_json_bytes(b, (const unsigned char *)exe,
				    (size_t)exe_len)) {
			b->p = mark;
			put(b, "null");
		} else {
			put(b, "\"");
		}
	}
	put(b, ",\"argv\":[");
	for (size_t i = 0, k = 0; i < nargs; k++) {
		size_t len = strnlen(args + i, nargs - i);
		if (i + len == nargs && cut)
			break; /* the last argument was cut: leave it out */
		mark = b->p;
		put(b, k ? ",\"" : "\"");
		if (!put_json_bytes(b, (const unsigned char *)args + i, len) ||
		    b->p + 1 >= b->end) {
			b->p = mark;
			cut = true;
			break;
		}
		put(b, "\"");
		i += len + 1;
	}
	b->end = line_end;
	put(b, "]");
	if (cut)
		put(b, ",\"argv_truncated\":true");
	put(b, "}\n");
}

/* The run.start record as text: the executable and argv as shell words
   (" ..." when arguments were left out). */
static void start_text(struct buf *b, char *line_end, const char *exe,
		       ssize_t exe_len, char *args, size_t nargs, size_t cap,
		       bool cut)
{
	put_time(b);
	put(b, "  pid ");
	put_u(b, (uint64_t)getpid(), 1);
	put(b, "  run.start  ");
	put_shell_word(b, exe_len < 0 ? "?" : exe);
	put(b, "  argv");
	for (size_t i = 0; i < nargs;) {
		size_t len = strnlen(args + i, nargs - i);
		if (i + len == nargs) { /* no NUL after it */
			if (cut || nargs == cap) {
				cut = true; /* the last argument was cut */
				break;
			}
			args[nargs] = 0;
		}
		char *mark = b->p;
		put(b, " ");
		put_shell_word(b, args + i);
		if (b->p >= b->end) {
			b->p = mark;
			cut = true;
			break;
		}
		i += len + 1;
	}
	b->end = line_end;
	if (cut)
		put(b, " ...");
	put(b, "\n");
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
	/* One write of at most PIPE_BUF bytes: never interleaved with another
	   process's line.  Arguments that do not fit are left out (JSON says
	   so with "argv_truncated":true; text ends with " ..."). */
	char line[PIPE_BUF], exe[PATH_MAX], args[2048];
	/* Room kept for what closes the line. */
	struct buf b = { line, line + sizeof(line) - 48 };
	struct stat st;
	mn_sub *sub;
	size_t nargs;
	bool cut;

	if (!fd || !*fd || !parse_run_fd(fd))
		return;
	if (fstat(out_fd, &st) < 0 || st.st_dev != out_dev || st.st_ino != out_ino) {
		out_fd = -1; /* not the file `memnotify run` opened */
		return;
	}
	out_json = json && *json == '1';
	if (mn_vm_listen(0, on_event, NULL, &sub) < 0)
		return;
	ssize_t exe_len = read_exe(exe, sizeof(exe));
	nargs = read_cmdline(args, sizeof(args), &cut);
	if (out_json)
		start_json(&b, line + sizeof(line) - 1, exe, exe_len, args, nargs, cut);
	else
		start_text(&b, line + sizeof(line) - 1, exe, exe_len, args, nargs,
			   sizeof(args), cut);
	emit(&b, line);
}
