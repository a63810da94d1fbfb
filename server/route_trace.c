/* route_trace.c - GET /debug/trace: who may ask, arming a window,
 * resuming when it ends, streaming the capture. See internal.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/internal.h"

/* The window is over (or was never needed): the capture streams next. */
static void trace_ready(struct request *rq)
{
	trace_capture_close(rq->capture);
	rq->status = 200;
	srv_add_header(rq, "Cache-Control", "no-store");
	if (rq->trace_summary) {
		rq->type = "text/plain; charset=utf-8";
	} else {
		rq->type = "application/json";
		srv_add_header(rq, "Content-Disposition",
			       "attachment; filename=\"mandelweb-trace.json\"");
	}
	rq->state = ST_READY;
}

/* Runs on the trace timer when a window ends. */
void srv_trace_fired(void *ctx)
{
	struct request *rq = ctx;

	trace_ready(rq);
	srv_resume(rq);
}

void srv_trace_gone(struct request *rq)
{
	/* Nobody will read the window: it ends now (its timer resumes it, the
	 * send fails, the capture is freed), so the next client gets the
	 * tracer without waiting for a 409's Retry-After. */
	tracing_hurry(rq->srv->tracing);
}

/* Whether this request's client (srv_identify's: behind a trusted proxy,
 * the one it forwarded) or its token may use /debug/. */
int srv_debug_ok(const struct request *rq)
{
	const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);
	return debug_allowed(&rq->srv->acl, rq->client.known ? &rq->client.addr : NULL, auth);
}

int srv_debug_admit(struct request *rq, int parsed, const char *why)
{
	char msg[WHY_MAX + 2];

	if (!srv_debug_ok(rq)) {
		srv_answer_text(rq, 403, "forbidden: /debug/ answers loopback peers only, unless "
				     "--debug-allow or --debug-token says otherwise\n");
		return 0;
	}
	if (parsed < 0) {
		snprintf(msg, sizeof msg, "%s\n", why);
		srv_answer_text(rq, 400, msg);
		srv_add_header(rq, "Cache-Control", "no-store");
		return 0;
	}
	if (atomic_load_explicit(&rq->srv->draining, memory_order_relaxed)) {
		srv_busy(rq, REFUSED_DRAINING, "draining: this instance is shutting down\n", 1);
		return 0;
	}
	return 1;
}

const struct trace_desc *srv_trace_page(struct request *rq)
{
	struct server *s = rq->srv;
	char why[WHY_MAX];
	uint64_t ns;
	int last, samples;

	int parsed = tracing_parse(rq->conn, s->cfg.trace_max, s->cfg.flight_recorder, &ns, &last,
				   &rq->trace_summary, &samples, why, sizeof why);
	if (!srv_debug_admit(rq, parsed, why))
		return NULL;
	int rc = last ? trace_capture_last(&rq->capture, ns) : trace_capture_open(&rq->capture);
	if (rc == -EBUSY) {
		srv_answer_text(rq, 409, "conflict: a trace is being taken or sent; one at a time\n");
		snprintf(rq->retry, sizeof rq->retry, "%u", tracing_retry_after(s->tracing));
		srv_add_header(rq, "Retry-After", rq->retry);
		return NULL;
	}
	if (rc < 0) {
		srv_answer_text(rq, 500, "cannot start a trace\n");
		return NULL;
	}
	if (rq->trace_summary)
		trace_capture_format(rq->capture, TRACE_FORMAT_SUMMARY);
	trace_capture_samples(rq->capture, samples);
	if (last) {
		trace_ready(rq);
		return NULL;
	}
	srv_suspend(rq);
	tracing_after(s->tracing, ns, rq);
	if (atomic_load_explicit(&s->draining, memory_order_acquire))
		tracing_hurry(s->tracing); /* drain began meanwhile: do not make it wait */
	return &TD_ARM;
}
