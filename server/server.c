/*
 * server.c - see server.h: libmicrohttpd's callbacks and the life cycle;
 * the routes and answers are in the files internal.h lists.
 *
 * A request's life (struct request, allocated by the URI-log callback, the
 * first thing libmicrohttpd tells us about a request):
 *   1st handler call   remember the connection; nothing queued yet (queueing
 *                      on the first call would cost keep-alive: MHD closes
 *                      such connections after the reply)
 *   2nd call           route, validate, answer from cache, refuse (at once,
 *                      or held: conn.c's srv_hold) or admit: suspend the
 *                      connection, queue it in its client's fair queue
 *                      (admission.h), render_start when the queue hands it
 *                      out (this thread, or a worker whose render ended)
 *   worker             render done -> next picture to the pool -> encode ->
 *                      cache -> resume connection
 *   next call          queue the response (none if the client has gone)
 *   completed          log, count, free (the only place a request is freed)
 *
 * Suspension happens before the picture is queued, so a render that
 * finishes at once can never resume a connection that is not yet
 * suspended. 'suspended' drops
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
 *     starts), 'cache hit', 'answer' {route, status, request}, 'reject'
 *     {route, status, reason};
 *     'respond' {status, bytes, request} when a resumed request is queued
 *     (the flow ends)
 *   on the worker that finished: 'encode png' {bytes, request} (a step)
 *   async, one track a request: 'request' {method, route, status, bytes}
 *     from the URI to completion, and in it 'queued', 'render', 'encode',
 *     'send', or 'render cancelled' (admission to the cancelled end), or
 *     'held refusal' {reason} (an early repeat's refusal, held: conn.c)
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
#include "render/version.h"

#define ARGS_RSI {"route", "status", "request"}, 1 /* route is a static string */
const struct trace_desc TD_ANSWER = {"answer", "http", ARGS_RSI};
const struct trace_desc TD_HIT = {"cache hit", "http", ARGS_RSI};
const struct trace_desc TD_ADMIT = {"admit", "http", ARGS_RSI};
const struct trace_desc TD_FOLLOW = {"wait: single flight", "http", ARGS_RSI};
/* status 429 or 503; reason: refusal_name's (metrics.h) */
const struct trace_desc TD_REJECT = {"reject", "http", {"route", "status", "reason"}, 1 | 4};
/* A refusal held before it is answered (conn.c's srv_hold) */
const struct trace_desc TD_HOLD = {"wait: held refusal", "http", {"route", "status", "reason"}, 1 | 4};
const struct trace_desc TD_ARM = {"arm trace window", "http", ARGS_RSI};
const struct trace_desc TD_RESPOND = {"respond", "http", {"status", "bytes", "request"}, 0};
const struct trace_desc TD_ENCODE = {"encode png", "png", {"bytes", "request"}, 0};
const struct trace_desc TD_REQUEST = {
	"request", "http", {"method", "route", "status", "bytes"}, 3};
