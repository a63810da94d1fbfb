/*
 * debug.h - who may use the /debug/ endpoints.
 *
 * Owns: the parsed allow-list (cidr.h) and the bearer token. Profiling
 * endpoints tell a caller what the program does, with which data and how
 * fast: exposed, they leak it and they cost CPU. So by default only
 * loopback clients may use them; an operator widens that with an
 * allow-list or a token (compared in constant time).
 *
 * The address judged is the client's as client.h identifies it: behind a
 * trusted proxy (--trusted-proxy), the address the proxy says it served,
 * not the proxy's own (which is loopback when the proxy is local).
 *
 * Thread-safety: debug_acl_parse at start-up; debug_allowed from any
 * thread afterwards (it only reads).
 */
#ifndef MW_DEBUG_H
#define MW_DEBUG_H

#include <stddef.h>

#include "server/cidr.h"

#define DEBUG_ACL_MAX CIDR_MAX

struct debug_acl {
	struct cidr_list nets;
	char token[128]; /* "" for none */
};

/* list: "none", or comma-separated "ADDR[/BITS]" (IPv4 or IPv6). 0, or
 * -EINVAL with a reason in why. */
int debug_acl_parse(struct debug_acl *a, const char *list, const char *token, char *why,
		    size_t len);

/* Whether a client (its address; NULL if unknown) sending the given
 * Authorization header value (NULL if none) may use /debug/. */
int debug_allowed(const struct debug_acl *a, const struct cidr_addr *client, const char *authorization);

#endif
