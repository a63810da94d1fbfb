/*
 * sample.c - the profile session: its start and end, the perf sampler (one
 * CPU-clock sampling event per thread; the timer sampler is sigprof.c),
 * and a collector thread that empties either's rings into the table of
 * stacks (see internal.h).
 *
 * The collector sleeps in poll() on every perf ring until one is half
 * full (wakeup_watermark) or 100 ms pass, so it wakes about ten times a
 * second whatever the rate; at 1 kHz a thread's 128 KiB ring holds over a
 * second of samples with 100-frame chains. With the timers it wakes every
 * 100 ms.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prof/internal.h"

#define PROF_PAGES 32          /* 128 KiB of ring a thread */
#define PROF_THREADS_MAX 256
#define PROF_POLL_MS 100
#define PROF_ADDR_MIN 4096     /* no code lives in the first page */

static atomic_int session;
static atomic_int refuse;
static atomic_int use_perf;

void prof_sampler(int perf)
{
	atomic_store(&use_perf, perf);
}

void prof_refuse(int on)
{
	atomic_store(&refuse, on);
}

int prof_active(void)
{
	return atomic_load(&session);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t hash_stack(int tid, const uint64_t *ips, uint32_t n, struct trace_labels l)
{
	uint64_t h = 1469598103934665603u ^ (uint64_t)(unsigned)tid; /* FNV-1a over the words */
	h = (h ^ (uint64_t)(uintptr_t)l.route) * 1099511628211u;
	h = (h ^ (uint64_t)(uintptr_t)l.mode) * 1099511628211u;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ ips[i]) * 1099511628211u;
	return h ? h : 1; /* 0 marks a free slot */
}

static int grow_table(struct prof *p)
{
	size_t cap = p->cap ? p->cap * 2 : 1024;
	struct prof_stack *t = calloc(cap, sizeof *t);
	if (!t)
		return -1;
	for (size_t i = 0; i < p->cap; i++) {
		if (!p->tab[i].hash)
			continue;
		size_t j = p->tab[i].hash & (cap - 1);
		while (t[j].hash)
			j = (j + 1) & (cap - 1);
		t[j] = p->tab[i];
	}
	free(p->tab);
	p->tab = t;
	p->cap = cap;
	return 0;
}

void prof_add_sample_(struct prof *p, int tid, const uint64_t *ips, uint32_t n, uint32_t weight,
		      struct trace_labels labels)
{
	if ((p->n + 1) * 2 > p->cap && grow_table(p) < 0) {
		p->oom = 1;
		return;
	}
	uint64_t h = hash_stack(tid, ips, n, labels);
	size_t j = h & (p->cap - 1);
	for (; p->tab[j].hash; j = (j + 1) & (p->cap - 1)) {
		struct prof_stack *s = &p->tab[j];
		if (s->hash == h && s->tid == tid && s->depth == n && s->labels.route == labels.route &&
		    s->labels.mode == labels.mode &&
		    memcmp(p->ips + s->at, ips, n * sizeof *ips) == 0) {
			s->count += weight;
			p->samples += weight;
			return;
		}
	}
	uint64_t *q = prof_grow(p->ips, &p->capips, p->nips + n, sizeof *p->ips, 4096);
	if (!q) {
		p->oom = 1;
		return;
	}
	p->ips = q;
	memcpy(p->ips + p->nips, ips, n * sizeof *ips);
	p->tab[j] = (struct prof_stack){h, tid, labels, n, p->nips, weight};
	p->nips += n;
	p->n++;
	p->samples += weight;
}

#ifdef __linux__
/* PERF_RECORD_SAMPLE with IP | TID | CALLCHAIN: u64 ip; u32 pid, tid;
 * u64 nr; u64 ips[nr] (context markers among them). */
static void on_record(void *ctx, const struct perf_event_header *h, size_t n)
{
	struct prof *p = ctx;
	const unsigned char *b = (const unsigned char *)(h + 1);
	if (h->type == PERF_RECORD_LOST && n >= sizeof *h + 16) {
		uint64_t k;
		memcpy(&k, b + 8, 8);
		p->lost += k;
		return;
	}
	if (h->type != PERF_RECORD_SAMPLE || n < sizeof *h + 24)
		return;
	uint32_t tid;
	uint64_t nr, ips[PROF_FRAMES_MAX], ip;
	memcpy(&ip, b, 8);
	memcpy(&tid, b + 12, 4);
	memcpy(&nr, b + 16, 8);
	uint32_t k = 0;
	const unsigned char *c = b + 24;
	for (uint64_t i = 0; i < nr && k < PROF_FRAMES_MAX && c + 8 <= (const unsigned char *)h + n;
	     i++, c += 8) {
		uint64_t a;
		memcpy(&a, c, 8);
		if (a >= (uint64_t)PERF_CONTEXT_MAX)
			continue; /* a marker: PERF_CONTEXT_USER and its kin */
		if (a < PROF_ADDR_MIN)
			break; /* the walk left the frames (a library without frame pointers): the rest is noise */
		ips[k++] = a;
	}
	if (k == 0 && ip)
		ips[k++] = ip; /* no chain (the kernel could not walk one): the sampled address */
	if (k == 0)
		return;
	prof_add_sample_(p, (int)tid, ips, k, 1, (struct trace_labels){0}); /* perf: no labels */
}

