/* test_hostile.c - end to end, ways one client could hold others off that
 * a hostile probe found: a body trickled a byte at a time, a client
 * waiting at --max-conns, a client that closes before its answer, a
 * half-close. The real bin/mandelweb on a free loopback port, raw
 * sockets. Suite "hostile". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/harness.h"

static struct mw srv;

static void start(const char *const *args)
{
	cr_assert(eq(int, mw_start(&srv, args), 0), "mandelweb did not start");
}

/* Stops the server (exit 0 expected) and returns its log (free it). */
static char *stop_log(void)
{
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0), "mandelweb exit status");
	return mw_log(&srv);
}

/* Reads what fd gives until the server closes it (*closed, where not
 * NULL, says it did) or limit seconds pass, NUL-ended in out: how many
 * bytes. */
static long read_until_closed(int fd, char *out, size_t cap, double limit, int *closed)
{
	long got = 0;
	double t0 = mw_now();
	if (closed)
		*closed = 0;
	while (mw_now() - t0 < limit) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 20) <= 0)
			continue;
		ssize_t n = read(fd, out + got, cap - 1 - (size_t)got);
		if (n <= 0) {
			if (closed)
				*closed = 1;
			break;
		}
		got += n;
	}
	out[got] = '\0';
	return got;
}

/* Sends req on a new connection; reads what comes until the server
 * closes or limit seconds pass: the bytes in out, *closed, *seconds. */
static long exchange(const char *req, size_t len, char *out, size_t cap, double limit, int *closed,
		     double *seconds)
{
	int fd = mw_connect(&srv, 0);
	cr_assert(ge(int, fd, 0));
	double t0 = mw_now();
	cr_assert(eq(long, (long)write(fd, req, len), (long)len));
	long got = read_until_closed(fd, out, cap, limit, closed);
	*seconds = mw_now() - t0;
	close(fd);
	return got;
}

/* A POST to /mandelbrot can only be a 405: it is answered before any of
 * its body is read, with no 100 Continue, and closed. Four clients that
 * trickle bodies a byte at a time at --max-conns 4 used to hold every
 * connection (and a new client got 503s for 9 s); now each is answered at
 * once. A GET with a body: 413, closed. */
Test(hostile, a_body_no_route_takes_is_never_read, .timeout = 60)
{
	char out[4096];
	int closed;
	double dt;
	start((const char *const[]){"--max-conns", "4", "--timeout", "3", "--header-timeout", "2", NULL});
	int trickle[4];
	for (int i = 0; i < 4; i++) {
		trickle[i] = mw_connect(&srv, 0);
		cr_assert(ge(int, trickle[i], 0));
		const char *req = "POST /mandelbrot HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nx";
		cr_assert(eq(long, (long)write(trickle[i], req, strlen(req)), (long)strlen(req)));
	}
	for (int i = 0; i < 4; i++) {
		struct pollfd p = {.fd = trickle[i], .events = POLLIN};
		cr_expect(eq(int, poll(&p, 1, 2000), 1), "trickler %d: answered", i);
		long n = read(trickle[i], out, sizeof out - 1);
		out[n > 0 ? n : 0] = '\0';
		cr_expect(eq(int, strncmp(out, "HTTP/1.1 405", 12), 0), "%s", out);
		close(trickle[i]);
	}
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/healthz", &r), 0));
	cr_expect(eq(long, r.status, 200), "a new client after the tricklers");
	mw_resp_free(&r);

	const char *expect = "POST /mandelbrot HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
			     "Expect: 100-continue\r\n\r\n";
	exchange(expect, strlen(expect), out, sizeof out, 3, &closed, &dt);
	cr_expect(eq(int, strncmp(out, "HTTP/1.1 405", 12), 0), "%s", out);
	cr_expect(eq(ptr, strstr(out, "100 Continue"), NULL), "%s", out);
	cr_expect(eq(int, closed, 1));
	cr_expect(lt(dbl, dt, 1.0), "%.3f s", dt);

	const char *get = "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
			  "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
	exchange(get, strlen(get), out, sizeof out, 3, &closed, &dt);
	cr_expect(eq(int, strncmp(out, "HTTP/1.1 413", 12), 0), "%s", out);
	cr_expect(eq(ptr, strstr(out + 12, "HTTP/1.1"), NULL), "nothing after it is read: %s", out);
	cr_expect(eq(int, closed, 1));
	char *log = stop_log();
	cr_expect(eq(int, !strstr(log, " POST /mandelbrot 405 "), 0), "%s", log);
	cr_expect(eq(int, !strstr(log, " GET /healthz 413 "), 0), "%s", log);
	free(log);
}

