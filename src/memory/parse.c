/* SPDX-License-Identifier: MIT */
/*
 * Parsers for /proc/meminfo, the PSI files, /proc/self/cgroup,
 * /proc/self/mountinfo and the cgroup memory files.  See parse.h.
 *
 * Everything here works on (pointer, length) spans inside the caller's
 * buffer, which need not be NUL-terminated, so no str*() / sscanf() is ever
 * applied to it: the small scanners below never look past @len.  Strings
 * passed by the caller as names (@key, @controller, ...) are ordinary
 * NUL-terminated C strings.
 */
#include "parse.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* A run of bytes inside the input buffer. */
struct span {
	const char *p;
	size_t n;
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Does @s hold exactly the C string @str (of length @n)? */
static bool span_eq_n(struct span s, const char *str, size_t n)
{
	return s.n == n && (n == 0 || memcmp(s.p, str, n) == 0);
}

static bool span_eq(struct span s, const char *str)
{
	return span_eq_n(s, str, strlen(str));
}

static struct span span_from(const char *p, const char *end)
{
	struct span s = { p, (size_t)(end - p) };

	return s;
}

/*
 * Iterate over the lines of @buf: each call stores the next line (without
 * its '\n') in @line and returns true; returns false at the end.  A last line
 * without a newline counts; the empty tail after a final '\n' does not.
 */
static bool next_line(const char *buf, size_t len, size_t *pos,
		      struct span *line)
{
	const char *nl;

