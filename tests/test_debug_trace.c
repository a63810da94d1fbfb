/* test_debug_trace.c - GET /debug/trace end to end, and the CLI's -trace:
 * each trace parsed with jansson and checked for what a user looks for in
 * Perfetto. Suite "trace_e2e". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

static struct mw srv;

static void start(const char *const *args)
{
	cr_assert(eq(int, mw_start(&srv, args), 0), "mandelweb did not start");
}

static void nap_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static double num_of(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static json_int_t arg_int(json_t *ev, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(ev, "args"), key));
}

static json_t *parse(const char *body, size_t len)
{
	json_error_t err;
	json_t *doc = json_loadb(body, len, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "not JSON: %s at %d", err.text, err.position);
	return doc;
}

/* Flow ids unique in the trace: one start and at most one end each (a
 * start whose end fell outside the window is allowed), and no end or step
 * without its start. */
static void check_flows(json_t *evs)
{
	size_t n = 0, cap = 1024, i;
	struct flow {
		json_int_t id;
		int s, t, f;
	} *fl = calloc(cap, sizeof *fl);
	json_t *ev;
	json_array_foreach(evs, i, ev) {
		const char *ph = str_of(ev, "ph");
		if (strcmp(ph, "s") && strcmp(ph, "t") && strcmp(ph, "f"))
			continue;
		json_int_t id = json_integer_value(json_object_get(ev, "id"));
		size_t k;
		for (k = 0; k < n && fl[k].id != id; k++)
			;
		if (k == n) {
			if (n == cap)
				fl = realloc(fl, (cap *= 2) * sizeof *fl);
			fl[n++] = (struct flow){id, 0, 0, 0};
		}
		fl[k].s += ph[0] == 's', fl[k].t += ph[0] == 't', fl[k].f += ph[0] == 'f';
		/* An id a JavaScript viewer keeps (a double is exact below 2^53),
		 * and the point bound where Chrome's trace engine looks: the
		 * span with its ts, tid and category, "flow". */
		cr_expect(lt(i64, id, (json_int_t)1 << 53), "flow id %lld", (long long)id);
		cr_expect(eq(str, (char *)str_of(ev, "cat"), "flow"));
		double ts = num_of(ev, "ts");
		json_int_t tid = json_integer_value(json_object_get(ev, "tid"));
		json_t *x;
		size_t j, bound = 0;
		json_array_foreach(evs, j, x)
			bound += !strcmp(str_of(x, "ph"), "X") && num_of(x, "ts") == ts &&
				 json_integer_value(json_object_get(x, "tid")) == tid &&
				 json_object_get(x, "cat") && !strcmp(str_of(x, "cat"), "flow");
		cr_expect(ge(sz, bound, 1), "flow %lld's %s at %f on %lld: no span of its own", (long long)id,
			  ph, ts, (long long)tid);
	}
	for (size_t k = 0; k < n; k++) {
		cr_expect(le(int, fl[k].s, 1), "flow %lld starts %d times", (long long)fl[k].id, fl[k].s);
		cr_expect(le(int, fl[k].f, 1), "flow %lld ends %d times", (long long)fl[k].id, fl[k].f);
		/* A flow may begin before the window (a request admitted just before it opened). */
	}
	free(fl);
}

/* The kernel's tracks: only states, one after another (the nesting check
 * sees them as any thread's slices), each running one on a CPU. */
static void check_states(json_t *evs)
{
	json_t *ev;
	size_t i;
	json_array_foreach(evs, i, ev) {
		if (strcmp(str_of(ev, "ph"), "X") != 0)
			continue;
		const char *st = str_of(ev, "name");
		bool known = !strcmp(st, "running") || !strcmp(st, "runnable") || !strcmp(st, "blocked");
		bool track = json_integer_value(json_object_get(ev, "tid")) >= 1 << 22;
		/* A state only on the thread's own track, and only states there. */
		cr_expect(eq(int, known, track), "%s on %s track", st, track ? "a kernel" : "a thread's");
		if (!known)
			continue;
		if (!strcmp(st, "running"))
			cr_expect(le(i64, -1, arg_int(ev, "cpu")));
	}
}

/* What every trace must satisfy: every thread that appears is named, no
 * event lies outside the window, and spans on a thread nest or follow one
 * another (never overlap partly). Returns the number of events. */
static size_t check_well_formed(json_t *doc)
{
	json_t *od = json_object_get(doc, "otherData");
	json_t *evs = json_object_get(doc, "traceEvents"), *ev;
	/* Times are from the window's start; otherData's bounds are on the
	 * trace clock. */
	double w1 = num_of(od, "window_end_us") - num_of(od, "window_start_us"), w0 = 0;
	enum { MAXT = 64 };
	json_int_t named[MAXT], seen[MAXT];
	size_t nnamed = 0, nseen = 0, i;

	cr_assert(lt(dbl, w0, w1));
	cr_assert(lt(dbl, 0, num_of(od, "window_start_us")));
	json_array_foreach(evs, i, ev) {
		const char *ph = str_of(ev, "ph");
		json_int_t tid = json_integer_value(json_object_get(ev, "tid"));
		if (strcmp(ph, "M") == 0) {
			if (strcmp(str_of(ev, "name"), "thread_name") == 0 && nnamed < MAXT)
				named[nnamed++] = tid;
			continue;
		}
		double ts = num_of(ev, "ts"), end = ts + num_of(ev, "dur");
		/* 1 ns of slack: the output has nanosecond decimals. */
		cr_assert(ge(dbl, ts, w0 - 0.001), "%s %s at %f before the window %f", ph,
			  str_of(ev, "name"), ts, w0);
		cr_assert(le(dbl, end, w1 + 0.001), "%s %s ends at %f after the window %f", ph,
			  str_of(ev, "name"), end, w1);
		if (strcmp(ph, "C") == 0 && strcmp(str_of(ev, "name"), "trace lost events") == 0)
			continue; /* a process counter, on the process's main thread */
		size_t k;
		for (k = 0; k < nseen && seen[k] != tid; k++)
			;
		if (k == nseen && nseen < MAXT)
			seen[nseen++] = tid;
	}
	for (size_t k = 0; k < nseen; k++) {
		size_t j;
		for (j = 0; j < nnamed && named[j] != seen[k]; j++)
			;
		cr_expect(lt(sz, j, nnamed), "thread %lld has events but no name", (long long)seen[k]);
	}
	/* Every thread named once (Perfetto keeps the last name, others the
	 * first). */
	for (size_t a = 0; a < nnamed; a++)
		for (size_t b = a + 1; b < nnamed; b++)
			cr_expect(ne(i64, named[a], named[b]), "thread %lld named twice", (long long)named[a]);
	check_flows(evs);
	check_states(evs);
	/* Nesting, per thread: spans in the order they start (longer first
	 * on ties) against a stack of the open ones' ends. */
	for (size_t k = 0; k < nseen; k++) {
		size_t n = 0, cap = 1024;
		double(*sp)[2] = malloc(cap * sizeof *sp);
		json_array_foreach(evs, i, ev) {
			if (strcmp(str_of(ev, "ph"), "X") != 0 ||
			    json_integer_value(json_object_get(ev, "tid")) != seen[k])
				continue;
			if (n == cap)
				sp = realloc(sp, (cap *= 2) * sizeof *sp);
			sp[n][0] = num_of(ev, "ts");
			sp[n][1] = sp[n][0] + num_of(ev, "dur");
			n++;
		}
		for (size_t a = 1; a < n; a++) { /* insertion sort: input is nearly sorted */
			double t0 = sp[a][0], t1 = sp[a][1];
			size_t b = a;
			while (b > 0 && (sp[b - 1][0] > t0 || (sp[b - 1][0] == t0 && sp[b - 1][1] < t1))) {
				sp[b][0] = sp[b - 1][0], sp[b][1] = sp[b - 1][1];
				b--;
			}
			sp[b][0] = t0, sp[b][1] = t1;
		}
		double stack[64];
		int depth = 0;
		for (size_t a = 0; a < n; a++) {
			while (depth > 0 && stack[depth - 1] <= sp[a][0] + 0.0005) /* decimals in doubles */
				depth--;
			cr_assert(depth == 0 || sp[a][1] <= stack[depth - 1] + 0.001,
				  "thread %lld: span %f..%f overlaps one ending at %f", (long long)seen[k],
				  sp[a][0], sp[a][1], stack[depth - 1]);
			if (depth < 64)
				stack[depth++] = sp[a][1];
		}
		free(sp);
	}
	return json_array_size(evs);
}

