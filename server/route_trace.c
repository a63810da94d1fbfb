/* route_trace.c - GET /debug/trace: arming a window, resuming when it
 * ends, streaming the capture. Its state is struct trace_state; who may
 * ask is routes.c's gate. See internal.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/internal.h"

/* The window is over (or was never needed): the capture streams next. */
static void trace_ready(struct request *rq)
{
	trace_capture_close(rq->tr.capture);
	rq->status = 200;
	srv_add_header(rq, "Cache-Control", "no-store");
	srv_add_header(rq, "Vary", "Accept-Encoding");
	if (rq->tr.gzip)
		srv_add_header(rq, "Content-Encoding", "gzip");
	if (rq->tr.format == TRACE_FORMAT_SUMMARY) {
		rq->type = "text/plain; charset=utf-8";
	} else if (rq->tr.format == TRACE_FORMAT_SUMMARY_JSON) {
		rq->type = "application/json";
	} else if (rq->tr.format == TRACE_FORMAT_PERFETTO) {
		rq->type = "application/octet-stream";
		srv_add_header(rq, "Content-Disposition",
			       "attachment; filename=\"mandelweb-trace.pftrace\"");
	} else {
		rq->type = "application/json";
		srv_add_header(rq, "Content-Disposition",
			       "attachment; filename=\"mandelweb-trace.json\"");
	}
	rq->state = ST_READY;
}

/* Runs on the trace's deadline thread when a window ends. */
void srv_trace_fired(void *ctx)
{
	struct request *rq = ctx;

	trace_ready(rq);
	srv_resume(rq);
}

static void trace_gone(struct request *rq)
{
	/* Nobody will read the window: it ends now (its deadline resumes it,
	 * the connection closes, the capture is freed), so the next client
	 * gets the tracer without waiting for a 409's Retry-After. */
	deadline_hurry(rq->srv->tracing);
}

/* The streamed body: the response owns the capture from here, even when
 * the client goes mid-stream; the send deadline moves with the bytes. */
static struct MHD_Response *trace_respond(struct request *rq)
{
	rq->bytes = 0;
	struct MHD_Response *resp = tracing_response(rq->tr.capture, &rq->bytes, rq->tr.gzip);
	if (resp) {
		rq->tr.capture = NULL;
		srv_deadline_stream(rq, &rq->bytes);
	}
	return resp;
}

/* A capture that never got as far as a response. */
static void trace_done(struct request *rq)
{
	trace_capture_free(rq->tr.capture);
	rq->tr.capture = NULL;
}

const struct trace_desc *srv_trace_page(struct request *rq)
{
	struct server *s = rq->srv;
	char why[WHY_MAX];
	uint64_t ns;
	int last, samples;

	rq->window = 1;
	if (tracing_parse(rq->conn, s->cfg.trace_max, s->cfg.flight_recorder, &ns, &last,
			  &rq->tr.format, &samples, why, sizeof why) < 0) {
		srv_bad_query(rq, why);
		return NULL;
	}
	if (atomic_load_explicit(&s->draining, memory_order_relaxed)) {
		srv_busy(rq, REFUSED_DRAINING, "draining: this instance is shutting down\n", 1);
		return NULL;
	}
	int rc = last ? trace_capture_last(&rq->tr.capture, ns) : trace_capture_open(&rq->tr.capture);
	if (rc == -EBUSY) {
		srv_answer_text(rq, 409, "conflict: a trace is being taken or sent; one at a time\n");
		snprintf(rq->retry, sizeof rq->retry, "%u", deadline_retry_after(s->tracing));
		srv_add_header(rq, "Retry-After", rq->retry);
		return NULL;
	}
	if (rc < 0) {
		srv_answer_text(rq, 500, "cannot start a trace\n");
		return NULL;
	}
	rq->done = trace_done;
	rq->respond = trace_respond;
	rq->tr.gzip = tracing_accepts_gzip(
		MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	trace_capture_format(rq->tr.capture, rq->tr.format);
	trace_capture_samples(rq->tr.capture, samples);
	if (last) {
		trace_ready(rq);
		return NULL;
	}
	srv_suspend(rq, trace_gone);
	deadline_after(s->tracing, ns, rq);
	if (atomic_load_explicit(&s->draining, memory_order_acquire))
		deadline_hurry(s->tracing); /* drain began meanwhile: do not make it wait */
	return &TD_ARM;
}
