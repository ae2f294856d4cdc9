/* SPDX-License-Identifier: MIT */
/*
 * Strict text scanners for /proc and cgroup files, shared by the parsers
 * of the core (procfs.c) and of the sources (memory/parse.c): they work on
 * (pointer, length) spans inside the caller's buffer, which need not be
 * NUL-terminated, never look past its length, never allocate and never
 * use the locale.  Pure and async-signal-safe.
 */
#ifndef MN_CORE_TEXT_H
#define MN_CORE_TEXT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A run of bytes inside the input buffer. */
struct span {
	const char *p;
	size_t n;
};

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Does @s hold exactly the C string @str (of length @n)? */
static inline bool span_eq_n(struct span s, const char *str, size_t n)
{
	return s.n == n && (n == 0 || memcmp(s.p, str, n) == 0);
}

static inline bool span_eq(struct span s, const char *str)
{
	return span_eq_n(s, str, strlen(str));
}

static inline struct span span_from(const char *p, const char *end)
{
	struct span s = { p, (size_t)(end - p) };

	return s;
}

/*
 * Iterate over the lines of @buf: each call stores the next line (without
 * its '\n') in @line and returns true; returns false at the end.  A last line
 * without a newline counts; the empty tail after a final '\n' does not.
 */
static inline bool next_line(const char *buf, size_t len, size_t *pos,
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
static inline void skip_blanks(struct span *s)
{
	while (s->n && is_blank(*s->p)) {
		s->p++;
		s->n--;
	}
}

/* Drop blanks at the end of @s. */
static inline void trim_blanks_end(struct span *s)
{
	while (s->n && is_blank(s->p[s->n - 1]))
		s->n--;
}

/*
 * Take the next blank-separated word off the front of @s (leading blanks are
 * skipped first).  Returns false if only blanks were left.
 */
static inline bool next_word(struct span *s, struct span *word)
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
static inline bool all_digits(struct span s)
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
static inline int parse_u64(struct span s, uint64_t *out)
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
static inline int parse_decimal(struct span s, double *out)
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
static inline bool list_has(struct span list, char sep, const char *word, size_t wn)
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

#endif /* MN_CORE_TEXT_H */
