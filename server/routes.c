/* routes.c - which route a URL is, the method rules, and the small
 * routes: the viewer, /help, /healthz, /readyz, /metrics. See internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/help.h"
#include "server/internal.h"

/* The viewer: one HTML page, scripts and styles inline, so the policy
 * allows nothing from elsewhere; pictures come as blobs from fetch(). */
static void viewer_answer(struct request *rq)
{
	size_t len;
	const char *page = viewer_page(&rq->srv->viewer, srv_debug_ok(rq), &len);

	srv_answer_page(rq, "text/html; charset=utf-8", page, len);
	srv_add_header(rq, "Cache-Control", "no-cache");
	srv_add_header(rq, "Content-Security-Policy",
		   "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
		   "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
		   "frame-ancestors 'none'");
	srv_add_header(rq, "X-Content-Type-Options", "nosniff");
	srv_add_header(rq, "Referrer-Policy", "no-referrer");
}

/* /help, with this server's limits, its examples addressed as the client
 * reached it. */
static void help_answer(struct request *rq)
{
	struct server *s = rq->srv;
	char origin[128];
	help_origin(origin, sizeof origin,
		    MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
		    s->cfg.addr, s->port);
	char *text = help_text(&(struct help_facts){
		.origin = origin, .max_cost = s->cfg.max_cost, .workers = pool_workers(s->pool),
		.trace_max = s->cfg.trace_max, .cache = s->cfg.cache_mb > 0});
	if (text)
		srv_answer_text(rq, 200, text);
	else
		srv_answer_text(rq, 500, "out of memory\n");
	free(text);
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
		.render_bytes_max = (uint64_t)s->cfg.max_render_mb << 20,
		.shared = flights_shared(s->flights),
		.memfds = blob_sealed_now(),
		.memory_ceiling = config_memory_ceiling(&s->cfg),
		.sending = atomic_load_explicit(&s->sending, memory_order_relaxed),
		.sending_max = (uint64_t)s->cfg.max_send_mb << 20,
	};
	struct admission_stats as;
	admission_stats(s->admission, &as);
	g.admission_wait = as.wait;
	g.admission_rate = as.rate;
	g.admission_backlog = as.backlog;
	g.admission_bytes = as.bytes;
	g.admission_waiting = as.waiting;
	g.clients = as.clients;
	g.clients_holding = as.holding;
	g.fair_share = as.fair_share;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	struct trace_usage tu;
	trace_usage(&tu);
	g.trace_capture = trace_capture_active();
	g.trace_threads = tu.threads;
	g.trace_bytes = tu.bytes;
	trace_kview_usage(&g.kview);
	slowtrace_stats(rq->srv->slow, &g.slow);
	cache_stats(s->cache, &g.cache);
	if (!f) {
		srv_answer_text(rq, 500, "out of memory\n");
		return;
	}
	metrics_write(s->metrics, &g, f);
	if (fclose(f) != 0) {
		free(text);
		srv_answer_text(rq, 500, "out of memory\n");
		return;
	}
	srv_answer_text(rq, 200, NULL);
	rq->text = text;
	rq->text_len = len;
	rq->type = "text/plain; version=0.0.4; charset=utf-8";
}

static const char *const paths[ROUTE_COUNT] = {
	[ROUTE_VIEWER] = "/", [ROUTE_HELP] = "/help", [ROUTE_MANDELBROT] = "/mandelbrot",
	[ROUTE_HEALTHZ] = "/healthz", [ROUTE_READYZ] = "/readyz", [ROUTE_METRICS] = "/metrics",
	[ROUTE_TRACE] = "/debug/trace", [ROUTE_PPROF] = "/debug/pprof/profile",
	[ROUTE_PPROF_BLOCK] = "/debug/pprof/block", [ROUTE_PPROF_INDEX] = "/debug/pprof/",
	[ROUTE_OTHER] = "other",
};

enum route route_of(const char *path)
{
	for (int r = 0; r < ROUTE_OTHER; r++)
		if (strcmp(path, paths[r]) == 0)
			return (enum route)r;
	return ROUTE_OTHER;
}

const char *route_name(enum route r)
{
	return r < ROUTE_COUNT ? paths[r] : paths[ROUTE_OTHER];
}

/* Whether this request's client (srv_identify's: behind a trusted proxy,
 * the one it forwarded) or its token may use /debug/. */
int srv_debug_ok(const struct request *rq)
{
	const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	return debug_allowed(&rq->srv->acl, rq->client.known ? &rq->client.addr : NULL, auth);
}

/* The X-Forwarded-For headers, the last XFF_MAX of them in order. */
#define XFF_MAX 8
struct xff {
	const char *v[XFF_MAX];
	size_t n;
};

static enum MHD_Result each_xff(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct xff *x = cls;
	(void)kind;
	if (value && strcasecmp(key, "X-Forwarded-For") == 0) {
		if (x->n == XFF_MAX)
			memmove(x->v, x->v + 1, --x->n * sizeof *x->v);
		x->v[x->n++] = value;
	}
	return MHD_YES;
}