/* The thread names of a trace, by tid. */
struct names {
	json_int_t tid[64];
	const char *name[64];
	size_t n;
};

static void names_of(json_t *doc, struct names *nm)
{
	json_t *ev;
	size_t i;
	nm->n = 0;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		if (strcmp(str_of(ev, "ph"), "M") == 0 && strcmp(str_of(ev, "name"), "thread_name") == 0 &&
		    nm->n < 64) {
			nm->tid[nm->n] = json_integer_value(json_object_get(ev, "tid"));
			nm->name[nm->n++] = str_of(json_object_get(ev, "args"), "name");
		}
	}
}

/* Whether thread tid is named prefix*. */
static bool named(const struct names *nm, json_int_t tid, const char *prefix)
{
	for (size_t i = 0; i < nm->n; i++)
		if (nm->tid[i] == tid)
			return strncmp(nm->name[i], prefix, strlen(prefix)) == 0;
	return false;
}

/* X events named name, on any thread. */
static size_t spans_named(json_t *doc, const char *name)
{
	json_t *ev;
	size_t i, n = 0;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev)
		n += !strcmp(str_of(ev, "ph"), "X") && !strcmp(str_of(ev, "name"), name);
	return n;
}

/* Waits until a window is armed (the metrics say so), then checks that a
 * second one is refused with 409 and Retry-After. */
static void wait_armed(void)
{
	struct mw_resp r;
	int armed = 0;
	for (int i = 0; i < 500 && !armed; i++) {
		cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
		armed = strstr(r.body, "\nmandelweb_trace_capture 1\n") != NULL;
		mw_resp_free(&r);
		if (!armed)
			nap_ms(10);
	}
	cr_assert(armed, "the window never armed");
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=1", &r), 0));
	cr_expect(eq(long, r.status, 409));
	cr_expect(lt(int, 0, atoi(r.retry_after)), "409 without Retry-After");
	mw_resp_free(&r);
}

