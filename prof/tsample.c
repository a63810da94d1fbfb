/*
 * tsample.c - CPU samples in traces: while the tracer is armed, each
 * thread with a ring is sampled by its own CPU-clock timer (sigprof.c, the
 * SIG_TRACE set), and a collector thread files the samples in the rings
 * (trace_sample: trace/samples.c), where a capture finds them beside the
 * thread's spans.
 *
 * The tracer calls sync at every move of its armed count: the first arm
 * creates a timer for every ring registered so far and starts the
 * collector; a thread that registers while armed gets its timer then
 * (thread); the last disarm deletes the timers, files what they left and
 * stops the collector. Disarmed, nothing runs and nothing is open. Armed,
 * the collector files a round every TS_PERIOD_MS at most while samples
 * come, and sleeps (sig_wait) after a round that found none until the
 * next one is taken: threads that use no CPU wake nobody.
 *
 * Thread-safety: sync is serialised by its own lock; the slots, the
 * collector's state and the counts are under mu, which the collector holds
 * while it files a round of samples (never while it sleeps).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "prof/internal.h"
#include "trace/trace.h"

#define TS_PERIOD_MS 50 /* the collector's round, at most */

static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned hz;
static int on, stop;
static pthread_t collector;
static unsigned slot_ring[SIG_THREADS]; /* the ring each slot's samples go to */
static unsigned threads;
static uint64_t lost;
static char why[160]; /* where sampling failed: why */

/* Under mu. */
static void arm_ring(unsigned ring, int tid)
{
	int k = sig_arm(SIG_TRACE, tid, hz);
	if (k >= 0) {
		slot_ring[k] = ring;
		threads++;
	} else if (k != -ESRCH && k != -EINVAL) { /* not merely a thread that has ended */
		snprintf(why, sizeof why, "%s", k == -ENOSPC ? "more threads than slots"
							       : strerror(-k));
	}
}

static void file_sample(void *ctx, int slot, int tid, const struct sig_sample *x)
{
	(void)ctx, (void)tid;
	trace_sample(slot_ring[slot], x->ts, x->ips, x->depth, x->weight);
}

static void *collect_main(void *arg)
{
	(void)arg;
	/* A round fills under half a slot's ring at any rate. */
	long ms = (long)SIG_RING * 1000 / 2 / (long)hz;
	ms = ms < 1 ? 1 : ms > TS_PERIOD_MS ? TS_PERIOD_MS : ms;
	/* After a round that found nothing (the threads sampled use no CPU)
	 * it sleeps until a sample comes: an idle process wakes nobody. */
	int idle = 0;
	pthread_mutex_lock(&mu);
	while (!stop) {
		pthread_mutex_unlock(&mu);
		struct timespec t, *until = NULL;
		if (!idle) {
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += ms * 1000000L;
			t.tv_sec += t.tv_nsec / 1000000000L;
			t.tv_nsec %= 1000000000L;
			until = &t;
		}
		sig_wait(SIG_TRACE, until);
		pthread_mutex_lock(&mu);
		idle = sig_collect(SIG_TRACE, file_sample, NULL, &lost) == 0;
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void ts_sync(void)
{
	pthread_mutex_lock(&sync_mu);
	int want = trace_on();
	pthread_mutex_lock(&mu);
	if (want && !on) {
		char e[160];
		if (sig_install(e, sizeof e) < 0) {
			snprintf(why, sizeof why, "%s", e);
		} else {
			why[0] = 0;
			threads = 0;
			unsigned n = trace_ring_count();
			for (unsigned i = 0; i < n; i++)
				if (trace_ring_tid(i))
					arm_ring(i, trace_ring_tid(i));
			stop = 0;
			on = pthread_create(&collector, NULL, collect_main, NULL) == 0;
			if (!on) {
				snprintf(why, sizeof why, "cannot start the collector thread");
				sig_disarm(SIG_TRACE);
				sig_release(SIG_TRACE);
			}
		}
	} else if (!want && on) {
		on = 0;
		stop = 1;
		sig_kick(SIG_TRACE);
		pthread_mutex_unlock(&mu);
		pthread_join(collector, NULL);
		pthread_mutex_lock(&mu);
		sig_disarm(SIG_TRACE);
		sig_collect(SIG_TRACE, file_sample, NULL, &lost); /* what the timers left */
		sig_release(SIG_TRACE);
	}
	pthread_mutex_unlock(&mu);
	pthread_mutex_unlock(&sync_mu);
}

static void ts_thread(unsigned ring, int tid)
{
	pthread_mutex_lock(&mu);
	if (on)
		arm_ring(ring, tid);
	pthread_mutex_unlock(&mu);
}

static void *ts_sym_open(void)
{
	return prof_syms_open();
}

static const char *ts_sym_name(void *s, uint64_t pc, const char **file)
{
	return prof_syms_function(s, pc, file);
}

static void ts_sym_close(void *s)
{
	prof_syms_close(s);
}

static void ts_how(char *buf, size_t len)
{
	pthread_mutex_lock(&mu);
	if (why[0] && !threads)
		snprintf(buf, len, "unavailable: %s", why);
	else
		snprintf(buf, len, "SIGPROF timers on each thread's CPU clock at %u Hz (%u threads%s%s)",
			 hz, threads, why[0] ? "; some refused: " : "", why);
	pthread_mutex_unlock(&mu);
}

static const struct trace_sampler sampler = {
	ts_sync, ts_thread, ts_sym_open, ts_sym_name, ts_sym_close, ts_how,
};

int prof_trace_samples(unsigned rate)
{
	if (rate < 1 || rate > PROF_HZ_MAX)
		return -EINVAL;
	hz = rate;
	return trace_sampler_attach(&sampler);
}
