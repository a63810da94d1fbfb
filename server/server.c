/*
 * server.c - see server.h.
 *
 * A request's life (struct request, allocated by the URI-log callback, the
 * first thing libmicrohttpd tells us about a request):
 *   1st handler call   remember the connection; nothing queued yet (queueing
 *                      on the first call would cost keep-alive: MHD closes
 *                      such connections after the reply)
 *   2nd call           route, validate, answer from cache or admit:
 *                      suspend the connection, then render_start
 *   worker             render done -> encode -> cache -> resume connection
 *   next call          queue the response
 *   completed          log, count, free (the only place a request is freed)
 *
 * Suspension happens before render_start, so a render that finishes at once
 * can never resume a connection that is not yet suspended. 'suspended' drops
 * only after the worker's resume, so when drain sees it at zero no
 * connection is suspended and MHD_stop_daemon is legal. Once suspended, a
 * request belongs to the worker (or the trace timer) until the resume: the
 * HTTP thread no longer reads what they write.
 *
 * GET /debug/trace?seconds=N arms a capture and suspends the connection the
 * same way; the trace timer resumes it when the window ends, and the body
 * streams from the rings (tracing.h).
 *
 * Trace events (request = the request's id, also the id of its flow):
 *   on the HTTP thread, the handler call that decided: 'admit' (the flow
 *     starts), 'cache hit', 'reject 503', 'answer' {route, status, request};
 *     'respond' {status, bytes, request} when a resumed request is queued
 *     (the flow ends)
 *   on the worker that finished: 'encode png' {bytes, request} (a step)
 *   async, one track a request: 'request' {method, route, status, bytes}
 *     from the URI to completion, and in it 'queued', 'render', 'encode',
 *     'send'
 *   counters: requests in flight, connections open (and the pool's)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "render/pngenc.h"
#include "render/render.h"
#include "server/accesslog.h"
#include "server/blob.h"
#include "server/cache.h"
#include "server/debug.h"
#include "server/help.h"
#include "server/metrics.h"
#include "server/query.h"
#include "server/server.h"
#include "server/tracing.h"
#include "server/version.h"
#include "server/viewer.h"
#include "trace/capture.h"
#include "trace/trace.h"

#define ARGS_RSI {"route", "status", "request"}, 1 /* route is a static string */
static const struct trace_desc TD_ANSWER = {"answer", "http", ARGS_RSI};
static const struct trace_desc TD_HIT = {"cache hit", "http", ARGS_RSI};
static const struct trace_desc TD_ADMIT = {"admit", "http", ARGS_RSI};
static const struct trace_desc TD_REJECT = {"reject 503", "http", ARGS_RSI};
static const struct trace_desc TD_ARM = {"arm trace window", "http", ARGS_RSI};
static const struct trace_desc TD_RESPOND = {"respond", "http", {"status", "bytes", "request"}, 0};
static const struct trace_desc TD_ENCODE = {"encode png", "png", {"bytes", "request"}, 0};
static const struct trace_desc TD_REQUEST = {
	"request", "http", {"method", "route", "status", "bytes"}, 3};
static const struct trace_desc TD_QUEUED = {"queued", "http", {0}, 0};
static const struct trace_desc TD_RENDERING = {"render", "http", {"jobs", "iterations"}, 0};
static const struct trace_desc TD_ENCODING = {"encode", "http", {0}, 0};
static const struct trace_desc TD_SENDING = {"send", "http", {0}, 0};
static const struct trace_desc TD_INFLIGHT = {"requests", "http", {"in flight"}, 0};
static const struct trace_desc TD_CONNS = {"connections", "http", {"open"}, 0};

#define RETRY_AFTER "1" /* seconds: about a hundred default pictures on 2 cores */
#define CACHE_CONTROL_PNG "public, max-age=86400"
#define WHY_MAX 200
#define EXTRA_MAX 5 /* the viewer page's headers */

struct server {
	struct config cfg;
	struct MHD_Daemon *d;
	MHD_socket listen_fd; /* returned by quiesce; closed after stop */
	struct pool *pool;
	struct cache *cache;
	struct metrics *metrics;
	const struct kernel *kernel;
	struct pngenc_opts png;
	unsigned port;
	atomic_uint inflight;  /* admitted pictures not yet encoded (admission) */
	atomic_uint suspended; /* connections a worker has yet to resume (drain) */
	atomic_uint active;   /* requests between URI and completion */
	atomic_int draining;
	atomic_uint http_threads_named;
	atomic_uint conns;
	atomic_uint_fast64_t next_id;
	struct debug_acl acl;
	struct tracing *tracing;
	struct viewer viewer;
};

