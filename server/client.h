/*
 * client.h - who a request comes from: the identity fair admission shares
 * the render pool by, the /debug/ rule judges and the access log shows.
 *
 * A client is its IP address: the TCP peer's, or, when the peer is a
 * proxy listed in --trusted-proxy, the address that proxy says it served:
 * the right-most address of X-Forwarded-For that is not itself a trusted
 * proxy (each proxy appends the address it was reached from, so the
 * entries left of the last untrusted one are whatever the client chose to
 * write, and are ignored). From an untrusted peer the header changes
 * nothing. An entry that is not an address ends the walk, and the last
 * trusted address seen (the proxy itself) is the client.
 *
 * Fair shares are kept by a key: the address for IPv4, the /64 for IPv6
 * (one subscriber's network; a host can use any of its 2^64 addresses).
 *
 * Owns nothing: pure functions on caller-owned structs; any thread.
 */
#ifndef MW_CLIENT_H
#define MW_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>

#include "server/cidr.h"

#define CLIENT_TEXT_MAX 50 /* "2001:db8:1:2::/64" and the longest IPv6 literal, NUL included */

struct client {
	struct cidr_addr addr; /* the client's address */
	struct cidr_addr key;  /* what its fair share is kept by: addr, or its /64 */
	int forwarded;         /* addr came from X-Forwarded-For */
	int known;             /* 0: no peer address at all (key and addr are zero) */
};

/* peer: the TCP peer (NULL if unknown); xff: the X-Forwarded-For header
 * values in the order they came, n of them. */
void client_identify(const struct cidr_list *trusted, const struct sockaddr *peer,
		     const char *const *xff, size_t n, struct client *out);

/* The key as text: "203.0.113.7", "2001:db8:1:2::/64", or "-". */
void client_key_text(const struct client *c, char buf[CLIENT_TEXT_MAX]);

#endif
