/* test_robust.c - end to end, the hostile clients of issue 17: a client
 * that hangs up on a render, slowloris, a slow reader, SIGTERM with renders
 * in flight, floods of tiny pictures, a small fd limit, the library's own
 * replies. The real bin/mandelweb on a free loopback port. Suite "robust". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness.h"

static struct mw srv;

static void start(const char *const *args)
{
	cr_assert(eq(int, mw_start(&srv, args), 0), "mandelweb did not start");
}

static void stop_ok(void)
{
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0), "mandelweb exit status");
}

/* A picture of 3.97e9 pixel-iterations, within the default --max-cost,
 * that takes seconds on one worker with the scalar kernel. */
#define DEEP "/mandelbrot?w=64&h=62&iter=1000000&cx=0.25&cy=0.000000000001&zoom=1e13"
#define SLOW "--workers", "1", "--kernel", "scalar", "--cache-mb", "0", "--max-wait", "600"

/* Opens a connection and sends a GET of path on it (left open). */
static int send_get(const char *path)
{
	char req[512];
	int fd = mw_connect(&srv, 0);
	cr_assert(ge(int, fd, 0));
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
	cr_assert(eq(long, (long)write(fd, req, (size_t)n), (long)n));
	return fd;
}

/* Waits up to limit seconds for a sample to reach at least v; its last value. */
static double wait_metric(const char *sample, double v, double limit)
{
	double t0 = mw_now(), x = -1;
	while (mw_now() - t0 < limit) {
		if ((x = mw_scrape(&srv, sample)) >= v)
			break;
		usleep(20000);
	}
	return x;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* GET path answers status. */
static void expect_get(const char *path, long status)
{
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, path, &r), 0), "%s", path);
	cr_expect(eq(long, r.status, status), "%s", path);
	mw_resp_free(&r);
}

/* Stops the server (exit 0 expected), then expects needle n times in its log. */
static void stop_expect_log(const char *needle, int n)
{
	stop_ok();
	char *log = mw_log(&srv);
	cr_expect(eq(int, count(log, needle), n), "'%s' in:\n%s", needle, log);
	free(log);
}

/* Whether the server has closed fd (read gives 0 or an error), reading
 * whatever it sent first; waits up to limit seconds. */
static int closed_within(int fd, double limit)
{
	double t0 = mw_now();
	char buf[65536];
	while (mw_now() - t0 < limit) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) > 0) {
			ssize_t n = read(fd, buf, sizeof buf);
			if (n <= 0)
				return 1;
		}
	}
	return 0;
}

Test(robust, a_render_whose_client_hangs_up_is_cancelled, .timeout = 120)
{
	start((const char *const[]){SLOW, NULL});
	int fd = send_get(DEEP);
	cr_assert(eq(dbl, wait_metric("mandelweb_requests_in_flight", 1, 30), 1));
	usleep(200000);
	close(fd);
	double t0 = mw_now();
	cr_expect(eq(dbl, wait_metric("mandelweb_renders_cancelled_total", 1, 20), 1));
	double dt = mw_now() - t0;
	cr_expect(lt(dbl, dt, 5.0), "cancelled %.3f s after the hang-up", dt);
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_requests_in_flight"), 0));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_admission_backlog"), 0));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_http_requests_total{route=\"/mandelbrot\",status=\"499\"}"), 1));
	/* The worker is free again: the next picture is not refused. */
	expect_get("/mandelbrot?w=32&h=32", 200);
	stop_expect_log("zoom=1e13 499 0 ", 1);
}

/* Single flight: the render goes on while anyone waits for it, and stops
 * when the leader and its follower have both gone. */
