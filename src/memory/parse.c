/* SPDX-License-Identifier: MIT */
/*
 * Parsers for the PSI files, /proc/self/cgroup,
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

#include "../core/text.h"

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
