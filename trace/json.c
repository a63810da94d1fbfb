/*
 * json.c - see json.h. Numbers are formatted by hand (no locale, no
 * printf per number: a trace has millions of them).
 */
#include <string.h>

#include "trace/json.h"

static void put(struct json_out *o, const char *s, size_t n)
{
	if (o->full || o->cap - o->len < n) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

void json_raw(struct json_out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid
 * (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000;
	else
		return 0;
	unsigned cp = c & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_str(struct json_out *o, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;

	if (!s) {
		put(o, "null", 4);
		return;
	}
	put(o, "\"", 1);
	while (*s) {
		const unsigned char *run = s;
		/* The common case: a run of plain printable ASCII. */
		while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
			s++;
		put(o, (const char *)run, (size_t)(s - run));
		if (!*s)
			break;
		char esc[6] = {'\\', 0};
		switch (*s) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			break;
		}
		if (esc[1]) {
			put(o, esc, 2);
			s++;
		} else if (*s < 0x20) {
			char u[6] = {'\\', 'u', '0', '0', hex[*s >> 4], hex[*s & 15]};
			put(o, u, 6);
			s++;
		} else {
			size_t n = utf8_len(s);
			if (n) {
				put(o, (const char *)s, n);
				s += n;
			} else {
				put(o, "\xef\xbf\xbd", 3); /* U+FFFD for one bad byte */
				s++;
			}
		}
	}
	put(o, "\"", 1);
}

void json_u64(struct json_out *o, uint64_t v)
{
	char b[20];
	size_t i = sizeof b;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, b + i, sizeof b - i);
}

void json_i64(struct json_out *o, int64_t v)
{
	if (v < 0) {
		put(o, "-", 1);
		json_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		json_u64(o, (uint64_t)v);
	}
}

void json_us(struct json_out *o, uint64_t ns)
{
	unsigned frac = (unsigned)(ns % 1000);
	char d[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
		     (char)('0' + frac % 10)};
	json_u64(o, ns / 1000);
	put(o, d, 4);
}