/* At --max-conns, a client waiting to connect is let in (an idle
 * connection closed for it) at once: libmicrohttpd 0.9.75 put its
 * listening socket back in its epoll only at a later run, so about one
 * call in three waited 50-250 ms for the next wake-up. */
Test(hostile, at_max_conns_a_waiting_client_is_let_in_at_once, .timeout = 60)
{
	start((const char *const[]){"--max-conns", "20", "--access-log", "off", NULL});
	int idle[30];
	for (int i = 0; i < 30; i++)
		cr_assert(ge(int, idle[i] = mw_connect(&srv, 0), 0));
	usleep(500 * 1000);
	int slow = 0;
	double worst = 0;
	for (int i = 0; i < 40; i++) {
		char out[1024];
		int closed;
		double dt;
		const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
		exchange(req, strlen(req), out, sizeof out, 3, &closed, &dt);
		cr_expect(eq(int, strncmp(out, "HTTP/1.1 200", 12), 0), "%s", out);
		slow += dt > 0.040;
		worst = dt > worst ? dt : worst;
		usleep(20 * 1000);
	}
	cr_expect(le(int, slow, 2), "%d of 40 took over 40 ms (worst %.0f ms)", slow, worst * 1000);
	for (int i = 0; i < 30; i++)
		close(idle[i]);
	free(stop_log());
}

/* A client that closes before its answer is logged 499 (it used to be
 * status 0, counted as "other"): mid-headers, mid-body, or mid-render. */
Test(hostile, a_client_that_closes_before_its_answer_is_499, .timeout = 60)
{
	start((const char *const[]){"--workers", "1", "--kernel", "scalar", "--cache-mb", "0",
				    "--max-wait", "600", NULL});
	const char *parts[] = {
		"GET /healthz?a HTTP/1.1\r\nHost: t\r\n",
		"GET /mandelbrot?w=64&h=62&iter=1000000&cx=0.25&cy=0.000000000001&zoom=1e13 HTTP/1.1\r\nHost: t\r\n\r\n",
	};
	for (int i = 0; i < 2; i++) {
		int fd = mw_connect(&srv, 0);
		cr_assert(ge(int, fd, 0));
		cr_assert(eq(long, (long)write(fd, parts[i], strlen(parts[i])), (long)strlen(parts[i])));
		usleep(300 * 1000);
		close(fd);
	}
	for (int i = 0; i < 100 && mw_scrape(&srv, "mandelweb_renders_cancelled_total") < 1; i++)
		usleep(20 * 1000);
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
	cr_expect(eq(dbl, mw_metric(r.body, "mandelweb_http_requests_total{route=\"other\",status=\"other\"}"), -1),
		  "%s", r.body);
	cr_expect(eq(dbl, mw_metric(r.body, "mandelweb_http_requests_total{route=\"/mandelbrot\",status=\"499\"}"), 1));
	mw_resp_free(&r);
	char *log = stop_log();
	cr_expect(eq(int, !strstr(log, " /healthz?a 499 0 "), 0), "%s", log);
	cr_expect(eq(int, !strstr(log, "zoom=1e13 499 0 "), 0), "%s", log);
	free(log);
}

/* A client that shuts down its sending side after its request (nc -N,
 * some proxies) is taken as gone, as nginx takes it: its render is
 * cancelled and the connection closed with no answer (it used to read a
 * "HTTP/1.1 499 Non-Standard Status" that nginx never sends); logged 499. */
