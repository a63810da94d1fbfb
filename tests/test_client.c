/* test_client.c - who a request comes from (server/client.c): the peer,
 * or behind a trusted proxy the right-most untrusted X-Forwarded-For
 * address; spoofing from an untrusted peer changes nothing; IPv6 keyed by
 * its /64. And the CIDR lists both --trusted-proxy and --debug-allow use. */
#include <arpa/inet.h>
#include <errno.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <netinet/in.h>
#include <string.h>

#include "server/client.h"
#include "server/debug.h"

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(4242)};
	cr_assert(eq(int, inet_pton(AF_INET, a, &s.sin_addr), 1));
	return s;
}

static struct cidr_list list(const char *l)
{
	struct cidr_list c;
	char why[160];
	cr_assert(eq(int, cidr_list_parse(&c, l, "trusted-proxy", why, sizeof why), 0), "%s", why);
	return c;
}

/* The identity's address and key as text. */
static void who(const struct cidr_list *trusted, const struct sockaddr *peer, const char *const *xff,
		size_t n, char addr[64], char key[CLIENT_TEXT_MAX], int *forwarded)
{
	struct client c;
	client_identify(trusted, peer, xff, n, &c);
	cidr_text(&c.addr, addr, 64);
	client_key_text(&c, key);
	*forwarded = c.forwarded;
}

Test(client, an_untrusted_peer_is_itself_whatever_it_forwards)
{
	struct cidr_list none = list("none"), proxy = list("127.0.0.1");
	struct sockaddr_in peer = v4("198.51.100.4");
	const char *xff[] = {"203.0.113.9"};
	char a[64], k[CLIENT_TEXT_MAX];
	int fwd;
	who(&none, (struct sockaddr *)&peer, xff, 1, a, k, &fwd);
	cr_expect(eq(str, a, "198.51.100.4"));
	cr_expect(eq(int, fwd, 0));
	/* A proxy is trusted; this peer is not it. */
	who(&proxy, (struct sockaddr *)&peer, xff, 1, a, k, &fwd);
	cr_expect(eq(str, a, "198.51.100.4"), "a spoofed X-Forwarded-For changes nothing");
	cr_expect(eq(str, k, "198.51.100.4"));
}

Test(client, behind_a_trusted_proxy_the_rightmost_untrusted_address)
{
	struct cidr_list proxies = list("127.0.0.1,10.0.0.0/8");
	struct sockaddr_in peer = v4("127.0.0.1");
	char a[64], k[CLIENT_TEXT_MAX];
	int fwd;
	/* The client wrote "1.2.3.4" itself; nginx appended the address it
	 * was reached from; an inner trusted hop appended its own. */
	const char *xff[] = {"1.2.3.4, 203.0.113.9, 10.1.2.3"};
	who(&proxies, (struct sockaddr *)&peer, xff, 1, a, k, &fwd);
	cr_expect(eq(str, a, "203.0.113.9"));
	cr_expect(eq(int, fwd, 1));
	/* Two headers are one list, in order. */
	const char *two[] = {"1.2.3.4", "203.0.113.10 ,10.9.9.9"};
	who(&proxies, (struct sockaddr *)&peer, two, 2, a, k, &fwd);
	cr_expect(eq(str, a, "203.0.113.10"));
	/* Every hop trusted: the left-most one. */
	const char *inner[] = {"10.0.0.5, 10.0.0.6"};
	who(&proxies, (struct sockaddr *)&peer, inner, 1, a, k, &fwd);
	cr_expect(eq(str, a, "10.0.0.5"));
	/* Ports and brackets as some proxies write them. */
	const char *ports[] = {"[2001:db8::7]:443, 203.0.113.11:5000"};
	who(&proxies, (struct sockaddr *)&peer, ports, 1, a, k, &fwd);
	cr_expect(eq(str, a, "203.0.113.11"));
	/* No header: the proxy itself. */
	who(&proxies, (struct sockaddr *)&peer, NULL, 0, a, k, &fwd);
	cr_expect(eq(str, a, "127.0.0.1"));
	cr_expect(eq(int, fwd, 0));
}

/* Garbage ends the walk: the client is the last trusted address seen,
 * never an address from the left of the garbage. */
