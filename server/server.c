/*
 * server.c - see server.h: libmicrohttpd's callbacks and the life cycle;
 * the routes and answers are in the files internal.h lists.
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
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "server/accesslog.h"
#include "server/http.h"
#include "server/internal.h"
#include "server/server.h"
#include "server/version.h"

#define ARGS_RSI {"route", "status", "request"}, 1 /* route is a static string */
const struct trace_desc TD_ANSWER = {"answer", "http", ARGS_RSI};
const struct trace_desc TD_HIT = {"cache hit", "http", ARGS_RSI};
const struct trace_desc TD_ADMIT = {"admit", "http", ARGS_RSI};
const struct trace_desc TD_FOLLOW = {"wait: single flight", "http", ARGS_RSI};
const struct trace_desc TD_REJECT = {"reject 503", "http", ARGS_RSI};
const struct trace_desc TD_ARM = {"arm trace window", "http", ARGS_RSI};
const struct trace_desc TD_RESPOND = {"respond", "http", {"status", "bytes", "request"}, 0};
const struct trace_desc TD_ENCODE = {"encode png", "png", {"bytes", "request"}, 0};
const struct trace_desc TD_REQUEST = {
	"request", "http", {"method", "route", "status", "bytes"}, 3};
const struct trace_desc TD_QUEUED = {"queued", "http", {0}, 0};
const struct trace_desc TD_RENDERING = {"render", "http", {"jobs", "iterations"}, 0};
const struct trace_desc TD_ENCODING = {"encode", "http", {0}, 0};
const struct trace_desc TD_SENDING = {"send", "http", {0}, 0};
const struct trace_desc TD_INFLIGHT = {"requests", "http", {"in flight"}, 0};
const struct trace_desc TD_CONNS = {"connections", "http", {"open"}, 0};

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
		const struct trace_desc *waits = srv_dispatch(rq, url, method);
		if (waits) {
			/* Suspended: only what the worker never writes is read. */
			trace_span_flow(waits, t0, waits == &TD_ADMIT ? TRACE_FLOW_START : TRACE_FLOW_NONE,
					rq->id, TRACE_STR(route_name(rq->route)), 0, (int64_t)rq->id, 0);
			return MHD_YES;
		}
		enum MHD_Result r = srv_queue_answer(rq);
		trace_span(rq->span, t0, TRACE_STR(route_name(rq->route)), rq->status);
		return r;
	}
	/* Resumed: the worker or the timer has answered. */
	rq->tr_respond = t0;
	enum MHD_Result r = srv_queue_answer(rq);
	trace_span_flow(&TD_RESPOND, t0, rq->flow ? TRACE_FLOW_END : TRACE_FLOW_NONE,
			rq->id, rq->status, (int64_t)rq->bytes, (int64_t)rq->id, 0);
	return r;
}

static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct server *s = cls;
	size_t len = strlen(uri);
	struct request *rq = calloc(1, sizeof *rq + len + 1);

	if (!rq)
		return NULL;
	/* The connection remembers it until completed: libmicrohttpd may
	 * give up on a request without ever completing it (see closed). */
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	rq->cn = ci ? ci->socket_context : NULL;
	if (rq->cn)
		rq->cn->pending = rq;
	rq->srv = s;
	rq->thread = http_self();
	rq->t0 = srv_now();
	rq->tr0 = trace_begin();
	rq->id = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed) + 1;
	rq->span = &TD_ANSWER;
	rq->route = ROUTE_OTHER; /* until dispatched */
	memcpy(rq->uri, uri, len + 1);
	strcpy(rq->method, "-");
	atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
	return rq;
}

/* A request's end, answered or not: traced, counted, logged, freed (the
 * one place a request is freed). */
static void finish(struct server *s, struct MHD_Connection *conn, struct request *rq)
{
	if (rq->cn)
		rq->cn->pending = NULL;
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
	double dt = srv_now() - rq->t0;
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
	atomic_fetch_sub_explicit(&s->active, 1, memory_order_release);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode why)
{
	struct request *rq = *con_cls;
	(void)why;

	if (!rq)
		return;
	finish(cls, conn, rq);
	*con_cls = NULL;
}

static void connection_event(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			     enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	int opened = code == MHD_CONNECTION_NOTIFY_STARTED;
	if (opened) {
		*socket_ctx = calloc(1, sizeof(struct conn)); /* NULL: not tracked */
	} else if (*socket_ctx) {
		/* A request libmicrohttpd gave up on without completing it (0.9.75:
		 * a query of ~1000 '&' fills the connection's memory pool while
		 * the arguments are parsed; it says 431 in its log, sends nothing
		 * and closes at the timeout): logged and counted as 444, nginx's
		 * "closed without an answer", and freed, where it used to leak and
		 * hold the drain for its whole length. */
		struct conn *c = *socket_ctx;
		if (c->pending) {
			c->pending->status = 444;
			finish(s, conn, c->pending);
		}
		free(c);
		*socket_ctx = NULL;
	}
	metrics_connection(s->metrics, opened);
	unsigned n = opened ? atomic_fetch_add_explicit(&s->conns, 1, memory_order_relaxed) + 1
			    : atomic_fetch_sub_explicit(&s->conns, 1, memory_order_relaxed) - 1;
	trace_counter(&TD_CONNS, n);
}

