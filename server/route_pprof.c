/* route_pprof.c - GET /debug/pprof/profile: starting a CPU profile,
 * answering it when its window ends. Its state is struct pprof_state; who
 * may ask is routes.c's gate. See internal.h and prof/prof.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

static const struct trace_desc TD_PROFILE = {"arm cpu profile", "http", {"route", "status", "request"}, 1};

/* Runs on the profile's deadline thread when its window ends (or at once,
 * when the client hung up or the server drains): the profile is encoded
 * and sent. */
void srv_pprof_fired(void *ctx)
{
	struct request *rq = ctx;
	unsigned char *gz;
	size_t len;

	if (prof_pprof(rq->pp.prof, &gz, &len) < 0) {
		srv_answer_text(rq, 500, "out of memory encoding the profile\n");
	} else {
		srv_answer_text(rq, 200, NULL);
		rq->type = "application/octet-stream";
		rq->text = (char *)gz; /* sent and freed as any text body */
		rq->text_len = len;
		srv_add_header(rq, "Content-Disposition", "attachment; filename=\"mandelweb-cpu.pprof\"");
	}
	srv_add_header(rq, "Cache-Control", "no-store");
	prof_free(rq->pp.prof); /* the session ends: the next profile may start */
	rq->pp.prof = NULL;
	srv_resume(rq);
}

static void pprof_gone(struct request *rq)
{
	deadline_hurry(rq->srv->profiling); /* the window ends now and frees the profile */
}

static void pprof_done(struct request *rq)
{
	prof_free(rq->pp.prof);
	rq->pp.prof = NULL;
}

const struct trace_desc *srv_pprof_page(struct request *rq)
{
	struct server *s = rq->srv;
	char why[WHY_MAX], msg[WHY_MAX + 64];
	uint64_t ns;

	rq->window = 1;
	if (tracing_parse_profile(rq->conn, s->cfg.trace_max, &ns, why, sizeof why) < 0) {
		srv_bad_query(rq, why);
		return NULL;
	}
	if (atomic_load_explicit(&s->draining, memory_order_relaxed)) {
		srv_busy(rq, REFUSED_DRAINING, "draining: this instance is shutting down\n", 1);
		return NULL;
	}
	int rc = prof_start(&rq->pp.prof, s->cfg.profile_hz, why, sizeof why);
	if (rc == -EBUSY) {
		srv_answer_text(rq, 409, "conflict: a profile is being taken; one at a time\n");
		snprintf(rq->retry, sizeof rq->retry, "%u", deadline_retry_after(s->profiling));
		srv_add_header(rq, "Retry-After", rq->retry);
		return NULL;
	}
	if (rc < 0) {
		snprintf(msg, sizeof msg, "profile unavailable: %s\n", why);
		srv_answer_text(rq, 503, msg);
		return NULL;
	}
	rq->done = pprof_done;
	srv_suspend(rq, pprof_gone);
	deadline_after(s->profiling, ns, rq);
	if (atomic_load_explicit(&s->draining, memory_order_acquire))
		deadline_hurry(s->profiling); /* drain began meanwhile: do not make it wait */
	return &TD_PROFILE;
}