enum state { ST_NEW, ST_RENDERING, ST_READY };

struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	double t0, t_admit;
	uint64_t id;                   /* for the tracer: async track and flow */
	uint64_t tr0, tr_admit, tr_respond; /* trace clock (0: not traced) */
	const struct trace_desc *span; /* what the deciding handler call did */
	struct trace_capture *capture; /* /debug/trace: until the response owns it */
	char retry[12];
	enum route route;
	enum state state;
	unsigned status;
	const char *type;     /* Content-Type */
	const char *extra[EXTRA_MAX][2]; /* headers beside the usual ones */
	struct blob *png;     /* a PNG body */
	const char *page;     /* or a constant body (the viewer, the help): no copy */
	char *text;           /* or a malloc'd text body */
	size_t text_len;
	uint64_t bytes;
	char method[12];
	char etag[QUERY_ETAG_MAX];
	char key[QUERY_KEY_MAX];
	char uri[]; /* as the client sent it */
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void add_header(struct request *rq, const char *name, const char *value)
{
	for (int i = 0; i < EXTRA_MAX; i++) {
		if (!rq->extra[i][0]) {
			rq->extra[i][0] = name;
			rq->extra[i][1] = value;
			return;
		}
	}
}

/* A text answer; body is copied (or NULL for none). */
static void answer_text(struct request *rq, unsigned status, const char *body)
{
	rq->status = status;
	rq->type = "text/plain; charset=utf-8";
	free(rq->text);
	rq->text = body ? strdup(body) : NULL;
	rq->text_len = rq->text ? strlen(rq->text) : 0;
	rq->state = ST_READY;
}

/* A 200 with a body that lives as long as the server: sent as it is. */
static void answer_page(struct request *rq, const char *type, const char *body, size_t len)
{
	answer_text(rq, 200, NULL);
	rq->page = body;
	rq->text_len = len;
	rq->type = type;
}

static void answer_png(struct request *rq, struct blob *png, const char *cache)
{
	rq->status = 200;
	rq->type = "image/png";
	rq->png = png;
	add_header(rq, "ETag", rq->etag);
	add_header(rq, "Cache-Control", CACHE_CONTROL_PNG);
	add_header(rq, "X-Cache", cache);
	rq->state = ST_READY;
}

static void busy(struct request *rq, const char *why)
{
	rq->span = &TD_REJECT;
	metrics_rejected(rq->srv->metrics);
	answer_text(rq, 503, why);
	add_header(rq, "Retry-After", RETRY_AFTER);
}

/* Ends an admitted request's wait: the answer is in its struct request.
 * Admission is released before the resume, so the client's next request
 * cannot race us and find the slot still taken; 'suspended' drops after
 * it, so drain never stops the daemon with a connection suspended. The
 * request may be gone once the resume returns (the HTTP thread owns it). */
static void hand_back(struct server *s, struct MHD_Connection *conn)
{
	unsigned left = atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed) - 1;
	trace_counter(&TD_INFLIGHT, left);
	MHD_resume_connection(conn);
	atomic_fetch_sub_explicit(&s->suspended, 1, memory_order_release);
}

/* Runs on the pool worker that finished the picture. */
static void rendered(void *ctx, struct image *img, const struct render_stats *st)
{
	struct request *rq = ctx;
	struct server *s = rq->srv;
	struct pngenc_buf buf;
	char err[WHY_MAX];
	double t1 = now_s();
	uint64_t e0 = trace_begin();

	metrics_observe(s->metrics, HIST_RENDER, t1 - rq->t_admit);
	int rc = pngenc_encode(img, &s->png, &buf, err, sizeof err);
	image_free(img);
	metrics_observe(s->metrics, HIST_ENCODE, now_s() - t1);
	trace_span_flow(&TD_ENCODE, e0, TRACE_FLOW_STEP, rq->id, rc == 0 ? (int64_t)buf.len : 0,
			(int64_t)rq->id, 0, 0);
	if (e0 && st->t_first && rq->tr_admit) {
		/* The request's phases on its async track. */
		trace_async(&TD_QUEUED, rq->id, rq->tr_admit, st->t_first, 0, 0, 0, 0);
		trace_async(&TD_RENDERING, rq->id, st->t_first, st->t_done, (int64_t)st->jobs,
			    (int64_t)st->iterations, 0, 0);
		trace_async(&TD_ENCODING, rq->id, st->t_done, trace_now(), 0, 0, 0, 0);
	}
	struct blob *b = rc == 0 ? blob_wrap(buf.data, buf.len) : NULL;
	if (b) {
		blob_seal(b); /* on failure it is sent from memory: slower, same bytes */
		cache_put(s->cache, rq->key, b);
		answer_png(rq, b, "miss");
	} else {
		answer_text(rq, 500, "PNG encoding failed\n");
	}
	hand_back(s, rq->conn);
}

