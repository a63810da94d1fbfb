/* test_kview.c - the kernel's view of traced threads: a thread that
 * sleeps comes out blocked, one that spins alone running, two spinning on
 * one CPU runnable half the time each; the summary's shares add up to the
 * window; the drainer sleeps while idle and wakes when a ring fills; and
 * where the kernel refuses, the trace says so and the rest is
 * as before. Each test is its own process (Criterion forks), so each has
 * its own tracer. Where perf_event_open is refused for real (a container's
 * seccomp profile, perf_event_paranoid 3) the state tests are skipped and
 * say why; the refusal test runs everywhere. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tests/harness.h"
#include "trace/capture.h"
#include "trace/trace.h"

static const struct trace_desc D_WORK = {"wait: test", "test", {0}, 0};

static char *read_all(struct trace_capture *c, size_t *len)
{
	size_t cap = 1 << 16, n = 0, k;
	char *buf = malloc(cap);
	while ((k = trace_capture_read(c, buf + n, cap - n - 1)) > 0) {
		n += k;
		if (cap - n < 4096)
			buf = realloc(buf, cap *= 2);
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

struct actor {
	const char *name;
	int cpu;        /* pinned there, or -1 */
	int sleep;      /* 1: sleeps; 0: spins */
	double seconds;
};

static void *act(void *arg)
{
	struct actor *a = arg;
	if (a->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(a->cpu, &set);
		cr_assert(eq(int, pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0));
	}
	trace_thread_name(a->name); /* registers: the event opens */
	uint64_t t0 = trace_begin();
	if (a->sleep) {
		struct timespec d = {0, (long)(a->seconds * 1e9)};
		nanosleep(&d, NULL);
	} else {
		double end = now_s() + a->seconds;
		volatile unsigned long spin = 0;
		while (now_s() < end)
			spin++;
	}
	trace_span(&D_WORK, t0, 0, 0);
	return NULL;
}

/* Runs the actors inside one window; returns the parsed document. */
static json_t *window(struct actor *a, int n)
{
	struct trace_capture *c;
	pthread_t th[4];
	trace_init(&(struct trace_config){.ring_events = 4096, .process = "kview"});
	cr_assert(eq(int, trace_capture_open(&c), 0));
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, act, &a[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	trace_capture_close(c);
	size_t len;
	char *text = read_all(c, &len);
	trace_capture_free(c);
	json_error_t err;
	json_t *doc = json_loadb(text, len, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "not JSON: %s", err.text);
	free(text);
	return doc;
}

static void skip_unless_on(void)
{
	struct trace_kview_usage u;
	trace_kview_usage(&u);
	if (strcmp(u.state, "on") != 0)
		cr_skip_test("the kernel view is %s here: %s", u.state, u.why);
}

/* Nanoseconds of each state on the kernel track of the thread named name. */
struct states {
	double running, runnable, blocked;
	int cpu_seen;
};

static struct states states_of(json_t *doc, const char *name)
{
	char kname[64];
	json_int_t tid = -1;
	json_t *ev, *evs = json_object_get(doc, "traceEvents");
	size_t i;
	struct states s = {0};

	snprintf(kname, sizeof kname, "%s [kernel]", name);
	json_array_foreach(evs, i, ev) {
		json_t *args = json_object_get(ev, "args");
		if (strcmp(json_string_value(json_object_get(ev, "ph")), "M") == 0 &&
		    strcmp(json_string_value(json_object_get(ev, "name")), "thread_name") == 0 &&
		    strcmp(json_string_value(json_object_get(args, "name")), kname) == 0)
			tid = json_integer_value(json_object_get(ev, "tid"));
	}
	cr_assert(ne(i64, tid, -1), "no kernel track for %s", name);
	json_array_foreach(evs, i, ev) {
		if (json_integer_value(json_object_get(ev, "tid")) != tid ||
		    strcmp(json_string_value(json_object_get(ev, "ph")), "X") != 0)
			continue;
		const char *st = json_string_value(json_object_get(ev, "name"));
		double d = json_number_value(json_object_get(ev, "dur")) / 1e3; /* ms */
		if (strcmp(st, "running") == 0) {
			s.running += d;
			s.cpu_seen |= json_integer_value(json_object_get(json_object_get(ev, "args"),
									 "cpu")) >= 0;
		} else if (strcmp(st, "runnable") == 0) {
			s.runnable += d;
		} else {
			cr_assert(eq(str, (char *)st, "blocked"));
			s.blocked += d;
		}
	}
	return s;
}

Test(kview, a_sleeping_thread_is_blocked_and_a_lone_spinner_running, .timeout = 30)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct actor a[] = {{"sleeper", -1, 1, 0.3}, {"spinner", cpus > 1 ? 1 : 0, 0, 0.3}};
	json_t *doc = window(a, 2);
	skip_unless_on();
	struct states sl = states_of(doc, "sleeper"), sp = states_of(doc, "spinner");
	cr_expect(lt(dbl, 250.0, sl.blocked), "sleeper blocked %.1f ms of 300", sl.blocked);
	cr_expect(lt(dbl, sl.running, 20.0), "sleeper running %.1f ms", sl.running);
	/* A shared machine may take the spinner's CPU: then it is runnable,
	 * never blocked (beside another test, CI's make test runs two). */
	cr_expect(lt(dbl, 250.0, sp.running + sp.runnable), "spinner running %.1f ms, runnable %.1f ms of 300",
		  sp.running, sp.runnable);
	cr_expect(lt(dbl, 75.0, sp.running), "spinner running %.1f ms of 300", sp.running);
	cr_expect(lt(dbl, sp.blocked, 20.0), "spinner blocked %.1f ms", sp.blocked);
	cr_expect(sp.cpu_seen, "running spans carry the CPU");
	json_decref(doc);
}

