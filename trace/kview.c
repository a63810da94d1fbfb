/*
 * kview.c - the kernel's view of traced threads (see kview.h).
 *
 * Each registered thread opens, for itself, a software dummy event with
 * context_switch = 1 and sample_id_all (tid, time on CLOCK_MONOTONIC,
 * CPU), user-only (exclude_kernel: allowed unprivileged at
 * perf_event_paranoid 2), on any CPU, and maps a ring of KV_PAGES pages
 * (or fewer: an unprivileged user may lock perf_event_mlock_kb, 516 KiB by
 * default, and a mapping past it is refused; each halving is tried).
 * 'inherit' cannot be used with a mapped ring (the kernel says EINVAL), so
 * it is one event per thread. The kernel writes a PERF_RECORD_SWITCH at
 * every switch in and out; an out-switch with MISC_SWITCH_OUT_PREEMPT was
 * a preemption (the thread stays runnable), one without it the thread's
 * own wait. task = 1 adds PERF_RECORD_EXIT when the thread ends.
 *
 * The lock (mu) orders everything: the drainer and a capture both drain
 * under it, so each states lane has one writer at a time (the seqlock rule
 * of ring.h holds: the lock's hand-over orders the writers' stores).
 *
 * The drainer: while a round finds records, it drains every KV_DRAIN_MS;
 * after a round that finds none it sleeps until a ring is half full (the
 * kernel's default wake-up mark, through epoll) or the view stops, so an
 * armed process whose threads do nothing wakes nobody. A capture drains
 * what it reads itself, and so does /metrics' reader of the delays.
 *
 * Clock: the kernel stamps CLOCK_MONOTONIC; the trace's clock is the CPU's
 * counter calibrated against it at start-up, so the two drift apart by a
 * few ppm. Each drain measures the offset anew, and a record gets the
 * offset interpolated between its ring's last drain and this one (the
 * drift is a rate: linear over the gap), so a record drained long after
 * it was written is placed as well as a fresh one.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

#include "trace/kview.h"
#include "trace/spill.h"
#include "trace/perf.h"

#ifdef __linux__
#include <linux/perf_event.h>
#endif

#define KV_PAGES 32             /* 128 KiB of data: 4096 switch records, at most */
#define KV_DRAIN_MS 50          /* the drainer's period while it finds records */
#define KV_LANE_SHIFT 2         /* the states lane: a quarter of the events lane */

const struct trace_desc trace_kv_running_ = {"running", "kernel", {"cpu"}, 0};
const struct trace_desc trace_kv_runnable_ = {"runnable", "kernel", {"cpu"}, 0};
const struct trace_desc trace_kv_blocked_ = {"blocked", "kernel", {"cpu"}, 0};



static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* Held by whatever may start or stop the drainer, across a stop's join
 * (which is outside mu: the drainer takes mu), so that the next start
 * comes after it: one drainer at a time, on the one kick. Taken before
 * mu. */
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
/* What the drainer sleeps on (made once, kept): every open event, by its
 * ring's index + 1, and 'kick' (0), which a stop writes. */
static int ep = -1, kick = -1;
static enum trace_kview mode;
static const char *state_name = "unused";
static char why[160] = "no thread traced yet";
static int enabled, drainer_run, drainer_up;
static pthread_t drainer;
static unsigned nopen, nrefused;
static uint64_t switches, lost;

int trace_kview_parse(const char *s)
{
	if (!s || strcmp(s, "auto") == 0)
		return TRACE_KVIEW_AUTO;
	if (strcmp(s, "off") == 0)
		return TRACE_KVIEW_OFF;
	if (strcmp(s, "refuse") == 0)
		return TRACE_KVIEW_REFUSE;
	return -1;
}

void kv_init(enum trace_kview m)
{
	pthread_mutex_lock(&mu);
	mode = m;
	if (m == TRACE_KVIEW_OFF) {
		state_name = "off";
		snprintf(why, sizeof why, "turned off");
	} else if (m == TRACE_KVIEW_REFUSE) {
		state_name = "refused";
		snprintf(why, sizeof why, "perf_event_open: Permission denied (forced, to test)");
	}
	pthread_mutex_unlock(&mu);
}

int trace_kview_delays(unsigned i, uint64_t count[TRACE_DELAY_BUCKETS], uint64_t *sum_ns)
{
	struct trace_ring *r = trace_ring_(i);
	struct trace_kview_thread *k = r ? atomic_load(&r->kv) : NULL;
	if (!k)
		return -1;
	kv_drain(r); /* the drainer may sleep while records wait */
	pthread_mutex_lock(&mu);
	memcpy(count, k->delay, sizeof k->delay);
	*sum_ns = k->delay_sum_ns;
	pthread_mutex_unlock(&mu);
	return 0;
}

