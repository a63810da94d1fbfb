/* route_pprof.c - GET /debug/pprof/profile (CPU) and /debug/pprof/block
 * (off-CPU): starting a profile, answering it when its window ends; and
 * GET /debug/pprof/, the index. Their state is struct pprof_state; who may
 * ask is routes.c's gate. See internal.h and prof/prof.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

static const struct trace_desc TD_PROFILE = {"arm cpu profile", "http", {"route", "status", "request"}, 1};
static const struct trace_desc TD_BLOCK = {"arm block profile", "http", {"route", "status", "request"}, 1};

/* Runs on the profile's deadline thread when its window ends (or at once,
 * when the client hung up or the server drains): the profile is encoded
 * and sent, and the session ends (the next profile may start). */
static void fired(struct request *rq)
{
	unsigned char *gz;
	size_t len;
	int block = rq->pp.kind == PPROF_BLOCK;
	int rc = block ? prof_block_pprof(rq->pp.block, &gz, &len, NULL)
		       : prof_pprof(rq->pp.prof, &gz, &len);

	if (rc < 0) {
		srv_answer_text(rq, 500, "out of memory encoding the profile\n");
	} else {
		srv_answer_text(rq, 200, NULL);
		rq->type = "application/octet-stream";
		rq->text = (char *)gz; /* sent and freed as any text body */
		rq->text_len = len;
		srv_add_header(rq, "Content-Disposition",
			       block ? "attachment; filename=\"mandelweb-block.pprof\""
				     : "attachment; filename=\"mandelweb-cpu.pprof\"");
	}
	srv_add_header(rq, "Cache-Control", "no-store");
	prof_free(rq->pp.prof);
	prof_block_free(rq->pp.block);
	rq->pp.prof = NULL;
	rq->pp.block = NULL;
	srv_resume(rq);
}

void srv_pprof_fired(void *ctx)
{
	fired(ctx);
}

void srv_block_fired(void *ctx)
{
	fired(ctx);
}

static struct deadline *timer(const struct request *rq)
{
	return rq->pp.kind == PPROF_BLOCK ? rq->srv->blocking : rq->srv->profiling;
}

static void pprof_gone(struct request *rq)
{
	deadline_hurry(timer(rq)); /* the window ends now and frees the profile */
}

static void pprof_done(struct request *rq)
{
	prof_free(rq->pp.prof);
	prof_block_free(rq->pp.block);
	rq->pp.prof = NULL;
	rq->pp.block = NULL;
}

const struct trace_desc *srv_pprof_page(struct request *rq, enum pprof_kind kind)
{
	struct server *s = rq->srv;
	char why[WHY_MAX], msg[WHY_MAX + 64];
	uint64_t ns;

	rq->window = 1;
	rq->pp.kind = kind;
	if (tracing_parse_profile(rq->conn, route_name(rq->route), s->cfg.trace_max, &ns, why,
				  sizeof why) < 0) {
		srv_bad_query(rq, why);
		return NULL;
	}
	if (atomic_load_explicit(&s->draining, memory_order_relaxed)) {
		srv_busy(rq, REFUSED_DRAINING, "draining: this instance is shutting down\n", 1);
		return NULL;
	}
	int rc = kind == PPROF_BLOCK ? prof_block_start(&rq->pp.block)
				     : prof_start(&rq->pp.prof, s->cfg.profile_hz, why, sizeof why);
	if (rc == -EBUSY) {
		srv_answer_text(rq, 409, kind == PPROF_BLOCK
						 ? "conflict: a block profile is being taken; one at a time\n"
						 : "conflict: a profile is being taken; one at a time\n");
		snprintf(rq->retry, sizeof rq->retry, "%u", deadline_retry_after(timer(rq)));
		srv_add_header(rq, "Retry-After", rq->retry);
		return NULL;
	}
	if (rc < 0) {
		if (kind == PPROF_BLOCK)
			snprintf(why, sizeof why, "%s", strerror(-rc));
		snprintf(msg, sizeof msg, "profile unavailable: %s\n", why);
		srv_answer_text(rq, 503, msg);
		return NULL;
	}
	rq->done = pprof_done;
	srv_suspend(rq, pprof_gone);
	deadline_after(timer(rq), ns, rq);
	if (atomic_load_explicit(&s->draining, memory_order_acquire))
		deadline_hurry(timer(rq)); /* drain began meanwhile: do not make it wait */
	return kind == PPROF_BLOCK ? &TD_BLOCK : &TD_PROFILE;
}

/* What net/http/pprof's index lists, for what this server has. */
static const char INDEX[] =
	"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>/debug/pprof/</title></head>\n"
	"<body><h1>/debug/pprof/</h1>\n"
	"<p>Profiles of this process, each over a window of <code>seconds=</code> (1 to the "
	"server's --trace-max; default 30, as Go's). One of each kind at a time (409 and "
	"Retry-After while one runs); a client that hangs up ends its window.</p>\n<table>\n"
	"<tr><td><a href=\"profile?seconds=30\">profile</a></td><td>CPU profile: where each "
	"thread ran, sampled on its CPU clock (pprof's samples/count, cpu/nanoseconds).</td></tr>\n"
	"<tr><td><a href=\"block?seconds=30\">block</a></td><td>Off-CPU (block) profile: where "
	"each thread waited and why, as Go's block profile (contentions/count, "
	"delay/nanoseconds), labelled reason (no work, queue full, rendezvous, render, network, "
	"runnable, blocked) and thread.</td></tr>\n"
	"<tr><td><a href=\"../trace?seconds=5\">../trace</a></td><td>Execution trace: every "
	"thread's spans, waits, wake-ups, the kernel's view and CPU samples, as Chrome Trace "
	"Event JSON (format=perfetto: Perfetto's protobuf; format=summary: text; last=N: the "
	"flight recorder's last N seconds).</td></tr>\n"
	"</table>\n<p>From a shell:</p>\n<pre>\n"
	"go tool pprof -top http://HOST/debug/pprof/profile?seconds=10\n"
	"go tool pprof -top -tagfocus reason=rendezvous http://HOST/debug/pprof/block?seconds=10\n"
	"curl -o trace.json 'http://HOST/debug/trace?seconds=5'\n"
	"</pre>\n</body></html>\n";

void srv_pprof_index(struct request *rq)
{
	srv_answer_page(rq, "text/html; charset=utf-8", INDEX, sizeof INDEX - 1);
}