Test(kview, two_spinners_on_one_cpu_are_each_runnable_about_half_the_time, .timeout = 30)
{
	struct actor a[] = {{"spin-a", 0, 0, 0.4}, {"spin-b", 0, 0, 0.4}};
	json_t *doc = window(a, 2);
	skip_unless_on();
	for (int i = 0; i < 2; i++) {
		struct states s = states_of(doc, a[i].name);
		/* Each wants the CPU all the time and gets about half of it:
		 * the other half it is preempted, runnable, never blocked. */
		cr_expect(lt(dbl, 80.0, s.runnable), "%s runnable %.1f ms", a[i].name, s.runnable);
		cr_expect(lt(dbl, 80.0, s.running), "%s running %.1f ms", a[i].name, s.running);
		cr_expect(lt(dbl, s.blocked, 20.0), "%s blocked %.1f ms", a[i].name, s.blocked);
	}
	json_decref(doc);
}

Test(kview, the_summary_shares_add_up_to_the_window_and_name_the_wait, .timeout = 30)
{
	struct trace_capture *c;
	struct actor a[] = {{"sleeper", -1, 1, 0.2}, {"spinner", -1, 0, 0.2}};
	pthread_t th[2];

	trace_init(&(struct trace_config){.ring_events = 4096, .process = "kview"});
	cr_assert(eq(int, trace_capture_open(&c), 0));
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, act, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	trace_capture_format(c, TRACE_FORMAT_SUMMARY);
	size_t len;
	char *text = read_all(c, &len);
	trace_capture_free(c);
	skip_unless_on();
	cr_assert(eq(int, strncmp(text, "trace summary: window ", 22), 0), "%s", text);
	int threads = 0;
	for (const char *p = text; (p = strstr(p, "  running ")); p++) {
		double r, q, b, u;
		cr_assert(eq(int, sscanf(p, "  running %lf%% runnable %lf%% blocked %lf%% unknown %lf%%",
					 &r, &q, &b, &u), 4), "%.80s", p);
		/* Each share is rounded to 0.1%: four of them to 0.2% at most. */
		cr_expect(le(dbl, r + q + b + u, 100.21), "%.80s", p);
		cr_expect(ge(dbl, r + q + b + u, 99.79), "%.80s", p);
		threads++;
	}
	cr_expect(eq(int, threads, 2), "%s", text);
	/* The sleeper's blocked time is under its wait span. */
	cr_expect(not(eq(ptr, strstr(text, "blocked in: wait: test"), NULL)), "%s", text);
	free(text);
}

