/* client.c - see client.h. */
#include <string.h>

#include "server/client.h"

/* One X-Forwarded-For entry, trimmed, as an address: a bare literal, or
 * "a.b.c.d:port" and "[v6]:port" as some proxies write them. 0 or -1. */
static int entry_addr(const char *s, size_t len, struct cidr_addr *out)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len && *s == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || (close + 1 != s + len && close[1] != ':'))
			return -1;
		return cidr_from_text(s + 1, (size_t)(close - s - 1), out) == 0 ? 0 : -1;
	}
	const char *colon = memchr(s, ':', len);
	if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) && memchr(s, '.', len))
		len = (size_t)(colon - s); /* a.b.c.d:port */
	return cidr_from_text(s, len, out) == 0 ? 0 : -1;
}

/* Walks the entries right to left from the last header; returns 1 when an
 * untrusted address was found (in *a), else 0 with *a the last trusted
 * one seen. */
static int rightmost_untrusted(const struct cidr_list *trusted, const char *const *xff, size_t n,
			       struct cidr_addr *a)
{
	for (size_t h = n; h-- > 0;) {
		const char *v = xff[h], *end = v + strlen(v);
		while (end > v) {
			const char *comma = end;
			while (comma > v && comma[-1] != ',')
				comma--;
			struct cidr_addr e;
			size_t len = (size_t)(end - comma);
			int blank = strspn(comma, " \t") >= len;
			end = comma > v ? comma - 1 : v;
			if (blank)
				continue; /* "a, , b" or a trailing comma: nothing said */
			if (entry_addr(comma, len, &e) < 0)
				return 0;
			*a = e;
			if (!cidr_list_match(trusted, &e))
				return 1;
		}
	}
	return 0;
}

void client_identify(const struct cidr_list *trusted, const struct sockaddr *peer,
		     const char *const *xff, size_t n, struct client *out)
{
	memset(out, 0, sizeof *out);
	if (cidr_from_sockaddr(peer, &out->addr) < 0)
		return;
	out->known = 1;
	if (n && trusted->n && cidr_list_match(trusted, &out->addr)) {
		struct cidr_addr a = out->addr;
		rightmost_untrusted(trusted, xff, n, &a);
		out->forwarded = memcmp(&a, &out->addr, sizeof a) != 0;
		out->addr = a;
	}
	out->key = out->addr;
	if (!cidr_is_v4(&out->key))
		memset(out->key.b + 8, 0, 8);
}

void client_key_text(const struct client *c, char buf[CLIENT_TEXT_MAX])
{
	if (!c->known) {
		strcpy(buf, "-");
		return;
	}
	cidr_text(&c->key, buf, CLIENT_TEXT_MAX - 4);
	if (!cidr_is_v4(&c->key))
		strcat(buf, "/64");
}
