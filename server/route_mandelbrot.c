/* route_mandelbrot.c - GET /mandelbrot: validate, answer from the cache or
 * admit (admission.h: fairly among clients), suspend, wait in the fair
 * queue, render on the pool, encode on the worker, resume. See internal.h.
 *
 * A refusal is decided before the connection is suspended: a client over
 * its share that asks again at once costs a lookup and a response made
 * once (answer.c's srv_refuse), not a suspend, an epoll watch and a resume.
 * Only a request that would follow a render in flight (single flight) is
 * suspended first, as that render may finish the moment it follows. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

/* The request that follows a flight, from its link in the leader's list. */
static struct request *follower_of(struct flight_waiter *w)
{
	return (struct request *)((char *)w - offsetof(struct request, mb.follow));
}

/* Ends a suspended request's wait: the answer is in its struct request.
 * A leader's followers get the same answer first (the leader may be gone
 * once it is resumed). */
static void hand_back(struct server *s, struct request *rq)
{
	if (rq->mb.leads) {
		struct flight_waiter *w = flight_finish(s->flights, &rq->mb.follow);
		while (w) {
			struct request *f = follower_of(w);
			uint64_t t0 = trace_begin();
			w = w->next; /* before f may go */
			uint64_t id = f->id; /* f may be gone once resumed */
			srv_answer_same(f, rq);
			srv_resume(f);
			/* The arrow from the render that answered it to its
			 * respond: a single flight's wake-up. */
			trace_span_flow(&TD_RESUME_FOLLOWER, t0, TRACE_FLOW_STEP, id, (int64_t)id, 0, 0, 0);
		}
	}
	srv_resume(rq);
}

/* The request an admission ticket is part of. */
static struct request *owner_of(struct admission_ticket *t)
{
	return (struct request *)((char *)t - offsetof(struct request, mb.ticket));
}

/* One admitted picture fewer in flight: the gauge, and its trace counter. */
static void inflight_down(struct server *s)
{
	unsigned left = atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed) - 1;
	trace_counter(&TD_INFLIGHT, left);
}

/* An admitted picture is done with: rendered (share: the part of it that
 * was, when cancelled), or (started 0) never started. */
static void release(struct server *s, struct request *rq, int started, double share)
{
	if (started)
		admission_done(s->admission, &rq->mb.ticket, srv_now(), share);
	else
		admission_cancel(s->admission, &rq->mb.ticket);
	inflight_down(s);
}

static void start_next(struct server *s);

/* Runs on the pool worker that finished the picture. */
static void rendered(void *ctx, struct image *img, const struct render_stats *st)
{
	struct request *rq = ctx;
	struct server *s = rq->srv;
	struct pngenc_buf buf;
	char err[WHY_MAX];
	double t1 = srv_now();

	/* Its pixels are done: the pool takes the next picture while this
	 * one encodes. */
	admission_rendered(s->admission, &rq->mb.ticket);
	start_next(s);
	uint64_t e0 = trace_begin();
	if (st->cancelled) {
		/* Nobody waits for it (its clients hung up), or the drain's
		 * deadline passed: no encode, no cache. */
		image_free(img);
		metrics_count(s->metrics, COUNT_CANCELLED);
		if (rq->mb.tr_admit)
			trace_async(&TD_CANCELLED, rq->id, rq->mb.tr_admit, trace_now(), 0, 0, 0, 0);
		if (atomic_load_explicit(&s->abort, memory_order_relaxed))
			srv_busy(rq, REFUSED_DRAINING,
				 "draining: this instance shut down before the picture was done\n", 1);
		else
			srv_answer_text(rq, 499, "client closed the connection\n");
		release(s, rq, 1, st->done_share);
		hand_back(s, rq);
		return;
	}
	metrics_observe(s->metrics, HIST_RENDER, t1 - rq->mb.t_admit);
	int rc = pngenc_encode(img, &s->png, &buf, err, sizeof err);
	image_free(img);
	metrics_observe(s->metrics, HIST_ENCODE, srv_now() - t1);
	trace_span_flow(&TD_ENCODE, e0, TRACE_FLOW_STEP, rq->id, rc == 0 ? (int64_t)buf.len : 0,
			(int64_t)rq->id, 0, 0);
	if (e0 && st->t_first && rq->mb.tr_admit) {
		/* The request's phases on its async track. */
		trace_async(&TD_QUEUED, rq->id, rq->mb.tr_admit, st->t_first, 0, 0, 0, 0);
		trace_async(&TD_RENDERING, rq->id, st->t_first, st->t_done, (int64_t)st->jobs,
			    (int64_t)st->iterations, 0, 0);
		trace_async(&TD_ENCODING, rq->id, st->t_done, trace_now(), 0, 0, 0, 0);
	}
	struct blob *b = rc == 0 ? blob_wrap(buf.data, buf.len) : NULL;
	if (b) {
		blob_settle(b); /* sealed or on the heap: the same bytes either way */
		if (!rq->mb.no_store)
			cache_put(s->cache, rq->mb.key, b);
		srv_answer_png(rq, b, rq->mb.fresh ? "bypass" : "miss");
	} else {
		srv_answer_text(rq, 500, "PNG encoding failed\n");
	}
	/* Released before the resume, so the client's next request cannot
	 * race us and find the work still charged. */
	release(s, rq, 1, 1);
	hand_back(s, rq);
}

