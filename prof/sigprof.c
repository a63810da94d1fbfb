/*
 * sigprof.c - the timer sampler: a POSIX timer on each sampled thread's own
 * CPU clock (timer_create with SIGEV_THREAD_ID, Go's way since 1.18)
 * sends that thread SIGPROF, and the handler walks its frame pointers.
 * The default sampler of profiles (sample.c), the only one of traces
 * (tsample.c), and the fallback where perf_event_open is refused (Docker's
 * default seccomp profile, perf_event_paranoid 3).
 *
 * Slots: each sampled thread has one in its set (SIG_PROFILE, SIG_TRACE):
 * its timer, its tid, and a single-producer ring (the handler) read by a
 * single consumer (whoever collects the set, under that set's owner's
 * lock), published with release/acquire. The timer's signal carries its
 * set and slot (sigev_value), so the handler finds the slot at once and
 * two sets can sample one thread side by side.
 *
 * The handler is async-signal-safe: it reads registers from the signal's
 * context and the clock (trace_now: the CPU's counter or clock_gettime),
 * reads each frame with process_vm_readv (a frame that is not mapped ends
 * the walk instead of faulting), and writes only its slot; where the set's
 * collector sleeps with no deadline (sig_wait), it wakes it with sem_post,
 * which is async-signal-safe.
 *
 * A CPU-clock timer expires at the scheduler's tick, not between: a 1 kHz
 * profile on a 250 Hz kernel gets a signal every 4 ms whose si_overrun
 * says how many periods it stands for; each sample is weighted so. Unlike
 * the perf event, nothing is done at a context switch.
 *
 * The slots and their rings are allocated on first use and never freed: a
 * signal still pending on a thread that sleeps may arrive after its timer
 * was deleted, and finds a slot that says so (its tid is not the
 * thread's). The handler stays installed for the same reason (a stray
 * SIGPROF's default would end the process).
 */
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "prof/internal.h"
#include "trace/trace.h"

struct sig_slot {
	atomic_int tid; /* 0: free; else the timer exists */
	timer_t timer;
	_Atomic uint64_t w, r;
	atomic_uint dropped;
	_Atomic(struct sig_sample *) ring; /* SIG_RING samples, allocated on first claim */
};

static struct sig_slot slots[SIG_SETS][SIG_THREADS];
static atomic_int installed;
/* A set's collector sleeping with no deadline (asleep), and what wakes it:
 * the handler posts once it has published a sample (sem_post is
 * async-signal-safe). */
static atomic_int asleep[SIG_SETS];
static sem_t wakes[SIG_SETS];

static void on_sigprof(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	int saved = errno;
	const ucontext_t *uc = ucv;
	uint64_t pc, fp;
	int v = si->si_code == SI_TIMER ? si->si_value.sival_int : -1;
	if (v < 0 || v / SIG_THREADS >= SIG_SETS) {
		errno = saved;
		return; /* not one of our timers' */
	}
#if defined(__x86_64__)
	pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	fp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
	pc = uc->uc_mcontext.pc;
	fp = uc->uc_mcontext.regs[29];
#else
	(void)uc, (void)pc, (void)fp;
	errno = saved;
	return;
#endif
	struct sig_slot *s = &slots[v / SIG_THREADS][v % SIG_THREADS];
	struct sig_sample *ring = atomic_load_explicit(&s->ring, memory_order_acquire);
	if (!ring || atomic_load_explicit(&s->tid, memory_order_acquire) != (int)syscall(SYS_gettid)) {
		errno = saved;
		return; /* a late signal of a timer deleted since */
	}
	uint64_t w = atomic_load_explicit(&s->w, memory_order_relaxed);
	if (w - atomic_load_explicit(&s->r, memory_order_acquire) >= SIG_RING) {
		atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
		errno = saved;
		return;
	}
	struct sig_sample *x = &ring[w % SIG_RING];
	x->ts = trace_now();
	x->weight = 1 + (si->si_overrun > 0 ? (uint32_t)si->si_overrun : 0);
	x->labels = trace_labels_; /* this thread's: the signal is its own */
	x->ips[0] = pc;
	uint32_t n = 1;
	pid_t pid = getpid();
	while (n < SIG_FRAMES && fp >= 4096 && (fp & 7) == 0) {
		uint64_t frame[2]; /* the caller's frame pointer, the return address */
		struct iovec local = {frame, sizeof frame}, remote = {(void *)(uintptr_t)fp, sizeof frame};
		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof frame)
			break;
		if (frame[1] < 4096)
			break;
		x->ips[n++] = frame[1];
		if (frame[0] <= fp)
			break; /* frames go up the stack, or it is not a chain */
		fp = frame[0];
	}
	x->depth = n;
	atomic_store_explicit(&s->w, w + 1, memory_order_release);
	/* The sample, then the collector's flag (sig_wait stores the flag,
	 * then reads w): one of the two sees the other. */
	int set = v / SIG_THREADS;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&asleep[set], memory_order_relaxed) &&
	    atomic_exchange_explicit(&asleep[set], 0, memory_order_relaxed))
		sem_post(&wakes[set]);
	errno = saved;
}

