/* fuzz_acl.c - who may use /debug/: the first line a --debug-allow list
 * of CIDRs, the second a --debug-token, the third an Authorization header,
 * into debug_acl_parse and debug_allowed for a few peers. Checks: at most
 * DEBUG_ACL_MAX networks with prefixes within their family's width, each
 * admitting its own address; a refused list leaves a reason; "Bearer <token>" is allowed from anywhere
 * whenever a token was accepted. */
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
	FUZZ_CHECK(a.nets.n <= DEBUG_ACL_MAX);
	for (unsigned i = 0; i < a.nets.n; i++)
		FUZZ_CHECK(a.nets.net[i].bits <= (cidr_is_v4(&a.nets.net[i].net) ? 32u + 96u : 128u) &&
			   a.nets.net[i].bits >= (cidr_is_v4(&a.nets.net[i].net) ? 96u : 0u));
	struct cidr_addr v4, v6;
	FUZZ_CHECK(cidr_from_text("203.0.113.7", 11, &v4) == 0);
	FUZZ_CHECK(cidr_from_text("2001:db8::7", 11, &v6) == 0);
	(void)debug_allowed(&a, &v4, auth);
	(void)debug_allowed(&a, &v6, auth);
	(void)debug_allowed(&a, NULL, auth);
	/* Every listed network admits its own address. */
	for (unsigned i = 0; i < a.nets.n; i++)
		FUZZ_CHECK(debug_allowed(&a, &a.nets.net[i].net, NULL));
	if (a.token[0]) {
		char bearer[160];
		snprintf(bearer, sizeof bearer, "Bearer %s", a.token);
		FUZZ_CHECK(debug_allowed(&a, &v4, bearer));
	}
	fuzz_free(&p);
	return 0;
}
