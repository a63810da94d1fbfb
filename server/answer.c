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

void srv_busy(struct request *rq, enum refusal r, const char *why, unsigned retry)
{
	rq->span = &TD_REJECT;
	rq->reason = refusal_name(r);
	metrics_count(rq->srv->metrics, COUNT_REJECTED);
	metrics_refused(rq->srv->metrics, r);
	srv_answer_text(rq, 503, why);
	if (retry) {
		snprintf(rq->retry, sizeof rq->retry, "%u", retry);
		srv_add_header(rq, "Retry-After", rq->retry);
	}
}

void srv_refusals_init(struct server *s)
{
	for (int v = 0; v < ADMIT_VERDICTS; v++) {
		int n = snprintf(s->refusal_body[v], sizeof s->refusal_body[v], "%s (--max-wait %g s)\n",
				 admission_why((enum admission_verdict)v), s->cfg.max_wait);
		s->refusal_len[v] = n > 0 && (size_t)n < sizeof s->refusal_body[v]
					    ? (size_t)n : strlen(s->refusal_body[v]);
	}
}

void srv_refusals_free(struct server *s)
{
	for (int v = 0; v < ADMIT_VERDICTS; v++)
		for (int r = 0; r <= SRV_RETRY_MAX; r++)
			if (s->refusal[v][r])
				MHD_destroy_response(s->refusal[v][r]);
}

/* The response for refusal v with Retry-After retry (0: none), made on
 * first use and kept: libmicrohttpd reference-counts responses, so one
 * may be queued on many connections at once. NULL: make one as usual. */
static struct MHD_Response *refusal_response(struct request *rq, enum admission_verdict v,
					     unsigned retry)
{
	struct server *s = rq->srv;
	_Atomic(struct MHD_Response *) *slot = &s->refusal[v][retry];
	struct MHD_Response *r = atomic_load_explicit(slot, memory_order_acquire);
	if (r || !(r = MHD_create_response_from_buffer(s->refusal_len[v], s->refusal_body[v],
						       MHD_RESPMEM_PERSISTENT)))
		return r;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rq->type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (retry)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, rq->retry);
	struct MHD_Response *none = NULL;
	if (!atomic_compare_exchange_strong_explicit(slot, &none, r, memory_order_acq_rel,
						     memory_order_acquire)) {
		MHD_destroy_response(r); /* another thread made it first */
		r = none;
	}
	return r;
}

void srv_refuse(struct request *rq, enum admission_verdict v, unsigned retry)
{
	struct server *s = rq->srv;
	if (v == ADMIT_TOO_BIG)
		retry = 0; /* retrying cannot help */
	static const enum refusal as[ADMIT_VERDICTS] = {
		[ADMIT_OVER_SHARE] = REFUSED_OVER_SHARE, [ADMIT_BUSY] = REFUSED_WAIT,
		[ADMIT_TOO_BIG] = REFUSED_TOO_BIG, [ADMIT_MEMORY] = REFUSED_MEMORY,
		[ADMIT_COUNT] = REFUSED_COUNT,
	};
	rq->span = &TD_REJECT;
	rq->reason = refusal_name(as[v]);
	metrics_count(s->metrics, COUNT_REJECTED);
	metrics_refused(s->metrics, as[v]);
	srv_answer_page(rq, "text/plain; charset=utf-8", s->refusal_body[v], s->refusal_len[v]);
	rq->status = v == ADMIT_OVER_SHARE ? 429 : 503;
	rq->retry[0] = '\0';
	if (retry) {
		snprintf(rq->retry, sizeof rq->retry, "%u", retry);
		srv_add_header(rq, "Retry-After", rq->retry);
	}
	srv_add_header(rq, "Cache-Control", "no-store");
	rq->kept = retry <= SRV_RETRY_MAX ? refusal_response(rq, v, retry) : NULL;
}

void srv_answer_same(struct request *f, const struct request *rq)
{
	if (rq->png) {
		srv_answer_png(f, blob_ref(rq->png), "shared");
		return;
	}
	if (rq->page) {
		srv_answer_page(f, rq->type, rq->page, rq->text_len);
		f->status = rq->status;
	} else {
		srv_answer_text(f, rq->status, rq->text);
	}
	f->span = rq->span;
	f->reason = rq->reason;
	f->kept = rq->kept;
	for (int i = 0; i < EXTRA_MAX && rq->extra[i][0]; i++) {
		if (rq->extra[i][1] == rq->retry) {
			memcpy(f->retry, rq->retry, sizeof f->retry);
			srv_add_header(f, "Retry-After", f->retry);
		} else {
			srv_add_header(f, rq->extra[i][0], rq->extra[i][1]);
		}
	}
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

void srv_bad_query(struct request *rq, const char *why)
{
	char line[WHY_MAX + 2];
	snprintf(line, sizeof line, "%s\n", why);
	srv_answer_text(rq, 400, line);
	srv_add_header(rq, "Cache-Control", "no-store");
}

enum MHD_Result srv_queue_answer(struct request *rq)
{
	struct MHD_Response *resp;
	/* A body that is not the cache's is held until it is sent. */
	int held_body = rq->png && !rq->hit && rq->status == 200;

	rq->t_out = srv_now();
	if (rq->kept && !rq->close && !atomic_load_explicit(&rq->srv->draining, memory_order_relaxed)) {
		rq->bytes = rq->text_len;
		srv_deadline_send(rq, rq->bytes);
		return MHD_queue_response(rq->conn, rq->status, rq->kept);
	}

	if (rq->hit && !rq->close &&
	    !atomic_load_explicit(&rq->srv->draining, memory_order_relaxed) &&
	    (resp = hit_response(rq))) {
		rq->bytes = rq->png->len;
		srv_deadline_send(rq, rq->bytes);
		return MHD_queue_response(rq->conn, rq->status, resp);
	}

	int fd = rq->png && rq->png->fd >= 0 ? fcntl(rq->png->fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (rq->respond) {
		resp = rq->respond(rq); /* the route's own, its deadline set */
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
	if (!rq->respond)
		srv_deadline_send(rq, rq->bytes);
	if (held_body) {
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