struct args {
	struct query q;
	unsigned max_jobs;
	int rc;
	char why[WHY_MAX];
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct args *a = cls;
	(void)kind;
	a->rc = query_add(&a->q, key, value, a->max_jobs, a->why, sizeof a->why);
	return a->rc == 0 ? MHD_YES : MHD_NO;
}

/* Returns NULL when rq is answered, or the trace name of what it was
 * suspended for (see dispatch). */
static const struct trace_desc *mandelbrot(struct request *rq)
{
	struct server *s = rq->srv;
	struct args a = {.max_jobs = pool_workers(s->pool)};

	query_init(&a.q);
	MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, each_arg, &a);
	if (a.rc == 0)
		a.rc = query_finish(&a.q, s->cfg.max_cost, a.why, sizeof a.why);
	if (a.rc < 0) {
		strcat(a.why, "\n");
		answer_text(rq, 400, a.why);
		add_header(rq, "Cache-Control", "no-store");
		return NULL;
	}
	query_key(&a.q, rq->key);
	query_etag(rq->key, rq->etag);
	const char *inm = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (query_etag_matches(inm, rq->etag)) {
		answer_text(rq, 304, NULL);
		rq->type = NULL;
		add_header(rq, "ETag", rq->etag);
		add_header(rq, "Cache-Control", CACHE_CONTROL_PNG);
		return NULL;
	}
	struct blob *hit = cache_get(s->cache, rq->key);
	if (hit) {
		rq->span = &TD_HIT;
		answer_png(rq, hit, "hit");
		return NULL;
	}
	if (atomic_load_explicit(&s->draining, memory_order_relaxed)) {
		busy(rq, "draining: this instance is shutting down\n");
		return NULL;
	}
	/* Admission: a bounded number of pictures at once. */
	unsigned before = atomic_fetch_add_explicit(&s->inflight, 1, memory_order_acquire);
	if (before >= s->cfg.max_inflight) {
		atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
		busy(rq, "busy: too many pictures in flight, retry later\n");
		return NULL;
	}
	trace_counter(&TD_INFLIGHT, before + 1);
	rq->state = ST_RENDERING;
	rq->t_admit = now_s();
	rq->tr_admit = trace_begin();
	atomic_fetch_add_explicit(&s->suspended, 1, memory_order_relaxed);
	MHD_suspend_connection(rq->conn);
	struct render_req r = {
		.pic = &a.q.pic, .kernel = s->kernel, .mode = a.q.mode, .jobs = a.q.jobs,
		.done = rendered, .ctx = rq, .tag = rq->id,
	};
	int rc = render_start(s->pool, &r);
	if (rc == 0)
		return &TD_ADMIT;
	if (rc == -ENOMEM)
		answer_text(rq, 500, "out of memory\n");
	else
		busy(rq, "busy: the render queue is full, retry later\n");
	hand_back(s, rq->conn);
	return NULL; /* resumed already, by this thread: answered now, as before */
}

/* The window is over (or was never needed): the capture streams next. */
static void trace_ready(struct request *rq)
{
	trace_capture_close(rq->capture);
	rq->status = 200;
	rq->type = "application/json";
	add_header(rq, "Cache-Control", "no-store");
	add_header(rq, "Content-Disposition", "attachment; filename=\"mandelweb-trace.json\"");
	rq->state = ST_READY;
}

/* Runs on the trace timer when a window ends. */
static void trace_fired(void *ctx)
{
	struct request *rq = ctx;
	struct server *s = rq->srv;

	trace_ready(rq);
	MHD_resume_connection(rq->conn);
	atomic_fetch_sub_explicit(&s->suspended, 1, memory_order_release);
}

