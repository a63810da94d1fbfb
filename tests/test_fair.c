/* test_fair.c - end to end, two clients (two loopback source addresses):
 * one floods, the other is served; refusals say why and are counted;
 * a client that asks again before its Retry-After has its refusal held;
 * behind a trusted proxy the forwarded client is the one judged. Suite
 * "fair". The figures (shares, latencies, CPU) live in make loadtest; the
 * bounds here are loose. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

static struct mw srv;

static void start(const char *const *args)
{
	cr_assert(eq(int, mw_start(&srv, args), 0), "mandelweb did not start");
}

static void stop_ok(void)
{
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0), "exit status after SIGTERM");
}

/* A closed-loop flooder: distinct pictures of about 0.2 s each (scalar,
 * one worker) on one keep-alive connection, until stop. */
struct flooder {
	int id;
	atomic_int *stop;
	int ok, refused, other, retry_after_missing;
};

static void *flood(void *arg)
{
	struct flooder *f = arg;
	CURL *c = curl_easy_init();
	for (int n = 0; c && !atomic_load(f->stop); n++) {
		char path[128];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?w=96&h=96&iter=20000&zoom=1.%02d%04d", f->id, n);
		if (mw_request_on(c, &srv, NULL, path, NULL, &r) != 0) {
			f->other++;
			continue;
		}
		if (r.status == 200)
			f->ok++;
		else if (r.status == 429 || r.status == 503)
			f->refused++, f->retry_after_missing += !r.retry_after[0];
		else
			f->other++;
		mw_resp_free(&r);
	}
	curl_easy_cleanup(c);
	return NULL;
}

/* The flood, small: eight connections of one client keep far more
 * than --max-wait of work asked for; a second client's pictures, one at a
 * time, are every one answered 200, in well under the bound plus the
 * flood's own pictures. The flooder is refused (and told when to come
 * back), and its early repeats are held. */
Test(fair, a_polite_client_is_served_while_another_floods, .timeout = 120)
{
	start((const char *const[]){"--workers", "1", "--kernel", "scalar", "--cache-mb", "0",
				    "--single-flight", "off", "--max-wait", "1", NULL});
	atomic_int stop = 0;
	struct flooder f[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		f[i] = (struct flooder){.id = i, .stop = &stop};
		pthread_create(&t[i], NULL, flood, &f[i]);
	}
	usleep(1500 * 1000); /* the flood fills the budget */
	int polite_ok = 0;
	double worst = 0;
	for (int i = 0; i < 8; i++) {
		char path[64];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?w=32&h=32&zoom=2.%d", i);
		cr_assert(eq(int, mw_get_from(&srv, "127.0.0.2", path, NULL, &r), 0));
		cr_expect(eq(long, r.status, 200), "polite picture %d: %ld %s", i, r.status,
			  r.status == 200 ? "" : r.body);
		polite_ok += r.status == 200;
		if (r.seconds > worst)
			worst = r.seconds;
		mw_resp_free(&r);
		usleep(250 * 1000);
	}
	atomic_store(&stop, 1);
	int ok = 0, refused = 0, other = 0, missing = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += f[i].ok, refused += f[i].refused, other += f[i].other;
		missing += f[i].retry_after_missing;
	}
	cr_expect(eq(int, polite_ok, 8));
	cr_expect(lt(dbl, worst, 1.5), "the polite client's slowest answer: %.3f s", worst);
	cr_expect(lt(int, 0, ok), "the flooder gets pictures too");
	cr_expect(lt(int, 0, refused), "the flooder is refused");
	cr_expect(eq(int, missing, 0), "every refusal says Retry-After");
	cr_expect(eq(int, other, 0));
	double wait = mw_scrape(&srv, "mandelweb_admission_refused_total{reason=\"wait\"}");
	double share = mw_scrape(&srv, "mandelweb_admission_refused_total{reason=\"over_share\"}");
	cr_expect(eq(dbl, wait + share, refused), "refusals counted by reason: %g + %g of %d", wait,
		  share, refused);
	cr_expect(lt(dbl, 0, mw_scrape(&srv, "mandelweb_admission_held_total")),
		  "the flooder's early repeats are held");
	cr_expect(le(dbl, mw_scrape(&srv, "mandelweb_admission_clients"), 2));
	stop_ok();
}

/* The events of a trace named name (and phase ph, NULL: any) whose args'
 * reason is reason. */
static int count_events(json_t *evs, const char *name, const char *ph, const char *reason)
{
	size_t i;
	json_t *ev;
	int n = 0;
	json_array_foreach(evs, i, ev) {
		const char *nm = json_string_value(json_object_get(ev, "name"));
		const char *p = json_string_value(json_object_get(ev, "ph"));
		const char *r = json_string_value(json_object_get(json_object_get(ev, "args"), "reason"));
		n += nm && !strcmp(nm, name) && (!ph || (p && !strcmp(p, ph))) && r && !strcmp(r, reason);
	}
	return n;
}

/* A refusal for a client that asked again before its Retry-After is held
 * before it is answered (here half the wait ahead of it, at most 1 s);
 * the first one is not. One picture may be admitted at a time, so the
 * refusals are for the count whatever this machine's speed. A trace
 * taken meanwhile shows both, with their reason. */