Test(robust, a_shared_render_is_cancelled_when_its_last_client_goes, .timeout = 120)
{
	start((const char *const[]){SLOW, NULL});
	int leader = send_get(DEEP);
	cr_assert(eq(dbl, wait_metric("mandelweb_requests_in_flight", 1, 30), 1));
	int follower = send_get(DEEP);
	cr_assert(eq(dbl, wait_metric("mandelweb_singleflight_shared_total", 1, 10), 1));
	close(leader);
	usleep(500000);
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_renders_cancelled_total"), 0),
		  "cancelled while a follower still waited");
	close(follower);
	cr_expect(eq(dbl, wait_metric("mandelweb_renders_cancelled_total", 1, 20), 1));
	cr_expect(eq(dbl, wait_metric("mandelweb_http_requests_total{route=\"/mandelbrot\",status=\"499\"}", 2, 5), 2));
	/* A new request for it leads a new render, not the abandoned one. */
	int again = send_get(DEEP);
	cr_expect(eq(dbl, wait_metric("mandelweb_requests_in_flight", 1, 30), 1));
	close(again);
	cr_expect(eq(dbl, wait_metric("mandelweb_renders_cancelled_total", 2, 20), 2));
	stop_ok();
}

/* px and workers modes cost a job and a lone-pixel kernel call a pixel:
 * --max-cost charges it, so no mode is a way around the budget. */
Test(robust, px_and_workers_modes_are_charged_per_pixel, .timeout = 60)
{
	struct mw_resp r;
	start((const char *const[]){"--max-cost", "25000000", NULL});
	static const char *const modes[] = {"px", "workers"};
	for (int i = 0; i < 2; i++) {
		char path[128];
		snprintf(path, sizeof path, "/mandelbrot?w=100&h=100&iter=1000&mode=%s", modes[i]);
		cr_assert(eq(int, mw_get(&srv, path, &r), 0));
		cr_expect(eq(long, r.status, 400), "%s", path);
		cr_expect(not(eq(ptr, strstr(r.body ? r.body : "", "costs w*h*(iter*"), NULL)), "%s",
			  r.body);
		mw_resp_free(&r);
	}
	expect_get("/mandelbrot?w=100&h=100&iter=1000&mode=auto", 200);
	expect_get("/mandelbrot?w=100&h=100&iter=1000&mode=row", 200);
	stop_ok();
}

/* Slowloris: a header line every 250 ms keeps libmicrohttpd's idle
 * timeout from ever firing; the header deadline closes it. */
Test(robust, slowloris_is_closed_at_the_header_deadline, .timeout = 60)
{
	start((const char *const[]){"--header-timeout", "1", NULL});
	int fd = mw_connect(&srv, 0);
	cr_assert(ge(int, fd, 0));
	const char *line = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
	cr_assert(eq(long, (long)write(fd, line, strlen(line)), (long)strlen(line)));
	double t0 = mw_now();
	int closed = 0;
	signal(SIGPIPE, SIG_IGN);
	while (!closed && mw_now() - t0 < 10) {
		if (write(fd, "X-Slow: 1\r\n", 11) != 11 || closed_within(fd, 0.25))
			closed = 1;
	}
	double dt = mw_now() - t0;
	close(fd);
	cr_expect(eq(int, closed, 1));
	cr_expect(lt(dbl, dt, 3.0), "closed after %.2f s", dt);
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_header_deadline_total"), 1));
	/* A request line never finished: closed too. */
	fd = mw_connect(&srv, 0);
	cr_assert(eq(long, (long)write(fd, "GET /hea", 8), 8L));
	cr_expect(eq(int, closed_within(fd, 3.0), 1));
	close(fd);
	cr_expect(eq(dbl, wait_metric("mandelweb_header_deadline_total", 2, 2), 2));
	expect_get("/healthz", 200);
	stop_expect_log("/healthz 408 0 ", 1);
}

/* A client that reads its answer slower than --min-send-rate is closed at
 * the send deadline, logged 408 with the bytes it had acknowledged. */
