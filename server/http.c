/*
 * http.c - see http.h.
 *
 * Hang-ups of suspended connections: a second epoll of our own per thread
 * (watch_fd) holds their sockets, for EPOLLRDHUP only, so a pipelined
 * request's bytes wake nothing; it is polled beside the daemon's.
 *
 * Each thread's loop: poll(2) on its daemon's epoll descriptor and its own
 * eventfd, for as long as MHD_get_timeout allows (no timeout: as long as
 * it takes), then MHD_run, which handles everything ready without
 * blocking. A request from the life cycle (quiesce, stop) is a flag and a
 * write to the thread's eventfd; the thread acts on it between runs, so a
 * daemon is only ever touched by its own thread.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "server/http.h"
#include "trace/trace.h"

/* A thread blocked in poll(2) for the next event: why it waits, in traces. */
static const struct trace_desc TD_POLL = {"wait: network", "http", {0}, 0};

/* A refused connection, closed once its client has read the 503 (a close
 * with the client's request unread would reset the connection, and the
 * client lose the answer): its request drained until it closes, or
 * LINGER_MS pass. */
#define LINGER_MAX 64
#define LINGER_MS 2000
struct refused {
	int fd;
	long until;
};

struct http_thread {
	struct http *h;
	struct refused linger[LINGER_MAX];
	unsigned nlinger;
	struct MHD_Daemon *d;
	int listen_fd, wake_fd, watch_fd;
	unsigned index, share;
	pthread_t tid;
	int started;
	atomic_int quiesced;
};

struct http {
	atomic_int quiesce, stop;
	int nice;
	int (*tick)(void *cls, struct http_thread *t);
	void (*idle)(void *cls, struct http_thread *t, int last);
	int (*full)(void *cls, struct http_thread *t);
	void (*gone)(void *cls, void *token);
	void *cls;
	unsigned n;
	struct http_thread t[HTTP_THREADS_MAX];
};

static _Thread_local struct http_thread *self;

struct http_thread *http_self(void)
{
	return self;
}

unsigned http_index(const struct http_thread *t)
{
	return t->index;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static void wake(struct http_thread *t)
{
	uint64_t one = 1;
	ssize_t rc = write(t->wake_fd, &one, sizeof one);
	(void)rc; /* an eventfd only fails to count past 2^64 - 2 */
}

int http_watch(struct http_thread *t, struct MHD_Connection *conn, void *token)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci || t->watch_fd < 0)
		return -1;
	/* Level-triggered, one shot: a client that hung up before this is
	 * seen at once; each is said once. */
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = token};
	if (epoll_ctl(t->watch_fd, EPOLL_CTL_ADD, ci->connect_fd, &ev) < 0)
		return -1;
	return ci->connect_fd;
}

