/*
 * block.c - the off-CPU (block) profile: where each thread waited and
 * why, as pprof's contentions/count and delay/nanoseconds (Go's block
 * profile's sample types). See prof.h.
 *
 * Sources, and how they add up. For each thread over the window, the
 * kernel says (/proc/self/task/TID/schedstat) how long it ran and how long
 * it was runnable; the rest of its time in the window it was blocked.
 * - A wait site that sleeps (trace.h's waits: the pool's no work, queue
 *   full and rendezvous, a render's wait, the HTTP thread's poll, a
 *   channel's send and receive, the server's timers) gives a sample per
 *   (call chain, reason): its time off a CPU from its first sleep until
 *   the thread ran again (the thread's schedstat is read at both ends: a
 *   wait woken to spin again was on a CPU meanwhile), and the runnable
 *   part of that (woken, not yet on a CPU). A wait that only spun is not
 *   a contention. A wait still asleep when the window ends counts until
 *   then; one asleep since before the window began is not seen (its
 *   thread's time is "blocked").
 * - The thread's runnable time outside its waits (preempted while it
 *   wanted the CPU) is one sample, reason "runnable", its frame
 *   "runnable: waiting for a CPU"; count: the involuntary switches.
 * - The thread's blocked time outside its waits (a lock, a system call,
 *   a sleep of code with no wait site) is one sample, reason "blocked",
 *   its frame "blocked outside a wait span"; count: the voluntary
 *   switches less the waits'.
 * So a thread's samples sum to its time off a CPU in the window.
 *
 * Threads: each that waits registers itself at its first sleep (its record
 * holds its stacks, written by it alone while armed); a pthread key's
 * destructor reads its schedstat when it exits inside the window. Threads
 * that neither waited nor outlived the window are not seen. Records are
 * freed with the session: the stop makes every thread leave first (an
 * in-flight count).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prof/internal.h"
#include "trace/trace.h"

struct bstack {
	uint64_t hash; /* 0: free */
	const struct trace_desc *d;
	uint32_t depth;
	size_t at;
	uint64_t count, delay;
};

struct bthread {
	struct bthread *next;
	int tid;
	char name[16];
	int fd;               /* its /proc/thread-self/schedstat */
	/* The wait begun and not yet ended: its reason, start, stack, and the
	 * thread's on-CPU and runnable ns then. */
	int begun;
	const struct trace_desc *cur;
	uint64_t t0, cpu_begin, rd_begin;
	unsigned depth;
	uint64_t stack[TRACE_WAIT_FRAMES];
	uint64_t waits, wait_ns, wait_runnable;
	uint64_t seen;        /* when it registered, and its /proc then: a thread */
	struct prof_sched at_seen; /* born inside the window is counted from here */
	int exited;           /* inside the window: its end is 'end' */
	uint64_t end;
	struct prof_sched last;    /* at its exit */
	struct bstack *tab;
	size_t cap, n;
	uint64_t *ips;
	size_t nips, capips;
	int oom;
};

/* A thread's /proc at the window's start. */
struct base {
	int tid;
	struct prof_sched s;
};