Test(robust, a_slow_reader_is_closed_at_the_send_deadline, .timeout = 120)
{
	start((const char *const[]){"--send-timeout", "1", "--min-send-rate", "1048576", "--cache-mb",
				    "0", NULL});
	int fd = mw_connect(&srv, 4096);
	cr_assert(ge(int, fd, 0));
	const char *req = "GET /mandelbrot?w=4096&h=2048&iter=64&colour=smooth HTTP/1.1\r\nHost: t\r\n\r\n";
	cr_assert(eq(long, (long)write(fd, req, strlen(req)), (long)strlen(req)));
	cr_expect(eq(dbl, wait_metric("mandelweb_send_deadline_total", 1, 60), 1));
	cr_expect(eq(int, closed_within(fd, 5.0), 1));
	close(fd);
	cr_expect(eq(dbl, wait_metric("mandelweb_http_requests_total{route=\"/mandelbrot\",status=\"408\"}", 1, 5), 1));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_sending_bytes"), 0));
	stop_ok();
}

struct got {
	struct mw_resp r;
	int rc;
};

static void *get_deep(void *arg)
{
	struct got *g = arg;
	g->rc = mw_get(&srv, DEEP, &g->r);
	return NULL;
}

/* SIGTERM with a render of seconds in flight and --drain 1: the render is
 * cancelled at the deadline, its client told 503, and the process is gone
 * within the drain and a second. */
Test(robust, sigterm_cancels_renders_at_the_drain_deadline, .timeout = 120)
{
	pthread_t t;
	struct got g;
	start((const char *const[]){SLOW, "--drain", "1", NULL});
	pthread_create(&t, NULL, get_deep, &g);
	cr_assert(eq(dbl, wait_metric("mandelweb_requests_in_flight", 1, 30), 1));
	double t0 = mw_now();
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	double dt = mw_now() - t0;
	cr_expect(lt(dbl, dt, 2.5), "exited %.2f s after SIGTERM with --drain 1", dt);
	pthread_join(t, NULL);
	cr_expect(eq(int, g.rc, 0));
	cr_expect(eq(long, g.r.status, 503));
	mw_resp_free(&g.r);
}

static int open_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	return mw_dir_entries(path);
}

/* Thousands of distinct 1x1 pictures: the cache holds what its bound
 * says in bytes, and no fd (it held 19,996 memfds for 52 MB). */
Test(robust, tiny_pictures_stay_within_the_cache_bound, .timeout = 120)
{
	start((const char *const[]){"--cache-mb", "1", "--access-log", "off", NULL});
	CURL *c = curl_easy_init();
	for (int i = 0; i < 3000; i++) {
		char path[96];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?w=1&h=1&zoom=1.%06d", i);
		cr_assert(eq(int, mw_request_on(c, &srv, NULL, path, NULL, &r), 0));
		cr_assert(eq(long, r.status, 200));
		mw_resp_free(&r);
	}
	curl_easy_cleanup(c);
	cr_expect(le(dbl, mw_scrape(&srv, "mandelweb_cache_bytes"), 1048576));
	double entries = mw_scrape(&srv, "mandelweb_cache_entries");
	cr_expect(lt(dbl, entries, 1000));
	cr_expect(lt(dbl, 100, entries));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_memfds"), 0));
	cr_expect(lt(int, open_fds(srv.pid), 32));
	stop_ok();
}

/* ulimit -n 64: connections are limited to what the fds allow (said at
 * start), memfds to what is left, and fresh clients are still answered
 * after the cache has filled with pictures big enough to be sealed. */
Test(robust, a_small_fd_limit_is_shared_out, .timeout = 120)
{
	struct rlimit rl = {.rlim_cur = 64, .rlim_max = 64};
	cr_assert(eq(int, setrlimit(RLIMIT_NOFILE, &rl), 0));
	start((const char *const[]){"--access-log", "off", NULL});
	for (int i = 0; i < 40; i++) {
		char path[96];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?w=512&h=512&colour=smooth&zoom=1.%03d", i);
		cr_assert(eq(int, mw_get(&srv, path, &r), 0));
		cr_assert(eq(long, r.status, 200), "%s", path);
		cr_expect(ge(sz, r.len, (size_t)65536), "%zu bytes: not sealed, the test proves nothing", r.len);
		mw_resp_free(&r);
	}
	double memfds = mw_scrape(&srv, "mandelweb_memfds");
	cr_expect(lt(dbl, 0, memfds));
	cr_expect(le(dbl, memfds, 16));
	cr_expect(le(int, open_fds(srv.pid), 64));
	for (int i = 0; i < 5; i++)
		expect_get("/healthz", 200);
	stop_expect_log("64 file descriptors (ulimit -n): --max-conns 8, not 4096", 1);
}