const struct trace_desc TD_QUEUED = {"queued", "http", {0}, 0};
const struct trace_desc TD_HELD = {"held refusal", "http", {"reason"}, 1};
const struct trace_desc TD_RENDERING = {"render", "http", {"jobs", "iterations"}, 0};
const struct trace_desc TD_ENCODING = {"encode", "http", {0}, 0};
const struct trace_desc TD_SENDING = {"send", "http", {0}, 0};
const struct trace_desc TD_CANCELLED = {"render cancelled", "http", {0}, 0};
const struct trace_desc TD_RESUME_FOLLOWER = {"resume follower", "http", {"request"}, 0};
const struct trace_desc TD_INFLIGHT = {"requests", "http", {"in flight"}, 0};
const struct trace_desc TD_CONNS = {"connections", "http", {"open"}, 0};

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct request *rq = *con_cls;
	(void)cls, (void)upload;

	if (!rq || rq->raw)
		return MHD_NO; /* out of memory in uri_logged, or answered there: close */
	uint64_t t0;
	if (rq->state == ST_NEW && !rq->conn) {
		rq->conn = conn; /* uri_logged, on this thread, has named it */
		snprintf(rq->method, sizeof rq->method, "%s", method);
		rq->http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
		srv_deadline_none(rq); /* its headers are in */
		rq->t_in = srv_now();
		if (!srv_has_body(rq))
			return MHD_YES;
		/* No route takes a body: refused now, queued on this first call,
		 * so libmicrohttpd reads none of it, sends no 100 Continue and
		 * closes after the answer (a body trickled a byte at a time
		 * would otherwise hold the connection with no deadline). */
		t0 = trace_begin();
		srv_dispatch(rq, url, method);
		enum MHD_Result r = srv_queue_answer(rq);
		trace_span(rq->span, t0, TRACE_STR(route_name(rq->route)), rq->status);
		return r;
	}
	if (*upload_size) {
		*upload_size = 0; /* never asked for (see above); dropped */
		return MHD_YES;
	}
	t0 = trace_begin();
	if (rq->state == ST_NEW) {
		const struct trace_desc *waits = srv_dispatch(rq, url, method);
		if (waits == &TD_HOLD) { /* its answer is set; only this thread resumes it */
			trace_span_flow(waits, t0, TRACE_FLOW_NONE, 0, TRACE_STR(route_name(rq->route)),
					rq->status, TRACE_STR(rq->reason), 0);
			return MHD_YES;
		}
		if (waits) {
			/* Suspended: only what the worker never writes is read. */
			/* An admitted request's flow, or a follower's: either
			 * ends in its respond, after the worker that resumes it. */
			trace_span_flow(waits, t0, rq->flow ? TRACE_FLOW_START : TRACE_FLOW_NONE,
					rq->id, TRACE_STR(route_name(rq->route)), 0, (int64_t)rq->id, 0);
			return MHD_YES;
		}
		enum MHD_Result r = srv_queue_answer(rq);
		trace_span_flow(rq->span, t0, TRACE_FLOW_NONE, 0, TRACE_STR(route_name(rq->route)),
				rq->status, rq->span == &TD_REJECT ? TRACE_STR(rq->reason) : (int64_t)rq->id, 0);
		return r;
	}
	/* Resumed: the worker or the timer has answered. A client that hung
	 * up (or shut down its sending side: conn.c) gets no answer: the
	 * connection closes, and the log says 499. */
	if (atomic_load_explicit(&rq->hung_up, memory_order_relaxed))
		return MHD_NO;
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
	srv_deadline_headers(rq);
	rq->thread = http_self();
	rq->t0 = srv_now();
	rq->tr0 = trace_begin();
	rq->id = atomic_fetch_add_explicit(&s->next_id, 1, memory_order_relaxed) + 1;
	rq->span = &TD_ANSWER;
	rq->route = ROUTE_OTHER; /* until dispatched */
	rq->watch_fd = -1;
	memcpy(rq->uri, uri, len + 1);
	strcpy(rq->method, "-");
	atomic_fetch_add_explicit(&s->active, 1, memory_order_relaxed);
	if (query_count_args(uri) > QUERY_ARGS_MAX)
		srv_answer_raw(rq, 414, "URI Too Long",
			       "too many query parameters: at most 64 (a picture takes a dozen)\n");
	return rq;
}

/* Pixel-iterations a second one worker drains, measured once at start:
 * the default view at 128x128 on this thread with the serving kernel
 * (16.4 M pixel-iterations: about 1 ms with avx2, 16 ms with scalar).
 * Admission starts from it, times the workers, and measures from then on.
 * Also the same picture a pixel at a time, as px and workers modes render
 * (one job, one kernel call a pixel: a vector kernel then computes one
 * lane of its block): how many times dearer a pixel is that way
 * (*px_factor, at least 1). The best of 3 each: the first pays for page
 * faults. */