/* Pixel-iterations a second one worker drains, measured once at start:
 * the default view at 128x128 on this thread with the serving kernel
 * (16.4 M pixel-iterations: about 1 ms with avx2, 16 ms with scalar).
 * Admission starts from it, times the workers, and measures from then on. */
static double calibrate(const struct kernel *k)
{
	struct picture pic = picture_default(128, 128);
	struct image img;
	double best = 0;

	if (image_alloc(&img, pic.w, pic.h, picture_channels(&pic)) < 0)
		return 1e9;
	for (int i = 0; i < 3; i++) { /* the best of 3: the first pays for page faults */
		double t0 = srv_now();
		render_image(NULL, &pic, k, MODE_SEQ, &img, NULL);
		double dt = srv_now() - t0;
		double rate = (double)pic.w * pic.h * pic.max_iter / (dt > 1e-6 ? dt : 1e-6);
		if (rate > best)
			best = rate;
	}
	image_free(&img);
	return best;
}

/* File descriptors: the soft limit raised to the hard one (as Go's
 * runtime and Redis do), then shared out: FD_RESERVE for the process's
 * own (listening sockets, eventfds, epoll, the trace timer, stdio), two per
 * connection (its socket, and the duplicate of a memfd while a sealed body
 * is sent from it), and the rest to the memfds that cached and in-flight
 * pictures hold (blob.h). Too few for --max-conns: fewer connections, said
 * at start. */
#define FD_RESERVE 32
static void fd_plan(struct config *c, FILE *err)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max < (1u << 20) ? rl.rlim_max : (1u << 20);
		struct rlimit up = {.rlim_cur = want, .rlim_max = rl.rlim_max};
		if (want > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = want;
	}
	uint64_t nofile = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
	uint64_t spare = nofile > FD_RESERVE + 16 ? nofile - FD_RESERVE - 16 : 2;
	if ((uint64_t)c->max_conns * 2 > spare) {
		uint32_t was = c->max_conns;
		c->max_conns = (uint32_t)(spare / 2) ? (uint32_t)(spare / 2) : 1;
		fprintf(err, "mandelweb: %llu file descriptors (ulimit -n): --max-conns %u, not %u\n",
			(unsigned long long)nofile, c->max_conns, was);
	}
	uint64_t budget = nofile - FD_RESERVE - (uint64_t)c->max_conns * 2;
	blob_set_fd_budget(nofile > FD_RESERVE + (uint64_t)c->max_conns * 2 ? (unsigned)(budget < UINT32_MAX ? budget : UINT32_MAX) : 0);
}

int server_start(struct server **out, const struct config *c, FILE *err)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss = {0};
	socklen_t ss_len = sizeof(struct sockaddr_in);
	int rc = -ENOMEM;
	char why[WHY_MAX];

	if (!s)
		return rc;
	s->cfg = *c;
	fd_plan(&s->cfg, err);
	c = &s->cfg;
	s->png = pngenc_defaults();
	s->kernel = kernel_pick(c->kernel, why, sizeof why);
	if (inet_pton(AF_INET, c->addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)c->port);
	} else if (inet_pton(AF_INET6, c->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)c->port);
		ss_len = sizeof(struct sockaddr_in6);
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
	    (rc = tracing_create(&s->tracing, srv_trace_fired)) < 0)
		goto err_parts;
	struct admission_cfg ac = {
		.max_wait = c->max_wait, .rate0 = calibrate(s->kernel) * c->workers,
		.max_bytes = (uint64_t)c->max_render_mb << 20, .max_pictures = c->max_inflight,
	};
	if ((rc = admission_create(&s->admission, &ac)) < 0 || (rc = flights_create(&s->flights)) < 0)
		goto err_parts;
	rc = pool_create(&s->pool, c->workers, c->queue, "worker", NULL);
	if (rc < 0) {
		fprintf(err, "mandelweb: cannot start %u workers: %s\n", c->workers, strerror(-rc));
		goto err_parts;
	}
	struct http_opts ho = {
		.addr = (struct sockaddr *)&ss, .addr_len = ss_len, .threads = c->http_threads,
		.nice = (int)c->http_nice, .max_conns = c->max_conns, .timeout = c->timeout,
		.handler = handler, .uri_log = uri_logged, .completed = completed,
		.connection = connection_event, .cls = s,
	};
	if ((rc = http_start(&s->http, &ho, &s->port, err)) < 0) {
		fprintf(err, "mandelweb: cannot serve on %s port %u (in use, or not an address here)\n",
			c->addr, c->port);
		goto err_pool;
	}
	char runs[128];
	fprintf(err, "mandelweb %s: kernel %s (%s; this %s CPU runs: %s)\n", MANDELWEB_VERSION,
		s->kernel->name, strcmp(c->kernel, "auto") ? "chosen" : "auto", kernel_arch,
		kernel_names(runs, sizeof runs, true));
	*out = s;
	return 0;

err_pool:
	pool_destroy(s->pool);
err_parts:
	flights_destroy(s->flights);
	admission_destroy(s->admission);
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
	http_quiesce(s->http);
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
	http_stop(s->http);
	tracing_destroy(s->tracing);
	pool_destroy(s->pool);
	flights_destroy(s->flights);
	admission_destroy(s->admission);
	cache_destroy(s->cache);
	metrics_destroy(s->metrics);
	viewer_free(&s->viewer);
	free(s);
}