void srv_identify(struct request *rq)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct xff x = {.n = 0};
	if (rq->srv->trusted.n)
		MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, each_xff, &x);
	client_identify(&rq->srv->trusted, ci ? ci->client_addr : NULL, x.v, x.n, &rq->client);
}

int srv_has_body(const struct request *rq)
{
	const char *cl = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
	       (cl && strspn(cl, "0") != strlen(cl));
}

struct framing {
	int content_length, transfer_encoding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *value)
{
	struct framing *f = cls;
	(void)kind, (void)value;
	f->content_length += strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0;
	f->transfer_encoding += strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0;
	return MHD_YES;
}

/* Request smuggling shapes libmicrohttpd 0.9.75 lets through: of two
 * Content-Lengths it reads the first, and with Content-Length and
 * Transfer-Encoding it reads chunked and keeps the connection. A proxy in
 * front may have framed the same bytes the other way, so such a request is
 * refused and its connection closed after the answer (RFC 9112 6.3):
 * nothing after it on the connection is read as a request. */
static int framing_conflict(struct MHD_Connection *conn)
{
	struct framing f = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	return f.content_length > 1 || (f.content_length && f.transfer_encoding);
}

/* Answers rq (and returns NULL), or suspends it until a worker or the
 * trace timer resumes it (and returns what it waits for, for the trace).
 * From a suspension on, rq belongs to whoever resumes it. */
const struct trace_desc *srv_dispatch(struct request *rq, const char *url, const char *method)
{
	srv_identify(rq);
	if (framing_conflict(rq->conn)) {
		srv_answer_text(rq, 400, "bad request: conflicting message framing (two "
					 "Content-Length headers, or Content-Length with Transfer-Encoding)\n");
		rq->close = 1;
		return NULL;
	}
	/* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. Checked
	 * here, with MHD_OPTION_STRICT_FOR_CLIENT 0: libmicrohttpd 0.9.75's own
	 * 400 for it (level 1) sent its status line and headers twice. */
	if (rq->http11 && !MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)) {
		srv_answer_text(rq, 400, "bad request: HTTP/1.1 needs a Host header\n");
		rq->close = 1;
		return NULL;
	}
	/* The decoded url ends at a %00; the path as sent must not hold one
	 * (/healthz%00 is no route). */
	size_t path_len = strcspn(rq->uri, "?");
	int nul = 0;
	for (size_t i = 0; i + 2 < path_len; i++)
		nul |= rq->uri[i] == '%' && rq->uri[i + 1] == '0' && rq->uri[i + 2] == '0';
	rq->route = nul ? ROUTE_OTHER : route_of(url);
	if (rq->route == ROUTE_OTHER) {
		srv_answer_text(rq, 404, "not found: see GET /help for what this service answers\n");
		return NULL;
	}
	int get = strcmp(method, "GET") == 0,
	    debug = rq->route == ROUTE_TRACE || rq->route == ROUTE_PPROF ||
		    rq->route == ROUTE_PPROF_BLOCK || rq->route == ROUTE_PPROF_INDEX;
	if (debug && !get) {
		srv_answer_text(rq, 405, "method not allowed: use GET\n");
		srv_add_header(rq, "Allow", "GET");
		return NULL;
	}
	if (!get && strcmp(method, "HEAD") != 0) {
		srv_answer_text(rq, 405, "method not allowed: use GET or HEAD\n");
		srv_add_header(rq, "Allow", "GET, HEAD");
		return NULL;
	}
	if (srv_has_body(rq)) {
		srv_answer_text(rq, 413, "content too large: no route here takes a request body\n");
		rq->close = 1;
		return NULL;
	}
	/* The /debug/ gate: profiling endpoints tell a caller what the
	 * program does and cost CPU (debug.h). Before the route reads its
	 * query: a stranger learns nothing of it. */
	if (debug && !srv_debug_ok(rq)) {
		srv_answer_text(rq, 403, "forbidden: /debug/ answers loopback peers only, unless "
					 "--debug-allow or --debug-token says otherwise\n");
		return NULL;
	}
	switch (rq->route) {
	case ROUTE_VIEWER:
		viewer_answer(rq);
		break;
	case ROUTE_HELP:
		help_answer(rq);
		break;
	case ROUTE_HEALTHZ:
		srv_answer_text(rq, 200, "ok\n");
		break;
	case ROUTE_READYZ:
		if (atomic_load_explicit(&rq->srv->draining, memory_order_relaxed))
			srv_answer_text(rq, 503, "draining\n");
		else
			srv_answer_text(rq, 200, "ready\n");
		break;
	case ROUTE_METRICS:
		metrics_page(rq);
		break;
	case ROUTE_MANDELBROT:
		return srv_mandelbrot(rq);
	case ROUTE_TRACE:
		return srv_trace_page(rq);
	case ROUTE_PPROF:
		return srv_pprof_page(rq, PPROF_CPU);
	case ROUTE_PPROF_BLOCK:
		return srv_pprof_page(rq, PPROF_BLOCK);
	case ROUTE_PPROF_INDEX:
		srv_pprof_index(rq);
		break;
	case ROUTE_OTHER: /* answered above */
	case ROUTE_COUNT:
		break;
	}
	return NULL;
}