void trace_kview_usage(struct trace_kview_usage *u)
{
	pthread_mutex_lock(&mu);
	u->state = state_name;
	snprintf(u->why, sizeof u->why, "%s", strcmp(state_name, "on") != 0 ? why : "");
	u->threads = nopen;
	u->refused = nrefused;
	u->switches = switches;
	u->lost = lost;
	pthread_mutex_unlock(&mu);
}

#ifdef __linux__

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* What /proc says thread tid is doing: KS_PROC_R (running or runnable),
 * KS_BLOCKED, or KS_EXITED when it is gone. */
static enum kstate proc_state(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return KS_EXITED;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!p || p[1] != ' ')
		return KS_UNKNOWN;
	return p[2] == 'R' ? KS_PROC_R : p[2] == 'X' || p[2] == 'Z' ? KS_EXITED : KS_BLOCKED;
}

static const struct trace_desc *state_desc(enum kstate s)
{
	switch (s) {
	case KS_RUNNING:
		return &trace_kv_running_;
	case KS_RUNNABLE:
		return &trace_kv_runnable_;
	case KS_BLOCKED:
		return &trace_kv_blocked_;
	default:
		return NULL;
	}
}

/* The span of state s over [t0, t1) on cpu, into the states lane. */
static void put_state(struct trace_ring *r, enum kstate s, int cpu, uint64_t t0, uint64_t t1)
{
	const struct trace_desc *d = state_desc(s);
	if (!d || t1 <= t0)
		return;
	const int64_t a[TRACE_ARGS] = {cpu, 0, 0, 0};
	trace_lane_put_(r, TRACE_LANE_STATES, d, trace_meta_(TRACE_SPAN, 0, 0), t0, t1 - t0, a);
}

/* One switch at t (trace clock) on cpu: the span it ends, and the state
 * it begins. */
static void on_switch(struct trace_ring *r, struct trace_kview_thread *k, uint64_t t, int cpu,
		      int out, int preempt)
{
	if (t < k->since)
		t = k->since; /* the offset moved by a few nanoseconds between drains */
	if (out) {
		/* Whatever was pending, the thread ran until now. */
		put_state(r, KS_RUNNING, cpu, k->since, t);
		k->state = preempt ? KS_RUNNABLE : KS_BLOCKED;
	} else {
		/* Off the CPU until now: why is what the out-switch said, or,
		 * for the first switch after arming, what /proc said. */
		enum kstate was = k->state == KS_PROC_R ? KS_RUNNABLE : k->state;
		if (was == KS_RUNNABLE || was == KS_BLOCKED)
			put_state(r, was, k->cpu, k->since, t);
		if (k->state == KS_RUNNABLE) { /* preempted, now back: a scheduler delay */
			uint64_t d = t - k->since, bound = 1000;
			unsigned b = 0;
			while (b + 1 < TRACE_DELAY_BUCKETS && d > bound)
				b++, bound *= 4;
			k->delay[b]++;
			k->delay_sum_ns += d;
		}
		k->state = KS_RUNNING;
	}
	k->cpu = cpu;
	k->since = t;
	switches++;
}

/* What a drain is doing: the thread, the kernel's clock and the offset
 * from it to ours at the ring's last drain (mono0, off0) and now (mono1,
 * off1), the offset's drift a nanosecond between them, and the records
 * it has read. */
struct drain {
	struct trace_ring *r;
	struct trace_kview_thread *k;
	uint64_t mono0, mono1;
	int64_t off0, off1;
	double drift;
	unsigned n;
};

/* The offset at kernel time t: interpolated between the two drains. */
static int64_t offset_at(const struct drain *d, uint64_t t)
{
	if (t >= d->mono1)
		return d->off1;
	if (t <= d->mono0)
		return d->off0;
	return d->off0 + (int64_t)(d->drift * (double)(t - d->mono0));
}