/* Its client hung up while it was suspended (srv_suspend's callback). */
static void mandelbrot_gone(struct request *rq)
{
	struct server *s = rq->srv;

	if (rq->mb.follows) {
		if (flight_leave(s->flights, &rq->mb.follow)) {
			srv_answer_text(rq, 499, "client closed the connection\n");
			srv_resume(rq);
		}
		return;
	}
	if (rq->mb.leads)
		flight_leader_gone(s->flights, &rq->mb.follow); /* cancels it when nobody follows */
	else
		atomic_store_explicit(&rq->mb.cancel, 1, memory_order_relaxed);
	/* Nobody waits for it, and it never started: out of the queue, so it
	 * takes no place in its client's share or the pool. */
	if (atomic_load_explicit(&rq->mb.cancel, memory_order_relaxed) &&
	    admission_leave(s->admission, &rq->mb.ticket)) {
		inflight_down(s);
		metrics_count(s->metrics, COUNT_CANCELLED);
		hand_back(s, rq); /* gone: resumed and closed with no answer */
	}
}

/* A picture pushed out of its client's queue (admission.h): answered as
 * refused, with its client's own wait. From any thread. */
static void pushed_out(struct server *s, struct admission_ticket *t)
{
	struct request *rq = owner_of(t);
	inflight_down(s);
	srv_refuse(rq, t->verdict, t->retry);
	hand_back(s, rq);
}

/* Hands the pictures the fair queue says go next to the pool: after an
 * admission (an HTTP thread) and when a render ends (a worker). The
 * request belongs to this thread from admission_next until render_start
 * takes it. */
static void start_next(struct server *s)
{
	struct admission_ticket *t;
	while ((t = admission_next(s->admission))) {
		struct request *rq = owner_of(t);
		struct render_req r = {
			.pic = &rq->mb.q.pic, .kernel = s->kernel, .mode = rq->mb.q.mode, .jobs = rq->mb.q.jobs,
			.done = rendered, .ctx = rq, .tag = rq->id,
			.cancel = &rq->mb.cancel, .cancel_all = &s->abort,
		};
		/* Its jobs' CPU samples carry the route (and the mode). */
		struct trace_labels was = trace_labels_swap((struct trace_labels){route_name(rq->route), NULL});
		int rc = render_start(s->pool, &r);
		trace_labels_swap(was);
		if (rc == 0)
			continue;
		release(s, rq, 0, 0);
		if (rc == -ENOMEM)
			srv_answer_text(rq, 500, "out of memory\n");
		else
			srv_busy(rq, REFUSED_QUEUE, "busy: the render queue is full, retry later\n", 1);
		hand_back(s, rq);
	}
}

struct args {
	struct query q;
	unsigned max_jobs;
	int rc;
	char why[WHY_MAX];
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				size_t key_size, const char *value, size_t value_size)
{
	struct args *a = cls;
	(void)kind;
	if (!query_arg_whole(key, key_size, value, value_size)) {
		snprintf(a->why, sizeof a->why, "%s", QUERY_NUL_WHY);
		a->rc = -EINVAL;
	} else {
		a->rc = query_add(&a->q, key, value, a->max_jobs, a->why, sizeof a->why);
	}
	return a->rc == 0 ? MHD_YES : MHD_NO;
}

double srv_charge(const struct server *s, const struct query *q, double *work)
{
	const struct picture *p = &q->pic;
	double px = (double)p->w * p->h, c = px * p->max_iter;
	unsigned workers = pool_workers(s->pool), par = workers;

	if (q->mode == MODE_PX || q->mode == MODE_WORKERS)
		c = c * s->px_factor + px * SRV_JOB_COST;
	if (q->mode == MODE_SEQ)
		par = 1;
	else if (q->jobs && q->jobs < workers)
		par = q->jobs;
	*work = c;
	return c * workers / par;
}

/* Returns NULL when rq is answered, or the trace name of what it was
 * suspended for (see dispatch). */