Test(kview, a_refused_kernel_is_said_in_the_trace_and_the_rest_works, .timeout = 30)
{
	struct trace_capture *c;
	struct actor a[] = {{"sleeper", -1, 1, 0.05}};
	pthread_t th;

	trace_init(&(struct trace_config){.ring_events = 1024, .kview = TRACE_KVIEW_REFUSE});
	cr_assert(eq(int, trace_capture_open(&c), 0));
	pthread_create(&th, NULL, act, &a[0]);
	pthread_join(th, NULL);
	trace_capture_close(c);
	size_t len;
	char *text = read_all(c, &len);
	trace_capture_free(c);
	json_t *doc = json_loadb(text, len, 0, NULL);
	cr_assert(not(eq(ptr, doc, NULL)));
	json_t *od = json_object_get(doc, "otherData");
	cr_expect(eq(str, (char *)json_string_value(json_object_get(od, "kernel_view")), "refused"));
	cr_expect(not(eq(ptr, strstr(json_string_value(json_object_get(od, "kernel_view_why")),
				     "perf_event_open"), NULL)));
	cr_expect(eq(ptr, strstr(text, "[kernel]"), NULL), "no kernel track when refused");
	cr_expect(not(eq(ptr, strstr(text, "\"wait: test\""), NULL)), "the program's own spans stay");
	struct trace_kview_usage u;
	trace_kview_usage(&u);
	cr_expect(eq(u32, u.refused, 1));
	json_decref(doc);
	free(text);
}

Test(kview, the_events_are_open_only_while_armed, .timeout = 30)
{
	struct trace_capture *c;
	struct actor a[] = {{"sleeper", -1, 1, 0.05}};
	pthread_t th;

	trace_init(&(struct trace_config){.ring_events = 1024});
	trace_thread_name("main"); /* registered while disarmed: nothing opened */
	cr_expect(eq(int, mw_perf_fds(), 0));
	for (int round = 0; round < 2; round++) {
		cr_assert(eq(int, trace_capture_open(&c), 0));
		pthread_create(&th, NULL, act, &a[0]);
		pthread_join(th, NULL);
		struct trace_kview_usage u;
		trace_kview_usage(&u);
		if (strcmp(u.state, "on") != 0) {
			trace_capture_free(c);
			cr_skip_test("the kernel view is %s here: %s", u.state, u.why);
		}
		/* main's, and the sleeper's (it has ended: its event may be gone) */
		cr_expect(le(int, 1, mw_perf_fds()), "armed: events open");
		trace_capture_close(c);
		/* Disarmed: every event closed, so the kernel does nothing more
		 * for these threads. */
		cr_expect(eq(int, mw_perf_fds(), 0), "round %d: disarmed, yet events open", round);
		trace_kview_usage(&u);
		cr_expect(eq(u32, u.threads, 0));
		size_t len;
		free(read_all(c, &len)); /* and the window still reads */
		trace_capture_free(c);
	}
}

/* An armed tracer with nothing to record costs nothing: the kernel view's
 * drainer sleeps between its rounds (its clock once made it spin a whole
 * CPU: a CLOCK_REALTIME condition variable given a monotonic deadline). */
