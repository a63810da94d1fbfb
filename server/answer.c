/* answer.c - see internal.h: the answers a route gives, and queueing one. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/internal.h"

double srv_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

void srv_add_header(struct request *rq, const char *name, const char *value)
{
	for (int i = 0; i < EXTRA_MAX; i++) {
		if (!rq->extra[i][0]) {
			rq->extra[i][0] = name;
			rq->extra[i][1] = value;
			return;
		}
	}
}

/* A text answer; body is copied (or NULL for none). */
void srv_answer_text(struct request *rq, unsigned status, const char *body)
{
	rq->status = status;
	rq->type = "text/plain; charset=utf-8";
	free(rq->text);
	rq->text = body ? strdup(body) : NULL;
	rq->text_len = rq->text ? strlen(rq->text) : 0;
	rq->state = ST_READY;
}

/* A 200 with a body that lives as long as the server: sent as it is. */
void srv_answer_page(struct request *rq, const char *type, const char *body, size_t len)
{
	srv_answer_text(rq, 200, NULL);
	rq->page = body;
	rq->text_len = len;
	rq->type = type;
}

void srv_answer_png(struct request *rq, struct blob *png, const char *cache)
{
	rq->hit = strcmp(cache, "hit") == 0;
	rq->status = 200;
	rq->type = "image/png";
	rq->png = png;
	srv_add_header(rq, "ETag", rq->etag);
	srv_add_header(rq, "Cache-Control", CACHE_CONTROL_PNG);
	srv_add_header(rq, "X-Cache", cache);
	rq->state = ST_READY;
}

void srv_busy(struct request *rq, const char *why, unsigned retry)
{
	rq->span = &TD_REJECT;
	metrics_count(rq->srv->metrics, COUNT_REJECTED);
	srv_answer_text(rq, 503, why);
	if (retry) {
		snprintf(rq->retry, sizeof rq->retry, "%u", retry);
		srv_add_header(rq, "Retry-After", rq->retry);
	}
}

void srv_suspend(struct request *rq)
{
	rq->state = ST_RENDERING;
	atomic_fetch_add_explicit(&rq->srv->suspended, 1, memory_order_relaxed);
	MHD_suspend_connection(rq->conn);
	rq->watch_fd = http_watch(rq->thread, rq->conn, rq);
}

void srv_gone(void *cls, void *token)
{
	struct request *rq = token;
	(void)cls;

	atomic_store_explicit(&rq->gone, 1, memory_order_relaxed);
	if (rq->route == ROUTE_MANDELBROT)
		srv_mandelbrot_gone(rq);
	else if (rq->route == ROUTE_TRACE)
		srv_trace_gone(rq);
	else if (rq->route == ROUTE_PPROF)
		srv_pprof_gone(rq);
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

/* The answer's Content-Type and extra headers onto resp. */
static void add_headers(struct MHD_Response *resp, const struct request *rq)
{
	if (rq->type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rq->type);
	for (int i = 0; i < EXTRA_MAX && rq->extra[i][0]; i++)
		MHD_add_response_header(resp, rq->extra[i][0], rq->extra[i][1]);
}

static void free_png(void *blob)
{
	blob_unref(blob);
}

static void destroy_response(void *resp)
{
	MHD_destroy_response(resp);
}

/* A cache hit: every request for this blob gets the same response, made
 * once and kept with the blob (libmicrohttpd reference-counts responses
 * and sends a file body by offset, so one may be queued on many
 * connections at once). Saves, per hit, a dup of the memfd, a response
 * made and destroyed, and four headers added. NULL: make one as usual. */
static struct MHD_Response *hit_response(struct request *rq)
{
	struct blob *b = rq->png;
	struct MHD_Response *r = atomic_load_explicit(&b->kept, memory_order_acquire);
	if (r)
		return r;
	if (b->fd < 0) {
		/* On the heap: sent from the blob's own bytes, which outlive the
		 * response (it is freed with the blob). */
		if (!(r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_PERSISTENT)))
			return NULL;
	} else {
		int fd = fcntl(b->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return NULL;
		if (!(r = MHD_create_response_from_fd64(b->len, fd))) {
			close(fd);
			return NULL;
		}
	}
	add_headers(r, rq);
	struct MHD_Response *kept = blob_keep(b, r, destroy_response);
	if (kept != r)
		MHD_destroy_response(r); /* another thread made it first */
	return kept;
}

enum MHD_Result srv_queue_answer(struct request *rq)
{
	struct MHD_Response *resp;

	if (rq->hit && !rq->close &&
	    !atomic_load_explicit(&rq->srv->draining, memory_order_relaxed) &&
	    (resp = hit_response(rq))) {
		rq->bytes = rq->png->len;
		srv_deadline_send(rq, rq->bytes);
		return MHD_queue_response(rq->conn, rq->status, resp);
	}

	int fd = rq->png && rq->png->fd >= 0 ? fcntl(rq->png->fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (rq->capture) {
		rq->bytes = 0;
		resp = tracing_response(rq->capture, &rq->bytes);
		if (resp) {
			rq->capture = NULL; /* the response frees it, even mid-stream */
			rq->capture_sent = 1;
		}
	} else if (fd >= 0) {
		/* sendfile(2) from the sealed memfd: the kernel sends the pages
		 * without copying them into the socket (measured: the copy was
		 * 45% of a cached response). MHD closes the duplicate. */
		rq->bytes = rq->png->len;
		resp = MHD_create_response_from_fd64(rq->png->len, fd);
		if (!resp)
			close(fd);
	} else if (rq->page) {
		rq->bytes = rq->text_len;
		resp = MHD_create_response_from_buffer(rq->text_len, (void *)rq->page,
						       MHD_RESPMEM_PERSISTENT);
	} else if (rq->png) {
		rq->bytes = rq->png->len;
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
			rq->png->len, rq->png->data, free_png, rq->png);
		if (resp)
			rq->png = NULL; /* the response holds the reference now */
	} else {
		rq->bytes = rq->text_len;
		resp = MHD_create_response_from_buffer(rq->text_len, rq->text,
						       MHD_RESPMEM_MUST_FREE);
		if (resp)
			rq->text = NULL;
	}
	if (!resp)
		return MHD_NO;
	if (rq->capture_sent)
		srv_deadline_stream(rq, &rq->bytes);
	else
		srv_deadline_send(rq, rq->bytes);
	if (!rq->hit && rq->route == ROUTE_MANDELBROT && rq->status == 200) {
		/* a body that is not the cache's: held until it is sent */
		rq->sending = rq->bytes;
		atomic_fetch_add_explicit(&rq->srv->sending, rq->sending, memory_order_relaxed);
	}
	add_headers(resp, rq);
	if (rq->close || atomic_load_explicit(&rq->srv->draining, memory_order_relaxed))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result r = MHD_queue_response(rq->conn, rq->status, resp);
	MHD_destroy_response(resp);
	return r;
}
