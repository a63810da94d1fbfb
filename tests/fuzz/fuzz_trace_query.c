/* fuzz_trace_query.c - /debug/trace's query ('&'-separated name=value
 * pairs) into tracing_query_add and tracing_query_finish, with the flight
 * recorder on and off; and the whole input as an Accept-Encoding value.
 * Checks: an accepted window is within 0.001..trace-max seconds; last= is
 * refused without the flight recorder; a value that names no gzip (nor *)
 * is not taken as gzip. */
#include "server/tracing.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_pieces p;
	char why[200];

	char *whole = malloc(size + 1);
	if (!whole)
		abort();
	memcpy(whole, data, size);
	whole[size] = '\0';
	if (!strcasestr(whole, "gzip") && !strchr(whole, '*'))
		FUZZ_CHECK(!tracing_accepts_gzip(whole));
	free(whole);
	fuzz_split(&p, data, size, '&');
	for (int flight = 0; flight < 2; flight++) {
		struct tracing_query q = {0};
		for (unsigned i = 0; i < p.n; i++) {
			char *eq = strchr(p.piece[i], '=');
			const char *value = eq ? eq + 1 : NULL;
			size_t klen = eq ? (size_t)(eq - p.piece[i]) : strlen(p.piece[i]);
			char key[256];
			snprintf(key, sizeof key, "%.*s", (int)klen, p.piece[i]);
			if (!tracing_query_add(&q, key, strlen(key), value, value ? strlen(value) : 0))
				break;
		}
		uint64_t ns = 0;
		int last = -1;
		if (tracing_query_finish(&q, 60, flight, &ns, &last, why, sizeof why) == 0) {
			FUZZ_CHECK(ns >= 1000000 && ns <= 60000000000u);
			FUZZ_CHECK(last == 0 || (last == 1 && flight));
		} else {
			FUZZ_CHECK(memchr(why, '\0', sizeof why));
		}
	}
	fuzz_free(&p);
	return 0;
}
