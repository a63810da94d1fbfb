/* query.c - see query.h. */
#include <errno.h>
#include <strings.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/hash.h"
#include "server/query.h"

#define KNOWN "w, h, cx, cy, zoom, iter, colour, mode, workers"

/* The bit of each name in query.seen; colour and color share one. */
static const char *const names[] = {"w", "h", "cx", "cy", "zoom", "iter", "colour", "color",
				    "mode", "workers"};
#define BIT_MODE 8 /* their places in names[] */
#define BIT_WORKERS 9

static int name_bit(const char *key)
{
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(key, names[i]) == 0)
			return i == 7 ? 6 : (int)i;
	return -1;
}

void query_init(struct query *q)
{
	*q = (struct query){
		.pic = picture_default(QUERY_DEFAULT_SIDE, QUERY_DEFAULT_SIDE),
		.mode = MODE_AUTO,
	};
}

/* Copies at most 32 bytes of s for a message, printable ASCII only. */
static void shown(char *dst, size_t len, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 1 < len && i < 32; i++)
		dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[i] = '\0';
}

int query_add(struct query *q, const char *key, const char *value, unsigned max_jobs,
	      char *why, size_t why_len)
{
	char k[40];
	int bit = name_bit(key);

	shown(k, sizeof k, key);
	if (bit < 0) {
		snprintf(why, why_len, "unknown parameter '%s' (known: " KNOWN ")", k);
		return -EINVAL;
	}
	if (q->seen & (1u << bit)) {
		snprintf(why, why_len, "parameter '%s' given more than once", bit == 6 ? "colour" : k);
		return -EINVAL;
	}
	q->seen |= 1u << bit;
	if (!value || !*value) {
		snprintf(why, why_len, "parameter '%s' needs a value", k);
		return -EINVAL;
	}
	if (strcmp(key, "mode") == 0) {
		if (render_mode_parse(value, &q->mode) == 0)
			return 0;
		snprintf(why, why_len, "mode must be one of " RENDER_MODE_NAMES);
		return -EINVAL;
	}
	if (strcmp(key, "workers") == 0) {
		uint32_t n;
		if (picture_parse_u32(value, 1, max_jobs, &n) == 0) {
			q->jobs = n;
			return 0;
		}
		snprintf(why, why_len, "workers must be an integer in 1..%u", max_jobs);
		return -EINVAL;
	}
	return picture_set(&q->pic, key, value, why, why_len);
}

unsigned query_count_args(const char *uri)
{
	const char *q = strchr(uri, '?');
	unsigned n = 0;
	if (!q)
		return 0;
	for (n = 1; *q; q++)
		n += *q == '&';
	return n;
}

int query_finish(const struct query *q, uint64_t max_cost, char *why, size_t why_len)
{
	if (picture_check(&q->pic, why, why_len) < 0)
		return -EINVAL;
	uint64_t cost = (uint64_t)q->pic.w * q->pic.h * q->pic.max_iter;
	if (cost > max_cost) {
		snprintf(why, why_len,
			 "w*h*iter is %" PRIu64 " pixel-iterations, above this server's budget of %" PRIu64
			 " (--max-cost): lower w, h or iter, or start the server with a larger --max-cost",
			 cost, max_cost);
		return -EINVAL;
	}
	return 0;
}

void query_key(const struct query *q, char key[QUERY_KEY_MAX])
{
	const struct picture *p = &q->pic;
	int n = snprintf(key, QUERY_KEY_MAX, "w=%u&h=%u&iter=%u&colour=%s", p->w, p->h,
			 p->max_iter, colour_name(p->colour));
	if (p->has_view)
		snprintf(key + n, QUERY_KEY_MAX - (size_t)n, "&cx=%.17g&cy=%.17g&zoom=%.17g", p->cx,
			 p->cy, p->zoom);
}

void query_etag(const char *key, char etag[QUERY_ETAG_MAX])
{
	/* "mw1": the version of the picture's definition; a change to the
	 * bytes of any picture must change it. */
	snprintf(etag, QUERY_ETAG_MAX, "\"mw1-%016" PRIx64 "\"", hash_str(key));
}

bool query_arg_whole(const char *key, size_t key_size, const char *value, size_t value_size)
{
	return strlen(key) == key_size && (!value || strlen(value) == value_size);
}

bool query_etag_matches(const char *header, const char *etag)
{
	size_t elen = strlen(etag);

	if (!header)
		return false;
	for (const char *p = header; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		size_t n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == elen && memcmp(p, etag, n) == 0)
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

bool query_experiment(const struct query *q)
{
	return q->seen & (1u << BIT_MODE | 1u << BIT_WORKERS);
}

/* The directives of a Cache-Control value (or, pragma, a Pragma value:
 * no-cache alone), as QUERY_* bits. */
static unsigned directives(const char *v, bool pragma)
{
	unsigned wish = 0;
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *name = v;
		while (*v && *v != '=' && *v != ',' && *v != ' ' && *v != '\t')
			v++;
		size_t len = (size_t)(v - name);
		if (len == 8 && strncasecmp(name, "no-cache", 8) == 0)
			wish |= QUERY_FRESH;
		else if (!pragma && len == 8 && strncasecmp(name, "no-store", 8) == 0)
			wish |= QUERY_FRESH | QUERY_NO_STORE;
		/* the rest of the directive: an argument, quoted or not */
		while (*v && *v != ',') {
			if (*v++ != '"')
				continue;
			while (*v && *v != '"')
				v += v[0] == '\\' && v[1] ? 2 : 1;
			if (*v)
				v++;
		}
	}
	return wish;
}

unsigned query_cache_wish(const char *cache_control, const char *pragma)
{
	if (cache_control)
		return directives(cache_control, false);
	return pragma ? directives(pragma, true) : 0;
}
