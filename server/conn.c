/*
 * conn.c - see internal.h: a connection's life and deadlines, and the end
 * of every request (the one place a request is freed).
 *
 * Deadlines, on the connection's HTTP thread (srv_tick, every
 * HTTP_TICK_MS): a new connection's first request must have all its
 * headers within --header-timeout, and so must a kept-alive connection's
 * next one from its request line (before the line, an idle connection is
 * --timeout's); an answer must be read within --send-timeout plus its
 * length at --min-send-rate. libmicrohttpd's own timeout counts idle time
 * only: a client sending a header line every few seconds, or reading a
 * byte at a time, never trips it (slowloris). Past a deadline the socket
 * is shut down (shutdown(2)): libmicrohttpd sees the connection end at
 * its next read or write and closes it; the log says 408.
 *
 * The status a request is logged and counted with is what its client
 * got: 499 (nginx's) when it hung up before the whole answer was sent,
 * 408 when a deadline closed it, 444 when it was closed with no answer at
 * all, and libmicrohttpd's own error replies (400, 413, 414, 431, 505)
 * with their code, read from the library's log line (srv_library_log).
 * For a 499 or 408, bytes is what the client's TCP acknowledged of the
 * answer, headers included, at most the body's length.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "server/accesslog.h"
#include "server/internal.h"
#include "server/sock.h"

/* The error status libmicrohttpd said it answered with last on this
 * thread: its log line comes as it queues the reply, on the connection's
 * HTTP thread, before that connection's request ends. */
static _Thread_local unsigned library_status;

void srv_library_log(void *cls, const char *fmt, va_list ap)
{
	struct server *s = cls;
	static const char reply[] = "Error processing request (HTTP response code is %u";
	/* What it says when the handler returns MHD_NO: here always on
	 * purpose (a client gone, or answered on the socket), logged with
	 * its status by finish. */
	static const char ours[] = "Application reported internal error";
	if (strncmp(fmt, ours, sizeof ours - 1) == 0)
		return;
	if (strncmp(fmt, reply, sizeof reply - 1) == 0) {
		va_list copy;
		va_copy(copy, ap);
		library_status = va_arg(copy, unsigned);
		va_end(copy);
		metrics_count(s->metrics, COUNT_LIBRARY_REPLY);
	}
	vfprintf(stderr, fmt, ap);
}

void srv_deadline_headers(struct request *rq)
{
	struct conn *c = rq->cn;
	if (c && !c->deadline) {
		c->deadline = srv_now() + rq->srv->cfg.header_timeout;
		c->why = COUNT_HEADER_DEADLINE;
	}
}

void srv_deadline_none(struct request *rq)
{
	struct conn *c = rq->cn;
	if (c) {
		c->deadline = 0;
		c->sent = NULL;
	}
}

void srv_deadline_send(struct request *rq, uint64_t bytes)
{
	struct conn *c = rq->cn;
	const struct config *cfg = &rq->srv->cfg;
	if (c) {
		c->deadline = srv_now() + cfg->send_timeout + (double)bytes / (cfg->min_send_rate * 1024.0);
		c->why = COUNT_SEND_DEADLINE;
		rq->acked0 = sock_bytes_acked(c->fd);
	}
}

void srv_deadline_stream(struct request *rq, const uint64_t *sent)
{
	struct conn *c = rq->cn;
	srv_deadline_send(rq, 0);
	if (c) {
		c->sent = sent;
		c->t_send = srv_now();
	}
}

/* A held refusal's client hung up: nobody to tell it to. */
static void held_gone(struct request *rq)
{
	srv_unhold(rq);
	srv_resume(rq);
}

const struct trace_desc *srv_hold(struct request *rq, double seconds)
{
	struct request **head = &rq->srv->held[http_index(rq->thread)];
	struct hold *h = &rq->hold;
	h->on = 1;
	h->until = srv_now() + seconds;
	h->tr = trace_begin();
	h->prev = NULL;
	h->next = *head;
	if (*head)
		(*head)->hold.prev = rq;
	*head = rq;
	rq->span = &TD_HOLD; /* traced as a request with a phase, not a lone 'reject' */
	metrics_count(rq->srv->metrics, COUNT_HELD);
	srv_suspend(rq, held_gone);
	return &TD_HOLD;
}

void srv_unhold(struct request *rq)
{
	struct hold *h = &rq->hold;
	if (!h->on)
		return;
	if (h->prev)
		h->prev->hold.next = h->next;
	else
		rq->srv->held[http_index(rq->thread)] = h->next;
	if (h->next)
		h->next->hold.prev = h->prev;
	h->on = 0;
}

