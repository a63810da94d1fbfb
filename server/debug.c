/*
 * debug.c - see debug.h.
 */
#include <stdio.h>
#include <string.h>

#include "server/debug.h"

int debug_acl_parse(struct debug_acl *a, const char *list, const char *token, char *why,
		    size_t len)
{
	memset(a, 0, sizeof *a);
	snprintf(a->token, sizeof a->token, "%s", token ? token : "");
	return cidr_list_parse(&a->nets, list, "debug-allow", why, len);
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

int debug_allowed(const struct debug_acl *a, const struct cidr_addr *client, const char *authorization)
{
	if (token_ok(a->token, authorization))
		return 1;
	return client && cidr_list_match(&a->nets, client);
}