Test(hostile, a_half_close_is_a_hang_up_with_no_answer, .timeout = 60)
{
	start((const char *const[]){"--workers", "1", "--kernel", "scalar", "--cache-mb", "0",
				    "--max-wait", "600", NULL});
	int fd = mw_connect(&srv, 0);
	cr_assert(ge(int, fd, 0));
	const char *req = "GET /mandelbrot?w=64&h=62&iter=1000000&cx=0.25&cy=0.000000000001&zoom=1e13 "
			  "HTTP/1.1\r\nHost: t\r\n\r\n";
	cr_assert(eq(long, (long)write(fd, req, strlen(req)), (long)strlen(req)));
	usleep(300 * 1000);
	shutdown(fd, SHUT_WR);
	char out[1024];
	double t0 = mw_now();
	long got = read_until_closed(fd, out, sizeof out, 10, NULL);
	cr_expect(eq(long, got, 0), "no answer: '%s'", out);
	cr_expect(lt(dbl, mw_now() - t0, 5), "closed at once");
	close(fd);
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_renders_cancelled_total"), 1));
	char *log = stop_log();
	cr_expect(eq(int, !strstr(log, "zoom=1e13 499 0 "), 0), "%s", log);
	free(log);
}

/* A /debug/ window whose client half-closes after its request is a hang-up
 * like any: nothing is sent (not a window cut to nothing under a 200), the
 * log says 499 with the bytes sent, 0. */
Test(hostile, a_debug_window_half_closed_gets_nothing_and_is_logged_499, .timeout = 60)
{
	start(NULL);
	static const char *const paths[] = {"/debug/trace?seconds=3", "/debug/pprof/profile?seconds=3",
					    "/debug/pprof/block?seconds=3"};
	for (int i = 0; i < 3; i++) {
		int fd = mw_connect(&srv, 0);
		cr_assert(ge(int, fd, 0));
		char req[128], out[1024];
		snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
		cr_assert(eq(long, (long)write(fd, req, strlen(req)), (long)strlen(req)));
		shutdown(fd, SHUT_WR);
		double t0 = mw_now();
		long got = read_until_closed(fd, out, sizeof out, 10, NULL);
		close(fd);
		cr_expect(eq(long, got, 0), "%s: no answer: '%s'", paths[i], out);
		cr_expect(lt(dbl, mw_now() - t0, 2), "%s: closed at once", paths[i]);
	}
	char *log = stop_log();
	cr_expect(not(eq(ptr, strstr(log, "GET /debug/trace?seconds=3 499 0 "), NULL)), "%s", log);
	cr_expect(not(eq(ptr, strstr(log, "GET /debug/pprof/profile?seconds=3 499 0 "), NULL)), "%s", log);
	cr_expect(not(eq(ptr, strstr(log, "GET /debug/pprof/block?seconds=3 499 0 "), NULL)), "%s", log);
	free(log);
}

/* A profile whose client hung up frees the profiler at once: the next one
 * is served, not told to come back when the abandoned window would have
 * ended. */
static void abandoned(const char *route)
{
	int fd = mw_connect(&srv, 0);
	cr_assert(ge(int, fd, 0));
	char req[128], again[64];
	snprintf(req, sizeof req, "GET %s?seconds=20 HTTP/1.1\r\nHost: t\r\n\r\n", route);
	snprintf(again, sizeof again, "%s?seconds=1", route);
	cr_assert(eq(long, (long)write(fd, req, strlen(req)), (long)strlen(req)));
	usleep(300 * 1000);
	close(fd);
	double t0 = mw_now();
	struct mw_resp r;
	long status = 0;
	while (mw_now() - t0 < 3) {
		cr_assert(eq(int, mw_get(&srv, again, &r), 0));
		status = r.status;
		if (status == 409) /* the moment between the hang-up and its end */
			cr_expect(eq(str, r.retry_after, "1"), "Retry-After %s", r.retry_after);
		mw_resp_free(&r);
		if (status != 409)
			break;
		usleep(20 * 1000);
	}
	cr_expect(eq(long, status, 200), "%s", route);
	cr_expect(lt(dbl, mw_now() - t0, 2.5), "%s: served within its own second", route);
}

Test(hostile, an_abandoned_profile_frees_the_profiler_at_once, .timeout = 60)
{
	start(NULL);
	abandoned("/debug/pprof/profile");
	abandoned("/debug/pprof/block");
	free(stop_log());
}