Test(trace_e2e, a_window_shows_each_request_its_jobs_flows_counters_and_names, .timeout = 120)
{
	const char *const args[] = {"--workers", "4", "--cache-mb", "0", "--access-log", "off", NULL};
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=1.5"};
	pthread_t th;
	enum { N = 12 };

	start(args);
	pthread_create(&th, NULL, mw_fetch_main, &tr);
	wait_armed();
	for (int i = 0; i < N; i++) { /* distinct pictures, so each one renders */
		char path[96];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?cx=-0.%d&w=384&h=384", 10 + i);
		cr_assert(eq(int, mw_get(&srv, path, &r), 0));
		cr_expect(eq(long, r.status, 200));
		mw_resp_free(&r);
	}
	pthread_join(th, NULL);
	cr_assert(eq(int, tr.rc, 0));
	cr_assert(eq(long, tr.r.status, 200));
	cr_expect(eq(str, tr.r.type, "application/json"));
	json_t *doc = parse(tr.r.body, tr.r.len);
	check_well_formed(doc);
	json_t *od = json_object_get(doc, "otherData"), *evs = json_object_get(doc, "traceEvents"), *ev;
	cr_expect(eq(int, json_integer_value(json_object_get(od, "events_lost")), 0));

	/* Each rendered request: its async 'request' slice, jobs on two or
	 * more workers carrying its id, and its flow from the HTTP thread
	 * through the workers back to the HTTP thread. */
	size_t requests = 0, i;
	struct names nm;
	names_of(doc, &nm);
	json_array_foreach(evs, i, ev) {
		if (strcmp(str_of(ev, "ph"), "b") != 0 || strcmp(str_of(ev, "name"), "request") != 0 ||
		    strcmp(str_of(json_object_get(ev, "args"), "route"), "/mandelbrot") != 0)
			continue;
		json_int_t id = json_integer_value(json_object_get(ev, "id"));
		cr_expect(eq(int, arg_int(ev, "status"), 200));
		cr_expect(eq(str, (char *)str_of(json_object_get(ev, "args"), "method"), "GET"));
		requests++;
		json_int_t tids[8];
		size_t ntids = 0, s = 0, t = 0, f = 0, j;
		json_t *e2;
		json_array_foreach(evs, j, e2) {
			const char *ph = str_of(e2, "ph");
			json_int_t tid = json_integer_value(json_object_get(e2, "tid"));
			if (strcmp(ph, "X") == 0 && strcmp(str_of(e2, "name"), "job") == 0 &&
			    arg_int(e2, "request") == id) {
				cr_expect(named(&nm, tid, "worker-"), "a job on a thread not named worker-N");
				size_t k;
				for (k = 0; k < ntids && tids[k] != tid; k++)
					;
				if (k == ntids && ntids < 8)
					tids[ntids++] = tid;
			}
			if (json_integer_value(json_object_get(e2, "id")) != id ||
			    strcmp(str_of(e2, "cat"), "flow") != 0)
				continue;
			if (strcmp(ph, "s") == 0 || strcmp(ph, "f") == 0)
				cr_expect(named(&nm, tid, "http-"), "flow %s of request %lld not on an http thread",
					  ph, (long long)id);
			s += strcmp(ph, "s") == 0, t += strcmp(ph, "t") == 0, f += strcmp(ph, "f") == 0;
		}
		cr_expect(ge(sz, ntids, 2), "request %lld: jobs on %zu worker threads", (long long)id, ntids);
		cr_expect(eq(sz, s, 1));
		cr_expect(ge(sz, t, 2)); /* the jobs and the encoding */
		cr_expect(eq(sz, f, 1));
	}
	cr_expect(eq(sz, requests, N));
	/* Counters: queue depth, busy workers, requests in flight. */
	const char *counters[] = {"queue", "workers", "requests"};
	for (int c = 0; c < 3; c++) {
		size_t n = 0;
		json_array_foreach(evs, i, ev)
			n += strcmp(str_of(ev, "ph"), "C") == 0 && strcmp(str_of(ev, "name"), counters[c]) == 0;
		cr_expect(lt(sz, 0, n), "no %s counter", counters[c]);
	}
	json_decref(doc);
	mw_resp_free(&tr.r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* The kernel tracks of a trace, by state: how many spans of each. */
static void kernel_states(json_t *doc, size_t *running, size_t *blocked, size_t *tracks)
{
	json_t *ev;
	size_t i;
	*running = *blocked = *tracks = 0;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		if (!strcmp(str_of(ev, "ph"), "M") && !strcmp(str_of(ev, "name"), "thread_name") &&
		    strstr(str_of(json_object_get(ev, "args"), "name"), " [kernel]"))
			++*tracks;
		if (strcmp(str_of(ev, "ph"), "X")) /* the states' names are the kernel's own */
			continue;
		*running += !strcmp(str_of(ev, "name"), "running");
		*blocked += !strcmp(str_of(ev, "name"), "blocked");
	}
}

static bool kernel_view_on(void)
{
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
	bool on = strstr(r.body, "mandelweb_trace_kernel_view{state=\"on\"") != NULL;
	mw_resp_free(&r);
	return on;
}

Test(trace_e2e, the_kernel_view_shows_each_threads_states_and_the_wakeups, .timeout = 120)
{
	const char *const args[] = {"--workers", "2", "--cache-mb", "0", "--access-log", "off", NULL};
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=1.5"};
	pthread_t th;

	start(args);
	pthread_create(&th, NULL, mw_fetch_main, &tr);
	wait_armed();
	for (int i = 0; i < 6; i++) {
		char path[96];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?cx=-0.%d&w=256&h=256", 20 + i);
		cr_assert(eq(int, mw_get(&srv, path, &r), 0));
		mw_resp_free(&r);
		nap_ms(30); /* idle between: the workers sleep, and are woken */
	}
	pthread_join(th, NULL);
	cr_assert(eq(long, tr.r.status, 200));
	json_t *doc = parse(tr.r.body, tr.r.len);
	check_well_formed(doc);
	json_t *od = json_object_get(doc, "otherData");
	const char *kv = str_of(od, "kernel_view");
	if (!kernel_view_on()) {
		/* A container's seccomp profile: the trace says so, and is whole. */
		cr_expect(eq(str, (char *)kv, "refused"));
		cr_expect(not(eq(ptr, json_object_get(od, "kernel_view_why"), NULL)));
		json_decref(doc);
		mw_resp_free(&tr.r);
		cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
		cr_skip_test("the kernel view is refused here: %s", str_of(od, "kernel_view_why"));
	}
	cr_expect(eq(str, (char *)kv, "on"));
	size_t running, blocked, tracks;
	kernel_states(doc, &running, &blocked, &tracks);
	cr_expect(le(sz, 3, tracks), "a kernel track for the HTTP thread and both workers");
	cr_expect(lt(sz, 0, running));
	cr_expect(lt(sz, 0, blocked));
	/* Idle workers wait for work, and a submit wakes them with an arrow. */
	cr_expect(lt(sz, 0, spans_named(doc, "wait: no work")));
	cr_expect(lt(sz, 0, spans_named(doc, "woken")));
	json_decref(doc);
	mw_resp_free(&tr.r);

	/* The same window as the plain-text summary. */
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.3&format=summary", &r), 0));
	cr_expect(eq(long, r.status, 200));
	cr_expect(eq(str, r.type, "text/plain; charset=utf-8"));
	cr_expect(eq(int, strncmp(r.body, "trace summary: window ", 22), 0), "%.200s", r.body);
	cr_expect(not(eq(ptr, strstr(r.body, "kernel view: on"), NULL)), "%.300s", r.body);
	mw_resp_free(&r);
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.1&format=xml", &r), 0));
	cr_expect(eq(long, r.status, 400));
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(trace_e2e, a_single_flights_followers_are_woken_by_its_render_with_an_arrow, .timeout = 60)
{
	const char *const args[] = {"--workers", "2", "--cache-mb", "0", "--access-log", "off", NULL};
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=2"};
	struct mw_fetch same[4];
	pthread_t th, sth[4];

	start(args);
	pthread_create(&th, NULL, mw_fetch_main, &tr);
	wait_armed();
	for (int i = 0; i < 4; i++) { /* one slow picture, four times at once */
		same[i] = (struct mw_fetch){.m = &srv, .path = "/mandelbrot?w=512&h=512&iter=5000&cx=-0.7435&cy=0.1314&zoom=200"};
		pthread_create(&sth[i], NULL, mw_fetch_main, &same[i]);
	}
	size_t shared = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(sth[i], NULL);
		cr_expect(eq(long, same[i].r.status, 200));
		shared += strcmp(same[i].r.xcache, "shared") == 0;
		mw_resp_free(&same[i].r);
	}
	pthread_join(th, NULL);
	json_t *doc = parse(tr.r.body, tr.r.len);
	check_well_formed(doc);
	/* Each follower: its 'wait: single flight' starts a flow, the
	 * leader's worker steps it as it resumes it, its respond ends it. */
	cr_expect(lt(sz, 0, shared), "no request followed another");
	cr_expect(eq(sz, spans_named(doc, "resume follower"), shared));
	json_t *ev;
	size_t i, steps = 0;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev)
		steps += !strcmp(str_of(ev, "ph"), "t");
	cr_expect(le(sz, shared, steps));
	json_decref(doc);
	mw_resp_free(&tr.r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(trace_e2e, a_refused_kernel_view_is_said_and_the_trace_is_as_before, .timeout = 60)
{
	const char *const args[] = {"--trace-kernel", "refuse", "--cache-mb", "0", NULL};
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=0.5"};
	pthread_t th;

	start(args);
	pthread_create(&th, NULL, mw_fetch_main, &tr);
	wait_armed();
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=128&h=128", &r), 0));
	cr_expect(eq(long, r.status, 200));
	mw_resp_free(&r);
	pthread_join(th, NULL);
	cr_assert(eq(long, tr.r.status, 200));
	json_t *doc = parse(tr.r.body, tr.r.len);
	check_well_formed(doc);
	json_t *od = json_object_get(doc, "otherData");
	cr_expect(eq(str, (char *)str_of(od, "kernel_view"), "refused"));
	cr_expect(not(eq(ptr, strstr(str_of(od, "kernel_view_why"), "perf_event_open"), NULL)));
	size_t running, blocked, tracks;
	kernel_states(doc, &running, &blocked, &tracks);
	cr_expect(eq(sz, tracks, 0));
	cr_expect(lt(sz, 0, spans_named(doc, "job")), "the program's own spans are all there");
	json_decref(doc);
	mw_resp_free(&tr.r);
	cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
	cr_expect(not(eq(ptr, strstr(r.body, "mandelweb_trace_kernel_view{state=\"refused\",why=\"perf_event_open"), NULL)));
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* The saved slow traces in dir: how many, the newest's name in newest. */
static int slow_files(const char *dir, char *newest, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	newest[0] = 0;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "mandelweb-slow-", 15) != 0 || !strstr(e->d_name, ".json"))
			continue;
		n++;
		if (strcmp(e->d_name, newest) > 0)
			snprintf(newest, len, "%s", e->d_name);
	}
	if (d)
		closedir(d);
	return n;
}

