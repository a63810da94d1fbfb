/*
 * debug.h - who may use the /debug/ endpoints.
 *
 * Owns: the parsed allow-list (IPv4 and IPv6 prefixes) and the bearer
 * token. Profiling endpoints tell a caller what the program does, with
 * which data and how fast: exposed, they leak it and they cost CPU. So by
 * default only loopback peers may use them; an operator widens that with
 * an allow-list or a token (compared in constant time).
 *
 * Thread-safety: debug_acl_parse at start-up; debug_allowed from any
 * thread afterwards (it only reads).
 */
#ifndef MW_DEBUG_H
#define MW_DEBUG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DEBUG_ACL_MAX 16

struct debug_acl {
	struct {
		int family; /* AF_INET or AF_INET6 */
		uint8_t addr[16];
		unsigned bits;
	} net[DEBUG_ACL_MAX];
	unsigned n;
	char token[128]; /* "" for none */
};

/* list: "none", or comma-separated "ADDR[/BITS]" (IPv4 or IPv6). 0, or
 * -EINVAL with a reason in why. */
int debug_acl_parse(struct debug_acl *a, const char *list, const char *token, char *why,
		    size_t len);

/* Whether a peer (its address; NULL if unknown) sending the given
 * Authorization header value (NULL if none) may use /debug/. An IPv4
 * peer seen as an IPv4-mapped IPv6 address matches IPv4 prefixes. */
int debug_allowed(const struct debug_acl *a, const struct sockaddr *peer, const char *authorization);

#endif