static void on_record(void *ctx, const struct perf_event_header *h, size_t n)
{
	struct drain *d = ctx;
	const unsigned char *body = (const unsigned char *)(h + 1);
	/* sample_id: u32 pid, tid; u64 time; u32 cpu, res (sample_type order). */
	const unsigned char *sid;
	if (h->type == PERF_RECORD_SWITCH && n >= sizeof *h + 24)
		sid = body;
	else if (h->type == PERF_RECORD_EXIT && n >= sizeof *h + 24 + 24)
		sid = body + 24; /* pid, ppid, tid, ptid, time */
	else if (h->type == PERF_RECORD_LOST && n >= sizeof *h + 16 + 24)
		sid = body + 16; /* id, lost */
	else
		return;
	uint64_t time;
	uint32_t cpu;
	memcpy(&time, sid + 8, 8);
	memcpy(&cpu, sid + 16, 4);
	uint64_t t = (uint64_t)((int64_t)time + offset_at(d, time));
	d->n++;
	if (h->type == PERF_RECORD_SWITCH) {
		on_switch(d->r, d->k, t, (int)cpu, !!(h->misc & PERF_RECORD_MISC_SWITCH_OUT),
			  !!(h->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT));
	} else if (h->type == PERF_RECORD_EXIT) {
		on_switch(d->r, d->k, t, (int)cpu, 1, 0);
		d->k->state = KS_EXITED;
	} else {
		uint64_t n_lost;
		memcpy(&n_lost, body + 8, 8);
		lost += n_lost;
		d->k->state = KS_UNKNOWN; /* until the next switch says */
		d->k->since = t;
	}
}

/* The kernel's clock now, and the offset from it to the trace's. */
static uint64_t clocks_now(int64_t *off)
{
	uint64_t m = mono_ns();
	*off = trace_clock_.counter ? (int64_t)(trace_now() - m) : 0;
	return m;
}

/* Moves r's records into its states lane: how many there were. */
static unsigned drain_locked(struct trace_ring *r, struct trace_kview_thread *k)
{
	if (!k->ring.map)
		return 0; /* closed (disarmed), or never opened */
	struct drain d = {.r = r, .k = k, .mono0 = k->mono0, .off0 = k->off0};
	d.mono1 = clocks_now(&d.off1);
	if (d.mono1 > d.mono0)
		d.drift = (double)(d.off1 - d.off0) / (double)(d.mono1 - d.mono0);
	uint64_t scratch[8]; /* a switch, exit or lost record: 64 bytes at most */
	perf_ring_drain(&k->ring, on_record, &d, scratch, sizeof scratch);
	k->mono0 = d.mono1;
	k->off0 = d.off1;
	return d.n;
}

static struct trace_kview_thread *kv_of(struct trace_ring *r)
{
	return atomic_load_explicit(&r->kv, memory_order_acquire);
}

void kv_drain(struct trace_ring *r)
{
	struct trace_kview_thread *k = kv_of(r);
	if (!k)
		return;
	pthread_mutex_lock(&mu);
	drain_locked(r, k);
	pthread_mutex_unlock(&mu);
}

void kv_drain_self_(struct trace_ring *r)
{
	static atomic_uint next;
	if (pthread_mutex_trylock(&mu) != 0)
		return; /* being drained, or sync'd: next time */
	struct trace_kview_thread *k = kv_of(r);
	if (k)
		drain_locked(r, k);
	/* And one other thread's, in turn. */
	unsigned n = trace_rings_();
	unsigned turn = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
	struct trace_ring *o = n ? trace_ring_(turn % n) : NULL;
	if (o && o != r && (k = kv_of(o)) != NULL)
		drain_locked(o, k);
	pthread_mutex_unlock(&mu);
}

int kv_pending(struct trace_ring *r, uint64_t until, struct chrome_rec *out)
{
	struct trace_kview_thread *k = kv_of(r);
	int ok = 0;
	if (!k)
		return 0;
	pthread_mutex_lock(&mu);
	enum kstate s = k->state == KS_PROC_R ? KS_RUNNING : k->state;
	const struct trace_desc *d = state_desc(s);
	if (d && until > k->since) {
		*out = (struct chrome_rec){.kind = TRACE_SPAN, .ts = k->since, .dur = until - k->since,
					   .d = d, .a = {k->cpu}};
		ok = 1;
	}
	pthread_mutex_unlock(&mu);
	return ok;
}

/* Stops watching the events of threads that have ended (their events
 * say so until they are closed, and would wake the drainer at once). */
static void forget_ended_locked(const struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		if (!ev[i].data.u32 || !(ev[i].events & (EPOLLHUP | EPOLLERR)))
			continue;
		struct trace_ring *r = trace_ring_(ev[i].data.u32 - 1);
		struct trace_kview_thread *k = r ? kv_of(r) : NULL;
		if (k && k->ring.fd >= 0)
			epoll_ctl(ep, EPOLL_CTL_DEL, k->ring.fd, NULL);
	}
}