struct prof_block {
	uint64_t start, end;       /* trace clock */
	uint64_t start_wall_ns;
	struct bthread *threads;   /* under mu */
	struct base *base;
	size_t nbase;
	int stopped;
	char note[160];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct prof_block *cur;   /* the session, armed or not (under mu) */
static atomic_uint gen;          /* sessions started */
static atomic_int inflight;      /* threads inside a hook */
static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local struct bthread *self;
static _Thread_local unsigned self_gen;

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* ---- the hooks, on waiting threads ---- */

static void leave(void)
{
	atomic_fetch_sub(&inflight, 1);
}

/* The caller's record in the armed session (registered now if new), or
 * NULL: not armed, or out of memory. On a non-NULL return, leave() when
 * done with it. */
static struct bthread *enter(void)
{
	atomic_fetch_add(&inflight, 1);
	if (!trace_waits_on()) {
		leave();
		return NULL;
	}
	unsigned g = atomic_load(&gen);
	if (self_gen == g && self)
		return self;
	struct bthread *t = calloc(1, sizeof *t);
	if (!t) {
		leave();
		return NULL;
	}
	t->tid = gettid();
	t->fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	if (t->fd >= 0)
		prof_schedstat_fd(t->fd, &t->at_seen.oncpu, &t->at_seen.runnable);
	t->seen = trace_now();
	pthread_getname_np(pthread_self(), t->name, sizeof t->name);
	pthread_mutex_lock(&mu);
	if (!cur || cur->stopped || atomic_load(&gen) != g) {
		pthread_mutex_unlock(&mu);
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		leave();
		return NULL;
	}
	t->next = cur->threads;
	cur->threads = t;
	pthread_mutex_unlock(&mu);
	self = t;
	self_gen = g;
	pthread_setspecific(key, t); /* its exit is seen */
	return t;
}

/* The thread goes to sleep in wait d: its first sleep in it is the wait's
 * start, as far as time off a CPU goes. */
static void on_sleep(const struct trace_desc *d, uint64_t t0, const uint64_t *ips, unsigned n)
{
	struct bthread *t = enter();
	if (!t)
		return;
	if (t->begun && t->cur == d) {
		leave(); /* asleep again in the same wait */
		return;
	}
	t->cur = d;
	t->t0 = t0;
	t->depth = n;
	memcpy(t->stack, ips, n * sizeof *ips);
	t->begun = t->fd >= 0 && prof_schedstat_fd(t->fd, &t->cpu_begin, &t->rd_begin) == 0;
	leave();
}

static void on_none(void)
{
	struct bthread *t = enter();
	if (!t)
		return;
	t->begun = 0;
	leave();
}

static uint64_t stack_hash(const struct trace_desc *d, const uint64_t *ips, unsigned n)
{
	uint64_t h = 1469598103934665603u ^ (uint64_t)(uintptr_t)d;
	for (unsigned i = 0; i < n; i++)
		h = (h ^ ips[i]) * 1099511628211u;
	return h ? h : 1;
}

static int grow_tab(struct bthread *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct bstack *n = calloc(cap, sizeof *n);
	if (!n)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->tab[i].hash)
			continue;
		size_t j = t->tab[i].hash & (cap - 1);
		while (n[j].hash)
			j = (j + 1) & (cap - 1);
		n[j] = t->tab[i];
	}
	free(t->tab);
	t->tab = n;
	t->cap = cap;
	return 0;
}

/* Files a wait of d, n frames at ips, off a CPU for off ns, in t's table. */
static void add_wait(struct bthread *t, const struct trace_desc *d, const uint64_t *ips, unsigned n,
		     uint64_t off)
{
	t->waits++;
	t->wait_ns += off;
	if ((t->n + 1) * 2 > t->cap && grow_tab(t) < 0) {
		t->oom = 1;
		return;
	}
	uint64_t h = stack_hash(d, ips, n);
	size_t j = h & (t->cap - 1);
	for (; t->tab[j].hash; j = (j + 1) & (t->cap - 1)) {
		struct bstack *s = &t->tab[j];
		if (s->hash == h && s->d == d && s->depth == n &&
		    memcmp(&t->ips[s->at], ips, n * sizeof *ips) == 0) {
			s->count++;
			s->delay += off;
			return;
		}
	}
	uint64_t *q = prof_grow(t->ips, &t->capips, t->nips + n, sizeof *t->ips, 1024);
	if (!q && n) {
		t->oom = 1;
		return;
	}
	t->ips = q;
	if (n)
		memcpy(&t->ips[t->nips], ips, n * sizeof *ips);
	t->tab[j] = (struct bstack){h, d, n, t->nips, 1, off};
	t->nips += n;
	t->n++;
}

static void on_end(const struct trace_desc *d, uint64_t t0, uint64_t t1)
{
	struct bthread *t = enter();
	if (!t)
		return;
	/* Off a CPU in the wait: from its first sleep until it ran again,
	 * less what it ran meanwhile (woken, then spinning again). A wait that
	 * never slept was on a CPU: not a contention. */
	(void)t0;
	uint64_t oncpu, rd;
	if (t->begun && t->cur == d && prof_schedstat_fd(t->fd, &oncpu, &rd) == 0) {
		uint64_t off = sub0(sub0(t1, t->t0), sub0(oncpu, t->cpu_begin));
		t->wait_runnable += sub0(rd, t->rd_begin);
		add_wait(t, d, t->stack, t->depth, off);
	}
	t->begun = 0;
	leave();
}

/* A thread's exit inside the window: what it did until now. */
static void on_exit_(void *v)
{
	(void)v;
	struct bthread *t = enter();
	if (!t)
		return;
	if (prof_sched_read(0, &t->last) == 0) {
		t->exited = 1;
		t->end = trace_now();
	}
	leave();
}

static const struct trace_waiter waiter = {on_sleep, on_end, on_none};

static void init_once(void)
{
	pthread_key_create(&key, on_exit_);
	trace_waiter_attach(&waiter);
}

/* ---- the session ---- */

static int cmp_base(const void *a, const void *b)
{
	return ((const struct base *)a)->tid - ((const struct base *)b)->tid;
}