/* Held refusals whose time is up (every one while draining) are answered. */
static void release_held(struct server *s, struct http_thread *t, double now)
{
	int all = atomic_load_explicit(&s->draining, memory_order_relaxed);
	for (struct request *rq = s->held[http_index(t)], *next; rq; rq = next) {
		next = rq->hold.next;
		if (all || rq->hold.until <= now) {
			if (rq->hold.tr)
				trace_async(&TD_HELD, rq->id, rq->hold.tr, trace_now(), TRACE_STR(rq->reason), 0, 0, 0);
			srv_unhold(rq);
			srv_resume(rq);
		}
	}
}

void srv_idle(void *cls, struct http_thread *t, int last)
{
	(void)cls, (void)t;
	if (last)
		accesslog_flush_free();
	else
		accesslog_flush();
}

int srv_tick(void *cls, struct http_thread *t)
{
	struct server *s = cls;
	double now = srv_now();
	release_held(s, t, now);
	if (!s->conn_list[http_index(t)] && !s->held[http_index(t)])
		return 0; /* nothing has a deadline: no tick until the next event */
	for (struct conn *c = s->conn_list[http_index(t)]; c; c = c->next) {
		if (c->sent && c->deadline && c->why == COUNT_SEND_DEADLINE)
			c->deadline = c->t_send + s->cfg.send_timeout +
				      (double)*c->sent / (s->cfg.min_send_rate * 1024.0);
		if (c->deadline && now > c->deadline && !c->expired) {
			c->expired = 1;
			metrics_count(s->metrics, c->why);
			shutdown(c->fd, SHUT_RDWR);
		}
	}
	return 1;
}

void srv_answer_raw(struct request *rq, unsigned status, const char *reason, const char *body)
{
	struct conn *c = rq->cn;
	char head[256];
	size_t blen = strlen(body);
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Cache-Control: no-store\r\nContent-Length: %zu\r\n\r\n",
			 status, reason, blen);
	rq->raw = 1;
	rq->status = status;
	rq->bytes = 0;
	if (!c || c->fd < 0 || n < 0 || (size_t)n >= sizeof head)
		return;
	/* A fresh connection's send buffer takes a few hundred bytes at once;
	 * if it does not, the client gets less, and the log says so. */
	struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, blen}};
	ssize_t sent = writev(c->fd, iov, 2);
	if (sent > n)
		rq->bytes = (uint64_t)sent - (uint64_t)n;
	shutdown(c->fd, SHUT_WR);
}

int srv_full(void *cls, struct http_thread *t)
{
	struct server *s = cls;
	struct conn *idle = NULL;
	/* nginx's way (ngx_drain_connections): the connection idle longest,
	 * kept alive between requests or not yet sending one, makes room. One
	 * whose request has begun is never closed for this. */
	for (struct conn *c = s->conn_list[http_index(t)]; c; c = c->next)
		if (!c->pending && !c->expired && (!idle || c->since < idle->since))
			idle = c;
	if (!idle) {
		metrics_count(s->metrics, COUNT_CONN_REFUSED);
		return 0;
	}
	idle->expired = 1;
	metrics_count(s->metrics, COUNT_EVICTED);
	shutdown(idle->fd, SHUT_RDWR);
	return 1;
}

/* What the client really got of rq, now that it ends (see the top). */
static void settle(struct request *rq, enum MHD_RequestTerminationCode why)
{
	struct conn *c = rq->cn;
	int cut = why != MHD_REQUEST_TERMINATED_COMPLETED_OK;
	if (rq->raw) {
		return; /* as srv_answer_raw sent it */
	} else if (rq->status == 0 && library_status) {
		rq->status = library_status;
		cut = 0;
	} else if (c && c->expired) {
		rq->status = 408;
	} else if (atomic_load_explicit(&rq->hung_up, memory_order_relaxed)) {
		rq->status = 499;
		cut = 1; /* what it was sent went nowhere, or part of the way */
	} else if (cut && why == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) {
		rq->status = 408;
	} else if (cut && why != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN) {
		/* Answered or not (a client that closed during or before its
		 * body has none yet): it hung up before the whole answer. */
		rq->status = 499;
	}
	library_status = 0;
	if (cut && rq->bytes) {
		uint64_t now = c ? sock_bytes_acked(c->fd) : SOCK_UNKNOWN;
		uint64_t got = now != SOCK_UNKNOWN && rq->acked0 != SOCK_UNKNOWN && now >= rq->acked0
				       ? now - rq->acked0 : 0;
		if (got < rq->bytes)
			rq->bytes = got;
	}
}

/* A request's end, answered or not: traced, counted, logged, freed (the
 * one place a request is freed). */