Test(kview, an_armed_idle_process_uses_under_1_percent_of_a_cpu, .timeout = 30)
{
	static const struct trace_desc d = {"idle", "test", {0}, 0};
	struct trace_capture *c;
	trace_init(&(struct trace_config){.ring_events = 4096, .process = "idle"});
	cr_assert(eq(int, trace_capture_open(&c), 0));
	trace_instant(&d, 0, 0); /* this thread registers, the drainer starts */
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	struct timespec nap = {1, 0};
	nanosleep(&nap, NULL);
	getrusage(RUSAGE_SELF, &b);
	double cpu = (b.ru_utime.tv_sec - a.ru_utime.tv_sec) + (b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
		     ((b.ru_utime.tv_usec - a.ru_utime.tv_usec) + (b.ru_stime.tv_usec - a.ru_stime.tv_usec)) / 1e6;
	cr_expect(lt(dbl, cpu, 0.01), "%.3f s of CPU in a second, armed and idle", cpu);
	trace_capture_free(c);
}

static int threads_now(void)
{
	int n = mw_dir_entries("/proc/self/task");
	cr_assert(ge(int, n, 0));
	return n;
}

static atomic_int toggling;

static void *toggle_flight(void *arg)
{
	(void)arg;
	trace_instant(&D_WORK, 0, 0);
	while (atomic_load(&toggling)) {
		trace_flight_recorder(1);
		trace_instant(&D_WORK, 0, 0);
		trace_flight_recorder(0);
	}
	return NULL;
}

static void *toggle_windows(void *arg)
{
	(void)arg;
	trace_instant(&D_WORK, 0, 0);
	while (atomic_load(&toggling)) {
		struct trace_capture *c;
		if (trace_capture_open(&c) == 0) {
			trace_instant(&D_WORK, 0, 0);
			trace_capture_close(c);
			trace_capture_free(c);
		}
	}
	return NULL;
}

/* Arms and disarms from two threads at once: a disarm joins its drainer
 * outside the view's lock, and the next arm waits for that join, so every
 * join returns and, disarmed, no drainer is left. Then a drainer asleep
 * (nothing to drain) is stopped: the stop wakes it (without its kick, this
 * disarm's join never returned). */
Test(kview, arming_and_disarming_at_once_leaves_no_drainer, .timeout = 30)
{
	trace_init(&(struct trace_config){.ring_events = 4096, .process = "toggle"});
	int base = threads_now();
	pthread_t a, b;
	atomic_store(&toggling, 1);
	pthread_create(&a, NULL, toggle_flight, NULL);
	pthread_create(&b, NULL, toggle_windows, NULL);
	struct timespec run = {1, 0}, settle = {0, 200000000};
	nanosleep(&run, NULL);
	atomic_store(&toggling, 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	nanosleep(&settle, NULL);
	cr_expect(eq(int, threads_now(), base), "threads: %d, before %d", threads_now(), base);
	trace_flight_recorder(1);
	struct timespec asleep = {0, 300000000};
	nanosleep(&asleep, NULL); /* two rounds on, the drainer sleeps */
	trace_flight_recorder(0);
	nanosleep(&settle, NULL);
	cr_expect(eq(int, threads_now(), base), "threads: %d, before %d", threads_now(), base);
}

/* The drainer sleeps once a round finds nothing; a thread that then
 * switches without recording a thing (so never drains its own ring) fills
 * its kernel ring, and the kernel wakes the drainer when the ring is half
 * full (4,096 records: 1,200 sleeps make 2,400), which moves the records
 * with no capture asking. It runs when a CPU is idle (SCHED_IDLE), so on
 * a busy machine it is given seconds. With the wake-up mark past the
 * ring's end it never woke. */
Test(kview, a_ring_half_full_wakes_the_sleeping_drainer, .timeout = 30)
{
	static const struct trace_desc d = {"sleeps", "test", {0}, 0};
	struct trace_capture *c;
	trace_init(&(struct trace_config){.ring_events = 4096, .process = "fill"});
	cr_assert(eq(int, trace_capture_open(&c), 0));
	trace_instant(&d, 0, 0); /* this thread registers: its event opens */
	skip_unless_on();
	struct timespec settle = {0, 300000000}, t = {0, 20000}, poll = {0, 10000000};
	nanosleep(&settle, NULL); /* two rounds on, the drainer sleeps */
	struct trace_kview_usage u0, u1;
	trace_kview_usage(&u0);
	for (int i = 0; i < 1200; i++)
		nanosleep(&t, NULL);
	for (int w = 0; w < 500; w++) {
		trace_kview_usage(&u1);
		if (u1.switches - u0.switches >= 2000)
			break;
		nanosleep(&poll, NULL);
	}
	cr_expect(le(u64, 2000, u1.switches - u0.switches), "%llu switches moved in 5 s",
		  (unsigned long long)(u1.switches - u0.switches));
	trace_capture_free(c);
}
