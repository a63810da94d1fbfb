/*
 * tracing.c - see tracing.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "render/picture.h"
#include "server/query.h"
#include "server/tracing.h"

#define STREAM_BLOCK (32 * 1024) /* bytes MHD asks for at a time */
#define SECONDS_MIN 0.001

int tracing_query_add(struct tracing_query *p, const char *key, size_t key_size, const char *value,
		      size_t value_size)
{
	if (!query_arg_whole(key, key_size, value, value_size)) {
		p->bad = 3;
		return MHD_NO;
	}
	const char **slot = !strcmp(key, "seconds") ? &p->seconds
			    : !strcmp(key, "last")  ? &p->last
			    : !strcmp(key, "format") ? &p->format
			    : !strcmp(key, "samples") ? &p->samples
						    : NULL;
	if (!slot || *slot) {
		p->bad = slot ? 2 : 1;
		snprintf(p->key, sizeof p->key, "%s", key);
		return MHD_NO;
	}
	*slot = value ? value : "";
	return MHD_YES;
}

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	return tracing_query_add(cls, key, key_size, value, value_size) ? MHD_YES : MHD_NO;
}

static int seconds_of(const char *v, unsigned max_s, uint64_t *ns)
{
	double s;
	if (!((*v >= '0' && *v <= '9') || *v == '.'))
		return -EINVAL; /* no sign, no space */
	if (picture_parse_double(v, &s) < 0 || s < SECONDS_MIN || s > max_s)
		return -EINVAL;
	*ns = (uint64_t)(s * 1e9 + 0.5);
	return 0;
}

int tracing_parse(struct MHD_Connection *conn, unsigned max_s, int flight, uint64_t *ns, int *last,
		  enum trace_format *format, int *samples, char *why, size_t len)
{
	struct tracing_query p = {0};

	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, each_arg, &p);
	*format = !p.format || strcmp(p.format, "json") == 0 ? TRACE_FORMAT_JSON
		  : strcmp(p.format, "summary") == 0	      ? TRACE_FORMAT_SUMMARY
		  : strcmp(p.format, "summary-json") == 0     ? TRACE_FORMAT_SUMMARY_JSON
							      : TRACE_FORMAT_PERFETTO;
	*samples = !p.samples || strcmp(p.samples, "off") != 0;
	return tracing_query_finish(&p, max_s, flight, ns, last, why, len);
}

int tracing_parse_profile(struct MHD_Connection *conn, const char *route, unsigned max_s,
			  uint64_t *ns, char *why, size_t len)
{
	struct tracing_query p = {0};

	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, each_arg, &p);
	if (p.bad == 3) {
		snprintf(why, len, "%s", QUERY_NUL_WHY);
		return -EINVAL;
	}
	if (p.bad == 1 || p.last || p.format || p.samples) {
		snprintf(why, len, "unknown parameter '%s': %s takes seconds=",
			 p.bad == 1 ? p.key : p.last ? "last" : p.format ? "format" : "samples", route);
		return -EINVAL;
	}
	if (p.bad == 2) {
		snprintf(why, len, "parameter '%s' given twice", p.key);
		return -EINVAL;
	}
	*ns = 30 * UINT64_C(1000000000);
	if (p.seconds && (seconds_of(p.seconds, max_s, ns) < 0 || *ns < UINT64_C(1000000000))) {
		snprintf(why, len, "seconds must be a decimal number of seconds in 1..%u", max_s);
		return -EINVAL;
	}
	return 0;
}