/* Every thread's /proc now, sorted by tid: the window's start. */
static void read_base(struct prof_block *b)
{
	size_t n;
	int *tids = prof_tasks(&n);
	b->base = n ? malloc(n * sizeof *b->base) : NULL;
	for (size_t i = 0; b->base && i < n; i++) {
		b->base[b->nbase].tid = tids[i];
		if (prof_sched_read(tids[i], &b->base[b->nbase].s) == 0)
			b->nbase++;
	}
	free(tids);
	qsort(b->base, b->nbase, sizeof *b->base, cmp_base);
}

static const struct prof_sched *base_of(const struct prof_block *b, int tid)
{
	struct base k = {.tid = tid};
	const struct base *x = bsearch(&k, b->base, b->nbase, sizeof *b->base, cmp_base);
	return x ? &x->s : NULL;
}

int prof_block_start(struct prof_block **out)
{
	pthread_once(&once, init_once);
	struct prof_block *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&mu);
	if (cur) {
		pthread_mutex_unlock(&mu);
		free(b);
		return -EBUSY;
	}
	cur = b;
	pthread_mutex_unlock(&mu);
	struct timespec w;
	clock_gettime(CLOCK_REALTIME, &w);
	b->start_wall_ns = (uint64_t)w.tv_sec * 1000000000u + (uint64_t)w.tv_nsec;
	read_base(b);
	atomic_fetch_add(&gen, 1);
	b->start = trace_now();
	trace_waits_arm(1);
	*out = b;
	return 0;
}

void prof_block_stop(struct prof_block *b)
{
	if (b->stopped)
		return;
	b->end = trace_now();
	trace_waits_arm(0);
	pthread_mutex_lock(&mu);
	b->stopped = 1;
	pthread_mutex_unlock(&mu);
	while (atomic_load(&inflight))
		sched_yield(); /* a hook that saw it armed finishes first */
}

void prof_block_note(struct prof_block *b, const char *note)
{
	snprintf(b->note, sizeof b->note, "%s", note);
}