const struct trace_desc *srv_mandelbrot(struct request *rq)
{
	struct server *s = rq->srv;
	struct args a = {.max_jobs = pool_workers(s->pool)};

	query_init(&a.q);
	MHD_get_connection_values_n(rq->conn, MHD_GET_ARGUMENT_KIND, each_arg, &a);
	if (a.rc == 0)
		a.rc = query_finish(&a.q, s->cfg.max_cost, a.why, sizeof a.why);
	if (a.rc < 0) {
		srv_bad_query(rq, a.why);
		return NULL;
	}
	double work, charge = srv_charge(s, &a.q, &work);
	if (work > (double)s->cfg.max_cost) {
		snprintf(a.why, sizeof a.why,
			 "mode=%s costs w*h*(iter*%.1f + %u) = %.4g pixel-iterations here (a job a pixel), "
			 "above this server's budget of %" PRIu64 " (--max-cost): use mode=auto, lower w, h or iter, "
			 "or start the server with a larger --max-cost",
			 render_mode_name(a.q.mode), s->px_factor, SRV_JOB_COST, work, s->cfg.max_cost);
		srv_bad_query(rq, a.why);
		return NULL;
	}
	query_key(&a.q, rq->mb.key);
	query_etag(rq->mb.key, rq->etag);
	const char *inm = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (query_etag_matches(inm, rq->etag)) {
		srv_answer_text(rq, 304, NULL);
		rq->type = NULL;
		srv_add_header(rq, "ETag", rq->etag);
		srv_add_header(rq, "Cache-Control", CACHE_CONTROL_PNG);
		return NULL;
	}
	/* Rendered anew when the request says so (no-cache, no-store) or
	 * is an experiment (mode, workers): not from the cache, nor from
	 * another request's render. */
	unsigned wish = query_cache_wish(
		MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CACHE_CONTROL),
		MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_PRAGMA));
	rq->mb.fresh = (wish & QUERY_FRESH) || query_experiment(&a.q);
	rq->mb.no_store = (wish & QUERY_NO_STORE) != 0;
	struct blob *hit = NULL;
	if (rq->mb.fresh)
		cache_bypass(s->cache);
	else
		hit = cache_get(s->cache, rq->mb.key);
	if (hit) {
		rq->span = &TD_HIT;
		srv_answer_png(rq, hit, "hit");
		return NULL;
	}
	if (atomic_load_explicit(&s->draining, memory_order_relaxed)) {
		srv_busy(rq, REFUSED_DRAINING, "draining: this instance is shutting down\n", 1);
		return NULL;
	}
	if (atomic_load_explicit(&s->sending, memory_order_relaxed) > (uint64_t)s->cfg.max_send_mb << 20) {
		srv_busy(rq, REFUSED_SENDING, "busy: answers being sent to slow clients hold the memory --max-send-mb allows; retry after Retry-After\n", 1);
		return NULL;
	}
	rq->mb.q = a.q;
	/* A render of the same picture in flight: follow it. Suspended
	 * before anything can resume it: the leader may finish the moment
	 * this request follows it. */
	int suspended = 0, flights = s->cfg.single_flight && !rq->mb.fresh;
	if (flights && flight_pending(s->flights, rq->mb.key)) {
		srv_suspend(rq, mandelbrot_gone);
		suspended = 1;
		int led = flight_join(s->flights, rq->mb.key, &rq->mb.follow, &rq->mb.cancel);
		if (led == 1) {
			rq->mb.follows = 1;
			rq->flow = 1;
			return &TD_FOLLOW;
		}
		rq->mb.leads = led == 0;
	}

	/* Fair admission by predicted wait (admission.h). */
	const struct picture *p = &rq->mb.q.pic;
	uint64_t bytes = (uint64_t)p->w * p->h * picture_channels(p);
	struct admission_ticket *pushed;
	enum admission_verdict v = admission_admit(s->admission, &rq->client.key, charge, bytes,
						   srv_now(), &rq->mb.ticket, &pushed);
	if (pushed)
		pushed_out(s, pushed);
	if (v != ADMIT_OK) {
		srv_refuse(rq, v, rq->mb.ticket.retry);
		if (suspended)
			hand_back(s, rq); /* resumed already, by this thread: answered now */
		else if (rq->mb.ticket.hold > 0)
			return srv_hold(rq, rq->mb.ticket.hold); /* asked again too soon */
		return NULL;
	}
	if (!suspended) {
		srv_suspend(rq, mandelbrot_gone);
		int led = flights ? flight_join(s->flights, rq->mb.key, &rq->mb.follow, &rq->mb.cancel) : -1;
		if (led == 1) { /* one began since flight_pending said none */
			admission_cancel(s->admission, &rq->mb.ticket);
			rq->mb.follows = 1;
			rq->flow = 1;
			return &TD_FOLLOW;
		}
		rq->mb.leads = led == 0;
	}
	unsigned before = atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
	trace_counter(&TD_INFLIGHT, before + 1);
	rq->flow = 1;
	rq->mb.t_admit = srv_now();
	rq->mb.tr_admit = trace_begin();
	admission_enqueue(s->admission, &rq->mb.ticket);
	start_next(s);
	return &TD_ADMIT;
}