Test(trace_e2e, a_slow_request_saves_the_last_seconds_and_fast_ones_do_not, .timeout = 60)
{
	char dir[] = "/tmp/mw-slow-XXXXXX", newest[256], path[512];
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	/* A wait bound these pictures never meet: under a sanitizer, beside
	 * another test, one took over 1 s and was refused as too big. */
	const char *const args[] = {"--flight-recorder", "on", "--trace-slow", "0.1",
				    "--trace-slow-every", "0", "--trace-keep", "2", "--trace-dir",
				    dir, "--cache-mb", "0", "--max-wait", "60", NULL};
	struct mw_resp r;
	start(args);
	for (int i = 0; i < 3; i++) {
		cr_assert(eq(int, mw_get(&srv, "/healthz", &r), 0));
		mw_resp_free(&r);
	}
	nap_ms(300);
	cr_expect(eq(int, slow_files(dir, newest, sizeof newest), 0), "a fast request saved %s", newest);
	for (int i = 0; i < 3; i++) { /* each well over 0.1 s: a million pixels, 3,000 iterations */
		char url[128];
		snprintf(url, sizeof url, "/mandelbrot?w=1024&h=1024&iter=3000&cx=-0.74&cy=0.1%d&zoom=50", i);
		cr_assert(eq(int, mw_get(&srv, url, &r), 0));
		cr_expect(eq(long, r.status, 200));
		mw_resp_free(&r);
		/* The saver writes one at a time (one pending is skipped): wait for it. */
		char want[64];
		snprintf(want, sizeof want, "\nmandelweb_trace_slow_saved_total %d\n", i + 1);
		int saved = 0;
		for (int k = 0; k < 200 && !saved; k++) {
			cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
			saved = strstr(r.body, want) != NULL;
			mw_resp_free(&r);
			if (!saved)
				nap_ms(50);
		}
		cr_expect(saved, "slow request %d: no trace saved", i);
	}
	int n = 0;
	for (int i = 0; i < 100 && (n = slow_files(dir, newest, sizeof newest)) < 2; i++)
		nap_ms(50);
	cr_expect(eq(int, n, 2), "--trace-keep 2, after 3 slow requests");
	snprintf(path, sizeof path, "%s/%s", dir, newest);
	json_error_t err;
	json_t *doc = json_load_file(path, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s: %s", path, err.text);
	check_well_formed(doc);
	/* Beside it, its summary, with the slowest requests taken apart. */
	char txt[520];
	snprintf(txt, sizeof txt, "%.*s.txt", (int)strlen(path) - 5, path);
	FILE *tf = fopen(txt, "r");
	cr_expect(not(eq(ptr, tf, NULL)), "no summary beside %s", path);
	if (tf) {
		static char sum[1 << 16];
		sum[fread(sum, 1, sizeof sum - 1, tf)] = 0;
		fclose(tf);
		cr_expect(not(eq(ptr, strstr(sum, "slowest requests"), NULL)), "%s", sum);
	}
	bool recorded = json_is_true(json_object_get(json_object_get(doc, "otherData"), "flight_recorder"));
	cr_expect(recorded, "a flight-recorder window");
	/* The file names the request, and holds its slice. */
	long id = atol(strstr(newest, "-req") + 4);
	json_t *ev;
	size_t i, found = 0;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev)
		found += !strcmp(str_of(ev, "ph"), "b") && !strcmp(str_of(ev, "name"), "request") &&
			 json_integer_value(json_object_get(ev, "id")) == id;
	cr_expect(eq(sz, found, 1), "request %ld's slice in %s", id, newest);
	json_decref(doc);
	cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
	cr_expect(not(eq(ptr, strstr(r.body, "\nmandelweb_trace_slow_saved_total 3\n"), NULL)));
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_expect(eq(int, system(cmd), 0));
}