/* Whether this request's peer (or its token) may use /debug/. */
static int debug_ok(const struct request *rq)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	return debug_allowed(&rq->srv->acl, ci ? ci->client_addr : NULL, auth);
}

static const struct trace_desc *trace_page(struct request *rq)
{
	struct server *s = rq->srv;
	char why[WHY_MAX];
	uint64_t ns;
	int last;

	if (!debug_ok(rq)) {
		answer_text(rq, 403, "forbidden: /debug/ answers loopback peers only, unless "
				     "--debug-allow or --debug-token says otherwise\n");
		return NULL;
	}
	if (tracing_parse(rq->conn, s->cfg.trace_max, s->cfg.flight_recorder, &ns, &last, why,
			  sizeof why) < 0) {
		strcat(why, "\n");
		answer_text(rq, 400, why);
		add_header(rq, "Cache-Control", "no-store");
		return NULL;
	}
	if (atomic_load_explicit(&s->draining, memory_order_relaxed)) {
		busy(rq, "draining: this instance is shutting down\n");
		return NULL;
	}
	int rc = last ? trace_capture_last(&rq->capture, ns) : trace_capture_open(&rq->capture);
	if (rc == -EBUSY) {
		answer_text(rq, 409, "conflict: a trace is being taken or sent; one at a time\n");
		snprintf(rq->retry, sizeof rq->retry, "%u", tracing_retry_after(s->tracing));
		add_header(rq, "Retry-After", rq->retry);
		return NULL;
	}
	if (rc < 0) {
		answer_text(rq, 500, "cannot start a trace\n");
		return NULL;
	}
	if (last) {
		trace_ready(rq);
		return NULL;
	}
	rq->state = ST_RENDERING;
	atomic_fetch_add_explicit(&s->suspended, 1, memory_order_relaxed);
	MHD_suspend_connection(rq->conn);
	tracing_after(s->tracing, ns, rq);
	if (atomic_load_explicit(&s->draining, memory_order_acquire))
		tracing_hurry(s->tracing); /* drain began meanwhile: do not make it wait */
	return &TD_ARM;
}

/* The viewer: one HTML page, scripts and styles inline, so the policy
 * allows nothing from elsewhere; pictures come as blobs from fetch(). */
static void viewer_answer(struct request *rq)
{
	size_t len;
	const char *page = viewer_page(&rq->srv->viewer, debug_ok(rq), &len);

	answer_page(rq, "text/html; charset=utf-8", page, len);
	add_header(rq, "Cache-Control", "no-cache");
	add_header(rq, "Content-Security-Policy",
		   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
		   "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
		   "frame-ancestors 'none'");
	add_header(rq, "X-Content-Type-Options", "nosniff");
	add_header(rq, "Referrer-Policy", "no-referrer");
}

