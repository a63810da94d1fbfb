/* route_pprof.c - GET /debug/pprof/profile: who may ask (as /debug/trace),
 * starting a CPU profile, answering it when its window ends. See
 * internal.h and prof/prof.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

static const struct trace_desc TD_PROFILE = {"arm cpu profile", "http", {"route", "status", "request"}, 1};

/* Runs on the profile's timer when its window ends (or at once, when the
 * client hung up or the server drains): the profile is encoded and sent. */
void srv_pprof_fired(void *ctx)
{
	struct request *rq = ctx;
	unsigned char *gz;
	size_t len;

	if (prof_pprof(rq->prof, &gz, &len) < 0) {
		srv_answer_text(rq, 500, "out of memory encoding the profile\n");
	} else {
		srv_answer_text(rq, 200, NULL);
		rq->type = "application/octet-stream";
		rq->text = (char *)gz; /* sent and freed as any text body */
		rq->text_len = len;
		srv_add_header(rq, "Content-Disposition", "attachment; filename=\"mandelweb-cpu.pprof\"");
	}
	srv_add_header(rq, "Cache-Control", "no-store");
	prof_free(rq->prof); /* the session ends: the next profile may start */
	rq->prof = NULL;
	srv_resume(rq);
}

void srv_pprof_gone(struct request *rq)
{
	tracing_hurry(rq->srv->profiling); /* the window ends now and frees the profile */
}

const struct trace_desc *srv_pprof_page(struct request *rq)
{
	struct server *s = rq->srv;
	char why[WHY_MAX], msg[WHY_MAX + 64];
	uint64_t ns;

	if (!srv_debug_admit(rq, tracing_parse_profile(rq->conn, s->cfg.trace_max, &ns, why,
						       sizeof why), why))
		return NULL;
	int rc = prof_start(&rq->prof, s->cfg.profile_hz, why, sizeof why);
	if (rc == -EBUSY) {
		srv_answer_text(rq, 409, "conflict: a profile is being taken; one at a time\n");
		snprintf(rq->retry, sizeof rq->retry, "%u", tracing_retry_after(s->profiling));
		srv_add_header(rq, "Retry-After", rq->retry);
		return NULL;
	}
	if (rc < 0) {
		snprintf(msg, sizeof msg, "profile unavailable: %s\n", why);
		srv_answer_text(rq, 503, msg);
		return NULL;
	}
	srv_suspend(rq);
	tracing_after(s->profiling, ns, rq);
	if (atomic_load_explicit(&s->draining, memory_order_acquire))
		tracing_hurry(s->profiling); /* drain began meanwhile: do not make it wait */
	return &TD_PROFILE;
}
