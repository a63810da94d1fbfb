/* suspend.c - see internal.h: a request's suspend, resume and hang-up, in
 * one place. A route that suspends a request gives its own hang-up
 * callback (libuv's close_cb, h2o's per-handler stop); this file knows
 * nothing else of the route. */
#include "server/internal.h"

void srv_suspend(struct request *rq, void (*gone)(struct request *rq))
{
	rq->state = ST_RENDERING;
	rq->gone = gone;
	atomic_fetch_add_explicit(&rq->srv->suspended, 1, memory_order_relaxed);
	MHD_suspend_connection(rq->conn);
	rq->watch_fd = http_watch(rq->thread, rq->conn, rq);
}

void srv_gone(void *cls, void *token)
{
	struct request *rq = token;
	(void)cls;

	atomic_store_explicit(&rq->hung_up, 1, memory_order_relaxed);
	if (rq->gone)
		rq->gone(rq);
}

void srv_resume(struct request *rq)
{
	struct server *s = rq->srv; /* read before: rq may go with the resume */
	/* Unwatched first: once resumed, rq may be freed on its thread. */
	http_unwatch(rq->thread, rq->watch_fd);
	rq->watch_fd = -1;
	http_resume(rq->thread, rq->conn);
	atomic_fetch_sub_explicit(&s->suspended, 1, memory_order_release);
}
