/* test_query.c - the query string of /mandelbrot: every reason, repeats,
 * the cost budget, canonical keys and ETag matching. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <string.h>

#include "server/query.h"

static int add(struct query *q, const char *k, const char *v, char *why)
{
	return query_add(q, k, v, 2, why, 200);
}

Test(query, reasons_name_the_parameter_and_range)
{
	static const struct {
		const char *k, *v, *why;
	} bad[] = {
		{"w", "0", "w must be an integer in 1..8192"},
		{"w", "abc", "w must be an integer in 1..8192"},
		{"h", "9000", "h must be an integer in 1..8192"},
		{"iter", "-1", "iter must be an integer in 1..1000000"},
		{"cx", "nan", "cx must be a number in -4..4"},
		{"cy", "inf", "cy must be a number in -4..4"},
		{"zoom", "0", "zoom must be a number in 0.001..1e+13"},
		{"colour", "pink", "colour must be one of gray|smooth|fire"},
		{"mode", "fast", "mode must be one of seq|px|row|workers|auto"},
		{"workers", "3", "workers must be an integer in 1..2"},
		{"w", NULL, "parameter 'w' needs a value"},
		{"size", "1", "unknown parameter 'size' (known: w, h, cx, cy, zoom, iter, colour, mode, workers)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct query q;
		char why[200] = "";
		query_init(&q);
		cr_expect(eq(int, add(&q, bad[i].k, bad[i].v, why), -EINVAL), "%s", bad[i].k);
		cr_expect(eq(str, why, (char *)bad[i].why));
	}
}

Test(query, each_parameter_once_colour_and_color_are_one)
{
	struct query q;
	char why[200];
	query_init(&q);
	cr_assert(eq(int, add(&q, "colour", "fire", why), 0));
	cr_assert(eq(int, add(&q, "color", "fire", why), -EINVAL));
	cr_assert(eq(str, why, "parameter 'colour' given more than once"));
	cr_assert(eq(int, add(&q, "w", "10", why), 0));
	cr_assert(eq(int, add(&q, "w", "10", why), -EINVAL));
	cr_assert(eq(str, why, "parameter 'w' given more than once"));
}

Test(query, cost_budget)
{
	struct query q;
	char why[200];
	query_init(&q);
	cr_assert(eq(int, query_finish(&q, 512u * 512 * 1000, why, sizeof why), 0));
	cr_assert(eq(int, add(&q, "iter", "1001", why), 0));
	cr_assert(eq(int, query_finish(&q, 512u * 512 * 1000, why, sizeof why), -EINVAL));
	cr_assert(eq(str, why, "w*h*iter is 262406144 pixel-iterations, above this server's budget "
			       "of 262144000 (--max-cost): lower w, h or iter, or start the server "
			       "with a larger --max-cost"));
}

Test(query, canonical_key_ignores_spelling_mode_and_workers)
{
	struct query a, b;
	char why[200], ka[QUERY_KEY_MAX], kb[QUERY_KEY_MAX], ea[QUERY_ETAG_MAX], eb[QUERY_ETAG_MAX];
	query_init(&a);
	query_init(&b);
	add(&a, "cx", "-0.5", why);
	add(&a, "mode", "row", why);
	add(&b, "cx", "-0.50", why);
	add(&b, "workers", "1", why);
	query_key(&a, ka);
	query_key(&b, kb);
	cr_assert(eq(str, ka, kb));
	query_etag(ka, ea);
	query_etag(kb, eb);
	cr_assert(eq(str, ea, eb));
	add(&b, "iter", "999", why);
	query_key(&b, kb);
	query_etag(kb, eb);
	cr_assert(not(eq(str, ea, eb)));
	cr_assert(eq(int, (int)strlen(ea), QUERY_ETAG_MAX - 1));
	cr_assert(eq(int, ea[0], '"'));

	struct query d;
	query_init(&d);
	query_key(&d, ka);
	cr_assert(eq(str, ka, "w=512&h=512&iter=1000&colour=gray"));
}

Test(query, if_none_match)
{
	const char *e = "\"mw1-00000000000000ab\"";
	cr_assert(query_etag_matches(e, e));
	cr_assert(query_etag_matches("*", e));
	cr_assert(query_etag_matches("\"x\", W/\"mw1-00000000000000ab\"", e));
	cr_assert(query_etag_matches(" \"x\" ,\"mw1-00000000000000ab\" ", e));
	cr_assert(not(query_etag_matches("\"mw1-00000000000000ac\"", e)));
	cr_assert(not(query_etag_matches("mw1-00000000000000ab", e)));
	cr_assert(not(query_etag_matches("", e)));
	cr_assert(not(query_etag_matches(NULL, e)));
}

/* A %00 ends libmicrohttpd's decoded strings early: a key or value whose
 * length is not its size is not whole. */