/* What libmicrohttpd answers itself is logged and counted with its status;
 * a query of 1000 parameters, which it would leave unanswered, is a 414. */
Test(robust, the_librarys_own_replies_are_logged_and_a_huge_query_answered, .timeout = 60)
{
	char out[4096];
	int closed;
	start(NULL);
	const char *v2 = "GET / HTTP/2.0\r\nHost: t\r\n\r\n";
	cr_assert(lt(long, 0L, mw_raw(&srv, v2, strlen(v2), out, sizeof out, &closed)));
	cr_expect(eq(int, strncmp(out, "HTTP/1.1 505", 12), 0), "%s", out);
	char big[2048];
	int n = snprintf(big, sizeof big, "GET /mandelbrot?w=8&h=8");
	memset(big + n, '&', 1000);
	n += 1000;
	n += snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\nHost: t\r\n\r\n");
	cr_assert(lt(long, 0L, mw_raw(&srv, big, (size_t)n, out, sizeof out, &closed)));
	cr_expect(eq(int, strncmp(out, "HTTP/1.1 414", 12), 0), "%s", out);
	cr_expect(not(eq(ptr, strstr(out, "too many query parameters"), NULL)), "%s", out);
	cr_expect(eq(int, closed, 1));
	cr_expect(eq(dbl, wait_metric("mandelweb_http_requests_total{route=\"other\",status=\"505\"}", 1, 5), 1));
	cr_expect(eq(dbl, wait_metric("mandelweb_http_requests_total{route=\"other\",status=\"414\"}", 1, 5), 1));
	cr_expect(ge(dbl, mw_scrape(&srv, "mandelweb_library_replies_total"), 1));
	stop_ok();
	char *log = mw_log(&srv);
	cr_expect(eq(int, count(log, " - - 505 0 "), 1), "%s", log);
	cr_expect(eq(int, count(log, "&&& 414 64 "), 1), "%s", log);
	free(log);
}

/* HTTP/1.1 without Host: one 400, once (libmicrohttpd's own sent its
 * status line and headers twice), and the connection closed. */
Test(robust, http11_without_host_is_one_400, .timeout = 60)
{
	char out[4096];
	int closed;
	start(NULL);
	const char *req = "GET /healthz HTTP/1.1\r\n\r\n";
	cr_assert(lt(long, 0L, mw_raw(&srv, req, strlen(req), out, sizeof out, &closed)));
	cr_expect(eq(int, strncmp(out, "HTTP/1.1 400", 12), 0), "%s", out);
	cr_expect(eq(int, count(out, "\r\nContent-Length"), 1), "%s", out);
	cr_expect(not(eq(ptr, strstr(out, "needs a Host header"), NULL)), "%s", out);
	cr_expect(eq(int, closed, 1));
	const char *v10 = "GET /healthz HTTP/1.0\r\n\r\n"; /* 1.0 needs none */
	cr_assert(lt(long, 0L, mw_raw(&srv, v10, strlen(v10), out, sizeof out, &closed)));
	cr_expect(eq(int, strncmp(out, "HTTP/1.0 200", 12) == 0 || strncmp(out, "HTTP/1.1 200", 12) == 0, 1), "%s", out);
	stop_ok();
}

/* At --max-conns a new client is let in by closing the connection idle
 * longest, or, when every one has a request under way, refused at once
 * with a 503: never left waiting in the backlog (it waited for the idle
 * ones' timeout). */