static struct bthread *thread_of(struct prof_block *b, int tid)
{
	for (struct bthread *t = b->threads; t; t = t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

/* From /proc's start time, in clock ticks since boot: when tid began, on
 * the trace clock (to 10 ms). */
static uint64_t thread_start(int tid, uint64_t now)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	if (prof_read_file(path, buf, sizeof buf) < 0)
		return 0;
	const char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p += 2; /* the state, then fields 4.. */
	for (int field = 3; field < 22 && *p; p++)
		if (*p == ' ')
			field++;
	uint64_t ticks = prof_parse_u64(&p);
	struct timespec bt;
	clock_gettime(CLOCK_BOOTTIME, &bt);
	uint64_t boot_ns = (uint64_t)bt.tv_sec * 1000000000u + (uint64_t)bt.tv_nsec;
	uint64_t started = ticks * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
	uint64_t ago = boot_ns > started ? boot_ns - started : 0;
	return now > ago ? now - ago : 0;
}

/* One thread's samples: its waits', then its runnable and blocked time
 * outside them. */
static void thread_samples(struct pprof_enc *e, const struct prof_block *b,
			   struct bthread *t, int tid, const char *name, const struct prof_sched *now,
			   uint64_t from, uint64_t to, struct prof_block_facts *f)
{
	const struct prof_sched *s0 = base_of(b, tid);
	struct prof_sched zero = {0};
	if (!s0 && t && t->fd >= 0) { /* began inside the window: from its first wait */
		s0 = &t->at_seen;
		from = t->seen;
	} else if (!s0) { /* from its start, as /proc says (to 10 ms) */
		s0 = &zero;
		uint64_t born = thread_start(tid, to);
		if (born > from)
			from = born;
	}
	uint64_t span = sub0(to, from);
	uint64_t off = sub0(span, sub0(now->oncpu, s0->oncpu));
	uint64_t runnable = sub0(now->runnable, s0->runnable);
	uint64_t waits = 0, wait_ns = 0, wait_runnable = 0;
	if (t && t->begun && !t->exited) {
		/* In a wait now: what of it the window holds counts too. */
		uint64_t from0 = t->t0 > from ? t->t0 : from;
		add_wait(t, t->cur, t->stack, t->depth,
			 sub0(sub0(to, from0), sub0(now->oncpu, t->cpu_begin)));
		t->wait_runnable += sub0(now->runnable, t->rd_begin);
		t->begun = 0;
	}
	if (t) {
		for (size_t i = 0; i < t->cap; i++) {
			const struct bstack *s = &t->tab[i];
			if (!s->hash)
				continue;
			const char *reason = s->d->name;
			if (strncmp(reason, "wait: ", 6) == 0)
				reason += 6;
			const int64_t v[2] = {(int64_t)s->count, (int64_t)s->delay};
			const char *const labels[] = {"reason", reason, "thread", name, NULL};
			pprof_enc_sample(e, s->d->name, &t->ips[s->at], s->depth, v, labels, tid);
			f->samples++;
		}
		waits = t->waits;
		wait_ns = t->wait_ns;
		wait_runnable = t->wait_runnable;
	}
	uint64_t run_out = sub0(runnable, wait_runnable);
	uint64_t blocked_out = sub0(sub0(off, runnable), sub0(wait_ns, wait_runnable));
	if (run_out) {
		const int64_t v[2] = {(int64_t)sub0(now->invol, s0->invol), (int64_t)run_out};
		const char *const labels[] = {"reason", "runnable", "thread", name, NULL};
		pprof_enc_sample(e, "runnable: waiting for a CPU", NULL, 0, v, labels, tid);
		f->samples++;
	}
	if (blocked_out) {
		const int64_t v[2] = {(int64_t)sub0(sub0(now->vol, s0->vol), waits), (int64_t)blocked_out};
		const char *const labels[] = {"reason", "blocked", "thread", name, NULL};
		pprof_enc_sample(e, "blocked outside a wait span", NULL, 0, v, labels, tid);
		f->samples++;
	}
	f->threads++;
	f->off_cpu_ns += off;
	f->runnable_ns += runnable;
	f->wait_ns += wait_ns;
	f->delay_ns += wait_ns + run_out + blocked_out;
}

int prof_block_pprof(struct prof_block *b, unsigned char **out, size_t *len,
		     struct prof_block_facts *f)
{
	prof_block_stop(b);
	static const char *const types[][2] = {{"contentions", "count"}, {"delay", "nanoseconds"}};
	struct prof_block_facts facts = {0};
	struct pprof_enc *e = pprof_enc_new(types, 2);
	if (!e)
		return -ENOMEM;
	int oom = 0;
	struct name {
		struct name *next;
		char s[16];
	} *names = NULL;
	/* The threads alive now, then those that ended inside the window. */
	size_t ntids;
	int *tids = prof_tasks(&ntids);
	for (size_t i = 0; i < ntids; i++) {
		int tid = tids[i];
		struct prof_sched now;
		struct bthread *t;
		if (prof_sched_read(tid, &now) < 0)
			continue;
		if ((t = thread_of(b, tid)) && t->exited)
			continue; /* a tid reused: the record is the old thread's */
		/* The encoder keeps the name's pointer until it finishes. */
		struct name *nm = malloc(sizeof *nm);
		if (!nm) {
			oom = 1;
			break;
		}
		nm->next = names;
		names = nm;
		prof_thread_name(tid, nm->s, sizeof nm->s);
		thread_samples(e, b, t, tid, nm->s, &now, b->start, b->end, &facts);
		oom |= t && t->oom;
	}
	free(tids);
	for (struct bthread *t = b->threads; t; t = t->next) {
		if (!t->exited)
			continue;
		thread_samples(e, b, t, t->tid, t->name, &t->last, b->start, t->end, &facts);
		oom |= t->oom;
	}
	if (oom)
		pprof_enc_free(e), e = NULL;
	char comment[200];
	snprintf(comment, sizeof comment,
		 "off-CPU time by reason: waits from their start until the thread ran again; "
		 "runnable and blocked outside waits from /proc schedstat");
	const struct pprof_meta meta = {b->start_wall_ns, b->end - b->start, "contentions", "count",
					1, {comment, b->note}};
	if (f)
		*f = facts;
	int rc = e ? pprof_enc_finish(e, &meta, out, len) : -ENOMEM;
	while (names) {
		struct name *next = names->next;
		free(names);
		names = next;
	}
	return rc;
}

int prof_block_active(void)
{
	pthread_mutex_lock(&mu);
	int on = cur != NULL;
	pthread_mutex_unlock(&mu);
	return on;
}

void prof_block_free(struct prof_block *b)
{
	if (!b)
		return;
	prof_block_stop(b);
	pthread_mutex_lock(&mu);
	struct bthread *t = b->threads;
	b->threads = NULL;
	if (cur == b)
		cur = NULL;
	pthread_mutex_unlock(&mu);
	while (t) {
		struct bthread *next = t->next;
		if (t->fd >= 0)
			close(t->fd);
		free(t->tab);
		free(t->ips);
		free(t);
		t = next;
	}
	free(b->base);
	free(b);
}