Test(trace_e2e, bad_windows_get_400_with_the_range, .timeout = 60)
{
	static const char *const cases[][2] = {
		{"seconds=0", "seconds must be a decimal number of seconds in 0.001..5\n"},
		{"seconds=6", "seconds must be a decimal number of seconds in 0.001..5\n"},
		{"seconds=abc", "seconds must be a decimal number of seconds in 0.001..5\n"},
		{"seconds=-1", "seconds must be a decimal number of seconds in 0.001..5\n"},
		{"seconds=inf", "seconds must be a decimal number of seconds in 0.001..5\n"},
		/* hex: strtod alone read it as 16 and armed a 16 s window */
		{"seconds=0x2", "seconds must be a decimal number of seconds in 0.001..5\n"},
		{"seconds=1&seconds=2", "parameter 'seconds' given twice\n"},
		{"secs=1", "unknown parameter 'secs': /debug/trace takes seconds= or last=, format= and samples=\n"},
		{"last=1", "last= needs the flight recorder: start mandelweb with --flight-recorder\n"},
		{"seconds=1&last=1", "give seconds= (a new window) or last= (the flight recorder), not both\n"},
	};
	const char *const args[] = {"--trace-max", "5", NULL};
	struct mw_resp r;

	start(args);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char path[96];
		snprintf(path, sizeof path, "/debug/trace?%s", cases[i][0]);
		cr_assert(eq(int, mw_get(&srv, path, &r), 0));
		cr_expect(eq(long, r.status, 400), "%s", cases[i][0]);
		cr_expect(eq(str, r.body, (char *)cases[i][1]), "%s", cases[i][0]);
		mw_resp_free(&r);
	}
	cr_assert(eq(int, mw_request(&srv, "HEAD", "/debug/trace", NULL, &r), 0));
	cr_expect(eq(long, r.status, 405));
	cr_expect(eq(str, r.allow, "GET"));
	mw_resp_free(&r);
	/* A short window with the default length works. */
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.05", &r), 0));
	cr_expect(eq(long, r.status, 200));
	json_decref(parse(r.body, r.len));
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(trace_e2e, only_allowed_peers_or_the_token_get_a_trace, .timeout = 60)
{
	const char *const args[] = {"--debug-allow", "192.0.2.0/24", "--debug-token", "s3cret", NULL};
	const char *const good[] = {"Authorization: Bearer s3cret", NULL};
	const char *const bad[] = {"Authorization: Bearer s3cre", NULL};
	struct mw_resp r;

	start(args);
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.01", &r), 0));
	cr_expect(eq(long, r.status, 403)); /* loopback, but not on the list */
	mw_resp_free(&r);
	cr_assert(eq(int, mw_request(&srv, NULL, "/debug/trace?seconds=0.01", bad, &r), 0));
	cr_expect(eq(long, r.status, 403));
	mw_resp_free(&r);
	cr_assert(eq(int, mw_request(&srv, NULL, "/debug/trace?seconds=0.01", good, &r), 0));
	cr_expect(eq(long, r.status, 200));
	mw_resp_free(&r);
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=16&h=16", &r), 0));
	cr_expect(eq(long, r.status, 200)); /* the rest of the service is not affected */
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

static size_t hang_up(char *p, size_t size, size_t n, void *cls)
{
	(void)p, (void)size, (void)n, (void)cls;
	return 0; /* curl aborts the transfer */
}

static void *hammer(void *arg)
{
	volatile int *stop = arg;
	struct mw_resp r;
	while (!*stop) {
		if (mw_get(&srv, "/mandelbrot?w=16&h=16", &r) == 0)
			mw_resp_free(&r);
	}
	return NULL;
}

Test(trace_e2e, a_client_that_hangs_up_mid_stream_frees_the_trace, .timeout = 120)
{
	char url[96];
	volatile int stop = 0;
	pthread_t th;
	struct mw_resp r;

	start((const char *const[]){"--access-log", "off", NULL});
	pthread_create(&th, NULL, hammer, (void *)&stop); /* cache hits: a big trace */
	snprintf(url, sizeof url, "http://127.0.0.1:%u/debug/trace?seconds=0.5", srv.port);
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hang_up);
	cr_expect(eq(int, curl_easy_perform(c), CURLE_WRITE_ERROR));
	curl_easy_cleanup(c);
	stop = 1;
	pthread_join(th, NULL);
	/* The session was freed: a new window opens (after at most a moment
	 * for the server to notice the closed socket). */
	long st = 0;
	double t0 = mw_now();
	while (mw_now() - t0 < 10) {
		cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.01", &r), 0));
		st = r.status;
		mw_resp_free(&r);
		if (st == 200)
			break;
		nap_ms(50);
	}
	cr_expect(eq(long, st, 200));
	/* Under ASan this exit status also says nothing leaked. */
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(trace_e2e, the_flight_recorder_answers_the_last_seconds_at_once, .timeout = 60)
{
	struct mw_resp r;

	start((const char *const[]){"--flight-recorder", "on", NULL});
	for (int i = 0; i < 3; i++) {
		char path[64];
		snprintf(path, sizeof path, "/mandelbrot?w=64&h=64&cx=-0.%d", i + 1);
		cr_assert(eq(int, mw_get(&srv, path, &r), 0));
		mw_resp_free(&r);
	}
	double t0 = mw_now();
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?last=2", &r), 0));
	cr_expect(lt(dbl, mw_now() - t0, 1.0), "last= must not wait for a window");
	cr_assert(eq(long, r.status, 200));
	json_t *doc = parse(r.body, r.len);
	check_well_formed(doc);
	json_t *od = json_object_get(doc, "otherData"), *ev;
	cr_expect(eq(int, json_is_true(json_object_get(od, "flight_recorder")), 1));
	cr_expect(eq(int, json_is_true(json_object_get(od, "complete")), 1));
	size_t jobs = 0, i;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev)
		jobs += strcmp(str_of(ev, "name"), "job") == 0;
	cr_expect(ge(sz, jobs, 3));
	json_decref(doc);
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(trace_e2e, sigterm_during_a_window_sends_it_at_once, .timeout = 60)
{
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=30"};
	pthread_t th;

	start(NULL);
	pthread_create(&th, NULL, mw_fetch_main, &tr);
	wait_armed();
	double t0 = mw_now();
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	pthread_join(th, NULL);
	cr_expect(lt(dbl, mw_now() - t0, 5.0));
	cr_assert(eq(int, tr.rc, 0));
	cr_expect(eq(long, tr.r.status, 200));
	cr_expect(eq(str, tr.r.connection, "close"));
	json_decref(parse(tr.r.body, tr.r.len));
	mw_resp_free(&tr.r);
}

/* bin/mandelbrot -trace: each mode's shape. */
static json_t *cli_trace(const char *mode, const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd,
		 "%s/mandelbrot -w 64 -h 64 -workers 2 -mode %s -o /dev/null -trace %s 2>/dev/null >/dev/null",
		 MW_BIN, mode, path);
	cr_assert(eq(int, system(cmd), 0), "%s", cmd);
	json_error_t err;
	json_t *doc = json_load_file(path, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s: %s", path, err.text);
	remove(path);
	check_well_formed(doc);
	cr_expect(eq(int, json_integer_value(json_object_get(json_object_get(doc, "otherData"),
							   "events_lost")), 0));
	return doc;
}

/* Spans named name: how many, and on how many threads named prefix*. */
static size_t spans(json_t *doc, const char *name, const char *prefix, size_t *threads)
{
	json_t *ev;
	size_t n = 0, i, nt = 0;
	json_int_t tids[16];
	struct names nm;
	names_of(doc, &nm);
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		if (strcmp(str_of(ev, "ph"), "X") != 0 || strcmp(str_of(ev, "name"), name) != 0)
			continue;
		json_int_t tid = json_integer_value(json_object_get(ev, "tid"));
		cr_expect(named(&nm, tid, prefix), "%s on a thread not named %s*", name, prefix);
		n++;
		size_t k;
		for (k = 0; k < nt && tids[k] != tid; k++)
			;
		if (k == nt && nt < 16)
			tids[nt++] = tid;
	}
	*threads = nt;
	return n;
}

Test(trace_e2e, the_cli_traces_show_each_modes_shape, .timeout = 120)
{
	char path[64];
	size_t th;
	snprintf(path, sizeof path, "/tmp/mw-cli-trace-%d.json", (int)getpid());

	json_t *d = cli_trace("seq", path); /* one thread, a span a row */
	cr_expect(eq(sz, spans(d, "row", "main", &th), 64));
	cr_expect(eq(sz, th, 1));
	cr_expect(eq(sz, spans(d, "job", "worker-", &th), 0));
	json_decref(d);

	d = cli_trace("px", path); /* a tiny job a pixel, on the workers */
	cr_expect(eq(sz, spans(d, "job", "worker-", &th), 64 * 64));
	cr_expect(eq(sz, spans(d, "render", "main", &th), 1));
	json_decref(d);

	d = cli_trace("row", path); /* a job a row */
	cr_expect(eq(sz, spans(d, "job", "worker-", &th), 64));
	json_decref(d);

	d = cli_trace("workers", path); /* a job a pixel, each handed over in a rendezvous */
	cr_expect(eq(sz, spans(d, "job", "worker-", &th), 64 * 64));
	cr_expect(lt(sz, 0, spans(d, "wait: rendezvous", "main", &th)));
	json_decref(d);

	d = cli_trace("auto", path); /* a job a worker, and the mirrored rows copied */
	cr_expect(eq(sz, spans(d, "job", "worker-", &th), 2));
	cr_expect(eq(sz, spans(d, "mirror rows", "worker-", &th), 1));
	cr_expect(eq(sz, spans(d, "encode png", "main", &th), 1));
	json_decref(d);
}

/* Runs the CLI with args (stdout to /dev/null, stderr into err); returns
 * its exit status, with its peak memory (KiB) in *rss_kb. */
