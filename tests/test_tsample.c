/*
 * test_tsample.c - CPU samples in traces (prof/tsample.c, trace/samples.c):
 * the document's "samples" and "stackFrames" are whole (every sample's
 * frame, every frame's parent, every sample's thread, in the window), the
 * kernel holds most of the workers' samples, the weights add up to the
 * threads' CPU time as the kernel's view measured it, and samples=off or
 * -trace-hz 0 leave them out.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

struct verdict {
	double weight;        /* every sample's weight */
	double kernel;        /* of it, samples whose leaf is a kernel's (kv_*, kernel_*) on prefix* threads */
	double on_prefix;     /* of it, on prefix* threads */
	size_t samples;
};

static const char *thread_name(json_t *doc, json_int_t tid)
{
	json_t *ev;
	size_t i;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		const char *ph = json_string_value(json_object_get(ev, "ph"));
		const char *n = json_string_value(json_object_get(ev, "name"));
		if (ph && n && !strcmp(ph, "M") && !strcmp(n, "thread_name") &&
		    json_integer_value(json_object_get(ev, "tid")) == tid)
			return json_string_value(json_object_get(json_object_get(ev, "args"), "name"));
	}
	return NULL;
}

/* Checks every sample and frame; what the samples say of prefix* threads. */
static struct verdict check_samples(json_t *doc, const char *prefix)
{
	struct verdict v = {0};
	json_t *samples = json_object_get(doc, "samples"), *frames = json_object_get(doc, "stackFrames");
	bool arr = json_is_array(samples), obj = json_is_object(frames);
	cr_assert(arr, "no samples array");
	cr_assert(obj, "no stackFrames object");
	json_t *od = json_object_get(doc, "otherData");
	/* Times are from the window's start. */
	double t0 = 0;
	double t1 = json_number_value(json_object_get(od, "window_end_us")) -
		    json_number_value(json_object_get(od, "window_start_us"));
	cr_expect(eq(sz, (size_t)json_integer_value(json_object_get(od, "cpu_samples")),
		     json_array_size(samples)));
	json_t *s;
	size_t i;
	json_array_foreach(samples, i, s) {
		json_int_t tid = json_integer_value(json_object_get(s, "tid"));
		double ts = json_number_value(json_object_get(s, "ts"));
		double w = (double)json_integer_value(json_object_get(s, "weight"));
		json_int_t sf = json_integer_value(json_object_get(s, "sf"));
		bool pid = json_is_integer(json_object_get(s, "pid"));
		cr_assert(pid, "sample %zu: no pid", i);
		const char *tn = thread_name(doc, tid);
		cr_assert(not(eq(ptr, (void *)tn, NULL)), "sample %zu: thread %lld has no name", i,
			  (long long)tid);
		cr_expect(le(dbl, t0, ts), "sample %zu before the window", i);
		cr_expect(le(dbl, ts, t1), "sample %zu after the window", i);
		cr_expect(lt(dbl, 0.0, w));
		char key[24];
		snprintf(key, sizeof key, "%lld", (long long)sf);
		json_t *f = json_object_get(frames, key);
		cr_assert(not(eq(ptr, f, NULL)), "sample %zu: frame %s missing", i, key);
		const char *leaf = json_string_value(json_object_get(f, "name"));
		cr_assert(not(eq(ptr, (void *)leaf, NULL)));
		int depth = 0;
		for (json_t *p = f; json_object_get(p, "parent"); depth++) {
			cr_assert(lt(int, depth, 200), "frame %s: a cycle", key);
			snprintf(key, sizeof key, "%lld",
				 (long long)json_integer_value(json_object_get(p, "parent")));
			p = json_object_get(frames, key);
			cr_assert(not(eq(ptr, p, NULL)), "parent %s missing", key);
		}
		v.weight += w;
		v.samples++;
		if (strncmp(tn, prefix, strlen(prefix)) == 0) {
			v.on_prefix += w;
			if (!strncmp(leaf, "kv_", 3) || !strncmp(leaf, "kernel_", 7))
				v.kernel += w;
		}
	}
	return v;
}

/* Milliseconds the kernel's view saw threads named prefix* running. */
static double running_ms(json_t *doc, const char *prefix)
{
	char want[64];
	snprintf(want, sizeof want, "%s", prefix);
	double us = 0;
	json_t *ev;
	size_t i;
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		const char *n = json_string_value(json_object_get(ev, "name"));
		if (!n || strcmp(n, "running") != 0)
			continue;
		const char *tn = thread_name(doc, json_integer_value(json_object_get(ev, "tid")));
		if (tn && !strncmp(tn, want, strlen(want)) && strstr(tn, "[kernel]"))
			us += json_number_value(json_object_get(ev, "dur"));
	}
	return us / 1000;
}