Test(robust, at_max_conns_a_new_client_is_served_or_refused_at_once, .timeout = 60)
{
	struct mw_resp r;
	int idle[4], busy[4];
	start((const char *const[]){"--max-conns", "4", NULL});
	for (int i = 0; i < 4; i++)
		cr_assert(ge(int, idle[i] = mw_connect(&srv, 0), 0));
	usleep(200000);
	double t0 = mw_now();
	cr_assert(eq(int, mw_get(&srv, "/healthz", &r), 0));
	cr_expect(eq(long, r.status, 200));
	cr_expect(lt(dbl, mw_now() - t0, 2.0), "%.2f s", mw_now() - t0);
	mw_resp_free(&r);
	for (int i = 0; i < 4; i++)
		close(idle[i]);
	usleep(200000);
	for (int i = 0; i < 4; i++) {
		busy[i] = mw_connect(&srv, 0);
		cr_assert(ge(int, busy[i], 0));
		const char *part = "GET /healthz HTTP/1.1\r\nHost: t\r\n"; /* headers under way */
		cr_assert(eq(long, (long)write(busy[i], part, strlen(part)), (long)strlen(part)));
	}
	usleep(300000);
	t0 = mw_now();
	cr_assert(eq(int, mw_get(&srv, "/healthz", &r), 0));
	cr_expect(eq(long, r.status, 503));
	cr_expect(not(eq(ptr, strstr(r.body ? r.body : "", "--max-conns"), NULL)));
	cr_expect(eq(str, r.retry_after, "1"));
	cr_expect(lt(dbl, mw_now() - t0, 2.0), "%.2f s", mw_now() - t0);
	mw_resp_free(&r);
	for (int i = 0; i < 4; i++)
		close(busy[i]);
	usleep(200000);
	cr_expect(ge(dbl, mw_scrape(&srv, "mandelweb_connections_evicted_total"), 1));
	cr_expect(ge(dbl, mw_scrape(&srv, "mandelweb_connections_refused_total"), 1));
	stop_ok();
}

/* A client that arms a 30 s trace window and hangs up ends the window:
 * the next one gets the tracer at once, not a 409 for 30 s. */
Test(robust, a_trace_window_nobody_waits_for_ends_at_once, .timeout = 60)
{
	struct mw_resp r;
	start(NULL);
	int fd = send_get("/debug/trace?seconds=30");
	cr_assert(eq(dbl, wait_metric("mandelweb_trace_capture", 1, 10), 1));
	close(fd);
	double t0 = mw_now();
	long st = 0;
	while (mw_now() - t0 < 10) {
		cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.01", &r), 0));
		st = r.status;
		mw_resp_free(&r);
		if (st == 200)
			break;
		usleep(50000);
	}
	cr_expect(eq(long, st, 200));
	cr_expect(lt(dbl, mw_now() - t0, 3.0), "%.2f s", mw_now() - t0);
	stop_ok();
}

/* The process's memory: its resident set plus every memfd it holds
 * (unmapped shmem is in neither VmRSS nor the heap; mapped pages counted
 * twice, which only errs high). */
static uint64_t memory_of(pid_t pid)
{
	char path[64], line[256];
	uint64_t rss = 0, shm = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			rss = strtoull(line + 6, NULL, 10) * 1024;
	fclose(f);
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		char fd[320], target[256];
		struct stat st;
		snprintf(fd, sizeof fd, "%s/%s", path, e->d_name);
		ssize_t n = readlink(fd, target, sizeof target - 1);
		if (n > 0 && (target[n] = '\0', strstr(target, "memfd:")) && stat(fd, &st) == 0)
			shm += (uint64_t)st.st_size;
	}
	if (d)
		closedir(d);
	return rss + shm;
}

struct flood {
	int id, ok, busy;
	volatile int *stop;
};