static void on_sig(void *ctx, int slot, int tid, const struct sig_sample *x)
{
	(void)slot;
	prof_add_sample_(ctx, tid, x->ips, x->depth, x->weight, x->labels);
}

static void collect_locked(struct prof *p)
{
	static _Thread_local uint64_t scratch[PROF_FRAMES_MAX + 16];
	if (p->sigprof) {
		sig_collect(SIG_PROFILE, on_sig, p, &p->lost);
		return;
	}
	for (unsigned i = 0; i < p->nth; i++)
		perf_ring_drain(&p->th[i].ring, on_record, p, scratch, sizeof scratch);
}

/* The threads of the process now. */
static unsigned list_threads(struct prof_thread *th, unsigned max)
{
	size_t ntids;
	int *tids = prof_tasks(&ntids);
	unsigned n = 0;
	for (size_t i = 0; i < ntids && n < max; i++) {
		int tid = tids[i];
		th[n] = (struct prof_thread){.tid = tid, .ring = {.fd = -1}};
		char path[64];
		snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fgets(th[n].name, sizeof th[n].name, f))
				th[n].name[strcspn(th[n].name, "\n")] = 0;
			fclose(f);
		}
		n++;
	}
	free(tids);
	return n;
}

static int open_thread(struct prof *p, struct prof_thread *t, const char **call);

/* Starts sampling t's thread, by the session's sampler: 0 or -errno. */
static int sample_thread(struct prof *p, struct prof_thread *t, const char **call)
{
	if (p->sigprof) {
		int k = sig_arm(SIG_PROFILE, t->tid, p->hz);
		return k < 0 ? k : 0;
	}
	return -open_thread(p, t, call);
}

/* Threads created since the start (a worker pool grown, a connection's
 * thread): sampled from now on. Under mu. */
static void add_new_threads(struct prof *p)
{
	struct prof_thread *now = calloc(PROF_THREADS_MAX, sizeof *now);
	unsigned n = now ? list_threads(now, PROF_THREADS_MAX) : 0;
	for (unsigned i = 0; i < n && p->nth < PROF_THREADS_MAX; i++) {
		unsigned j = 0;
		while (j < p->nth && p->th[j].tid != now[i].tid)
			j++;
		if (j == p->nth && now[i].tid != p->collector_tid) {
			const char *call = "perf_event_open";
			if (sample_thread(p, &now[i], &call) == 0)
				p->th[p->nth++] = now[i];
		}
	}
	free(now);
}

