/*
 * debug.c - see debug.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/debug.h"

static int parse_net(struct debug_acl *a, const char *item)
{
	char host[64];
	const char *slash = strchr(item, '/');
	size_t hl = slash ? (size_t)(slash - item) : strlen(item);
	if (hl == 0 || hl >= sizeof host || a->n >= DEBUG_ACL_MAX)
		return -EINVAL;
	memcpy(host, item, hl);
	host[hl] = '\0';
	int fam = strchr(host, ':') ? AF_INET6 : AF_INET;
	unsigned max = fam == AF_INET ? 32 : 128;
	if (inet_pton(fam, host, a->net[a->n].addr) != 1)
		return -EINVAL;
	unsigned bits = max;
	if (slash) {
		char *end;
		unsigned long b = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end || b > max)
			return -EINVAL;
		bits = (unsigned)b;
	}
	a->net[a->n].family = fam;
	a->net[a->n].bits = bits;
	a->n++;
	return 0;
}

int debug_acl_parse(struct debug_acl *a, const char *list, const char *token, char *why,
		    size_t len)
{
	char buf[256];

	memset(a, 0, sizeof *a);
	snprintf(a->token, sizeof a->token, "%s", token ? token : "");
	if (strcmp(list, "none") == 0)
		return 0;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
		while (*it == ' ')
			it++;
		if (parse_net(a, it) < 0) {
			snprintf(why, len,
				 "--debug-allow: '%.60s' is not an IPv4 or IPv6 address[/bits] "
				 "(at most %d of them), nor 'none'", it, DEBUG_ACL_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

static int prefix_match(const uint8_t *addr, const uint8_t *net, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(addr, net, full) != 0)
		return 0;
	if (!rest)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == (net[full] & mask);
}

/* Constant time in the token's content, so a remote peer cannot find it
 * a byte at a time by timing. */
static int token_ok(const char *want, const char *auth)
{
	static const char scheme[] = "Bearer ";
	if (!*want || !auth || strncmp(auth, scheme, sizeof scheme - 1) != 0)
		return 0;
	const char *got = auth + sizeof scheme - 1;
	size_t wl = strlen(want), gl = strlen(got);
	unsigned diff = (unsigned)(wl ^ gl);
	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? got[i] : 0);
	return diff == 0;
}

int debug_allowed(const struct debug_acl *a, const struct sockaddr *peer, const char *authorization)
{
	if (token_ok(a->token, authorization))
		return 1;
	if (!peer)
		return 0;
	uint8_t v4[4];
	const uint8_t *v6 = NULL;
	int v4ok = 0;
	if (peer->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)peer)->sin_addr, 4);
		v4ok = 1;
	} else if (peer->sa_family == AF_INET6) {
		v6 = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(v6, mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			v4ok = 1;
		}
	}
	for (unsigned i = 0; i < a->n; i++) {
		if (a->net[i].family == AF_INET && v4ok &&
		    prefix_match(v4, a->net[i].addr, a->net[i].bits))
			return 1;
		if (a->net[i].family == AF_INET6 && v6 &&
		    prefix_match(v6, a->net[i].addr, a->net[i].bits))
			return 1;
	}
	return 0;
}
