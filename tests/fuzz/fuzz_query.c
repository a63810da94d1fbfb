/* fuzz_query.c - /mandelbrot's query: '&'-separated name=value pairs into
 * query_add, query_finish, the key and the ETag. Checks: a query that
 * finishes has a picture that picture_check accepts; its key is
 * NUL-terminated within QUERY_KEY_MAX and its ETag matches itself; a
 * reason is always NUL-terminated and within its buffer; the whole input
 * as a Cache-Control or Pragma value gives only the known bits, and
 * no-store only with fresh. */
#include "server/query.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	struct query q;
	char why[200];

	char *whole = malloc(size + 1);
	if (!whole)
		abort();
	memcpy(whole, data, size);
	whole[size] = '\0';
	unsigned wish = query_cache_wish(whole, NULL), pragma = query_cache_wish(NULL, whole);
	FUZZ_CHECK((wish & ~(QUERY_FRESH | QUERY_NO_STORE)) == 0);
	FUZZ_CHECK(!(wish & QUERY_NO_STORE) || (wish & QUERY_FRESH));
	FUZZ_CHECK((pragma & ~QUERY_FRESH) == 0);
	free(whole);
	fuzz_split(&p, data, size, '&');
	(void)query_count_args(p.buf);
	query_init(&q);
	int rc = 0;
	for (unsigned i = 0; i < p.n && rc == 0; i++) {
		char *eq = strchr(p.piece[i], '=');
		const char *value = NULL;
		if (eq) {
			*eq = '\0';
			value = eq + 1;
		}
		FUZZ_CHECK(query_arg_whole(p.piece[i], strlen(p.piece[i]), value, value ? strlen(value) : 0));
		memset(why, 'x', sizeof why);
		rc = query_add(&q, p.piece[i], value, 8, why, sizeof why);
		if (rc < 0)
			FUZZ_CHECK(memchr(why, '\0', sizeof why));
	}
	if (rc == 0 && query_finish(&q, 4000000000u, why, sizeof why) == 0) {
		char key[QUERY_KEY_MAX], etag[QUERY_ETAG_MAX];
		FUZZ_CHECK(picture_check(&q.pic, why, sizeof why) == 0);
		query_key(&q, key);
		FUZZ_CHECK(memchr(key, '\0', sizeof key));
		query_etag(key, etag);
		FUZZ_CHECK(query_etag_matches(etag, etag));
		(void)query_etag_matches(p.buf, etag);
	}
	fuzz_free(&p);
	return 0;
}