static double calibrate(const struct kernel *k, double *px_factor)
{
	struct picture pic = picture_default(128, 128);
	struct kernel_args a;
	struct kernel_out *out = malloc(sizeof *out);
	double best = 0, best_px = 0;

	picture_kernel_args(&pic, &a);
	*px_factor = 8;
	if (!out)
		return 1e9;
	for (int i = 0; i < 3; i++) {
		for (int one = 0; one < 2; one++) {
			double t0 = srv_now();
			for (uint32_t y = 0; y < pic.h; y++)
				for (uint32_t x = 0; x < pic.w; x += one ? 1 : pic.w)
					k->fn(&a, y, x, one ? 1 : pic.w, out);
			double dt = srv_now() - t0;
			double rate = (double)pic.w * pic.h * pic.max_iter / (dt > 1e-6 ? dt : 1e-6);
			double *b = one ? &best_px : &best;
			if (rate > *b)
				*b = rate;
		}
	}
	free(out);
	*px_factor = best_px > 0 && best / best_px > 1 ? best / best_px : 1;
	if (*px_factor > 64)
		*px_factor = 64;
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
	uint64_t held = FD_RESERVE + (uint64_t)c->max_conns * 2;
	uint64_t budget = nofile > held ? nofile - held : 0;
	blob_set_fd_budget(budget < UINT32_MAX ? (unsigned)budget : UINT32_MAX);
}