/* The CPU clock of thread tid (the kernel's encoding, as glibc's
 * pthread_getcpuclockid makes it for its own threads). */
static clockid_t thread_clock(int tid)
{
	return (clockid_t)((~(unsigned)tid << 3) | 4 | 2); /* per thread, CPUCLOCK_SCHED */
}

int sig_install(char *why, size_t len)
{
	if (atomic_exchange(&installed, 1))
		return 0;
	for (int i = 0; i < SIG_SETS; i++)
		sem_init(&wakes[i], 0, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigprof;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPROF, &sa, NULL) != 0) {
		int e = errno;
		atomic_store(&installed, 0);
		snprintf(why, len, "sigaction(SIGPROF): %s", strerror(e));
		return -e;
	}
	return 0;
}

int sig_arm(int set, int tid, unsigned hz)
{
	struct sig_slot *s = NULL;
	int k = 0;
	for (; k < SIG_THREADS && !s; k++)
		if (!atomic_load(&slots[set][k].tid))
			s = &slots[set][k];
	if (!s)
		return -ENOSPC;
	k--;
	if (!atomic_load(&s->ring)) {
		struct sig_sample *ring = calloc(SIG_RING, sizeof *ring);
		if (!ring)
			return -ENOMEM;
		atomic_store_explicit(&s->ring, ring, memory_order_release);
	}
	atomic_store(&s->w, 0);
	atomic_store(&s->r, 0);
	atomic_store(&s->dropped, 0);
	struct sigevent ev;
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGPROF;
	ev.sigev_value.sival_int = set * SIG_THREADS + k;
	ev._sigev_un._tid = tid;
	if (timer_create(thread_clock(tid), &ev, &s->timer) != 0)
		return -errno; /* ESRCH, EINVAL: it ended meanwhile */
	atomic_store_explicit(&s->tid, tid, memory_order_release);
	long ns = 1000000000L / (long)hz;
	struct itimerspec every = {{ns / 1000000000L, ns % 1000000000L},
				   {ns / 1000000000L, ns % 1000000000L}};
	timer_settime(s->timer, 0, &every, NULL);
	return k;
}

unsigned sig_collect(int set, sig_fn fn, void *ctx, uint64_t *lost)
{
	unsigned n = 0;
	for (int k = 0; k < SIG_THREADS; k++) {
		struct sig_slot *s = &slots[set][k];
		int tid = atomic_load_explicit(&s->tid, memory_order_acquire);
		if (!tid)
			continue;
		const struct sig_sample *ring = atomic_load_explicit(&s->ring, memory_order_acquire);
		uint64_t r = atomic_load_explicit(&s->r, memory_order_relaxed);
		uint64_t w = atomic_load_explicit(&s->w, memory_order_acquire);
		for (; r < w; r++, n++)
			fn(ctx, k, tid, &ring[r % SIG_RING]);
		atomic_store_explicit(&s->r, r, memory_order_release);
		*lost += atomic_exchange(&s->dropped, 0);
	}
	return n;
}

/* Whether a slot of set holds a sample not collected yet. */
static int waiting(int set)
{
	for (int k = 0; k < SIG_THREADS; k++) {
		struct sig_slot *s = &slots[set][k];
		if (atomic_load_explicit(&s->tid, memory_order_acquire) &&
		    atomic_load_explicit(&s->w, memory_order_acquire) !=
			    atomic_load_explicit(&s->r, memory_order_relaxed))
			return 1;
	}
	return 0;
}

void sig_wait(int set, const struct timespec *until)
{
	if (until) {
		while (sem_timedwait(&wakes[set], until) != 0 && errno == EINTR)
			;
		return;
	}
	atomic_store_explicit(&asleep[set], 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (!waiting(set))
		while (sem_wait(&wakes[set]) != 0 && errno == EINTR)
			;
	atomic_store_explicit(&asleep[set], 0, memory_order_relaxed);
}

void sig_kick(int set)
{
	sem_post(&wakes[set]);
}

void sig_disarm(int set)
{
	for (int k = 0; k < SIG_THREADS; k++)
		if (atomic_load(&slots[set][k].tid))
			timer_delete(slots[set][k].timer); /* no new signal; a pending one finds tid 0 */
}

void sig_release(int set)
{
	for (int k = 0; k < SIG_THREADS; k++)
		atomic_store_explicit(&slots[set][k].tid, 0, memory_order_release);
}