static void finish(struct server *s, struct MHD_Connection *conn, struct request *rq)
{
	if (rq->cn)
		rq->cn->pending = NULL;
	if (rq->sending)
		atomic_fetch_sub_explicit(&s->sending, rq->sending, memory_order_relaxed);
	/* A rejected request's span on the HTTP thread already is all of it;
	 * leaving out its async slice halves what a flood of 503s records. */
	if (rq->tr0 && rq->span != &TD_REJECT && trace_on()) {
		static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
		const char *m = "other";
		for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
			if (strcmp(rq->method, methods[i]) == 0)
				m = methods[i];
		uint64_t now = trace_now();
		trace_async(&TD_SENDING, rq->id, rq->tr_respond, now, 0, 0, 0, 0);
		trace_async(&TD_REQUEST, rq->id, rq->tr0, now, TRACE_STR(m),
			    TRACE_STR(route_name(rq->route)), rq->status, (int64_t)rq->bytes);
	}
	double dt = srv_now() - rq->t0;
	metrics_request(s->metrics, rq->route, rq->status, rq->bytes, dt);
	/* Slow is the server's part: from its headers to its answer. A client
	 * that trickles its headers or reads slowly is slow itself, and must
	 * not spend the saves (one a --trace-slow-every). A /debug/ window is
	 * slow by design. */
	if (!rq->window && rq->t_in && rq->t_out >= rq->t_in)
		slowtrace_request(s->slow, rq->id, rq->t_out - rq->t_in);
	if (s->cfg.access_log) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		char who[CLIENT_TEXT_MAX];
		client_key_text(&rq->client, who);
		accesslog_write(STDERR_FILENO, ci ? ci->client_addr : NULL, who, rq->method, rq->uri,
				rq->status, rq->bytes, dt);
	}
	blob_unref(rq->png);
	if (rq->done)
		rq->done(rq); /* the route's own state */
	free(rq->text);
	free(rq);
	atomic_fetch_sub_explicit(&s->active, 1, memory_order_release);
}

static void log_library_reply(struct server *s, struct MHD_Connection *conn, unsigned status)
{
	metrics_request(s->metrics, ROUTE_OTHER, status, 0, 0);
	if (s->cfg.access_log) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		accesslog_write(STDERR_FILENO, ci ? ci->client_addr : NULL, "-", "-", "-", status, 0, 0);
	}
}

void srv_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode why)
{
	struct request *rq = *con_cls;

	if (!rq)
		return;
	settle(rq, why);
	srv_deadline_none(rq);
	if (rq->cn)
		rq->cn->since = srv_now();
	finish(cls, conn, rq);
	*con_cls = NULL;
}

void srv_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
		    enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	struct http_thread *t = http_self();
	int opened = code == MHD_CONNECTION_NOTIFY_STARTED;
	if (opened) {
		struct conn *c = calloc(1, sizeof *c); /* NULL: not tracked */
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (c && t) {
			c->fd = ci ? ci->connect_fd : -1;
			c->since = srv_now();
			c->deadline = c->since + s->cfg.header_timeout;
			c->why = COUNT_HEADER_DEADLINE;
			struct conn **head = &s->conn_list[http_index(t)];
			c->next = *head;
			if (*head)
				(*head)->prev = c;
			*head = c;
		}
		*socket_ctx = c;
	} else if (*socket_ctx) {
		/* A request libmicrohttpd gave up on without completing it (0.9.75:
		 * a query of ~1000 '&' fills the connection's memory pool while
		 * the arguments are parsed; it says 431 in its log, sends nothing
		 * and closes at the timeout): logged and counted as 444, nginx's
		 * "closed without an answer" (408 when its deadline closed it),
		 * and freed, where it used to leak and hold the drain for its
		 * whole length. */
		struct conn *c = *socket_ctx;
		if (c->pending) {
			library_status = 0; /* it sent nothing of what it said */
			if (!c->pending->raw)
				c->pending->status = c->expired ? 408 : 444;
			finish(s, conn, c->pending);
		} else if (library_status) {
			/* The library answered before any request began (a bad
			 * request line, HTTP/0.9, a version it does not speak, a
			 * URI past its buffer): a line with what it said. */
			log_library_reply(s, conn, library_status);
			library_status = 0;
		}
		if (t) {
			if (c->prev)
				c->prev->next = c->next;
			else
				s->conn_list[http_index(t)] = c->next;
			if (c->next)
				c->next->prev = c->prev;
		}
		free(c);
		*socket_ctx = NULL;
	}
	metrics_connection(s->metrics, opened);
	unsigned n = opened ? atomic_fetch_add_explicit(&s->conns, 1, memory_order_relaxed) + 1
			    : atomic_fetch_sub_explicit(&s->conns, 1, memory_order_relaxed) - 1;
	trace_counter(&TD_CONNS, n);
}