static json_t *cli(const char *args, const char *path)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s/mandelbrot %s -o /dev/null -trace %s 2>/dev/null >/dev/null",
		 MW_BIN, args, path);
	cr_assert(eq(int, system(cmd), 0), "%s", cmd);
	json_error_t err;
	json_t *doc = json_load_file(path, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s: %s", path, err.text);
	remove(path);
	return doc;
}

Test(tsample, a_cli_trace_holds_whole_samples_mostly_in_the_kernel, .timeout = 120)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/mw-tsample-%d.json", (int)getpid());
	json_t *d = cli("-w 1024 -h 1024 -iter 3000 -mode row -workers 2", path);
	struct verdict v = check_samples(d, "worker-");
	cr_log_info("row: %zu samples, weight %.0f, on workers %.0f, kernel %.0f", v.samples,
		    v.weight, v.on_prefix, v.kernel);
	cr_expect(lt(dbl, 0.0, v.on_prefix), "no sample on a worker");
	cr_expect(lt(dbl, v.on_prefix * 0.5, v.kernel), "the kernel is not the workers' majority");
	json_decref(d);
}

Test(tsample, the_weights_add_up_to_the_cpu_time_the_kernel_saw, .timeout = 120)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/mw-tsample-w-%d.json", (int)getpid());
	json_t *d = cli("-w 1024 -h 1024 -iter 3000 -mode seq", path);
	const char *kv = json_string_value(json_object_get(json_object_get(d, "otherData"), "kernel_view"));
	struct verdict v = check_samples(d, "main");
	double ms = running_ms(d, "main");
	cr_log_info("seq: main ran %.1f ms, its samples weigh %.0f ms (1 kHz)", ms, v.on_prefix);
	if (kv && !strcmp(kv, "on")) {
		cr_expect(lt(dbl, ms * 0.8, v.on_prefix), "%.0f sampled ms of %.1f", v.on_prefix, ms);
		cr_expect(lt(dbl, v.on_prefix, ms * 1.2), "%.0f sampled ms of %.1f", v.on_prefix, ms);
	} else {
		cr_log_warn("kernel view %s: the CPU time is not known, only the samples checked", kv);
	}
	json_decref(d);
}

Test(tsample, trace_hz_0_leaves_the_samples_out, .timeout = 60)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/mw-tsample-0-%d.json", (int)getpid());
	json_t *d = cli("-w 256 -h 256 -mode row -workers 2 -trace-hz 0", path);
	cr_expect(eq(ptr, json_object_get(d, "samples"), NULL));
	cr_expect(eq(ptr, json_object_get(d, "stackFrames"), NULL));
	cr_expect(eq(str, (char *)json_string_value(json_object_get(json_object_get(d, "otherData"),
								   "cpu_sampler")),
		     "off: no sampler"));
	json_decref(d);
}

Test(tsample, a_service_window_holds_the_workers_samples_unless_asked_not_to, .timeout = 120)
{
	struct mw m;
	const char *args[] = {"--workers", "2", "--cache-mb", "0", NULL};
	cr_assert(eq(int, mw_start(&m, args), 0));
	struct mw_fetch w = {.m = &m, .path = "/debug/trace?seconds=1.5"};
	pthread_t t;
	pthread_create(&t, NULL, mw_fetch_main, &w);
	usleep(200 * 1000);
	for (int i = 0; i < 8; i++) {
		char path[96];
		struct mw_resp r;
		snprintf(path, sizeof path, "/mandelbrot?w=512&h=512&iter=2000&cx=-0.%d", 40 + i);
		cr_expect(eq(int, mw_get(&m, path, &r), 0));
		cr_expect(eq(long, r.status, 200));
		mw_resp_free(&r);
	}
	pthread_join(t, NULL);
	cr_assert(eq(int, w.rc, 0));
	cr_assert(eq(long, w.r.status, 200));
	json_error_t err;
	json_t *d = json_loadb(w.r.body, w.r.len, 0, &err);
	cr_assert(not(eq(ptr, d, NULL)), "%s", err.text);
	struct verdict v = check_samples(d, "worker");
	cr_log_info("service: %zu samples, workers %.0f, kernel %.0f", v.samples, v.on_prefix,
		    v.kernel);
	cr_expect(lt(dbl, v.on_prefix * 0.5, v.kernel), "the kernel is not the workers' majority");
	json_decref(d);
	mw_resp_free(&w.r);

	struct mw_resp r;
	cr_assert(eq(int, mw_get(&m, "/debug/trace?seconds=0.2&samples=off", &r), 0));
	cr_expect(eq(long, r.status, 200));
	d = json_loadb(r.body, r.len, 0, &err);
	cr_assert(not(eq(ptr, d, NULL)));
	cr_expect(eq(ptr, json_object_get(d, "samples"), NULL));
	json_decref(d);
	mw_resp_free(&r);
	cr_assert(eq(int, mw_get(&m, "/debug/trace?seconds=0.2&samples=maybe", &r), 0));
	cr_expect(eq(long, r.status, 400));
	mw_resp_free(&r);
	mw_stop(&m, SIGTERM);
}
