/*
 * sigprof.c - the sampler where perf_event_open is refused (Docker's
 * default seccomp profile, perf_event_paranoid 3): a POSIX timer on each
 * thread's own CPU clock (timer_create with SIGEV_THREAD_ID, Go's way
 * since 1.18) sends that thread SIGPROF, and the handler walks its frame
 * pointers.
 *
 * The handler is async-signal-safe: it reads registers from the signal's
 * context, reads each frame with process_vm_readv (a frame that is not
 * mapped ends the walk instead of faulting), and writes into its thread's
 * slot: a single-producer ring (the handler) and single-consumer (the
 * collector, under the profile's lock), published with release/acquire.
 *
 * A CPU-clock timer expires at the scheduler's tick, not between: a 1 kHz
 * profile on a 250 Hz kernel gets a signal every 4 ms whose si_overrun
 * says how many periods it stands for; each sample is weighted so. Unlike
 * the perf event, nothing is done at a context switch.
 *
 * The slots are allocated once, on first use, and never freed: a signal
 * still pending on a thread that sleeps may arrive after its profile ended,
 * and finds a slot that says so. The handler stays installed for the same
 * reason (a stray SIGPROF's default would end the process).
 */
#include <errno.h>
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

#define SIG_THREADS 64 /* threads a fallback profile samples, at most */
#define SIG_RING 128   /* samples a thread holds between two collections (100 ms) */
#define SIG_FRAMES 64

struct sig_sample {
	uint32_t depth, weight;
	uint64_t ips[SIG_FRAMES];
};

struct sig_slot {
	atomic_int tid; /* 0: free */
	timer_t timer;
	_Atomic uint64_t w, r;
	atomic_uint dropped;
	struct sig_sample ring[SIG_RING];
};

static struct sig_slot *slots;
static atomic_int installed;

static void on_sigprof(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	int saved = errno;
	const ucontext_t *uc = ucv;
	uint64_t pc, fp;
#if defined(__x86_64__)
	pc = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	fp = (uint64_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
	pc = uc->uc_mcontext.pc;
	fp = uc->uc_mcontext.regs[29];
#else
	(void)uc;
	errno = saved;
	return;
#endif
	int tid = (int)syscall(SYS_gettid);
	struct sig_slot *s = NULL;
	for (int i = 0; i < SIG_THREADS && !s; i++)
		if (atomic_load_explicit(&slots[i].tid, memory_order_acquire) == tid)
			s = &slots[i];
	if (!s) {
		errno = saved;
		return; /* a late signal of a profile that has ended */
	}
	uint64_t w = atomic_load_explicit(&s->w, memory_order_relaxed);
	if (w - atomic_load_explicit(&s->r, memory_order_acquire) >= SIG_RING) {
		atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
		errno = saved;
		return;
	}
	struct sig_sample *x = &s->ring[w % SIG_RING];
	x->weight = 1 + (si->si_overrun > 0 ? (uint32_t)si->si_overrun : 0);
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
	errno = saved;
}

/* The CPU clock of thread tid (the kernel's encoding, as glibc's
 * pthread_getcpuclockid makes it for its own threads). */
static clockid_t thread_clock(int tid)
{
	return (clockid_t)((~(unsigned)tid << 3) | 4 | 2); /* per thread, CPUCLOCK_SCHED */
}

int sig_start(struct prof *p, char *why, size_t len)
{
	if (!slots && !(slots = calloc(SIG_THREADS, sizeof *slots))) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	if (!atomic_exchange(&installed, 1)) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = on_sigprof;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGPROF, &sa, NULL) != 0) {
			atomic_store(&installed, 0);
			snprintf(why, len, "sigaction(SIGPROF): %s", strerror(errno));
			return -errno;
		}
	}
	long ns = 1000000000L / (long)p->hz;
	struct itimerspec every = {{ns / 1000000000L, ns % 1000000000L},
				   {ns / 1000000000L, ns % 1000000000L}};
	unsigned armed = 0;
	for (unsigned i = 0; i < p->nth && armed < SIG_THREADS; i++) {
		struct sig_slot *s = &slots[armed];
		atomic_store(&s->w, 0);
		atomic_store(&s->r, 0);
		atomic_store(&s->dropped, 0);
		struct sigevent ev;
		memset(&ev, 0, sizeof ev);
		ev.sigev_notify = SIGEV_THREAD_ID;
		ev.sigev_signo = SIGPROF;
		ev._sigev_un._tid = p->th[i].tid;
		if (timer_create(thread_clock(p->th[i].tid), &ev, &s->timer) != 0)
			continue; /* it ended meanwhile */
		atomic_store_explicit(&s->tid, p->th[i].tid, memory_order_release);
		timer_settime(s->timer, 0, &every, NULL);
		p->th[armed++] = p->th[i];
	}
	p->nth = armed;
	if (!armed) {
		snprintf(why, len, "timer_create: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

void sig_collect(struct prof *p)
{
	for (unsigned i = 0; i < p->nth; i++) {
		struct sig_slot *s = &slots[i];
		uint64_t r = atomic_load_explicit(&s->r, memory_order_relaxed);
		uint64_t w = atomic_load_explicit(&s->w, memory_order_acquire);
		for (; r < w; r++) {
			const struct sig_sample *x = &s->ring[r % SIG_RING];
			prof_add_sample_(p, p->th[i].tid, x->ips, x->depth, x->weight);
		}
		atomic_store_explicit(&s->r, r, memory_order_release);
		p->lost += atomic_exchange(&s->dropped, 0);
	}
}

void sig_stop(struct prof *p)
{
	for (unsigned i = 0; i < p->nth; i++)
		timer_delete(slots[i].timer); /* no new signal; a pending one finds tid 0 below */
	sig_collect(p);
	for (unsigned i = 0; i < p->nth; i++)
		atomic_store_explicit(&slots[i].tid, 0, memory_order_release);
}
