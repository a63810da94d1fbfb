/*
 * bench_trace.c - the tracer's costs for `make bench`. One figure per
 * line, `name value unit`; best of BENCH_REPS rounds of N events.
 *
 *   trace_clock_now            one trace_now()
 *   trace_disarmed_span        trace_begin + trace_span while disarmed
 *   trace_disarmed_counter     trace_counter while disarmed
 *   trace_armed_instant        one instant, armed, ring already touched
 *   trace_armed_counter        one counter, armed
 *   trace_armed_span           one span: its two clock reads and the record
 *   trace_armed_span_threads_N the same on N threads at once (N = CPUs),
 *                              per event per thread
 *   trace_armed_span_first_touch  a span into a fresh ring: the page faults
 *                              of first use, once per thread per process
 *   trace_export               Chrome JSON produced by a capture, MB/s, and
 *   trace_export_bytes_per_event  its size per event
 *
 * Usage: bench_trace [reps] (default 7).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "trace/capture.h"
#include "trace/trace.h"

#define N 2000000 /* events a round */
#define RING (1u << 16)

static const struct trace_desc D = {"bench", "bench", {"i", "j"}, 0};
static int reps = 7;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

enum what { CLOCK, SPAN, COUNTER, INSTANT };

/* One event of kind w. */
static inline void event(enum what w, long i, volatile uint64_t *sink)
{
	switch (w) {
	case CLOCK:
		*sink += trace_now();
		break;
	case SPAN: {
		uint64_t b = trace_begin();
		trace_span(&D, b, i, 0);
		break;
	}
	case COUNTER:
		trace_counter(&D, i);
		break;
	case INSTANT:
		trace_instant(&D, i, 0);
		break;
	}
}

/* ns per event of one round of what: 8 events an iteration, so that the
 * loop's own cost and its code alignment do not count. */
static double round_ns(enum what w)
{
	volatile uint64_t sink = 0;
	double t0 = now_s();
	for (long i = 0; i < N; i += 8) {
		event(w, i, &sink), event(w, i + 1, &sink), event(w, i + 2, &sink);
		event(w, i + 3, &sink), event(w, i + 4, &sink), event(w, i + 5, &sink);
		event(w, i + 6, &sink), event(w, i + 7, &sink);
	}
	return (now_s() - t0) * 1e9 / N;
}

static double best_ns(enum what w)
{
	double best = 1e30;
	for (int r = 0; r < reps; r++) {
		double t = round_ns(w);
		best = t < best ? t : best;
	}
	return best;
}

static void *span_thread(void *arg)
{
	double *out = arg;
	*out = best_ns(SPAN);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		reps = atoi(argv[1]) > 0 ? atoi(argv[1]) : reps;
	trace_init(&(struct trace_config){.ring_events = RING, .process = "bench",
					   .kview = argc > 2 ? trace_kview_parse(argv[2]) : TRACE_KVIEW_AUTO});
	struct trace_capture *c;

	printf("trace_clock_now %.2f ns\n", best_ns(CLOCK));
	printf("trace_disarmed_span %.2f ns\n", best_ns(SPAN));
	printf("trace_disarmed_counter %.2f ns\n", best_ns(COUNTER));

	trace_flight_recorder(1);
	double t0 = now_s();
	for (unsigned i = 0; i < RING; i++) { /* the first events register and touch the ring */
		uint64_t b = trace_begin();
		trace_span(&D, b, i, 0);
	}
	printf("trace_armed_span_first_touch %.2f ns\n", (now_s() - t0) * 1e9 / RING);
	printf("trace_armed_instant %.2f ns\n", best_ns(INSTANT));
	printf("trace_armed_counter %.2f ns\n", best_ns(COUNTER));
	printf("trace_armed_span %.2f ns\n", best_ns(SPAN));

	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpus = cpus < 1 ? 1 : cpus > 64 ? 64 : cpus;
	pthread_t th[64];
	double ns[64], worst = 0;
	for (long i = 0; i < cpus; i++) /* warm each thread's ring, then measure */
		pthread_create(&th[i], NULL, span_thread, &ns[i]);
	for (long i = 0; i < cpus; i++) {
		pthread_join(th[i], NULL);
		worst = ns[i] > worst ? ns[i] : worst;
	}
	printf("trace_armed_span_threads_%ld %.2f ns\n", cpus, worst);

	/* Export: the main thread's full ring as JSON. */
	static char buf[1 << 16];
	size_t bytes = 0, n;
	struct trace_facts f;
	trace_flight_recorder(0);
	for (unsigned i = 0; i < RING; i++)
		trace_instant(&D, i, i); /* disarmed: nothing; re-arm below */
	if (trace_capture_open(&c) == 0) {
		for (unsigned i = 0; i < RING - 1; i++) {
			uint64_t b = trace_begin();
			trace_span(&D, b, i, 0);
		}
		trace_capture_close(c);
		t0 = now_s();
		while ((n = trace_capture_read(c, buf, sizeof buf)) > 0)
			bytes += n;
		double dt = now_s() - t0;
		trace_capture_facts(c, &f);
		trace_capture_free(c);
		printf("trace_export %.1f MB/s\n", bytes / dt / 1e6);
		printf("trace_export_bytes_per_event %.1f bytes\n", (double)bytes / (double)f.events);
	}
	return 0;
}