static int cli_run(const char *args, char *err, size_t len, long *rss_kb)
{
	char cmd[512], path[64];
	snprintf(path, sizeof path, "/tmp/mw-cli-err-%d.txt", (int)getpid());
	snprintf(cmd, sizeof cmd, "exec %s/mandelbrot %s >/dev/null 2>%s", MW_BIN, args, path);
	pid_t pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	int st;
	struct rusage ru;
	cr_assert(eq(int, (int)wait4(pid, &st, 0, &ru), (int)pid));
	*rss_kb = ru.ru_maxrss;
	mw_slurp(path, err, len);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The workshop's two heaviest experiments, traced with default flags: a
 * job a pixel through the queue, and through a rendezvous, at 1024x1024
 * (5-7 million records, 26 times what three 64 Ki rings hold): none lost,
 * and tracing memory within its bound. Under the sanitizers (their
 * shadow memory is not ours to bound, and they are 10x slower), 512x512
 * and no memory check. */
Test(trace_e2e, the_workshops_per_pixel_runs_lose_nothing_in_bounded_memory, .timeout = 300)
{
	int san = strstr(MW_BUILD, "release") == NULL;
	static const char *const modes[] = {"-mode px", "-mode workers -queue 0"};
	for (int m = 0; m < 2; m++) {
		char args[256], err[8192];
		long rss;
		snprintf(args, sizeof args, "-w %d -h %d %s -workers 2 -o /dev/null -trace /dev/null",
			 san ? 512 : 1024, san ? 512 : 1024, modes[m]);
		cr_assert(eq(int, cli_run(args, err, sizeof err, &rss), 0), "%s: %s", args, err);
		const char *line = strstr(err, "mandelbrot: trace /dev/null: ");
		cr_assert(not(eq(ptr, (void *)line, NULL)), "%s", err);
		unsigned long long events, lost;
		double ms;
		cr_assert(eq(int, sscanf(line, "mandelbrot: trace /dev/null: %llu events over %lf ms, %llu lost",
					 &events, &ms, &lost), 3), "%s", line);
		cr_expect(eq(u64, lost, 0), "%s: %s", args, line);
		cr_expect(lt(u64, 3ull * (san ? 512 * 512 : 1024 * 1024), events), "%s: %s", args, line);
		/* Three threads' rings (7.1 MiB each at 64 Ki records), the spill's
		 * fixed part, the program and its libraries: 64 MiB, measured at
		 * 47-51 MiB. */
		if (!san)
			cr_expect(le(long, rss, 64 * 1024), "%s: peak memory %ld KiB", args, rss);
		cr_log_info("%s: %llu events, %ld KiB peak", args, events, rss);
	}
}

/* Starts the CLI with args; its pid. */
static pid_t cli_spawn(const char *args)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "exec %s/mandelbrot %s >/dev/null 2>/dev/null", MW_BIN, args);
	pid_t pid = fork();
	cr_assert(ge(int, pid, 0));
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Ctrl-C (or SIGTERM) mid-render: the render stops, the trace and the
 * profile are written whole and say they were cut short, no PNG, and the
 * exit status is 128 + the signal. */
Test(trace_e2e, an_interrupted_cli_run_writes_whole_files_and_exits_128_plus_the_signal, .timeout = 120)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	for (int i = 0; i < 2; i++) {
		char trace[64], prof[64], png[64], args[400];
		snprintf(trace, sizeof trace, "/tmp/mw-int-%d.json", (int)getpid());
		snprintf(prof, sizeof prof, "/tmp/mw-int-%d.pprof", (int)getpid());
		snprintf(png, sizeof png, "/tmp/mw-int-%d.png", (int)getpid());
		remove(png);
		/* 2048x2048 rows on the scalar kernel: seconds of them */
		snprintf(args, sizeof args,
			 "-w 2048 -h 2048 -kernel scalar -mode row -o %s -trace %s -cpuprofile %s", png, trace,
			 prof);
		double t0 = mw_now();
		pid_t pid = cli_spawn(args);
		nap_ms(400);
		kill(pid, sigs[i]);
		int st;
		cr_assert(eq(int, (int)waitpid(pid, &st, 0), (int)pid));
		cr_expect(eq(int, WIFEXITED(st) ? WEXITSTATUS(st) : -1, 128 + sigs[i]), "status %#x", st);
		cr_expect(lt(dbl, mw_now() - t0, 10.0), "stopped at the next unit, not at the end");
		cr_expect(ne(int, access(png, F_OK), 0), "no PNG of a picture never finished");
		json_error_t err;
		json_t *doc = json_load_file(trace, 0, &err);
		cr_assert(not(eq(ptr, doc, NULL)), "%s: %s", trace, err.text);
		check_well_formed(doc);
		const char *note = str_of(json_object_get(doc, "otherData"), "note");
		char want[32];
		snprintf(want, sizeof want, "cut short by %s", sigs[i] == SIGINT ? "SIGINT" : "SIGTERM");
		cr_expect(eq(int, strncmp(note ? note : "", want, strlen(want)), 0), "%s", note);
		cr_expect(lt(sz, 0, spans_named(doc, "job")), "the rows it did render");
		json_decref(doc);
		/* The profile: gzipped, with the note among its comments. */
		FILE *f = fopen(prof, "rb");
		cr_assert(not(eq(ptr, f, NULL)));
		unsigned char magic[2] = {0, 0};
		cr_expect(eq(sz, fread(magic, 1, 2, f), 2));
		fclose(f);
		cr_expect(eq(int, magic[0] << 8 | magic[1], 0x1f8b), "a gzipped profile.proto");
		/* The comment is at the end of the string table, past 4 KiB
		 * where the 400 ms took many stacks (ASan, a busy machine). */
		static char out[1 << 20];
		char cmd[256];
		snprintf(cmd, sizeof cmd, "zcat %s", prof);
		FILE *z = popen(cmd, "r");
		size_t n = 0, got;
		while (n < sizeof out - 1 && (got = fread(out + n, 1, sizeof out - 1 - n, z)) > 0)
			n += got;
		pclose(z);
		out[n] = '\0';
		cr_expect(not(eq(ptr, memmem(out, n, want, strlen(want)), NULL)), "the profile's comment");
		remove(trace);
		remove(prof);
	}
}

/* A second Ctrl-C while the files are being written ends it at once. */
Test(trace_e2e, a_second_interrupt_ends_the_cli_at_once, .timeout = 120)
{
	pid_t pid = cli_spawn("-w 2048 -h 2048 -mode px -o /dev/null -trace /dev/null");
	nap_ms(400);
	kill(pid, SIGINT); /* the render stops; 4 million records to write */
	nap_ms(300);
	double t0 = mw_now();
	kill(pid, SIGINT);
	int st;
	cr_assert(eq(int, (int)waitpid(pid, &st, 0), (int)pid));
	cr_expect(eq(int, WIFSIGNALED(st) ? WTERMSIG(st) : -1, SIGINT), "status %#x", st);
	cr_expect(lt(dbl, mw_now() - t0, 1.0));
}

/* The CPU time (seconds) process pid has used so far. */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert(not(eq(ptr, f, NULL)));
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	cr_assert(eq(int, sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2));
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Each thread of pid: its tid, name and context switches so far. */
struct switches {
	int n, tid[64];
	char name[64][32];
	unsigned long count[64];
};

