/*
 * prof.h - CPU profiles: every thread of the process sampled on its CPU
 * clock for a window, written as pprof's profile.proto, gzipped (what
 * `go tool pprof`, `pprof -http` and speedscope read).
 *
 * Owns: the one profile session (a second start is -EBUSY until the first
 * is freed); per thread, the sampler's state: by default a POSIX timer on
 * the thread's CPU clock that sends it SIGPROF (sigprof.c: the handler
 * walks the frame pointers), or a perf_event_open PERF_COUNT_SW_CPU_CLOCK
 * event (user-only, so it works unprivileged at perf_event_paranoid 2)
 * with the kernel's user call chains and a mapped ring (trace/perf.h); a
 * collector thread that folds the samples into a table of distinct stacks
 * and their counts; the encoded profile. Nothing is armed until a profile
 * starts. The process's SIGPROF handler, once installed, stays.
 *
 * Threads: every thread of the process (/proc/self/task), those created
 * after the profile started too: the collector looks again every round
 * (about 100 ms), so a thread is sampled from then on. Call chains follow
 * frame pointers: the project is built with them, system libraries mostly
 * are not (a chain through one stops there).
 *
 * Thread-safety: one profile is used by one thread at a time; the
 * collector runs beside it.
 */
#ifndef MW_PROF_H
#define MW_PROF_H

#include <stddef.h>
#include <stdint.h>

#define PROF_HZ_DEFAULT 1000 /* samples a second a thread on CPU; see docs/profiling.md */
#define PROF_HZ_STR "1000"
#define PROF_HZ_MAX 10000

struct prof;

/* Test hook: act as if the kernel refused perf_event_open. */
void prof_refuse(int on);

/* Which sampler: 0 (the default) each thread's CPU-clock POSIX timer and
 * SIGPROF (sigprof.c); 1 a perf_event_open CPU-clock event per thread,
 * with the timers where the kernel refuses it. Measured on a 2-vCPU VM:
 * the perf event's timer is reprogrammed at every context switch (a futex
 * hand-off 2.1 -> 11-14 us; the service 0.92-0.95x its unprofiled
 * throughput at 1 kHz), the POSIX timer is not (1.007x). */
void prof_sampler(int perf);

/* Starts sampling every thread at hz: 0; -EBUSY (a profile exists);
 * -EINVAL (hz); or the kernel's -errno, with the reason in why. Where
 * perf_event_open is refused, each thread's own CPU-clock timer and
 * SIGPROF sample instead (sigprof.c); the profile's comment says which. */
int prof_start(struct prof **out, unsigned hz, char *why, size_t len);

/* Ends the window: sampling stops, what the rings hold is collected.
 * Twice is harmless. */
void prof_stop(struct prof *p);

/* A second comment for the profile ("cut short by SIGINT"), shown by go
 * tool pprof -comments; the last one set. */
void prof_note(struct prof *p, const char *note);

struct prof_facts {
	uint64_t samples;   /* collected */
	uint64_t lost;      /* the kernel's rings lost (full before collected) */
	uint64_t stacks;    /* distinct (thread, stack) pairs */
	unsigned threads;   /* sampled */
	uint64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
	unsigned hz;
	int sigprof;        /* sampled by the SIGPROF fallback */
};
void prof_facts(const struct prof *p, struct prof_facts *f);

/* The profile (stopped first) as gzipped profile.proto: 0 with *out
 * malloc'd (the caller frees it) and *len its size, or -ENOMEM. Functions,
 * files and lines come from the process's own ELF symbol tables and DWARF
 * (libdw): static functions included. */
int prof_pprof(struct prof *p, unsigned char **out, size_t *len);

/* CPU samples in traces (tsample.c): attaches a sampler to the tracer
 * (trace.h), which samples every traced thread at hz while the tracer is
 * armed, by each thread's CPU-clock timer and SIGPROF. Call once, after
 * trace_init and before other threads: 0, -EINVAL (hz) or -ENOMEM. */
int prof_trace_samples(unsigned hz);

/* 1 while a profile exists. */
int prof_active(void);

/* ---- the off-CPU (block) profile (block.c) ----
 *
 * Where every thread was off a CPU over a window, and why: pprof's
 * contentions/count and delay/nanoseconds (as Go's block profile), one
 * sample per (thread, call chain, reason), labelled reason and thread.
 * Reasons: each wait site's ("no work", "queue full", "rendezvous",
 * "render", "network"; the stack is where the thread waited, and the
 * delay lasts until it ran again), "runnable" (wanted a CPU outside a
 * wait: preempted) and "blocked" (off a CPU outside any wait site), from
 * the kernel's per-thread schedstat; a thread's samples sum to its time
 * off a CPU. While a block profile runs, each wait that sleeps costs a
 * stack walk and two reads of /proc/thread-self/schedstat; while none
 * runs, a relaxed load (trace.h's waits).
 * One session at a time, as the CPU profile (each has its own). */
struct prof_block;
int prof_block_start(struct prof_block **out); /* 0, -EBUSY or -ENOMEM */
void prof_block_stop(struct prof_block *b);    /* ends the window; twice is harmless */
void prof_block_note(struct prof_block *b, const char *note); /* a second comment */
struct prof_block_facts {
	unsigned threads;
	uint64_t samples;
	uint64_t off_cpu_ns;  /* the threads' time in the window, less their CPU time */
	uint64_t runnable_ns; /* of which runnable (the kernel's run_delay) */
	uint64_t wait_ns;     /* in wait sites, until the thread ran again */
	uint64_t delay_ns;    /* the profile's total delay */
};
/* The profile (stopped first), gzipped: 0 with *out malloc'd, or -ENOMEM;
 * f (may be NULL) gets its facts. */
int prof_block_pprof(struct prof_block *b, unsigned char **out, size_t *len,
		     struct prof_block_facts *f);
int prof_block_active(void);
void prof_block_free(struct prof_block *b); /* ends the session; NULL is a no-op */

/* ---- threads' scheduling, as the kernel counts it (schedstat.c) ---- */
struct prof_sched {
	uint64_t oncpu, runnable; /* ns on a CPU; runnable and waiting for one (run_delay) */
	uint64_t vol, invol;      /* context switches: voluntary (waits), involuntary (preempted) */
	unsigned threads;         /* prof_sched_classes: threads summed */
};
/* Thread tid's (0: the caller's), from /proc: 0, or -1 (it ended). */
int prof_sched_read(int tid, struct prof_sched *s);
/* Thread tid's name (comm), or its number. */
void prof_thread_name(int tid, char *name, size_t len);
/* The process's threads' on-CPU and runnable time, summed by class: the
 * class of the first of prefix[0..n) a thread's name starts with, else
 * class n; sum[0..n]. Threads that ended are not counted. (switch counts
 * are not read.) About 20 us a thread. */
void prof_sched_classes(const char *const *prefix, unsigned n, struct prof_sched *sum);

/* The version of libdw, which names the functions, files and lines:
 * "0.188". For --version. */
const char *prof_libdw_version(void);

/* Frees the profile and ends the session; NULL is a no-op. */
void prof_free(struct prof *p);

#endif