Test(fair, an_early_repeat_is_answered_late, .timeout = 120)
{
	start((const char *const[]){"--workers", "1", "--kernel", "scalar", "--cache-mb", "0",
				    "--single-flight", "off", "--max-wait", "20", "--max-inflight", "1", NULL});
	/* Inside the set every pixel runs all its iterations: one picture
	 * first, so the rate is learned for such pictures (the calibration's
	 * view escapes sooner), then one of a few seconds. */
	struct mw_resp a, b;
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=128&h=128&iter=6000&cx=-0.1&cy=0.09&zoom=8", &a), 0));
	cr_assert(eq(long, a.status, 200));
	mw_resp_free(&a);
	struct mw_fetch busy = {.m = &srv, .path = "/mandelbrot?w=512&h=512&iter=3000&cx=-0.1&cy=0.1&zoom=8"};
	pthread_t t;
	pthread_create(&t, NULL, mw_fetch_main, &busy);
	for (int i = 0; i < 2000 && mw_scrape(&srv, "mandelweb_requests_in_flight") < 1; i++)
		usleep(2000);
	struct mw_fetch trace = {.m = &srv, .path = "/debug/trace?seconds=3"};
	pthread_t tt;
	pthread_create(&tt, NULL, mw_fetch_main, &trace);
	usleep(300 * 1000); /* the window is armed */
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=16&h=16", &a), 0));
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=16&h=16&zoom=2", &b), 0));
	cr_expect(eq(long, a.status, 503), "%ld %s", a.status, a.body);
	cr_expect(eq(long, b.status, 503), "%ld %s", b.status, b.body);
	cr_expect(lt(dbl, a.seconds, 0.2), "refused: answered at once (%.3f s)", a.seconds);
	cr_expect(lt(dbl, 0.5, b.seconds), "asked again before Retry-After: held (%.3f s)", b.seconds);
	cr_expect(lt(dbl, b.seconds, 2), "held at most a second and a tick (%.3f s)", b.seconds);
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_admission_held_total"), 1));
	cr_expect(eq(dbl, mw_scrape(&srv, "mandelweb_admission_refused_total{reason=\"count\"}"), 2));
	mw_resp_free(&a);
	mw_resp_free(&b);
	pthread_join(tt, NULL);
	cr_assert(eq(long, trace.r.status, 200));
	json_error_t err;
	json_t *doc = json_loadb(trace.r.body, trace.r.len, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s", err.text);
	json_t *evs = json_object_get(doc, "traceEvents");
	cr_expect(eq(int, count_events(evs, "reject", "X", "count"), 1), "the refusal answered at once");
	cr_expect(eq(int, count_events(evs, "wait: held refusal", "X", "count"), 1), "the held one, on http-0");
	cr_expect(eq(int, count_events(evs, "held refusal", "b", "count"), 1), "and on its request's track");
	json_decref(doc);
	mw_resp_free(&trace.r);
	pthread_join(t, NULL);
	cr_expect(eq(long, busy.r.status, 200));
	mw_resp_free(&busy.r);
	stop_ok();
}

/* With --trusted-proxy 127.0.0.1, X-Forwarded-For from that peer names the
 * client: the log shows it, and a remote client is not loopback to the
 * /debug/ rule. From any other peer the header changes nothing. */
Test(fair, the_forwarded_client_is_judged_behind_a_trusted_proxy, .timeout = 60)
{
	start((const char *const[]){"--trusted-proxy", "127.0.0.1", NULL});
	struct mw_resp r;
	const char *const remote[] = {"X-Forwarded-For: 1.2.3.4, 203.0.113.9", NULL};
	/* 403 before 400: the /debug/ rule is judged first. */
	cr_assert(eq(int, mw_request(&srv, NULL, "/debug/trace?seconds=x", remote, &r), 0));
	cr_expect(eq(long, r.status, 403), "a remote client behind the proxy: %ld", r.status);
	mw_resp_free(&r);
	const char *const local[] = {"X-Forwarded-For: 127.0.0.9", NULL};
	cr_assert(eq(int, mw_request(&srv, NULL, "/debug/trace?seconds=x", local, &r), 0));
	cr_expect(eq(long, r.status, 400), "a local one: %ld", r.status);
	mw_resp_free(&r);
	/* An untrusted peer (127.0.0.2) forwarding a loopback address: itself. */
	cr_assert(eq(int, mw_get_from(&srv, "127.0.0.2", "/healthz", remote, &r), 0));
	cr_expect(eq(long, r.status, 200));
	mw_resp_free(&r);
	cr_assert(eq(int, mw_get_from(&srv, "127.0.0.2", "/debug/trace?seconds=x", remote, &r), 0));
	cr_expect(eq(long, r.status, 400), "loopback itself, whatever it forwards: %ld", r.status);
	mw_resp_free(&r);
	stop_ok();
	char *log = mw_log(&srv);
	cr_expect(not(eq(ptr, strstr(log, " 203.0.113.9 GET /debug/trace?seconds=x 403 "), NULL)), "%s", log);
	cr_expect(not(eq(ptr, strstr(log, " 127.0.0.9 GET /debug/trace?seconds=x 400 "), NULL)), "%s", log);
	cr_expect(not(eq(ptr, strstr(log, " 127.0.0.2 GET /healthz 200 "), NULL)), "%s", log);
	free(log);

	/* Without --trusted-proxy the header is never believed. */
	start(NULL);
	cr_assert(eq(int, mw_request(&srv, NULL, "/debug/trace?seconds=x", remote, &r), 0));
	cr_expect(eq(long, r.status, 400));
	mw_resp_free(&r);
	stop_ok();
}