static void metrics_page(struct request *rq)
{
	struct server *s = rq->srv;
	struct metrics_gauges g = {
		.queue_depth = pool_depth(s->pool),
		.queue_capacity = pool_capacity(s->pool),
		.workers = pool_workers(s->pool),
		.workers_busy = pool_busy(s->pool),
		.inflight = atomic_load_explicit(&s->inflight, memory_order_relaxed),
		.inflight_max = s->cfg.max_inflight,
		.draining = atomic_load_explicit(&s->draining, memory_order_relaxed),
		.kernel = s->kernel->name,
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	struct trace_usage tu;
	trace_usage(&tu);
	g.trace_capture = trace_capture_active();
	g.trace_threads = tu.threads;
	g.trace_bytes = tu.bytes;
	cache_stats(s->cache, &g.cache);
	if (!f) {
		answer_text(rq, 500, "out of memory\n");
		return;
	}
	metrics_write(s->metrics, &g, f);
	if (fclose(f) != 0) {
		free(text);
		answer_text(rq, 500, "out of memory\n");
		return;
	}
	answer_text(rq, 200, NULL);
	rq->text = text;
	rq->text_len = len;
	rq->type = "text/plain; version=0.0.4; charset=utf-8";
}

static enum route route_of(const char *url)
{
	static const struct {
		const char *path;
		enum route r;
	} table[] = {
		{"/", ROUTE_VIEWER}, {"/help", ROUTE_HELP}, {"/mandelbrot", ROUTE_MANDELBROT}, {"/healthz", ROUTE_HEALTHZ},
		{"/readyz", ROUTE_READYZ}, {"/metrics", ROUTE_METRICS}, {"/debug/trace", ROUTE_TRACE},
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(url, table[i].path) == 0)
			return table[i].r;
	return ROUTE_OTHER;
}

/* Answers rq (and returns NULL), or suspends it until a worker or the
 * trace timer resumes it (and returns what it waits for, for the trace).
 * From a suspension on, rq belongs to whoever resumes it. */
static const struct trace_desc *dispatch(struct request *rq, const char *url, const char *method)
{
	rq->route = route_of(url);
	if (rq->route == ROUTE_OTHER) {
		answer_text(rq, 404, "not found: see GET /help for what this service answers\n");
		return NULL;
	}
	int get = strcmp(method, "GET") == 0;
	if (rq->route == ROUTE_TRACE && !get) {
		answer_text(rq, 405, "method not allowed: use GET\n");
		add_header(rq, "Allow", "GET");
		return NULL;
	}
	if (!get && strcmp(method, "HEAD") != 0) {
		answer_text(rq, 405, "method not allowed: use GET or HEAD\n");
		add_header(rq, "Allow", "GET, HEAD");
		return NULL;
	}
	switch (rq->route) {
	case ROUTE_VIEWER:
		viewer_answer(rq);
		break;
	case ROUTE_HELP:
		answer_page(rq, "text/plain; charset=utf-8", help_text, strlen(help_text));
		break;
	case ROUTE_HEALTHZ:
		answer_text(rq, 200, "ok\n");
		break;
	case ROUTE_READYZ:
		if (atomic_load_explicit(&rq->srv->draining, memory_order_relaxed))
			answer_text(rq, 503, "draining\n");
		else
			answer_text(rq, 200, "ready\n");
		break;
	case ROUTE_METRICS:
		metrics_page(rq);
		break;
	case ROUTE_MANDELBROT:
		return mandelbrot(rq);
	case ROUTE_TRACE:
		return trace_page(rq);
	case ROUTE_OTHER: /* answered above */
	case ROUTE_COUNT:
		break;
	}
	return NULL;
}

static void free_png(void *blob)
{
	blob_unref(blob);
}

static enum MHD_Result queue_answer(struct request *rq)
{
	struct MHD_Response *resp;

	int fd = rq->png && rq->png->fd >= 0 ? fcntl(rq->png->fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (rq->capture) {
		resp = tracing_response(rq->capture);
		if (resp)
			rq->capture = NULL; /* the response frees it, even mid-stream */
	} else if (fd >= 0) {
		/* sendfile(2) from the sealed memfd: the kernel sends the pages
		 * without copying them into the socket (measured: the copy was
		 * 45% of a cached response). MHD closes the duplicate. */
		rq->bytes = rq->png->len;
		resp = MHD_create_response_from_fd64(rq->png->len, fd);
		if (!resp)
			close(fd);
	} else if (rq->page) {
		rq->bytes = rq->text_len;
		resp = MHD_create_response_from_buffer(rq->text_len, (void *)rq->page,
						       MHD_RESPMEM_PERSISTENT);
	} else if (rq->png) {
		rq->bytes = rq->png->len;
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
			rq->png->len, rq->png->data, free_png, rq->png);
		if (resp)
			rq->png = NULL; /* the response holds the reference now */
	} else {
		rq->bytes = rq->text_len;
		resp = MHD_create_response_from_buffer(rq->text_len, rq->text,
						       MHD_RESPMEM_MUST_FREE);
		if (resp)
			rq->text = NULL;
	}
	if (!resp)
		return MHD_NO;
	if (rq->type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rq->type);
	for (int i = 0; i < EXTRA_MAX && rq->extra[i][0]; i++)
		MHD_add_response_header(resp, rq->extra[i][0], rq->extra[i][1]);
	if (atomic_load_explicit(&rq->srv->draining, memory_order_relaxed))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result r = MHD_queue_response(rq->conn, rq->status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* Names libmicrohttpd's threads http-N for top, gdb and the tracer, and
 * lowers their priority (Linux: nice is per thread) so that under a flood
 * of requests the workers finish admitted pictures first and the flood's
 * 503s wait: measured with wrk -c 256, the flood took half the CPU at equal
 * priority. */
static void setup_http_thread(struct server *s)
{
	static _Thread_local int done;
	if (!done) {
		char name[16];
		done = 1;
		snprintf(name, sizeof name, "http-%u",
			 atomic_fetch_add_explicit(&s->http_threads_named, 1, memory_order_relaxed));
		pthread_setname_np(pthread_self(), name);
		if (s->cfg.http_nice)
			setpriority(PRIO_PROCESS, (id_t)gettid(),
				    getpriority(PRIO_PROCESS, 0) + (int)s->cfg.http_nice);
	}
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct request *rq = *con_cls;
	(void)cls, (void)version, (void)upload;

	if (!rq)
		return MHD_NO; /* out of memory in uri_logged */
	if (rq->state == ST_NEW && !rq->conn) {
		rq->conn = conn; /* uri_logged, on this thread, has named it */
		snprintf(rq->method, sizeof rq->method, "%s", method);
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* no route takes a body; drop it */
		return MHD_YES;
	}
	uint64_t t0 = trace_begin();
	if (rq->state == ST_NEW) {
		const struct trace_desc *waits = dispatch(rq, url, method);
		if (waits) {
			/* Suspended: only what the worker never writes is read. */
			trace_span_flow(waits, t0, waits == &TD_ADMIT ? TRACE_FLOW_START : TRACE_FLOW_NONE,
					rq->id, TRACE_STR(route_name(rq->route)), 0, (int64_t)rq->id, 0);
			return MHD_YES;
		}
		enum MHD_Result r = queue_answer(rq);
		trace_span(rq->span, t0, TRACE_STR(route_name(rq->route)), rq->status);
		return r;
	}
	/* Resumed: the worker or the timer has answered. */
	rq->tr_respond = t0;
	enum MHD_Result r = queue_answer(rq);
	trace_span_flow(&TD_RESPOND, t0, rq->route == ROUTE_MANDELBROT ? TRACE_FLOW_END : TRACE_FLOW_NONE,
			rq->id, rq->status, (int64_t)rq->bytes, (int64_t)rq->id, 0);
	return r;
}

static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct server *s = cls;
	size_t len = strlen(uri);
	struct request *rq = calloc(1, sizeof *rq + len + 1);
	(void)conn;

	if (!rq)
		return NULL;
	setup_http_thread(s);
	rq->srv = s;
	rq->t0 = now_s();
	rq->tr0 = trace_begin();
	rq->id = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed) + 1;
	rq->span = &TD_ANSWER;
	memcpy(rq->uri, uri, len + 1);
	strcpy(rq->method, "-");
	atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
	return rq;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode why)
{
	struct server *s = cls;
	struct request *rq = *con_cls;
	(void)why;

	if (!rq)
		return;
	/* A rejected request's span on the HTTP thread already is all of it;
	 * leaving out its async slice halves what a flood of 503s records. */
	if (rq->tr0 && rq->span != &TD_REJECT && trace_on()) {
		static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
		const char *m = "other";
		for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
			if (strcmp(rq->method, methods[i]) == 0)
				m = methods[i];
		uint64_t now = trace_now();
		trace_async(&TD_SENDING, rq->id, rq->tr_respond, now, 0, 0, 0, 0);
		trace_async(&TD_REQUEST, rq->id, rq->tr0, now, TRACE_STR(m),
			    TRACE_STR(route_name(rq->route)), rq->status, (int64_t)rq->bytes);
	}
	double dt = now_s() - rq->t0;
	metrics_request(s->metrics, rq->route, rq->status, rq->bytes, dt);
	if (s->cfg.access_log) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		accesslog_write(STDERR_FILENO, ci ? ci->client_addr : NULL, rq->method, rq->uri,
				rq->status, rq->bytes, dt);
	}
	blob_unref(rq->png);
	trace_capture_free(rq->capture); /* never got as far as a response */
	free(rq->text);
	free(rq);
	*con_cls = NULL;
	atomic_fetch_sub_explicit(&s->active, 1, memory_order_release);
}