int tracing_query_finish(const struct tracing_query *q, unsigned max_s, int flight, uint64_t *ns,
			 int *last, char *why, size_t len)
{
	const struct tracing_query p = *q;
	if (p.bad == 3) {
		snprintf(why, len, "%s", QUERY_NUL_WHY);
		return -EINVAL;
	}
	if (p.bad == 1) {
		snprintf(why, len, "unknown parameter '%s': /debug/trace takes seconds= or last=, format= and samples=", p.key);
		return -EINVAL;
	}
	if (p.bad == 2) {
		snprintf(why, len, "parameter '%s' given twice", p.key);
		return -EINVAL;
	}
	if (p.seconds && p.last) {
		snprintf(why, len, "give seconds= (a new window) or last= (the flight recorder), not both");
		return -EINVAL;
	}
	if (p.format && strcmp(p.format, "json") != 0 && strcmp(p.format, "summary") != 0 &&
	    strcmp(p.format, "summary-json") != 0 && strcmp(p.format, "perfetto") != 0) {
		snprintf(why, len, "format must be json (the default), perfetto, summary or summary-json");
		return -EINVAL;
	}
	if (p.samples && strcmp(p.samples, "on") != 0 && strcmp(p.samples, "off") != 0) {
		snprintf(why, len, "samples must be on (the default) or off");
		return -EINVAL;
	}
	*last = p.last != NULL;
	if (p.last && !flight) {
		snprintf(why, len, "last= needs the flight recorder: start mandelweb with --flight-recorder");
		return -EINVAL;
	}
	const char *v = p.last ? p.last : p.seconds;
	*ns = 1000000000u;
	if (v && seconds_of(v, max_s, ns) < 0) {
		snprintf(why, len, "%s must be a decimal number of seconds in %g..%u",
			 p.last ? "last" : "seconds", SECONDS_MIN, max_s);
		return -EINVAL;
	}
	return 0;
}

bool tracing_accepts_gzip(const char *v)
{
	/* RFC 9110 12.5.3: a list of codings, each with an optional q; q=0
	 * refuses one. "*" stands for any not named; x-gzip is gzip. */
	int gzip = -1, any = -1;
	while (v && *v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		const char *name = v;
		while (*v && *v != ',' && *v != ';' && *v != ' ' && *v != '\t')
			v++;
		size_t len = (size_t)(v - name);
		int q = 1;
		while (*v && *v != ',') { /* parameters: only q matters */
			if (*v == ';') {
				v++;
				while (*v == ' ' || *v == '\t')
					v++;
				if ((v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
					double x = strtod(v + 2, NULL);
					q = x > 0;
				}
				continue;
			}
			v++;
		}
		if ((len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
		    (len == 6 && strncasecmp(name, "x-gzip", 6) == 0))
			gzip = q;
		else if (len == 1 && *name == '*')
			any = q;
	}
	return gzip == 1 || (gzip == -1 && any == 1);
}

/* The body being streamed, and where the bytes sent so far are counted;
 * gzipped as it goes when the client accepts it. */
struct stream {
	struct trace_capture *c;
	uint64_t *sent;
	int gzip, eof;
	z_stream z;
	unsigned char in[STREAM_BLOCK];
};

/* Deflates the capture into buf: the bytes made, 0 only at the end. */
static size_t deflated(struct stream *st, char *buf, size_t max)
{
	st->z.next_out = (Bytef *)buf;
	st->z.avail_out = (uInt)max;
	for (;;) {
		if (st->z.avail_in == 0 && !st->eof) {
			size_t n = trace_capture_read(st->c, (char *)st->in, sizeof st->in);
			st->eof = n == 0;
			st->z.next_in = st->in;
			st->z.avail_in = (uInt)n;
		}
		int rc = deflate(&st->z, st->eof ? Z_FINISH : Z_NO_FLUSH);
		size_t made = max - st->z.avail_out;
		if (made == max || rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR))
			return made;
		if (made && st->z.avail_in == 0 && st->eof)
			return made;
	}
}

static ssize_t stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	(void)pos;
	size_t n = st->gzip ? deflated(st, buf, max) : trace_capture_read(st->c, buf, max);
	*st->sent += n;
	/* Never 0 before the end: MHD would spin (NOTES-libmicrohttpd.md). */
	return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	if (st->gzip)
		deflateEnd(&st->z);
	trace_capture_free(st->c);
	free(st);
}

struct MHD_Response *tracing_response(struct trace_capture *c, uint64_t *sent, bool gzip)
{
	struct stream *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	st->c = c;
	st->sent = sent;
	/* Level 1: a trace is repetitive text, and its speed is the point
	 * (measured in docs/tracing.md: a tenth of the JSON at level 1). */
	if (gzip && deflateInit2(&st->z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(st);
		return NULL;
	}
	st->gzip = gzip;
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
								   stream, st, stream_free);
	if (!r) {
		if (gzip)
			deflateEnd(&st->z);
		free(st);
	}
	return r;
}
