/*
 * tracing.c - see tracing.h.
 *
 * The timer: one thread waits on a condition variable (CLOCK_MONOTONIC)
 * until the armed deadline or a hurry, then runs fire outside the lock.
 * The window's end is therefore never an HTTP thread's job: the
 * connection stays suspended meanwhile, like a rendering one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render/picture.h"
#include "server/query.h"
#include "server/tracing.h"

#define STREAM_BLOCK (32 * 1024) /* bytes MHD asks for at a time */
#define SECONDS_MIN 0.001

struct tracing {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	void (*fire)(void *ctx);
	void *ctx;         /* non-NULL while a window is armed */
	struct timespec deadline;
	int hurry, stop;
};

static void *timer_main(void *arg)
{
	struct tracing *t = arg;

	pthread_setname_np(pthread_self(), "trace-timer");
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		if (!t->ctx) {
			pthread_cond_wait(&t->cond, &t->mu);
			continue;
		}
		if (!t->hurry &&
		    pthread_cond_timedwait(&t->cond, &t->mu, &t->deadline) != ETIMEDOUT)
			continue; /* woken early: look again */
		void *ctx = t->ctx;
		t->ctx = NULL;
		t->hurry = 0;
		pthread_mutex_unlock(&t->mu);
		t->fire(ctx);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int tracing_create(struct tracing **out, void (*fire)(void *ctx))
{
	struct tracing *t = calloc(1, sizeof *t);
	pthread_condattr_t ca;
	int rc;

	if (!t)
		return -ENOMEM;
	t->fire = fire;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&t->thread, NULL, timer_main, t);
	if (rc != 0) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return -rc;
	}
	*out = t;
	return 0;
}

void tracing_destroy(struct tracing *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

void tracing_after(struct tracing *t, uint64_t ns, void *ctx)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t nsec = (uint64_t)now.tv_nsec + ns % 1000000000u;
	pthread_mutex_lock(&t->mu);
	t->deadline.tv_sec = now.tv_sec + (time_t)(ns / 1000000000u) + (time_t)(nsec / 1000000000u);
	t->deadline.tv_nsec = (long)(nsec % 1000000000u);
	t->ctx = ctx;
	t->hurry = 0;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->mu);
}

void tracing_hurry(struct tracing *t)
{
	pthread_mutex_lock(&t->mu);
	if (t->ctx) {
		t->hurry = 1;
		pthread_cond_signal(&t->cond);
	}
	pthread_mutex_unlock(&t->mu);
}

unsigned tracing_retry_after(struct tracing *t)
{
	struct timespec now;
	unsigned s = 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&t->mu);
	if (t->ctx && t->deadline.tv_sec > now.tv_sec)
		s = (unsigned)(t->deadline.tv_sec - now.tv_sec) + 1;
	pthread_mutex_unlock(&t->mu);
	return s;
}

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
	if (parse_double(v, &s) < 0 || s < SECONDS_MIN || s > max_s)
		return -EINVAL;
	*ns = (uint64_t)(s * 1e9 + 0.5);
	return 0;
}

int tracing_parse(struct MHD_Connection *conn, unsigned max_s, int flight, uint64_t *ns, int *last,
		  int *summary, int *samples, char *why, size_t len)
{
	struct tracing_query p = {0};

	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, each_arg, &p);
	*summary = p.format && strcmp(p.format, "summary") == 0;
	*samples = !p.samples || strcmp(p.samples, "off") != 0;
	return tracing_query_finish(&p, max_s, flight, ns, last, why, len);
}

int tracing_parse_profile(struct MHD_Connection *conn, unsigned max_s, uint64_t *ns, char *why,
			  size_t len)
{
	struct tracing_query p = {0};

	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, each_arg, &p);
	if (p.bad == 3) {
		snprintf(why, len, "%s", QUERY_NUL_WHY);
		return -EINVAL;
	}
	if (p.bad == 1 || p.last || p.format || p.samples) {
		snprintf(why, len, "unknown parameter '%s': /debug/pprof/profile takes seconds=",
			 p.bad == 1 ? p.key : p.last ? "last" : p.format ? "format" : "samples");
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
	if (p.format && strcmp(p.format, "json") != 0 && strcmp(p.format, "summary") != 0) {
		snprintf(why, len, "format must be json (the default) or summary");
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

/* The body being streamed, and where the bytes sent so far are counted. */
struct stream {
	struct trace_capture *c;
	uint64_t *sent;
};

static ssize_t stream(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	(void)pos;
	size_t n = trace_capture_read(st->c, buf, max);
	*st->sent += n;
	/* Never 0 before the end: MHD would spin (NOTES-libmicrohttpd.md). */
	return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	trace_capture_free(st->c);
	free(st);
}

struct MHD_Response *tracing_response(struct trace_capture *c, uint64_t *sent)
{
	struct stream *st = malloc(sizeof *st);
	if (!st)
		return NULL;
	*st = (struct stream){c, sent};
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
								   stream, st, stream_free);
	if (!r)
		free(st);
	return r;
}
