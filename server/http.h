/*
 * http.h - the HTTP threads: N libmicrohttpd daemons in external epoll
 * mode, one thread of ours driving each, each on its own SO_REUSEPORT
 * listening socket (the kernel spreads new connections over them, as
 * nginx's reuseport does).
 *
 * Why not libmicrohttpd's own internal epoll thread (or its thread pool):
 * 0.9.75's internal loop drains its epoll with
 *     do n = epoll_wait(fd, events, 128, timeout) while (n == 128)
 * with the same timeout every time, and handles the events only after the
 * loop. When exactly 128 (or 256, ...) connections are ready at once (wrk
 * -c 128 or -c 256 opening every connection together), the last
 * epoll_wait finds nothing left and blocks for the whole timeout: the
 * connections read so far wait, every client waits for them, and no new
 * event comes. Seen as: every one of 256 server sockets ESTABLISHED with a
 * 50-byte request unread (ss -tn) while http-0 sits in epoll_wait, and a
 * trace window that records nothing; 97 requests/s where 200 connections
 * got 15,500. Driving the daemon ourselves, MHD's epoll_wait always runs
 * with a zero timeout (MHD_run), so it never blocks; we block in poll(2)
 * on its epoll descriptor instead, until an event, the daemon's next
 * connection timeout (MHD_get_timeout) or our own wake-up.
 *
 * Thread-safety: http_start, http_quiesce and http_stop are for the
 * server's life cycle (one thread at a time). Each daemon is touched only
 * by its own thread (quiesce too is done there, on request); callbacks run
 * on that thread. http_resume may be called from any thread.
 */
#ifndef MW_SERVER_HTTP_H
#define MW_SERVER_HTTP_H

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#define HTTP_THREADS_MAX 64
#define HTTP_TICK_MS 250

struct http_thread;

struct http_opts {
	const struct sockaddr *addr; /* where to listen; port 0: any free port */
	socklen_t addr_len;
	unsigned threads;            /* 1 .. HTTP_THREADS_MAX */
	int nice;                    /* added to each thread's nice value */
	unsigned max_conns;          /* in all: each daemon takes its share */
	unsigned timeout;            /* idle seconds before a connection is closed */
	MHD_AccessHandlerCallback handler;
	void *(*uri_log)(void *cls, const char *uri, struct MHD_Connection *conn);
	MHD_RequestCompletedCallback completed;
	MHD_NotifyConnectionCallback connection;
	/* A watched connection's client has hung up (http_watch), on the
	 * connection's HTTP thread: token is what http_watch was given. */
	void (*gone)(void *cls, void *token);
	/* Every HTTP_TICK_MS or so on each thread, between runs of its daemon
	 * (the server's deadlines): 1 to be called again, 0 when there is
	 * nothing to watch (no connection): the thread then sleeps with no
	 * tick until its next event, after which the ticks start again.
	 * NULL: none. */
	int (*tick)(void *cls, struct http_thread *t);
	/* On each thread before it waits for events (once a round of its
	 * loop: what the round held back goes out), and with last 1 as it
	 * ends. NULL: none. */
	void (*idle)(void *cls, struct http_thread *t, int last);
	/* A client is waiting to connect to t while its daemon is at its
	 * share of max_conns (libmicrohttpd then leaves the listening socket
	 * alone, and the client would wait in the backlog): 1 when the callee
	 * closed a connection to make room (it is accepted next), 0 to have it
	 * refused at once: accepted, answered 503 with Retry-After, closed. */
	int (*full)(void *cls, struct http_thread *t);
	/* libmicrohttpd's log lines (MHD_OPTION_EXTERNAL_LOGGER) */
	void (*logger)(void *cls, const char *fmt, va_list ap);
	void *cls;                   /* passed to every callback */
};

struct http;

/* Listens and starts the threads (named http-0, http-1, ...). 0 and the
 * port listened on in *port, or -errno with a reason written to err. */
int http_start(struct http **out, const struct http_opts *o, unsigned *port, FILE *err);

/* The HTTP thread calling, or NULL on any other thread: what a request
 * remembers at its start, to resume it later. */
struct http_thread *http_self(void);

/* 0 .. threads-1: which thread t is. */
unsigned http_index(const struct http_thread *t);

/* MHD_resume_connection, then wakes thread t (the one the connection was
 * suspended on) so that it runs its daemon: in external mode a resume is
 * only noticed by the next MHD_run. From any thread. */
void http_resume(struct http_thread *t, struct MHD_Connection *conn);

/* Watches a connection libmicrohttpd no longer polls (suspended): when its
 * client hangs up (EPOLLRDHUP, EPOLLHUP or EPOLLERR: a close, a reset, or
 * a shutdown of its sending side, as nginx's check for a broken
 * connection takes it) the options' gone(cls, token) runs on t, once.
 * Returns the socket watched (for http_unwatch), or -1 when it cannot
 * be (nothing will be said; the request runs to its end as before). On
 * the HTTP thread t only. */
int http_watch(struct http_thread *t, struct MHD_Connection *conn, void *token);

/* Stops watching fd (from http_watch) on t; after it returns, gone will
 * not be called for it (unless it is running now, on t: a caller that is
 * not t must own what the token points to until its resume is handled,
 * which is on t, after any such call). From any thread; -1 is ignored. */
void http_unwatch(struct http_thread *t, int fd);

/* Stops accepting new connections (every daemon quiesced by its own
 * thread) and closes the listening sockets, so a new client is refused at
 * once; returns when all have. Connections already open go on. */
void http_quiesce(struct http *h);

/* Stops the threads, the daemons (closing every connection) and the
 * listening sockets; frees h. No connection may be suspended. */
void http_stop(struct http *h);

#endif