static void *drainer_main(void *arg)
{
	(void)arg;
	/* It must not take a CPU from the threads it watches: the workshop's
	 * unbuffered pool, preempted every 10 ms by a drainer of normal
	 * priority, fell from spinning hand-offs to futex sleeps and ran 40
	 * times slower. Busy threads drain their own rings as they record
	 * (kv_maybe_drain); this one is for the idle, and runs when a CPU is. */
	struct sched_param none = {0};
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &none);
	int asleep = 0;
	pthread_mutex_lock(&mu);
	while (drainer_run) {
		pthread_mutex_unlock(&mu);
		struct epoll_event ev[16];
		int n = epoll_wait(ep, ev, 16, asleep ? -1 : KV_DRAIN_MS);
		uint64_t kicks;
		ssize_t got = read(kick, &kicks, sizeof kicks); /* non-blocking */
		(void)got;
		pthread_mutex_lock(&mu);
		if (n > 0)
			forget_ended_locked(ev, n);
		unsigned found = 0, rings = trace_rings_();
		for (unsigned i = 0; i < rings && drainer_run; i++) {
			struct trace_ring *r = trace_ring_(i);
			struct trace_kview_thread *k = r ? kv_of(r) : NULL;
			if (k)
				found += drain_locked(r, k);
		}
		asleep = found == 0;
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* A thread's state at arm time; r's thread may be the caller. */
static void start_state(struct trace_ring *r, struct trace_kview_thread *k)
{
	k->mono0 = clocks_now(&k->off0);
	k->since = trace_now();
	if (r->tid == (int)gettid()) {
		k->state = KS_RUNNING;
		k->cpu = sched_getcpu();
	} else {
		k->state = proc_state(r->tid);
		k->cpu = -1;
	}
}

/* The drainer's epoll set and kick, made at the first call: 0, or -1
 * when they cannot be; then the drainer does not start, and the recording
 * threads and the captures drain alone. Under mu. */
static int watch_init_locked(void)
{
	if (ep >= 0)
		return 0;
	ep = epoll_create1(EPOLL_CLOEXEC);
	kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = 0};
	if (ep >= 0 && kick >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, kick, &e) == 0)
		return 0;
	if (ep >= 0)
		close(ep);
	if (kick >= 0)
		close(kick);
	ep = kick = -1;
	return -1;
}

/* Has the drainer watch r's event, just opened. Under mu. */
static void watch_locked(struct trace_ring *r, struct trace_kview_thread *k)
{
	struct epoll_event e = {.events = EPOLLIN, .data.u32 = r->idx + 1};
	if (watch_init_locked() == 0) /* closing the event takes it out */
		epoll_ctl(ep, EPOLL_CTL_ADD, k->ring.fd, &e);
}

static int open_event(struct trace_ring *r, struct trace_kview_thread *k, const char **call);
static void refused_locked(const char *call, int err);

/* Closes r's event: the kernel then does nothing more for its thread
 * (an event left open but disabled still cost 0.8 us a context switch:
 * 2.1 -> 3.0 us a futex hand-off between two threads on one CPU). The
 * states lane and the pending state stay, for the capture. */
static void close_event(struct trace_kview_thread *k)
{
	if (!k->ring.map)
		return;
	perf_ring_close(&k->ring);
	nopen--;
}

/* Under mu: opens every thread's event when armed, closes them all when
 * not. *join: the drainer, when it must be joined (outside the lock). */
static void sync_locked(pthread_t *join)
{
	int want = atomic_load(&trace_armed_) != 0 && mode == TRACE_KVIEW_AUTO &&
		   strcmp(state_name, "refused") != 0;
	if (want == enabled)
		return;
	unsigned n = trace_rings_();
	for (unsigned i = 0; i < n; i++) {
		struct trace_ring *r = trace_ring_(i);
		struct trace_kview_thread *k = r ? kv_of(r) : NULL;
		if (!k)
			continue;
		if (want && k->state != KS_EXITED) {
			const char *call;
			int err = open_event(r, k, &call);
			if (err == ESRCH)
				k->state = KS_EXITED; /* the thread has ended */
			else if (err)
				refused_locked(call, err);
			else
				start_state(r, k);
		} else if (!want) {
			drain_locked(r, k); /* what it saw until now; the pending state stays */
			close_event(k); /* an ended thread's too */
		}
	}
	enabled = want;
	if (want && !drainer_up && watch_init_locked() == 0) {
		drainer_run = 1;
		drainer_up = pthread_create(&drainer, NULL, drainer_main, NULL) == 0;
	} else if (!want && drainer_up) {
		drainer_run = 0;
		drainer_up = 0;
		uint64_t one = 1;
		ssize_t put = write(kick, &one, sizeof one);
		(void)put;
		*join = drainer;
	}
}