static void *collector_main(void *arg)
{
	struct prof *p = arg;
	struct pollfd fds[PROF_THREADS_MAX];
	pthread_mutex_lock(&p->mu);
	p->collector_tid = (int)gettid();
	while (p->collecting) {
		unsigned n = p->sigprof ? 0 : p->nth;
		for (unsigned i = 0; i < n; i++)
			fds[i] = (struct pollfd){.fd = p->th[i].ring.fd, .events = POLLIN};
		pthread_mutex_unlock(&p->mu);
		poll(fds, n, PROF_POLL_MS); /* the timers' rings: every 100 ms */
		pthread_mutex_lock(&p->mu);
		collect_locked(p);
		if (p->collecting)
			add_new_threads(p);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static int open_thread(struct prof *p, struct prof_thread *t, const char **call)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof a;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.sample_period = 1000000000u / p->hz; /* the CPU clock counts nanoseconds */
	a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_CALLCHAIN;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	a.exclude_callchain_kernel = 1;
	a.watermark = 1;
	a.wakeup_watermark = (uint32_t)(PROF_PAGES / 2 * sysconf(_SC_PAGESIZE));
	return perf_ring_open(&t->ring, &a, t->tid, PROF_PAGES, call);
}

/* The timers on the n threads listed in p->th: 0, or -errno with why. */
static int timers_start(struct prof *p, unsigned n, char *why, size_t len)
{
	int rc = sig_install(why, len), e = -ESRCH;
	if (rc < 0)
		return rc;
	p->sigprof = 1;
	p->nth = 0;
	for (unsigned i = 0; i < n; i++) {
		struct prof_thread t = p->th[i];
		if ((e = sample_thread(p, &t, NULL)) == 0)
			p->th[p->nth++] = t;
	}
	if (p->nth == 0) {
		p->sigprof = 0;
		snprintf(why, len, "timer_create: %s", strerror(-e));
		return e;
	}
	return 0;
}

int prof_start(struct prof **out, unsigned hz, char *why, size_t len)
{
	if (hz < 1 || hz > PROF_HZ_MAX) {
		snprintf(why, len, "the rate must be 1..%u Hz", PROF_HZ_MAX);
		return -EINVAL;
	}
	int idle = 0;
	if (!atomic_compare_exchange_strong(&session, &idle, 1)) {
		snprintf(why, len, "a profile is being taken");
		return -EBUSY;
	}
	struct prof *p = calloc(1, sizeof *p);
	struct prof_thread *th = calloc(PROF_THREADS_MAX, sizeof *th);
	if (!p || !th) {
		free(p);
		free(th);
		atomic_store(&session, 0);
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->hz = hz;
	p->th = th;
	p->start_wall_ns = clock_ns(CLOCK_REALTIME);
	p->start_ns = clock_ns(CLOCK_MONOTONIC);
	unsigned n = list_threads(th, PROF_THREADS_MAX), opened = 0;
	int err = 0;
	const char *call = "perf_event_open";
	if (atomic_load(&use_perf) && atomic_load(&refuse))
		err = EACCES, call = "perf_event_open (refused on purpose, to test)";
	for (unsigned i = 0; atomic_load(&use_perf) && i < n && !err; i++) {
		struct prof_thread t = th[i];
		int e = open_thread(p, &t, &call);
		if (e == ESRCH)
			continue; /* it ended meanwhile */
		if (e && opened == 0)
			err = e;
		else if (!e)
			th[opened++] = t;
	}
	p->nth = opened;
	if (opened == 0) {
		/* The timers: by choice, or where the kernel refused perf. */
		char reason[200], how[200];
		if (!atomic_load(&use_perf))
			snprintf(reason, sizeof reason, "chosen: the cheaper at a context switch");
		else
			perf_why(reason, sizeof reason, call, err ? err : ESRCH);
		int rc = timers_start(p, n, how, sizeof how);
		if (rc < 0) {
			snprintf(why, len, "%s; and the SIGPROF fallback: %s", reason, how);
			prof_free(p);
			return rc;
		}
		snprintf(p->how, sizeof p->how, "SIGPROF timers on each thread's CPU clock (%s)",
			 reason);
	} else {
		snprintf(p->how, sizeof p->how, "perf_event_open CPU-clock events");
	}
	p->running = p->collecting = 1;
	if (pthread_create(&p->collector, NULL, collector_main, p) != 0) {
		p->collecting = 0;
		snprintf(why, len, "cannot start the collector thread");
		prof_free(p);
		return -EAGAIN;
	}
	*out = p;
	return 0;
}

void prof_stop(struct prof *p)
{
	if (!p->running)
		return;
	p->end_ns = clock_ns(CLOCK_MONOTONIC);
	pthread_mutex_lock(&p->mu);
	p->collecting = 0;
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->collector, NULL); /* within one poll timeout */
	pthread_mutex_lock(&p->mu);
	if (p->sigprof)
		sig_disarm(SIG_PROFILE);
	collect_locked(p);
	if (p->sigprof)
		sig_release(SIG_PROFILE);
	for (unsigned i = 0; i < p->nth && !p->sigprof; i++)
		perf_ring_close(&p->th[i].ring);
	pthread_mutex_unlock(&p->mu);
	p->running = 0;
}
#else
int prof_start(struct prof **out, unsigned hz, char *why, size_t len)
{
	(void)out, (void)hz;
	snprintf(why, len, "CPU profiles need Linux's perf_event_open");
	return -ENOSYS;
}

void prof_stop(struct prof *p) { (void)p; }
#endif

void prof_note(struct prof *p, const char *note)
{
	snprintf(p->note, sizeof p->note, "%s", note);
}

void prof_facts(const struct prof *p, struct prof_facts *f)
{
	*f = (struct prof_facts){p->samples, p->lost, p->n, p->nth, p->start_ns,
				 p->end_ns ? p->end_ns : clock_ns(CLOCK_MONOTONIC), p->hz,
				 p->sigprof};
}

void prof_free(struct prof *p)
{
	if (!p)
		return;
	prof_stop(p);
	pthread_mutex_destroy(&p->mu);
	free(p->th);
	free(p->tab);
	free(p->ips);
	free(p);
	atomic_store(&session, 0);
}
