/* test_workshop.c - end to end: the Go workshop's exercise on this
 * service. Every request rendered under --workshop; on any server, a
 * request that says Cache-Control: no-cache or no-store, or names a mode
 * or workers (an experiment), rendered anew; /help with this server's
 * port and limits. Suite "workshop". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

static struct mw srv;

static void start(const char *const *args)
{
	cr_assert(eq(int, mw_start(&srv, args), 0), "mandelweb did not start");
}

/* Renders done so far: the render histogram's count. */
static double renders(void)
{
	return mw_scrape(&srv, "mandelweb_render_duration_seconds_count");
}

/* GET path with one extra header (NULL: none); the response in r. */
static void get(const char *path, const char *header, struct mw_resp *r)
{
	const char *const h[] = {header, NULL};
	cr_assert(eq(int, mw_request(&srv, NULL, path, header ? h : NULL, r), 0), "%s", path);
	cr_assert(eq(long, r->status, 200), "%s: %s", path, r->body);
}

Test(workshop, no_cache_no_store_and_experiments_are_rendered_anew, .timeout = 60)
{
	start(NULL);
	const char *p = "/mandelbrot?w=64&h=48";
	struct mw_resp first, r;
	get(p, NULL, &first);
	cr_expect(eq(str, first.xcache, "miss"));
	get(p, NULL, &r);
	cr_expect(eq(str, r.xcache, "hit"));
	mw_resp_free(&r);

	static const struct {
		const char *path, *header;
	} anew[] = {
		{"/mandelbrot?w=64&h=48", "Cache-Control: no-cache"},
		{"/mandelbrot?w=64&h=48", "Cache-Control: max-age=0, No-Store"},
		{"/mandelbrot?w=64&h=48", "Pragma: no-cache"},
		{"/mandelbrot?w=64&h=48&mode=px", NULL},
		{"/mandelbrot?w=64&h=48&mode=seq", NULL},
		{"/mandelbrot?workers=1&w=64&h=48", NULL},
		{"/mandelbrot?w=64&h=48&mode=auto", NULL},
	};
	for (size_t i = 0; i < sizeof anew / sizeof anew[0]; i++) {
		double n0 = renders(), m0 = mw_scrape(&srv, "mandelweb_cache_misses_total"),
		       b0 = mw_scrape(&srv, "mandelweb_cache_bypassed_total"),
		       h0 = mw_scrape(&srv, "mandelweb_cache_hits_total");
		get(anew[i].path, anew[i].header, &r);
		cr_expect(eq(str, r.xcache, "bypass"), "%s %s", anew[i].path, anew[i].header);
		/* the same picture: the same ETag and bytes */
		cr_expect(eq(str, r.etag, first.etag), "%zu", i);
		cr_expect(eq(sz, r.len, first.len), "%zu", i);
		cr_expect(eq(int, memcmp(r.body, first.body, first.len), 0), "%zu", i);
		cr_expect(eq(dbl, renders(), n0 + 1), "%zu: rendered", i);
		cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_cache_misses_total"), m0 + 1), "%zu: a miss", i);
		cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_cache_bypassed_total"), b0 + 1), "%zu", i);
		cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_cache_hits_total"), h0), "%zu", i);
		mw_resp_free(&r);
	}
	/* A plain ask is still answered from the cache. */
	get(p, NULL, &r);
	cr_expect(eq(str, r.xcache, "hit"));
	mw_resp_free(&r);
	/* A conditional ask that matches is still a 304, no-cache or not: the
	 * origin revalidates it. */
	char inm[96];
	snprintf(inm, sizeof inm, "If-None-Match: %s", first.etag);
	const char *const h[] = {"Cache-Control: no-cache", inm, NULL};
	cr_assert(eq(int, mw_request(&srv, NULL, p, h, &r), 0));
	cr_expect(eq(long, r.status, 304));
	mw_resp_free(&r);
	mw_resp_free(&first);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* no-store: not kept; no-cache: rendered, and kept for the next. */
Test(workshop, no_store_is_not_kept_and_no_cache_is, .timeout = 60)
{
	start(NULL);
	struct mw_resp r;
	get("/mandelbrot?w=65&h=33", "Cache-Control: no-store", &r);
	cr_expect(eq(str, r.xcache, "bypass"));
	mw_resp_free(&r);
	get("/mandelbrot?w=65&h=33", NULL, &r);
	cr_expect(eq(str, r.xcache, "miss"), "no-store's picture was kept");
	mw_resp_free(&r);
	get("/mandelbrot?w=66&h=33", "Cache-Control: no-cache", &r);
	cr_expect(eq(str, r.xcache, "bypass"));
	mw_resp_free(&r);
	get("/mandelbrot?w=66&h=33", NULL, &r);
	cr_expect(eq(str, r.xcache, "hit"));
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* Experiments asked at once are each rendered: none follows another's
 * render (single flight), whose mode would not be the one asked for. */
Test(workshop, experiments_at_once_do_not_share_a_render, .timeout = 60)
{
	start(NULL);
	struct mw_fetch f[4];
	pthread_t t[4];
	double n0 = renders(), shared0 = mw_scrape(&srv, "mandelweb_singleflight_shared_total");
	for (int i = 0; i < 4; i++) {
		f[i] = (struct mw_fetch){.m = &srv};
		snprintf(f[i].path, sizeof f[i].path, "/mandelbrot?w=1024&h=1024&mode=row");
		pthread_create(&t[i], NULL, mw_fetch_main, &f[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_expect(eq(int, f[i].rc, 0));
		cr_expect(eq(long, f[i].r.status, 200), "%s", f[i].r.body);
		cr_expect(eq(str, f[i].r.xcache, "bypass"));
		mw_resp_free(&f[i].r);
	}
	cr_expect(eq(dbl, renders(), n0 + 4));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_singleflight_shared_total"), shared0));
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* --workshop: the Go service's behaviour, every request a render. */
Test(workshop, the_workshop_server_renders_every_request, .timeout = 60)
{
	start((const char *const[]){"--workshop", NULL});
	struct mw_resp r;
	for (int i = 0; i < 3; i++) {
		get("/mandelbrot", NULL, &r);
		cr_expect(eq(str, r.xcache, "miss"), "%d", i);
		mw_resp_free(&r);
	}
	cr_expect(eq(dbl, renders(), 3));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_cache_hits_total"), 0));
	/* at once, too: no single flight */
	struct mw_fetch f[3];
	pthread_t t[3];
	for (int i = 0; i < 3; i++) {
		f[i] = (struct mw_fetch){.m = &srv, .path = "/mandelbrot?w=1024&h=1024"};
		pthread_create(&t[i], NULL, mw_fetch_main, &f[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_expect(eq(long, f[i].r.status, 200));
		cr_expect(eq(str, f[i].r.xcache, "miss"));
		mw_resp_free(&f[i].r);
	}
	cr_expect(eq(dbl, renders(), 6));
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	char *log = mw_log(&srv);
	cr_expect(not(eq(ptr, strstr(log, "mandelweb: --workshop: every request's picture is rendered for it"), NULL)),
		  "%s", log);
	free(log);
}

/* /help: the real port in its examples, this server's limits, the flag
 * that lifts the budget, and no stray format suffix. */
Test(workshop, help_speaks_of_this_server, .timeout = 30)
{
	start((const char *const[]){"--max-cost", "123456789", "--workers", "2", "--trace-max", "7", NULL});
	struct mw_resp r;
	get("/help", NULL, &r);
	char origin[64];
	snprintf(origin, sizeof origin, "'http://127.0.0.1:%u/mandelbrot?", srv.port);
	cr_expect(not(eq(ptr, strstr(r.body, origin), NULL)), "%s", r.body);
	cr_expect(eq(ptr, strstr(r.body, ":8080"), NULL), "%s", r.body);
	cr_expect(not(eq(ptr, strstr(r.body, "1..8192 each"), NULL)), "%s", r.body);
	cr_expect(eq(ptr, strstr(r.body, "8192u"), NULL), "%s", r.body);
	cr_expect(not(eq(ptr, strstr(r.body, "at most 123456789 pixel-iterations here (--max-cost"), NULL)), "%s", r.body);
	cr_expect(not(eq(ptr, strstr(r.body, "1..2 (this server's workers)"), NULL)), "%s", r.body);
	cr_expect(not(eq(ptr, strstr(r.body, "1..7 (--trace-max"), NULL)), "%s", r.body);
	mw_resp_free(&r);
	/* The Host the client used; one that is not a plain host: the address. */
	get("/help", "Host: mandel.example:9", &r);
	cr_expect(not(eq(ptr, strstr(r.body, "'http://mandel.example:9/mandelbrot?"), NULL)), "%s", r.body);
	mw_resp_free(&r);
	get("/help", "Host: a<b>'c", &r);
	cr_expect(not(eq(ptr, strstr(r.body, origin), NULL)), "%s", r.body);
	cr_expect(eq(ptr, strstr(r.body, "<b>"), NULL));
	mw_resp_free(&r);
	/* The budget's refusal names the flag that lifts it. */
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=2048&h=2048", &r), 0));
	cr_expect(eq(long, r.status, 400));
	cr_expect(not(eq(ptr, strstr(r.body, "(--max-cost)"), NULL)), "%s", r.body);
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}