static void switches_of(pid_t pid, struct switches *t)
{
	char path[128], line[256];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	cr_assert(not(eq(ptr, d, NULL)));
	t->n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL && t->n < 64;) {
		if (e->d_name[0] == '.')
			continue;
		int i = t->n;
		t->tid[i] = atoi(e->d_name);
		t->name[i][0] = '\0';
		t->count[i] = 0;
		snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, t->tid[i]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* it ended */
		unsigned long v;
		while (fgets(line, sizeof line, f)) {
			if (sscanf(line, "Name: %31s", t->name[i]) == 1)
				continue;
			if (sscanf(line, "voluntary_ctxt_switches: %lu", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %lu", &v) == 1)
				t->count[i] += v;
		}
		fclose(f);
		t->n++;
	}
	closedir(d);
}

/* Armed and idle costs nothing: the flight recorder on an idle server, and
 * a /debug/trace window open on it, each under 1% of a CPU; and while it
 * is idle with no connection, no thread wakes at all. The tracer's drainer
 * and sample collector each woke 20 times a second, which was 1% of a CPU
 * beside a busy neighbour; the HTTP thread's deadline tick, 4 times a
 * second, used CPU that the tracer's sampler then sampled. */
Test(trace_e2e, an_armed_idle_server_uses_under_1_percent_of_a_cpu, .timeout = 60)
{
	start((const char *const[]){"--flight-recorder", "on", NULL});
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=32&h=32", &r), 0)); /* every thread registered */
	mw_resp_free(&r);
	nap_ms(300);
	struct switches before, after;
	switches_of(srv.pid, &before);
	double c0 = proc_cpu(srv.pid);
	nap_ms(3000);
	double idle = proc_cpu(srv.pid) - c0;
	switches_of(srv.pid, &after);
	cr_expect(lt(dbl, idle, 0.03), "%.2f s of CPU in 3 s, flight recorder on, idle", idle);
	for (int i = 0; i < after.n; i++)
		for (int j = 0; j < before.n; j++)
			if (after.tid[i] == before.tid[j])
				cr_expect(eq(ulong, after.count[i] - before.count[j], 0UL),
					  "thread %d (%s) woke %lu times in 3 s, idle", after.tid[i],
					  after.name[i], after.count[i] - before.count[j]);
	struct mw_fetch f = {.m = &srv, .path = "/debug/trace?seconds=3"};
	pthread_t t;
	c0 = proc_cpu(srv.pid);
	pthread_create(&t, NULL, mw_fetch_main, &f);
	pthread_join(t, NULL);
	double window = proc_cpu(srv.pid) - c0;
	cr_expect(eq(long, f.r.status, 200));
	mw_resp_free(&f.r);
	/* the window's 3 s, then its answer: formatting and sending a trace */
	cr_expect(lt(dbl, window, 0.1), "%.2f s of CPU over a 3 s window, idle", window);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* Slow is the server's part of a request: a /healthz whose headers a
 * client trickles over 1.2 s saves no slow trace (one such client a minute
 * would take every save of --trace-slow-every 60). */
Test(trace_e2e, a_trickling_client_is_not_a_slow_request, .timeout = 60)
{
	char dir[] = "/tmp/mw-slow-XXXXXX", newest[256];
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	start((const char *const[]){"--flight-recorder", "on", "--trace-slow", "0.5", "--trace-slow-every",
				    "0", "--trace-dir", dir, NULL});
	int fd = mw_connect(&srv, 0);
	cr_assert(ge(int, fd, 0));
	const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n\r\n";
	for (size_t i = 0; i < strlen(req); i++) {
		cr_assert(eq(long, (long)write(fd, req + i, 1), 1L));
		usleep(1200 * 1000 / (useconds_t)strlen(req));
	}
	char out[512];
	ssize_t n = read(fd, out, sizeof out - 1);
	cr_expect(lt(long, 0L, (long)n));
	out[n > 0 ? n : 0] = '\0';
	cr_expect(eq(int, strncmp(out, "HTTP/1.1 200", 12), 0), "%s", out);
	close(fd);
	nap_ms(500);
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/metrics", &r), 0));
	cr_expect(not(eq(ptr, strstr(r.body, "\nmandelweb_trace_slow_saved_total 0\n"), NULL)), "%s", r.body);
	mw_resp_free(&r);
	cr_expect(eq(int, slow_files(dir, newest, sizeof newest), 0), "saved %s", newest);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_expect(eq(int, system(cmd), 0));
}

/* Writes len bytes to path. */
static void put_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert(not(eq(ptr, f, NULL)));
	cr_assert(eq(sz, fwrite(p, 1, len, f), len));
	fclose(f);
}

/* protoc reads path (cat: how to read it, "cat" or "zcat") as a Trace of
 * trace/perfetto.proto with TrackEvents in it. */
static void expect_perfetto(const char *path, const char *cat)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		 "%s %s | protoc --decode=perfetto.protos.Trace -I trace trace/perfetto.proto | grep -q TYPE_SLICE_BEGIN",
		 cat, path);
	cr_expect(eq(int, system(cmd), 0), "%s", cmd);
}

/* The formats by what is asked: format=perfetto, Accept-Encoding: gzip
 * (and not without it); the CLI's by the file's name. */
Test(trace_e2e, perfetto_and_gzip_by_request_and_by_name, .timeout = 60)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/mw-fmt-%d", (int)getpid());
	start((const char *const[]){"--cache-mb", "0", NULL});
	struct mw_resp r;
	const char *const gz[] = {"Accept-Encoding: gzip", NULL};
	struct mw_fetch f = {.m = &srv, .path = "/mandelbrot?w=256&h=256"};
	/* a window with a render in it */
	pthread_t t;
	for (int k = 0; k < 2; k++) {
		const char *url = k ? "/debug/trace?seconds=0.5&format=perfetto" : "/debug/trace?seconds=0.5";
		nap_ms(50);
		struct mw_resp w;
		pthread_create(&t, NULL, mw_fetch_main, &f);
		cr_assert(eq(int, mw_request(&srv, NULL, url, gz, &w), 0));
		pthread_join(t, NULL);
		mw_resp_free(&f.r);
		cr_expect(eq(long, w.status, 200));
		cr_expect(eq(str, w.encoding, "gzip"));
		cr_assert(lt(sz, (size_t)2, w.len));
		cr_expect(eq(int, (unsigned char)w.body[0] << 8 | (unsigned char)w.body[1], 0x1f8b));
		put_file(path, w.body, w.len);
		if (k) {
			cr_expect(not(eq(ptr, strstr(w.disposition, ".pftrace"), NULL)), "%s", w.disposition);
			expect_perfetto(path, "zcat");
		} else {
			char cmd[256];
			snprintf(cmd, sizeof cmd, "zcat %s | python3 -c 'import json,sys; json.load(sys.stdin)'", path);
			cr_expect(eq(int, system(cmd), 0), "gunzipped, the JSON parses");
		}
		mw_resp_free(&w);
	}
	/* not asked for: not gzipped */
	cr_assert(eq(int, mw_get(&srv, "/debug/trace?seconds=0.1&format=perfetto", &r), 0));
	cr_expect(eq(str, r.encoding, ""));
	put_file(path, r.body, r.len);
	expect_perfetto(path, "cat");
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
	remove(path);

	/* The CLI: .pftrace, .pftrace.gz, .json.gz */
	static const char *const names[] = {".pftrace", ".pftrace.gz", ".json.gz"};
	for (int i = 0; i < 3; i++) {
		char file[96], cmd[512];
		snprintf(file, sizeof file, "%s%s", path, names[i]);
		snprintf(cmd, sizeof cmd, "%s/mandelbrot -w 64 -h 64 -mode px -o /dev/null -trace %s 2>/dev/null >/dev/null",
			 MW_BIN, file);
		cr_assert(eq(int, system(cmd), 0), "%s", cmd);
		if (i < 2) {
			expect_perfetto(file, i ? "zcat" : "cat");
		} else {
			snprintf(cmd, sizeof cmd, "zcat %s | python3 -c 'import json,sys; json.load(sys.stdin)'", file);
			cr_expect(eq(int, system(cmd), 0), "%s", cmd);
		}
		remove(file);
	}
}