int server_start(struct server **out, const struct config *c, FILE *err)
{
	struct server *s = calloc(1, sizeof *s);
	struct sockaddr_storage ss = {0};
	socklen_t ss_len = sizeof(struct sockaddr_in);
	int rc = -ENOMEM;
	char why[WHY_MAX], runs[128];

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
	if ((rc = debug_acl_parse(&s->acl, c->debug_allow, c->debug_token, why, sizeof why)) < 0 ||
	    (rc = cidr_list_parse(&s->trusted, c->trusted_proxy, "trusted-proxy", why, sizeof why)) < 0) {
		fprintf(err, "mandelweb: %s\n", why);
		goto err_free;
	}
	srv_refusals_init(s);
	if ((rc = viewer_init(&s->viewer, c->max_cost)) < 0)
		goto err_free;
	/* Before any thread starts: it calibrates the trace clock. */
	if ((rc = trace_init(&(struct trace_config){
		     .ring_events = c->trace_ring,
		     .process = "mandelweb",
		     .gettime = getenv("MANDELWEB_TRACE_GETTIME") != NULL,
		     .kview = (enum trace_kview)trace_kview_parse(c->trace_kernel),
		     .spill_mb = c->trace_spill_mb ? c->trace_spill_mb : TRACE_SPILL_OFF})) < 0)
		goto err_free;
	if (c->trace_hz && (rc = prof_trace_samples(c->trace_hz)) < 0)
		goto err_free;
	trace_flight_recorder(c->flight_recorder);
	prof_refuse(trace_kview_parse(c->trace_kernel) == TRACE_KVIEW_REFUSE);
	prof_sampler(strcmp(c->profile_sampler, "perf") == 0);
	if ((rc = metrics_create(&s->metrics)) < 0 ||
	    (rc = cache_create(&s->cache, (size_t)c->cache_mb << 20)) < 0 ||
	    (rc = deadline_create(&s->tracing, "trace-timer", srv_trace_fired)) < 0 ||
	    (rc = deadline_create(&s->profiling, "pprof-timer", srv_pprof_fired)) < 0 ||
	    (rc = deadline_create(&s->blocking, "block-timer", srv_block_fired)) < 0)
		goto err_parts;
	if ((rc = admission_create(&s->admission, &(struct admission_cfg){
		     .max_wait = c->max_wait, .rate0 = calibrate(s->kernel, &s->px_factor) * c->workers,
		     .max_bytes = (uint64_t)c->max_render_mb << 20, .max_pictures = c->max_inflight,
		     .running_max = c->workers})) < 0 ||
	    (rc = flights_create(&s->flights)) < 0)
		goto err_parts;
	if (c->trace_slow > 0 &&
	    (rc = slowtrace_create(&s->slow, c->trace_dir, c->trace_slow, c->trace_slow_every,
				   c->trace_keep)) < 0) {
		fprintf(err, "mandelweb: --trace-dir %s: %s\n", c->trace_dir, strerror(-rc));
		goto err_parts;
	}
	/* --http-nice below 0 raises the workers' nice (lowering the HTTP
	 * threads' would need CAP_SYS_NICE). */
	rc = pool_create(&s->pool, c->workers, c->queue, "worker",
			 &(struct pool_hooks){.nice = c->http_nice < 0 ? -c->http_nice : 0});
	if (rc < 0) {
		fprintf(err, "mandelweb: cannot start %u workers: %s\n", c->workers, strerror(-rc));
		goto err_parts;
	}
	if ((rc = http_start(&s->http, &(struct http_opts){
		     .addr = (struct sockaddr *)&ss, .addr_len = ss_len, .threads = c->http_threads,
		     .nice = c->http_nice > 0 ? (int)c->http_nice : 0, .max_conns = c->max_conns,
		     .timeout = c->timeout, .handler = handler, .uri_log = uri_logged,
		     .completed = srv_completed, .connection = srv_connection, .gone = srv_gone,
		     .tick = srv_tick, .idle = srv_idle, .full = srv_full, .logger = srv_library_log,
		     .cls = s}, &s->port, err)) < 0) {
		fprintf(err, "mandelweb: cannot serve on %s port %u (in use, or not an address here)\n",
			c->addr, c->port);
		goto err_pool;
	}
	fprintf(err, "mandelweb %s: kernel %s (%s; this %s CPU runs: %s); a pixel rendered alone (px, workers modes) costs %.1fx; memory ceiling %llu MiB\n",
		MANDELWEB_VERSION, s->kernel->name, strcmp(c->kernel, "auto") ? "chosen" : "auto",
		kernel_arch, kernel_names(runs, sizeof runs, true), s->px_factor,
		(unsigned long long)(config_memory_ceiling(c) >> 20));
	if (!c->cache_mb && !c->single_flight)
		fprintf(err, "mandelweb: %severy request's picture is rendered for it (no cache, no single flight)\n",
			c->workshop ? "--workshop: " : "");
	else if (!c->cache_mb)
		fprintf(err, "mandelweb: no cache (--cache-mb 0): identical pictures asked at once are rendered once (--single-flight)\n");
	*out = s;
	return 0;

err_pool:
	pool_destroy(s->pool);
err_parts:
	slowtrace_destroy(s->slow);
	flights_destroy(s->flights);
	admission_destroy(s->admission);
	deadline_destroy(s->blocking);
	deadline_destroy(s->profiling);
	deadline_destroy(s->tracing);
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
	deadline_hurry(s->tracing); /* a trace window ends now; its body still streams */
	deadline_hurry(s->profiling); /* and a profile's: it is answered now */
	deadline_hurry(s->blocking);
	http_quiesce(s->http);
	/* Renders in flight finish, until the deadline: then they are
	 * cancelled (within about 100 ms, render.h) and their clients get a
	 * 503; answers being sent go on until it, then server_stop closes
	 * their connections. So the process ends within --drain and a little. */
	double deadline = srv_now() + s->cfg.drain;
	while (atomic_load_explicit(&s->suspended, memory_order_acquire) > 0) {
		if (srv_now() >= deadline && !atomic_load_explicit(&s->abort, memory_order_relaxed))
			atomic_store_explicit(&s->abort, 1, memory_order_relaxed);
		nap_ms(2);
	}
	while (srv_now() < deadline && atomic_load_explicit(&s->active, memory_order_acquire) > 0)
		nap_ms(2);
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	http_stop(s->http);
	slowtrace_destroy(s->slow); /* before the tracer it reads goes quiet */
	deadline_destroy(s->blocking);
	deadline_destroy(s->profiling);
	deadline_destroy(s->tracing);
	pool_destroy(s->pool);
	flights_destroy(s->flights);
	admission_destroy(s->admission);
	cache_destroy(s->cache);
	metrics_destroy(s->metrics);
	viewer_free(&s->viewer);
	srv_refusals_free(s);
	free(s);
}