Test(query, arg_whole_sees_a_nul)
{
	cr_expect(eq(int, query_arg_whole("w", 1, "8", 1), true));
	cr_expect(eq(int, query_arg_whole("w", 1, NULL, 0), true));
	cr_expect(eq(int, query_arg_whole("w", 1, "8\0junk", 6), false));
	cr_expect(eq(int, query_arg_whole("w\0x", 3, "8", 1), false));
}

/* What a request's Cache-Control says of stored answers. */
Test(query, cache_wish_reads_no_cache_and_no_store)
{
	static const struct {
		const char *cc, *pragma;
		unsigned want;
	} cases[] = {
		{NULL, NULL, 0},
		{"", NULL, 0},
		{"no-cache", NULL, QUERY_FRESH},
		{"No-Cache", NULL, QUERY_FRESH},
		{"no-store", NULL, QUERY_FRESH | QUERY_NO_STORE},
		{"max-age=0, no-store", NULL, QUERY_FRESH | QUERY_NO_STORE},
		{"max-age=60,no-cache", NULL, QUERY_FRESH},
		{"  no-cache  ,  no-store  ", NULL, QUERY_FRESH | QUERY_NO_STORE},
		{"max-age=0", NULL, 0},
		{"no-cacheX", NULL, 0},
		{"xno-cache", NULL, 0},
		{"private=\"no-cache, no-store\"", NULL, 0}, /* inside a quoted value */
		{"ext=\"a\\\"no-store\", no-cache", NULL, QUERY_FRESH},
		{"ext=\"unterminated no-store", NULL, 0},
		{"no-cache=\"set-cookie\"", NULL, QUERY_FRESH},
		{NULL, "no-cache", QUERY_FRESH}, /* Pragma, where Cache-Control is absent */
		{NULL, "no-store", 0},           /* not a Pragma directive */
		{"max-age=0", "no-cache", 0},    /* Cache-Control, where present, decides */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect(eq(u32, query_cache_wish(cases[i].cc, cases[i].pragma), cases[i].want),
			  "%zu: %s / %s", i, cases[i].cc ? cases[i].cc : "-",
			  cases[i].pragma ? cases[i].pragma : "-");
}

/* mode or workers given: an experiment, rendered rather than looked up;
 * the key (and so the ETag) is the picture's all the same. */
Test(query, mode_or_workers_make_an_experiment_with_the_same_key)
{
	struct query plain, px, two;
	char why[200], k0[QUERY_KEY_MAX], k1[QUERY_KEY_MAX], k2[QUERY_KEY_MAX];
	query_init(&plain);
	query_init(&px);
	query_init(&two);
	cr_assert(eq(int, query_add(&plain, "w", "64", 4, why, sizeof why), 0));
	cr_assert(eq(int, query_add(&px, "w", "64", 4, why, sizeof why), 0));
	cr_assert(eq(int, query_add(&px, "mode", "px", 4, why, sizeof why), 0));
	cr_assert(eq(int, query_add(&two, "workers", "2", 4, why, sizeof why), 0));
	cr_assert(eq(int, query_add(&two, "w", "64", 4, why, sizeof why), 0));
	cr_expect(not(query_experiment(&plain)));
	cr_expect(query_experiment(&px));
	cr_expect(query_experiment(&two));
	query_key(&plain, k0);
	query_key(&px, k1);
	query_key(&two, k2);
	cr_expect(eq(str, k0, k1));
	cr_expect(eq(str, k0, k2));
}