Test(client, a_malformed_entry_stops_the_walk)
{
	struct cidr_list proxies = list("127.0.0.0/8");
	struct sockaddr_in peer = v4("127.0.0.1");
	char a[64], k[CLIENT_TEXT_MAX];
	int fwd;
	const char *bad[] = {"203.0.113.9, unknown"};
	who(&proxies, (struct sockaddr *)&peer, bad, 1, a, k, &fwd);
	cr_expect(eq(str, a, "127.0.0.1"));
	const char *mid[] = {"203.0.113.9, 999.1.1.1, 127.0.0.7"};
	who(&proxies, (struct sockaddr *)&peer, mid, 1, a, k, &fwd);
	cr_expect(eq(str, a, "127.0.0.7"));
	const char *blank[] = {" , 203.0.113.12 , "};
	who(&proxies, (struct sockaddr *)&peer, blank, 1, a, k, &fwd);
	cr_expect(eq(str, a, "203.0.113.12"), "empty entries say nothing");
}

/* An IPv6 client is keyed by its /64: one subscriber's 2^64 addresses
 * are one client; the address itself is kept whole (the /debug/ rule). */
Test(client, ipv6_is_keyed_by_its_64)
{
	struct cidr_list none = list("none");
	struct sockaddr_in6 p = {.sin6_family = AF_INET6};
	cr_assert(eq(int, inet_pton(AF_INET6, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", &p.sin6_addr), 1));
	char a[64], k[CLIENT_TEXT_MAX];
	int fwd;
	who(&none, (struct sockaddr *)&p, NULL, 0, a, k, &fwd);
	cr_expect(eq(str, a, "2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
	cr_expect(eq(str, k, "2001:db8:1:2::/64"));
	struct client c1, c2;
	client_identify(&none, (struct sockaddr *)&p, NULL, 0, &c1);
	cr_assert(eq(int, inet_pton(AF_INET6, "2001:db8:1:2::1", &p.sin6_addr), 1));
	client_identify(&none, (struct sockaddr *)&p, NULL, 0, &c2);
	cr_expect(eq(int, memcmp(&c1.key, &c2.key, sizeof c1.key), 0));
	client_identify(&none, NULL, NULL, 0, &c1);
	client_key_text(&c1, k);
	cr_expect(eq(str, k, "-"));
}

/* Behind a trusted local proxy, a remote client is not loopback to the
 * /debug/ rule; a local one still is. */
Test(client, the_debug_rule_judges_the_forwarded_client)
{
	struct cidr_list proxy = list("127.0.0.1");
	struct debug_acl acl;
	char why[160];
	cr_assert(eq(int, debug_acl_parse(&acl, "127.0.0.0/8,::1", "", why, sizeof why), 0));
	struct sockaddr_in peer = v4("127.0.0.1");
	const char *remote[] = {"203.0.113.9"}, *local[] = {"127.0.0.5"};
	struct client c;
	client_identify(&proxy, (struct sockaddr *)&peer, remote, 1, &c);
	cr_expect(eq(int, debug_allowed(&acl, &c.addr, NULL), 0));
	client_identify(&proxy, (struct sockaddr *)&peer, local, 1, &c);
	cr_expect(eq(int, debug_allowed(&acl, &c.addr, NULL), 1));
}

Test(client, cidr_lists)
{
	struct cidr_list l;
	char why[160];
	cr_expect(eq(int, cidr_list_parse(&l, "10.0.0.0/33", "x", why, sizeof why), -EINVAL));
	cr_expect(not(eq(ptr, strstr(why, "--x:"), NULL)), "%s", why);
	cr_expect(eq(int, cidr_list_parse(&l, "fe80::/129", "x", why, sizeof why), -EINVAL));
	cr_expect(eq(int, cidr_list_parse(&l, "10.0.0.0/8, 2001:db8::/32", "x", why, sizeof why), 0));
	struct cidr_addr a;
	cr_assert(eq(int, cidr_from_text("10.200.0.1", 10, &a), 0));
	cr_expect(eq(int, cidr_list_match(&l, &a), 1));
	cr_assert(eq(int, cidr_from_text("11.0.0.1", 8, &a), 0));
	cr_expect(eq(int, cidr_list_match(&l, &a), 0));
	cr_assert(eq(int, cidr_from_text("2001:db8:ffff::1", 16, &a), 0));
	cr_expect(eq(int, cidr_list_match(&l, &a), 1));
	/* An IPv4 prefix does not match an IPv6 address with the same bytes. */
	cr_assert(eq(int, cidr_from_text("a00::1", 6, &a), 0));
	cr_expect(eq(int, cidr_list_match(&l, &a), 0));
	cr_expect(eq(int, cidr_list_parse(&l, "none", "x", why, sizeof why), 0));
	cr_expect(eq(u32, l.n, 0));
}
