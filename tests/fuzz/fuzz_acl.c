/* fuzz_acl.c - who may use /debug/: the first line a --debug-allow list
 * of CIDRs, the second a --debug-token, the third an Authorization header,
 * into debug_acl_parse and debug_allowed for a few peers. Checks: at most
 * DEBUG_ACL_MAX networks with prefixes within their family's width; a
 * refused list leaves a reason; "Bearer <token>" is allowed from anywhere
 * whenever a token was accepted. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "server/debug.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	struct debug_acl a;
	char why[200];

	fuzz_split(&p, data, size, '\n');
	const char *list = p.piece[0], *token = p.n > 1 ? p.piece[1] : "", *auth = p.n > 2 ? p.piece[2] : NULL;
	memset(why, 'x', sizeof why);
	if (debug_acl_parse(&a, list, token, why, sizeof why) < 0) {
		FUZZ_CHECK(memchr(why, '\0', sizeof why));
		fuzz_free(&p);
		return 0;
	}
	FUZZ_CHECK(a.n <= DEBUG_ACL_MAX);
	for (unsigned i = 0; i < a.n; i++)
		FUZZ_CHECK(a.net[i].bits <= (a.net[i].family == AF_INET ? 32u : 128u));
	struct sockaddr_in v4 = {.sin_family = AF_INET};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET, "203.0.113.7", &v4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
	(void)debug_allowed(&a, (struct sockaddr *)&v4, auth);
	(void)debug_allowed(&a, (struct sockaddr *)&v6, auth);
	(void)debug_allowed(&a, NULL, auth);
	if (a.token[0]) {
		char bearer[160];
		snprintf(bearer, sizeof bearer, "Bearer %s", a.token);
		FUZZ_CHECK(debug_allowed(&a, (struct sockaddr *)&v4, bearer));
	}
	fuzz_free(&p);
	return 0;
}