	if (*pos >= len)
		return false;
	line->p = buf + *pos;
	nl = memchr(line->p, '\n', len - *pos);
	if (nl) {
		line->n = (size_t)(nl - line->p);
		*pos += line->n + 1;
	} else {
		line->n = len - *pos;
		*pos = len;
	}
	return true;
}

/* Skip blanks at the front of @s. */
static void skip_blanks(struct span *s)
{
	while (s->n && is_blank(*s->p)) {
		s->p++;
		s->n--;
	}
}

/* Drop blanks at the end of @s. */
static void trim_blanks_end(struct span *s)
{
	while (s->n && is_blank(s->p[s->n - 1]))
		s->n--;
}

/*
 * Take the next blank-separated word off the front of @s (leading blanks are
 * skipped first).  Returns false if only blanks were left.
 */
static bool next_word(struct span *s, struct span *word)
{
	skip_blanks(s);
	if (!s->n)
		return false;
	word->p = s->p;
	while (s->n && !is_blank(*s->p)) {
		s->p++;
		s->n--;
	}
	word->n = (size_t)(s->p - word->p);
	return true;
}

/* True if @s is a non-empty run of decimal digits. */
static bool all_digits(struct span s)
{
	size_t i;

	if (!s.n)
		return false;
	for (i = 0; i < s.n; i++)
		if (!is_digit(s.p[i]))
			return false;
	return true;
}

/*
 * Parse all of @s as an unsigned decimal number.
 * -EIO unless @s is one or more digits; -ERANGE if it does not fit.
 */
static int parse_u64(struct span s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!all_digits(s))
		return -EIO;
	for (i = 0; i < s.n; i++) {
		unsigned int d = (unsigned int)(s.p[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/*
 * Parse "123" or "123.45" (digits on both sides of the point) into a double,
 * without the locale-dependent strtod().  -EIO on anything else, -ERANGE if
 * the integer part does not fit in uint64_t.  Fraction digits past the 19th
 * are checked but do not contribute.
 */
static int parse_decimal(struct span s, double *out)
{
	const char *dot = s.n ? memchr(s.p, '.', s.n) : NULL;
	struct span ip = s, fp = { NULL, 0 };
	uint64_t ival, fval = 0;
	double scale = 1.0;
	size_t i;
	int ret;

	if (dot) {
		ip = span_from(s.p, dot);
		fp = span_from(dot + 1, s.p + s.n);
		if (!all_digits(fp))
			return -EIO;
	}
	ret = parse_u64(ip, &ival);
	if (ret)
		return ret;
	for (i = 0; i < fp.n && i < 19; i++) {
		fval = fval * 10 + (uint64_t)(fp.p[i] - '0');
		scale *= 10.0;
	}
	*out = (double)ival + (double)fval / scale;
	return 0;
}

/*
 * Is @word (@wn bytes, not empty) one of the @sep-separated items of @list?
 * Items must match whole: "memory" is not in "memory_foo,cpu".
 */
static bool list_has(struct span list, char sep, const char *word, size_t wn)
{
	const char *p = list.p, *end = list.p + list.n;

	if (!wn || !list.n)
		return false;
	for (;;) {
		const char *q = memchr(p, sep, (size_t)(end - p));

		if (span_eq_n(span_from(p, q ? q : end), word, wn))
			return true;
		if (!q)
			return false;
		p = q + 1;
	}
}

/* ----------------------------------------------------------------------- */

enum {
	MI_TOTAL,
	MI_FREE,
	MI_AVAILABLE,
	MI_HWCORRUPT,
	MI_NR,
};

static const char *const meminfo_keys[MI_NR] = {
	[MI_TOTAL] = "MemTotal",
	[MI_FREE] = "MemFree",
	[MI_AVAILABLE] = "MemAvailable",
	[MI_HWCORRUPT] = "HardwareCorrupted",
};

/* The value part of a meminfo line, after the ':': "   1234 kB". */
static int meminfo_value(struct span s, uint64_t *bytes)
{
	struct span num;
	uint64_t kb;
	int ret;

	skip_blanks(&s);
	num.p = s.p;
	while (s.n && is_digit(*s.p)) {
		s.p++;
		s.n--;
	}
	num.n = (size_t)(s.p - num.p);
	if (!num.n || !s.n || !is_blank(*s.p))
		return -EIO;
	skip_blanks(&s);
	trim_blanks_end(&s);
	if (!span_eq_n(s, "kB", 2))
		return -EIO;
	ret = parse_u64(num, &kb);
	if (ret)
		return ret;
	if (kb > UINT64_MAX / 1024)
		return -ERANGE;
	*bytes = kb * 1024;
	return 0;
}

int mn__parse_meminfo(const char *buf, size_t len, struct mn__meminfo *out)
{
	uint64_t val[MI_NR] = { 0 };
	bool seen[MI_NR] = { false };
	struct span line;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	while (next_line(buf, len, &pos, &line)) {
		const char *colon = line.n ? memchr(line.p, ':', line.n) : NULL;
		struct span key;
		int i, ret;

		if (!colon)
			continue;
		key = span_from(line.p, colon);
		for (i = 0; i < MI_NR; i++)
			if (span_eq(key, meminfo_keys[i]))
				break;
		/* Skip unknown keys, and repeats: the first one counts. */
		if (i == MI_NR || seen[i])
			continue;
		ret = meminfo_value(span_from(colon + 1, line.p + line.n),
				    &val[i]);
		if (ret)
			return ret;
		seen[i] = true;
	}
	if (!seen[MI_TOTAL] || !seen[MI_FREE])
		return -ENOENT;
	out->total_bytes = val[MI_TOTAL];
	out->free_bytes = val[MI_FREE];
	out->available_bytes = val[MI_AVAILABLE];
	out->hw_corrupted_bytes = val[MI_HWCORRUPT];
	out->has_available = seen[MI_AVAILABLE];
	return 0;
}

/* ----------------------------------------------------------------------- */

/* The fields of one "some"/"full" line after its first word. */
static int psi_line(struct span s, double avg[3], uint64_t *total)
{
	static const char *const avg_keys[3] = { "avg10", "avg60", "avg300" };
	unsigned int seen = 0;
	struct span word;

	while (next_word(&s, &word)) {
		const char *eq = memchr(word.p, '=', word.n);
		struct span key, val;
		int i, ret;

		if (!eq)
			return -EIO;
		key = span_from(word.p, eq);
		val = span_from(eq + 1, word.p + word.n);
		for (i = 0; i < 4; i++)
			if (span_eq(key, i < 3 ? avg_keys[i] : "total"))
				break;
		if (i == 4)
			continue;	/* a key from a newer kernel */
		if (seen & (1u << i))
			return -EIO;
		seen |= 1u << i;
		if (i < 3)
			ret = parse_decimal(val, &avg[i]);
		else
			ret = parse_u64(val, total);
		if (ret)
			return ret;
	}
	return seen == 0xf ? 0 : -EIO;
}

int mn__parse_psi(const char *buf, size_t len, struct mn__psi *out)
{
	bool has_some = false;
	struct span line;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	while (next_line(buf, len, &pos, &line)) {
		struct span word;
		double avg[3];
		uint64_t total;
		int ret;

		if (!next_word(&line, &word))
			continue;
		/* Only the first "some" and the first "full" line count. */
		if (span_eq(word, "some") && !has_some) {
			ret = psi_line(line, avg, &total);
			if (ret)
				return ret;
			out->some_avg10 = avg[0];
			out->some_avg60 = avg[1];
			out->some_avg300 = avg[2];
			out->some_total_us = total;
			has_some = true;
		} else if (span_eq(word, "full") && !out->has_full) {
			ret = psi_line(line, avg, &total);
			if (ret)
				return ret;
			out->full_avg10 = avg[0];
			out->full_avg60 = avg[1];
			out->full_avg300 = avg[2];
			out->full_total_us = total;
			out->has_full = 1;
		}
	}
	return has_some ? 0 : -ENOENT;
}

/* ----------------------------------------------------------------------- */

int mn__parse_cgroup_value(const char *buf, size_t len, uint64_t *out)
{
	struct span s = { buf, len };
	uint64_t v;
	int ret;

	if (s.n && s.p[s.n - 1] == '\n')
		s.n--;
	if (span_eq_n(s, "max", 3)) {
		*out = MN__UNLIMITED;
		return 0;
	}
	ret = parse_u64(s, &v);
	if (ret)
		return ret;
	*out = v >= (UINT64_C(1) << 62) ? MN__UNLIMITED : v;
	return 0;
}

/* ----------------------------------------------------------------------- */

int mn__parse_keyed(const char *buf, size_t len, const char *key,
		    uint64_t *out)
{
	size_t klen = strlen(key), pos = 0;
	struct span line;

	if (!klen)
		return -ENOENT;
	while (next_line(buf, len, &pos, &line)) {
		struct span word = { line.p, 0 };

		while (word.n < line.n && !is_blank(line.p[word.n]))
			word.n++;
		if (!span_eq_n(word, key, klen))
			continue;
		/* Found: " value", then nothing but blanks. */
		line.p += word.n;
		line.n -= word.n;
		if (!line.n || !is_blank(*line.p))
			return -EIO;
		skip_blanks(&line);
		trim_blanks_end(&line);
		return parse_u64(line, out);
	}
	return -ENOENT;
}

/* ----------------------------------------------------------------------- */

/* Copy a path span into a C string.  -EIO if it holds a NUL byte. */
static int copy_path(struct span s, char *out, size_t outlen)
{
	if (memchr(s.p, '\0', s.n))
		return -EIO;
	if (s.n >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, s.p, s.n);
	out[s.n] = '\0';
	return 0;
}

/*
 * Find the first /proc/self/cgroup line for which @match() is true and copy
 * its path.  Lines are "ID:controllers:path"; the path may itself contain
 * ':'.  Lines with fewer than two ':' cannot match.
 */
static int proc_cgroup_find(const char *buf, size_t len,
			    bool (*match)(struct span id, struct span ctrl,
					  const void *arg),
			    const void *arg, char *out, size_t outlen)
{
	struct span line;
	size_t pos = 0;

	if (outlen)
		out[0] = '\0';
	while (next_line(buf, len, &pos, &line)) {
		const char *end = line.p + line.n, *c1, *c2;
		struct span path;
		int ret;

		c1 = line.n ? memchr(line.p, ':', line.n) : NULL;
		if (!c1)
			continue;
		c2 = memchr(c1 + 1, ':', (size_t)(end - (c1 + 1)));
		if (!c2)
			continue;
		if (!match(span_from(line.p, c1), span_from(c1 + 1, c2), arg))
			continue;
		path = span_from(c2 + 1, end);
		if (!all_digits(span_from(line.p, c1)) || !path.n ||
		    path.p[0] != '/')
			return -EIO;
		ret = copy_path(path, out, outlen);
		if (ret && outlen)
			out[0] = '\0';
		return ret;
	}
	return -ENOENT;
}

static bool match_v1(struct span id, struct span ctrl, const void *arg)
{
	const char *controller = arg;

	(void)id;
	return list_has(ctrl, ',', controller, strlen(controller));
}

int mn__parse_proc_cgroup_v1(const char *buf, size_t len,
			     const char *controller, char *out, size_t outlen)
{
	/*
	 * Named hierarchies ("name=systemd") are not controllers; a
	 * controller name cannot hold ',' or ':' either.
	 */
	if (!*controller || strpbrk(controller, ",:=\n")) {
		if (outlen)
			out[0] = '\0';
		return -ENOENT;
	}
	return proc_cgroup_find(buf, len, match_v1, controller, out, outlen);
}

static bool match_v2(struct span id, struct span ctrl, const void *arg)
{
	(void)arg;
	return span_eq_n(id, "0", 1) && !ctrl.n;
}

int mn__parse_proc_cgroup_v2(const char *buf, size_t len, char *out,
			     size_t outlen)
{
	return proc_cgroup_find(buf, len, match_v2, NULL, out, outlen);
}

/* ----------------------------------------------------------------------- */

/*
 * mountinfo fields are separated by exactly one space (a field may be
 * empty, e.g. an empty mount source).  Like next_line(), but for ' ' within a
 * line; an empty line is one empty field.
 */
static bool next_field(struct span line, size_t *pos, struct span *f)
{
	const char *sp;

	if (*pos > line.n)
		return false;
	f->p = line.p + *pos;
	sp = memchr(f->p, ' ', line.n - *pos);
	if (sp) {
		f->n = (size_t)(sp - f->p);
		*pos += f->n + 1;
	} else {
		f->n = line.n - *pos;
		*pos = line.n + 1;
	}
	return true;
}

static bool is_odigit(char c)
{
	return c >= '0' && c <= '7';
}

/*
 * Decode the kernel's \ooo escapes of @s into @out.  A backslash not followed
 * by three octal digits (at most \377) is kept as it is, like libmount does.
 * -EIO if the result would contain a NUL byte, -ENAMETOOLONG if it does not
 * fit in @outlen bytes with its terminator.
 */
static int unescape(struct span s, char *out, size_t outlen)
{
	size_t i = 0, o = 0;

	while (i < s.n) {
		char c = s.p[i];

		if (c == '\\' && s.n - i >= 4 && s.p[i + 1] >= '0' &&
		    s.p[i + 1] <= '3' && is_odigit(s.p[i + 2]) &&
		    is_odigit(s.p[i + 3])) {
			c = (char)((s.p[i + 1] - '0') << 6 |
				   (s.p[i + 2] - '0') << 3 |
				   (s.p[i + 3] - '0'));
			i += 4;
		} else {
			i++;
		}
		if (c == '\0')
			return -EIO;
		if (o + 1 < outlen)
			out[o] = c;
		o++;
	}
	if (o >= outlen)
		return -ENAMETOOLONG;
	out[o] = '\0';
	return 0;
}

/* "major:minor" */
static bool is_devno(struct span s)
{
	const char *colon = s.n ? memchr(s.p, ':', s.n) : NULL;

	return colon && all_digits(span_from(s.p, colon)) &&
	       all_digits(span_from(colon + 1, s.p + s.n));
}

/*
 * One mountinfo line: 0 if it is the mount we want (@mnt and @root filled),
 * 1 if it is another mount or too broken to tell, or a negative errno if it
 * has the right type but is malformed.
 */
static int mountinfo_line(struct span line, const char *fstype,
			  const char *super_opt, char *mnt, size_t mntlen,
			  char *root, size_t rootlen)
{
	enum { F_ID, F_PARENT, F_DEVNO, F_ROOT, F_MNT, F_OPTS, F_NR };
	struct span f[F_NR], fld, type, source, sopts;
	size_t pos = 0, i;
	bool sep = false;
	int ret;

	for (i = 0; i < F_NR; i++)
		if (!next_field(line, &pos, &f[i]))
			return 1;
	/* Optional fields ("shared:N", ...) up to the lone "-". */
	while (next_field(line, &pos, &fld)) {
		if (span_eq_n(fld, "-", 1)) {
			sep = true;
			break;
		}
	}
	if (!sep || !next_field(line, &pos, &type) || !span_eq(type, fstype))
		return 1;
	if (!next_field(line, &pos, &source) ||
	    !next_field(line, &pos, &sopts))
		return -EIO;
	if (super_opt && !list_has(sopts, ',', super_opt, strlen(super_opt)))
		return 1;
	if (!all_digits(f[F_ID]) || !all_digits(f[F_PARENT]) ||
	    !is_devno(f[F_DEVNO]) || !f[F_ROOT].n || !f[F_MNT].n ||
	    f[F_MNT].p[0] != '/')
		return -EIO;
	/* Check both for -EIO before reporting -ENAMETOOLONG for either. */
	ret = unescape(f[F_MNT], mnt, mntlen);
	if (ret == -ENAMETOOLONG) {
		ret = unescape(f[F_ROOT], root, rootlen);
		return ret == -EIO ? ret : -ENAMETOOLONG;
	}
	if (ret)
		return ret;
	return unescape(f[F_ROOT], root, rootlen);
}

int mn__parse_mountinfo(const char *buf, size_t len, const char *fstype,
			const char *super_opt, char *mnt, size_t mntlen,
			char *root, size_t rootlen)
{
	struct span line;
	size_t pos = 0;
	int ret = -ENOENT;

	if (!*fstype || (super_opt && !*super_opt))
		goto out;
	while (next_line(buf, len, &pos, &line)) {
		ret = mountinfo_line(line, fstype, super_opt, mnt, mntlen,
				     root, rootlen);
		if (ret <= 0)
			goto out;
	}
	ret = -ENOENT;
out:
	if (ret) {
		if (mntlen)
			mnt[0] = '\0';
		if (rootlen)
			root[0] = '\0';
	}
	return ret;
}

/* ----------------------------------------------------------------------- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

int mn__controllers_has(const char *buf, size_t len, const char *name)
{
	size_t nlen = strlen(name), i = 0;

	if (!nlen)
		return 0;
	while (i < len) {
		size_t start;

		while (i < len && is_space(buf[i]))
			i++;
		start = i;
		while (i < len && !is_space(buf[i]))
			i++;
		if (i - start == nlen && memcmp(buf + start, name, nlen) == 0)
			return 1;
	}
	return 0;
}
