/*
 * query.h - the query string of GET /mandelbrot: what picture, rendered how.
 *
 * Owns: the parameter names (the CLI's flags: w, h, cx, cy, zoom, iter,
 * colour or color, mode, workers), their validation (through picture_set,
 * so the server and the CLI give the same reasons), the rule that each
 * may appear once and nothing else may appear, the cost budget, and the
 * canonical key of a picture (equal keys: equal bytes) and its ETag; and
 * what the request says of stored answers (an experiment's parameters,
 * Cache-Control).
 *
 * Pure functions on a caller-owned struct; any thread.
 */
#ifndef MW_QUERY_H
#define MW_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "render/picture.h"
#include "render/render.h"

#define QUERY_KEY_MAX 160 /* bytes of a canonical key, NUL included */
#define QUERY_ETAG_MAX 23 /* quote, "mw1-", 16 hex digits, quote, NUL */
#define QUERY_DEFAULT_SIDE 512
/* Most parameters a query may have (each '&'-separated part counts): the
 * pictures take a dozen. More is a 414, answered before libmicrohttpd
 * parses them: 0.9.75 keeps a record of each in the connection's 32 KiB
 * pool, and ~1000 of them fill it; it then answers nothing at all. */
#define QUERY_ARGS_MAX 64
/* The '&'-separated parts of uri's query (0 without one). */
unsigned query_count_args(const char *uri);

struct query {
	struct picture pic;   /* default: the workshop's 512x512 */
	enum render_mode mode; /* default: auto */
	unsigned jobs;        /* 0: one per worker */
	unsigned seen;        /* bit per parameter, for repeats */
};

void query_init(struct query *q);

/* One key=value pair (value NULL for a bare key). 0, or -EINVAL with a
 * one-line reason naming the parameter and its allowed range. max_jobs is
 * the pool's size (the range of workers). */
int query_add(struct query *q, const char *key, const char *value, unsigned max_jobs,
	      char *why, size_t why_len);

/* After the last pair: the picture as a whole (w * h * iter within
 * max_cost pixel-iterations). 0 or -EINVAL with the reason. */
int query_finish(const struct query *q, uint64_t max_cost, char *why, size_t why_len);

/* The canonical key of the picture (mode and workers do not change the
 * bytes, so they are not in it) and its strong ETag, quoted. */
void query_key(const struct query *q, char key[QUERY_KEY_MAX]);
void query_etag(const char *key, char etag[QUERY_ETAG_MAX]);

/* Whether an If-None-Match header value matches etag (RFC 9110 weak
 * comparison: a list, W/ prefixes, or *). header may be NULL. */
/* Whether a query argument is whole: a %00 in it ends the C string that
 * libmicrohttpd hands over early (w=8%00junk reads as w=8), so a key or a
 * value whose length is not its size must be refused, with QUERY_NUL_WHY. */
#define QUERY_NUL_WHY "a parameter's name or value contains a NUL byte (%00)"
bool query_arg_whole(const char *key, size_t key_size, const char *value, size_t value_size);

bool query_etag_matches(const char *header, const char *etag);

/* Whether q is an experiment: mode or workers given. The bytes are the
 * same as without them, but the point is to watch that mode render, so
 * it is rendered, not answered from the cache or from another's render. */
bool query_experiment(const struct query *q);

/* What a request's Cache-Control header says of stored answers (RFC 9111
 * 5.2.1; Pragma: no-cache counts where Cache-Control is absent, 5.4):
 * QUERY_FRESH for no-cache or no-store (not from the cache: rendered
 * anew), plus QUERY_NO_STORE for no-store (nor kept). Directive names are
 * case-insensitive; quoted values are skipped whole. Either may be NULL. */
#define QUERY_FRESH 1u
#define QUERY_NO_STORE 2u
unsigned query_cache_wish(const char *cache_control, const char *pragma);

#endif