static void *flood_main(void *arg)
{
	struct flood *fl = arg;
	CURL *c = curl_easy_init();
	for (int i = 0; !*fl->stop; i++) {
		char path[128];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?w=1024&h=%d&colour=smooth&iter=200&zoom=1.%d%04d",
			 512 + (i % 4) * 128, fl->id, i);
		if (mw_request_on(c, &srv, NULL, path, NULL, &r) == 0)
			r.status == 200 ? fl->ok++ : fl->busy++;
		mw_resp_free(&r);
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* Under a flood of distinct big pictures and a crowd of clients that do
 * not read theirs, the process stays under the ceiling its flags give
 * (config_memory_ceiling, docs/service.md's formula, in /metrics), sampled
 * every 20 ms. Sanitizer builds' shadow memory is no part of it: skipped. */
Test(robust, memory_stays_under_the_ceiling_under_floods, .timeout = 180)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	cr_skip_test("sanitizer builds hold shadow memory the formula does not count");
#endif
	volatile int stop = 0;
	pthread_t t[4];
	struct flood fl[4];
	int slow[12]; /* each answer ~6 MB: more than the socket buffers hold */
	start((const char *const[]){"--cache-mb", "8", "--max-render-mb", "64", "--max-send-mb", "16",
				    "--max-conns", "64", "--trace-ring", "1024", "--access-log", "off",
				    "--send-timeout", "30", "--min-send-rate", "1", NULL});
	double ceiling = mw_scrape(&srv, "mandelweb_memory_ceiling_bytes");
	cr_assert(lt(dbl, 0, ceiling));
	for (int i = 0; i < 12; i++) {
		char req[160];
		slow[i] = mw_connect(&srv, 4096);
		cr_assert(ge(int, slow[i], 0));
		int n = snprintf(req, sizeof req,
				 "GET /mandelbrot?w=4096&h=3072&colour=smooth&iter=50&cx=-0.%02d HTTP/1.1\r\nHost: t\r\n\r\n", i);
		cr_assert(eq(long, (long)write(slow[i], req, (size_t)n), (long)n));
	}
	for (int i = 0; i < 4; i++) {
		fl[i] = (struct flood){.id = i, .stop = &stop};
		pthread_create(&t[i], NULL, flood_main, &fl[i]);
	}
	uint64_t peak = 0;
	double t0 = mw_now();
	while (mw_now() - t0 < 6) {
		uint64_t m = memory_of(srv.pid);
		if (m > peak)
			peak = m;
		usleep(20000);
	}
	stop = 1;
	int ok = 0, busy = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ok += fl[i].ok;
		busy += fl[i].busy;
	}
	double sending = mw_scrape(&srv, "mandelweb_sending_bytes");
	for (int i = 0; i < 12; i++)
		close(slow[i]);
	cr_expect(lt(int, 0, ok));
	cr_expect(lt(dbl, 0, sending), "the slow readers hold answers: the test proves something");
	cr_expect(le(dbl, (double)peak, ceiling), "peak %.1f MiB, ceiling %.1f MiB (%d answered, %d refused)",
		  peak / 1048576.0, ceiling / 1048576.0, ok, busy);
	fprintf(stderr, "memory: peak %.1f MiB of a %.1f MiB ceiling; %d pictures, %d refused, %.1f MiB being sent (%g)\n",
		peak / 1048576.0, ceiling / 1048576.0, ok, busy, sending / 1048576.0, sending);
	stop_ok();
}

/* A streamed trace is logged with the bytes sent (it was logged as 0). */
Test(robust, a_trace_is_logged_with_its_bytes, .timeout = 60)
{
	struct mw_resp r;
	start(NULL);
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.05", &r), 0));
	cr_assert(eq(long, r.status, 200));
	char want[96];
	snprintf(want, sizeof want, "/debug/trace?seconds=0.05 200 %zu ", r.len);
	cr_expect(lt(sz, (size_t)100, r.len));
	mw_resp_free(&r);
	stop_expect_log(want, 1);
}