void kv_sync(void)
{
	pthread_t join;
	int joining;
	pthread_mutex_lock(&sync_mu);
	pthread_mutex_lock(&mu);
	pthread_t none = pthread_self();
	join = none;
	sync_locked(&join);
	joining = !pthread_equal(join, none);
	pthread_mutex_unlock(&mu);
	if (joining)
		pthread_join(join, NULL);
	pthread_mutex_unlock(&sync_mu);
}

/* Says the view was refused, and why, the first time. */
static void refused_locked(const char *call, int err)
{
	nrefused++;
	if (strcmp(state_name, "on") == 0)
		return; /* it works for others: this thread is counted, no more */
	state_name = "refused";
	perf_why(why, sizeof why, call, err);
}

/* Opens thread r's event, enabled, and maps its ring: 0, or the errno of
 * the call named in *call. Under mu. */
static int open_event(struct trace_ring *r, struct trace_kview_thread *k, const char **call)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.type = PERF_TYPE_SOFTWARE;
	a.size = sizeof a;
	a.config = PERF_COUNT_SW_DUMMY;
	a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU;
	a.sample_id_all = 1;
	a.context_switch = 1;
	a.task = 1;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	a.use_clockid = 1;
	a.clockid = CLOCK_MONOTONIC;
	/* The sleeping drainer's wake-up: a mark of 0 is the kernel's half of
	 * the ring as mapped (which may be less than KV_PAGES). */
	a.watermark = 1;
	a.wakeup_watermark = 0;
	int err = perf_ring_open(&k->ring, &a, r->tid, KV_PAGES, call);
	if (err)
		return err;
	watch_locked(r, k);
	state_name = "on";
	nopen++;
	return 0;
}

void kv_thread_open(struct trace_ring *r)
{
	if (mode == TRACE_KVIEW_OFF)
		return;
	if (mode == TRACE_KVIEW_REFUSE) {
		pthread_mutex_lock(&mu);
		nrefused++;
		pthread_mutex_unlock(&mu);
		return;
	}
	uint32_t lane_size = (uint32_t)(trace_ring_size_() >> KV_LANE_SHIFT);
	if (lane_size < TRACE_RING_EVENTS_MIN)
		lane_size = TRACE_RING_EVENTS_MIN;
	struct trace_kview_thread *k = calloc(1, sizeof *k);
	struct trace_rec *rec = calloc(lane_size, sizeof *rec);
	pthread_mutex_lock(&sync_mu); /* it may start the drainer */
	pthread_mutex_lock(&mu);
	if (!k || !rec) {
		free(k);
		free(rec);
		refused_locked("the states lane", ENOMEM);
		pthread_mutex_unlock(&mu);
		pthread_mutex_unlock(&sync_mu);
		return;
	}
	k->ring.fd = -1;
	r->lane[TRACE_LANE_STATES].mask = lane_size - 1;
	r->lane[TRACE_LANE_STATES].check = spill_check_mask(lane_size);
	r->lane[TRACE_LANE_STATES].rec = rec;
	atomic_store_explicit(&r->kv, k, memory_order_release);
	r->kv_self = 1;
	if (enabled) { /* armed already: open it now (sync_locked opens the others at arm) */
		const char *call;
		int err = open_event(r, k, &call);
		if (err)
			refused_locked(call, err);
		else
			start_state(r, k);
	} else {
		pthread_t none = pthread_self();
		sync_locked(&none); /* armed (the first thread): opens it, starts the drainer */
	}
	pthread_mutex_unlock(&mu);
	pthread_mutex_unlock(&sync_mu);
}

#else /* not Linux: no perf_event_open */

void kv_thread_open(struct trace_ring *r)
{
	(void)r;
	pthread_mutex_lock(&mu);
	if (mode == TRACE_KVIEW_AUTO) {
		state_name = "refused";
		snprintf(why, sizeof why, "perf_event_open is Linux's");
	}
	nrefused++;
	pthread_mutex_unlock(&mu);
}

void kv_sync(void) {}
void kv_drain(struct trace_ring *r) { (void)r; }

int kv_pending(struct trace_ring *r, uint64_t until, struct chrome_rec *out)
{
	(void)r, (void)until, (void)out;
	return 0;
}
#endif