/* Parses "request N GET /mandelbrot 200: T = queued Q + render R + ..." from
 * a summary: the request's total and its queued and render parts, in ms. */
static int anatomy_line(const char *line, double *total, double *queued, double *render)
{
	const char *p = strchr(line, ':');
	if (!p)
		return -1;
	char unit[4];
	double v;
	*queued = *render = 0;
	if (sscanf(p + 1, " %lf %3s", &v, unit) != 2)
		return -1;
	*total = v * (unit[0] == 'u' ? 1e-3 : unit[0] == 's' ? 1e3 : unit[0] == 'n' ? 1e-6 : 1);
	const char *q = strstr(line, "queued "), *r = strstr(line, "render ");
	if (q && sscanf(q + 7, "%lf %3s", &v, unit) == 2)
		*queued = v * (unit[0] == 'u' ? 1e-3 : unit[0] == 's' ? 1e3 : unit[0] == 'n' ? 1e-6 : 1);
	if (r && sscanf(r + 7, "%lf %3s", &v, unit) == 2)
		*render = v * (unit[0] == 'u' ? 1e-3 : unit[0] == 's' ? 1e3 : unit[0] == 'n' ? 1e-6 : 1);
	return 0;
}

Test(trace_e2e, the_anatomy_of_a_request_queued_behind_another, .timeout = 60)
{
	const char *const args[] = {"--workers", "1", "--cache-mb", "0", "--max-wait", "60", NULL};
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=2&format=summary"};
	struct mw_fetch pic[2];
	pthread_t tt, pt[2];
	start(args);
	pthread_create(&tt, NULL, mw_fetch_main, &tr);
	nap_ms(200);
	for (int i = 0; i < 2; i++) { /* one worker: the second waits for the first */
		pic[i] = (struct mw_fetch){.m = &srv};
		snprintf(pic[i].path, sizeof pic[i].path,
			 "/mandelbrot?w=512&h=512&iter=4000&cx=-0.7435&cy=0.131%d&zoom=200", i);
		pthread_create(&pt[i], NULL, mw_fetch_main, &pic[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(pt[i], NULL);
		cr_expect(eq(long, pic[i].r.status, 200));
		mw_resp_free(&pic[i].r);
	}
	pthread_join(tt, NULL);
	cr_assert(eq(long, tr.r.status, 200));
	const char *sec = strstr(tr.r.body, "slowest requests");
	cr_assert(not(eq(ptr, (void *)sec, NULL)), "%s", tr.r.body);
	double render_max = 0, queued_max = 0;
	int lines = 0;
	for (const char *l = strstr(sec, "\n  request "); l; l = strstr(l + 1, "\n  request ")) {
		double total, queued, render;
		if (anatomy_line(l + 3, &total, &queued, &render) < 0 || !strstr(l, "/mandelbrot"))
			continue;
		lines++;
		render_max = render > render_max ? render : render_max;
		queued_max = queued > queued_max ? queued : queued_max;
		cr_expect(le(dbl, queued + render, total * 1.001), "%.40s", l);
	}
	cr_expect(eq(int, lines, 2), "two pictures taken apart:\n%s", sec);
	cr_expect(lt(dbl, render_max * 0.5, queued_max),
		  "one waited for the other's render: queued %.1f ms, render %.1f ms\n%s", queued_max,
		  render_max, sec);
	cr_expect(not(eq(ptr, strstr(sec, "critical path: worker-0 ran its last job"), NULL)), "%s", sec);
	mw_resp_free(&tr.r);
	/* The window fed the scheduler-delay histogram: its buckets add up. */
	struct mw_resp m;
	cr_assert(eq(int, mw_get(&srv, "/metrics", &m), 0));
	double n = mw_metric(m.body, "mandelweb_sched_runnable_delay_seconds_count{class=\"workers\"}");
	double inf = mw_metric(m.body, "mandelweb_sched_runnable_delay_seconds_bucket{class=\"workers\",le=\"+Inf\"}");
	cr_expect(all(le(dbl, 0, n), eq(dbl, n, inf)), "count %g, +Inf bucket %g", n, inf);
	mw_resp_free(&m);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(trace_e2e, the_slowest_requests_as_json_for_tools, .timeout = 60)
{
	const char *const args[] = {"--workers", "1", "--cache-mb", "0", "--max-wait", "60", NULL};
	struct mw_fetch tr = {.m = &srv, .path = "/debug/trace?seconds=1.5&format=summary-json"};
	struct mw_fetch pic[2];
	pthread_t tt, pt[2];
	start(args);
	pthread_create(&tt, NULL, mw_fetch_main, &tr);
	nap_ms(200);
	for (int i = 0; i < 2; i++) {
		pic[i] = (struct mw_fetch){.m = &srv};
		snprintf(pic[i].path, sizeof pic[i].path,
			 "/mandelbrot?w=512&h=512&iter=3000&cx=-0.7435&cy=0.131%d&zoom=200", i);
		pthread_create(&pt[i], NULL, mw_fetch_main, &pic[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(pt[i], NULL);
		mw_resp_free(&pic[i].r);
	}
	pthread_join(tt, NULL);
	cr_assert(eq(long, tr.r.status, 200));
	cr_expect(eq(str, tr.r.type, "application/json"));
	json_error_t err;
	json_t *doc = json_loadb(tr.r.body, tr.r.len, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s", err.text);
	json_t *reqs = json_object_get(doc, "slowest_requests"), *q;
	size_t i, pictures = 0;
	json_int_t queued_max = 0, render_max = 0;
	json_array_foreach(reqs, i, q) {
		const char *route = json_string_value(json_object_get(q, "route"));
		if (!route || strcmp(route, "/mandelbrot") != 0)
			continue;
		pictures++;
		json_int_t total = json_integer_value(json_object_get(q, "total_ns")), sum = 0;
		static const char *const parts[] = {"queued_ns", "render_ns", "encode_ns", "send_ns",
						    "held_ns", "other_ns"};
		for (int k = 0; k < 6; k++)
			sum += json_integer_value(json_object_get(q, parts[k]));
		cr_expect(eq(i64, (int64_t)sum, (int64_t)total), "the parts add up to the whole");
		json_int_t qd = json_integer_value(json_object_get(q, "queued_ns"));
		json_int_t rd = json_integer_value(json_object_get(q, "render_ns"));
		queued_max = qd > queued_max ? qd : queued_max;
		render_max = rd > render_max ? rd : render_max;
		cr_expect(eq(str, (char *)json_string_value(json_object_get(q, "critical_thread")),
			     "worker-0"));
		cr_expect(eq(str, (char *)json_string_value(json_object_get(q, "resumed_by")), "worker-0"));
	}
	cr_expect(eq(sz, pictures, (size_t)2));
	cr_expect(lt(i64, (int64_t)(render_max / 2), (int64_t)queued_max), "one queued behind the other");
	cr_expect(lt(sz, (size_t)0, json_array_size(json_object_get(doc, "threads"))));
	json_decref(doc);
	mw_resp_free(&tr.r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}
