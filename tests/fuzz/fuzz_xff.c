/* fuzz_xff.c - who a request comes from: the first line a --trusted-proxy
 * list, the second the peer's address, each further line an
 * X-Forwarded-For header value, into client_identify. Checks: an
 * untrusted (or unknown) peer is itself whatever it forwards; a trusted
 * one's client is the peer or an address the headers hold, and only a
 * trusted peer is ever forwarded; an IPv6 key is a /64 (its last 8 bytes
 * zero), an IPv4 key the address; the key's text is a NUL-terminated
 * string that fits. */
#include <netinet/in.h>
#include <string.h>

#include "server/client.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	struct cidr_list trusted;
	char why[200];

	fuzz_split(&p, data, size, '\n');
	if (p.n < 2 || cidr_list_parse(&trusted, p.piece[0], "trusted-proxy", why, sizeof why) < 0) {
		fuzz_free(&p);
		return 0;
	}
	struct cidr_addr peer_addr;
	struct sockaddr_in6 peer = {.sin6_family = AF_INET6};
	int have_peer = cidr_from_text(p.piece[1], strlen(p.piece[1]), &peer_addr) == 0;
	if (have_peer)
		memcpy(&peer.sin6_addr, peer_addr.b, 16);
	const char *const *xff = (const char *const *)&p.piece[2];
	struct client c;
	client_identify(&trusted, have_peer ? (struct sockaddr *)&peer : NULL, xff, p.n - 2, &c);
	FUZZ_CHECK(c.known == have_peer);
	if (have_peer && !cidr_list_match(&trusted, &peer_addr)) {
		FUZZ_CHECK(!c.forwarded);
		FUZZ_CHECK(memcmp(&c.addr, &peer_addr, sizeof peer_addr) == 0);
	}
	if (c.forwarded) {
		/* The client is one of the headers' entries (read here on its
		 * own: trimmed, "[v6]:port" and "a.b.c.d:port" unwrapped), never
		 * an address made up. */
		int seen = 0;
		for (unsigned i = 2; i < p.n && !seen; i++) {
			for (char *save = NULL, *e = strtok_r(p.piece[i], ",", &save); e && !seen;
			     e = strtok_r(NULL, ",", &save)) {
				e += strspn(e, " \t");
				size_t len = strcspn(e, " \t");
				char *close = *e == '[' ? memchr(e, ']', len) : NULL;
				char *colon = memchr(e, ':', len);
				struct cidr_addr a;
				if (close)
					e++, len = (size_t)(close - e);
				else if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - e) - 1) &&
					 memchr(e, '.', len))
					len = (size_t)(colon - e);
				seen = cidr_from_text(e, len, &a) == 0 && memcmp(&a, &c.addr, sizeof a) == 0;
			}
		}
		FUZZ_CHECK(seen);
	}
	if (c.known && !cidr_is_v4(&c.key))
		for (int i = 8; i < 16; i++)
			FUZZ_CHECK(c.key.b[i] == 0);
	if (c.known && cidr_is_v4(&c.key))
		FUZZ_CHECK(memcmp(&c.key, &c.addr, sizeof c.key) == 0);
	char key[CLIENT_TEXT_MAX];
	memset(key, 'x', sizeof key);
	client_key_text(&c, key);
	FUZZ_CHECK(memchr(key, '\0', sizeof key) != NULL);
	fuzz_free(&p);
	return 0;
}