void http_unwatch(struct http_thread *t, int fd)
{
	if (fd >= 0)
		epoll_ctl(t->watch_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* At the limit with a client waiting: room made (1), or a fast refusal. */
static int over_limit(struct http_thread *t)
{
	struct http *h = t->h;
	if (h->full && h->full(h->cls, t))
		return 1;
	int fd = accept4(t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return 0;
#define BUSY_BODY "busy: --max-conns connections are open; retry after Retry-After\n"
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
				   "Retry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Length: 64\r\n\r\n" BUSY_BODY;
	_Static_assert(sizeof BUSY_BODY - 1 == 64, "Content-Length above");
	ssize_t rc = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
	(void)rc; /* a fresh socket's buffer takes it; if not, the client sees a close */
	shutdown(fd, SHUT_WR);
	if (t->nlinger < LINGER_MAX)
		t->linger[t->nlinger++] = (struct refused){fd, now_ms() + LINGER_MS};
	else
		close(fd);
	return 0;
}

/* Closes each refused connection whose client has closed, or whose time
 * is up, after reading what it sent. */
static void lingering(struct http_thread *t)
{
	long now = now_ms();
	for (unsigned i = 0; i < t->nlinger;) {
		struct refused *l = &t->linger[i];
		char buf[1024];
		ssize_t n;
		while ((n = recv(l->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || now > l->until) {
			close(l->fd);
			*l = t->linger[--t->nlinger];
		} else {
			i++;
		}
	}
}

/* Whether t's daemon holds its share of connections (it then stops
 * accepting). */
static int at_limit(struct http_thread *t)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return di && di->num_connections >= t->share;
}

/* Says every hang-up of a watched connection. */
static void hangups(struct http_thread *t)
{
	struct epoll_event ev[64];
	int n = epoll_wait(t->watch_fd, ev, 64, 0);
	for (int i = 0; i < n; i++)
		t->h->gone(t->h->cls, ev[i].data.ptr);
}

static void *loop(void *arg)
{
	struct http_thread *t = arg;
	struct http *h = t->h;
	char name[16];

	self = t;
	/* sendfile(2) may raise SIGPIPE: blocked on this thread, as MHD's own
	 * threads do (MHD_OPTION_SIGPIPE_HANDLED_BY_APP below says so), the
	 * write fails with EPIPE instead. */
	sigset_t pipe;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	/* Named for top, gdb and the tracer. nice: see config.c's http-nice. */
	snprintf(name, sizeof name, "http-%u", t->index);
	pthread_setname_np(pthread_self(), name);
	if (h->nice)
		setpriority(PRIO_PROCESS, (id_t)gettid(), getpriority(PRIO_PROCESS, 0) + h->nice);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(t->d, MHD_DAEMON_INFO_EPOLL_FD);
	struct pollfd p[4] = {{.fd = di ? di->epoll_fd : -1, .events = POLLIN},
			      {.fd = t->wake_fd, .events = POLLIN},
			      {.fd = t->watch_fd, .events = POLLIN},
			      {.fd = -1, .events = POLLIN}};
	long next_tick = now_ms() + HTTP_TICK_MS;
	int hurry = 0, ticking = 1;
	while (!atomic_load_explicit(&h->stop, memory_order_acquire)) {
		if (atomic_load_explicit(&h->quiesce, memory_order_acquire) &&
		    !atomic_load_explicit(&t->quiesced, memory_order_relaxed)) {
			/* The socket is ours (closed in http_stop); MHD forgets it. */
			MHD_quiesce_daemon(t->d);
			atomic_store_explicit(&t->quiesced, 1, memory_order_release);
		}
		MHD_UNSIGNED_LONG_LONG ms;
		int timeout = -1;
		if (MHD_get_timeout(t->d, &ms) == MHD_YES)
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		if (h->tick) {
			/* Asleep with nothing to watch until an event: the ticks
			 * start again after it. */
			if (!ticking)
				ticking = 1, next_tick = now_ms() + HTTP_TICK_MS;
			long left = next_tick - now_ms();
			if (left <= 0) {
				ticking = h->tick(h->cls, t);
				next_tick = now_ms() + HTTP_TICK_MS;
				left = HTTP_TICK_MS;
			}
			if (ticking && (timeout < 0 || timeout > left))
				timeout = (int)left;
		}
		/* The listening socket is watched here too, not only through
		 * the daemon's epoll: 0.9.75 takes it out of its epoll at the
		 * connection limit and puts it back only at the start of a later
		 * MHD_run, so a client that came as a connection closed waited
		 * for the next wake-up (up to a tick: 19 of 40 /healthz calls
		 * took 50-250 ms at --max-conns 100 with 150 idle). Readable
		 * below the limit, MHD_run below takes it back and accepts; at
		 * the limit, over_limit makes room or refuses. */
		int quiet = atomic_load_explicit(&t->quiesced, memory_order_relaxed);
		int full = !quiet && at_limit(t);
		p[3].fd = quiet ? -1 : t->listen_fd;
		if (t->nlinger) {
			lingering(t);
			if (t->nlinger && (timeout < 0 || timeout > 50))
				timeout = 50;
		}
		if (hurry) /* room was made: the daemon closes it, then accepts, now */
			timeout = 0;
		hurry = hurry ? hurry - 1 : 0;
		if (h->idle)
			h->idle(h->cls, t, 0);
		uint64_t w0 = timeout ? trace_wait_begin(&TD_POLL) : 0;
		if (timeout)
			trace_wait_sleep(&TD_POLL);
		int ready = poll(p, 4, timeout);
		trace_wait_span(&TD_POLL, w0);
		if (ready > 0) {
			if (p[1].revents & POLLIN) {
				uint64_t n;
				ssize_t rc = read(t->wake_fd, &n, sizeof n);
				(void)rc;
			}
			if (p[2].revents & POLLIN)
				hangups(t);
			if ((p[3].revents & POLLIN) && full)
				hurry = over_limit(t) ? 2 : 0;
		}
		MHD_run(t->d);
	}
	if (h->idle)
		h->idle(h->cls, t, 1);
	return NULL;
}

/* A listening socket for addr; with reuse, SO_REUSEPORT (every thread's
 * socket on the same port). The backlog: 1024, as before. */
static int listener(const struct sockaddr *addr, socklen_t len, int reuse)
{
	int one = 1;
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    (addr->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, addr, len) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
					 : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

int http_start(struct http **out, const struct http_opts *o, unsigned *port, FILE *err)
{
	struct http *h = calloc(1, sizeof *h);
	struct sockaddr_storage ss;
	int rc = -ENOMEM;

	if (!h)
		return rc;
	if (o->threads < 1 || o->threads > HTTP_THREADS_MAX || o->addr_len > sizeof ss) {
		free(h);
		return -EINVAL;
	}
	h->nice = o->nice;
	h->gone = o->gone;
	h->tick = o->tick;
	h->idle = o->idle;
	h->full = o->full;
	h->cls = o->cls;
	memcpy(&ss, o->addr, o->addr_len);
	for (unsigned i = 0; i < o->threads; i++) {
		struct http_thread *t = &h->t[i];
		t->h = h;
		t->index = i;
		t->listen_fd = t->wake_fd = t->watch_fd = -1;
		h->n = i + 1;
		if ((t->listen_fd = listener((struct sockaddr *)&ss, o->addr_len, o->threads > 1)) < 0) {
			rc = t->listen_fd;
			fprintf(err, "mandelweb: cannot listen: %s\n", strerror(-rc));
			goto fail;
		}
		if (i == 0) { /* port 0: the others listen where the first got */
			socklen_t len = sizeof ss;
			getsockname(t->listen_fd, (struct sockaddr *)&ss, &len);
			*port = port_of(&ss);
			set_port(&ss, *port);
		}
		if ((t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
		    (o->gone && (t->watch_fd = epoll_create1(EPOLL_CLOEXEC)) < 0)) {
			rc = -errno;
			goto fail;
		}
		unsigned share = o->max_conns / o->threads + (i < o->max_conns % o->threads);
		t->share = share ? share : 1;
		t->d = MHD_start_daemon(
			MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO |
				(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			0, NULL, NULL, o->handler, o->cls,
			/* first, or MHD prints what comes before it itself */
			MHD_OPTION_EXTERNAL_LOGGER, o->logger, o->cls,
			MHD_OPTION_LISTEN_SOCKET, (MHD_socket)t->listen_fd,
			MHD_OPTION_CONNECTION_LIMIT, t->share,
			MHD_OPTION_CONNECTION_TIMEOUT, o->timeout,
			/* else MHD copies file bodies through pread + send */
			MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
			/* 0: routes.c refuses HTTP/1.1 without Host itself (level
			 * 1's 400 for it sent the status line and headers twice)
			 * and the smuggling shapes (no level closes them). */
			MHD_OPTION_STRICT_FOR_CLIENT, 0,
			MHD_OPTION_URI_LOG_CALLBACK, o->uri_log, o->cls,
			MHD_OPTION_NOTIFY_COMPLETED, o->completed, o->cls,
			MHD_OPTION_NOTIFY_CONNECTION, o->connection, o->cls,
			MHD_OPTION_END);
		if (!t->d) {
			rc = -EINVAL;
			fprintf(err, "mandelweb: libmicrohttpd would not start\n");
			goto fail;
		}
		if ((rc = -pthread_create(&t->tid, NULL, loop, t)) < 0)
			goto fail;
		t->started = 1;
	}
	*out = h;
	return 0;
fail:
	http_stop(h);
	return rc;
}

void http_resume(struct http_thread *t, struct MHD_Connection *conn)
{
	MHD_resume_connection(conn);
	wake(t);
}

static void nap_ms(long ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

void http_quiesce(struct http *h)
{
	atomic_store_explicit(&h->quiesce, 1, memory_order_release);
	for (unsigned i = 0; i < h->n; i++) {
		struct http_thread *t = &h->t[i];
		if (!t->started)
			continue;
		wake(t);
		while (!atomic_load_explicit(&t->quiesced, memory_order_acquire))
			nap_ms(1);
	}
	/* No daemon listens any more: close the sockets now, so that a new
	 * client is refused at once rather than left in the backlog until
	 * the process exits. */
	for (unsigned i = 0; i < h->n; i++) {
		if (h->t[i].started && h->t[i].listen_fd >= 0) {
			close(h->t[i].listen_fd);
			h->t[i].listen_fd = -1;
		}
	}
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	/* Quiesced first: MHD then does not close the listening socket,
	 * which is ours. */
	http_quiesce(h);
	atomic_store_explicit(&h->stop, 1, memory_order_release);
	for (unsigned i = 0; i < h->n; i++) {
		struct http_thread *t = &h->t[i];
		if (t->started) {
			wake(t);
			pthread_join(t->tid, NULL);
		}
		if (t->d) {
			if (!t->started)
				MHD_quiesce_daemon(t->d);
			MHD_stop_daemon(t->d);
		}
		if (t->listen_fd >= 0)
			close(t->listen_fd);
		if (t->wake_fd >= 0)
			close(t->wake_fd);
		if (t->watch_fd >= 0)
			close(t->watch_fd);
		for (unsigned k = 0; k < t->nlinger; k++)
			close(t->linger[k].fd);
	}
	free(h);
}