static void connection_event(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			     enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	(void)conn, (void)socket_ctx;
	int opened = code == MHD_CONNECTION_NOTIFY_STARTED;
	metrics_connection(s->metrics, opened);
	unsigned n = opened ? atomic_fetch_add_explicit(&s->conns, 1, memory_order_relaxed) + 1
			    : atomic_fetch_sub_explicit(&s->conns, 1, memory_order_relaxed) - 1;
	trace_counter(&TD_CONNS, n);
}

int server_start(struct server **out, const struct config *c, FILE *err)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss = {0};
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG | MHD_USE_TURBO;
	int rc = -ENOMEM;
	char why[WHY_MAX];

	if (!s)
		return rc;
	s->cfg = *c;
	s->listen_fd = MHD_INVALID_SOCKET;
	s->png = pngenc_defaults();
	s->kernel = kernel_pick(c->kernel, why, sizeof why);
	if (inet_pton(AF_INET, c->addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)c->port);
	} else if (inet_pton(AF_INET6, c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)c->port);
		flags |= MHD_USE_IPv6;
	} else {
		fprintf(err, "mandelweb: --addr %s is not an IPv4 or IPv6 address\n", c->addr);
		rc = -EINVAL;
		goto err_free;
	}
	if (!s->kernel) {
		fprintf(err, "mandelweb: %s\n", why);
		rc = -EINVAL;
		goto err_free;
	}
	if ((rc = debug_acl_parse(&s->acl, c->debug_allow, c->debug_token, why, sizeof why)) < 0) {
		fprintf(err, "mandelweb: %s\n", why);
		goto err_free;
	}
	if ((rc = viewer_init(&s->viewer, c->max_cost)) < 0)
		goto err_free;
	/* Before any thread starts: it calibrates the trace clock. */
	if ((rc = trace_init(&(struct trace_config){.ring_events = c->trace_ring,
						     .process = "mandelweb"})) < 0)
		goto err_free;
	trace_flight_recorder(c->flight_recorder);
	if ((rc = metrics_create(&s->metrics)) < 0 ||
	    (rc = cache_create(&s->cache, (size_t)c->cache_mb << 20)) < 0 ||
	    (rc = tracing_create(&s->tracing, trace_fired)) < 0)
		goto err_parts;
	rc = pool_create(&s->pool, c->workers, c->queue, "worker", NULL);
	if (rc < 0) {
		fprintf(err, "mandelweb: cannot start %u workers: %s\n", c->workers, strerror(-rc));
		goto err_parts;
	}
	struct MHD_OptionItem pool_opt[] = {
		{c->http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
		 (intptr_t)c->http_threads, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	s->d = MHD_start_daemon(
		flags, (uint16_t)c->port, NULL, NULL, handler, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		/* 1 thread: no pool option at all (MHD warns about a pool of one
		 * and about a pool of zero) */
		MHD_OPTION_ARRAY, pool_opt,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_conns,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_URI_LOG_CALLBACK, uri_logged, s,
		MHD_OPTION_NOTIFY_COMPLETED, completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, connection_event, s,
		MHD_OPTION_END);
	if (!s->d) {
		fprintf(err, "mandelweb: cannot listen on %s port %u (in use, or not an address here)\n",
			c->addr, c->port);
		rc = -EADDRINUSE;
		goto err_pool;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : c->port;
	char runs[128];
	fprintf(err, "mandelweb %s: kernel %s (%s; this %s CPU runs: %s)\n", MANDELWEB_VERSION,
		s->kernel->name, strcmp(c->kernel, "auto") ? "chosen" : "auto", kernel_arch,
		kernel_names(runs, sizeof runs, true));
	*out = s;
	return 0;

err_pool:
	pool_destroy(s->pool);
err_parts:
	tracing_destroy(s->tracing);
	cache_destroy(s->cache);
	metrics_destroy(s->metrics);
err_free:
	viewer_free(&s->viewer);
	free(s);
	return rc;
}

unsigned server_port(const struct server *s)
{
	return s->port;
}

static void nap_ms(long ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

void server_drain(struct server *s)
{
	atomic_store(&s->draining, 1);
	tracing_hurry(s->tracing); /* a trace window ends now; its body still streams */
	s->listen_fd = MHD_quiesce_daemon(s->d);
	/* Renders are bounded by the cost budget; they always finish. */
	while (atomic_load_explicit(&s->suspended, memory_order_acquire) > 0)
		nap_ms(2);
	for (long waited = 0; waited < (long)s->cfg.drain * 1000 &&
			      atomic_load_explicit(&s->active, memory_order_acquire) > 0;
	     waited += 2)
		nap_ms(2);
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	if (s->listen_fd != MHD_INVALID_SOCKET)
		close(s->listen_fd);
	tracing_destroy(s->tracing);
	pool_destroy(s->pool);
	cache_destroy(s->cache);
	metrics_destroy(s->metrics);
	viewer_free(&s->viewer);
	free(s);
}
