/* cidr.c - see cidr.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/cidr.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int cidr_is_v4(const struct cidr_addr *a)
{
	return memcmp(a->b, v4_mapped, sizeof v4_mapped) == 0;
}

int cidr_from_text(const char *s, size_t len, struct cidr_addr *out)
{
	char host[INET6_ADDRSTRLEN];
	if (len == 0 || len >= sizeof host)
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	if (memchr(host, ':', len))
		return inet_pton(AF_INET6, host, out->b) == 1 ? 0 : -EINVAL;
	memcpy(out->b, v4_mapped, sizeof v4_mapped);
	return inet_pton(AF_INET, host, out->b + 12) == 1 ? 0 : -EINVAL;
}

int cidr_from_sockaddr(const struct sockaddr *sa, struct cidr_addr *out)
{
	if (sa && sa->sa_family == AF_INET) {
		memcpy(out->b, v4_mapped, sizeof v4_mapped);
		memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6) {
		memcpy(out->b, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

void cidr_text(const struct cidr_addr *a, char *buf, size_t len)
{
	if (cidr_is_v4(a) ? !inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len)
			  : !inet_ntop(AF_INET6, a->b, buf, (socklen_t)len))
		snprintf(buf, len, "-");
}

static int parse_net(struct cidr_list *l, const char *item)
{
	const char *slash = strchr(item, '/');
	size_t hl = slash ? (size_t)(slash - item) : strlen(item);
	if (l->n >= CIDR_MAX || cidr_from_text(item, hl, &l->net[l->n].net) < 0)
		return -EINVAL;
	unsigned off = cidr_is_v4(&l->net[l->n].net) ? 96 : 0, bits = 128 - off;
	if (slash) {
		char *end;
		unsigned long b = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end || b > 128 - off)
			return -EINVAL;
		bits = (unsigned)b;
	}
	l->net[l->n].bits = off + bits;
	l->n++;
	return 0;
}

int cidr_list_parse(struct cidr_list *l, const char *list, const char *flag, char *why, size_t len)
{
	char buf[256];

	memset(l, 0, sizeof *l);
	if (strcmp(list, "none") == 0 || !*list)
		return 0;
	if (strlen(list) >= sizeof buf) {
		snprintf(why, len, "--%s: at most %zu characters", flag, sizeof buf - 1);
		return -EINVAL;
	}
	snprintf(buf, sizeof buf, "%s", list);
	for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
		while (*it == ' ')
			it++;
		if (parse_net(l, it) < 0) {
			snprintf(why, len,
				 "--%s: '%.60s' is not an IPv4 or IPv6 address[/bits] "
				 "(at most %d of them), nor 'none'", flag, it, CIDR_MAX);
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

int cidr_list_match(const struct cidr_list *l, const struct cidr_addr *a)
{
	for (unsigned i = 0; i < l->n; i++)
		if (prefix_match(a->b, l->net[i].net.b, l->net[i].bits))
			return 1;
	return 0;
}
