/*
 * internal.h - what prof/'s files share, and nothing outside prof/
 * includes: the profile session's state (sample.c samples and keeps the
 * table of stacks, sigprof.c's timers feed it where perf_event_open is
 * refused, pprof.c encodes it), the symbolizer (symbols.c, used by pprof.c
 * and by tsample.c for the trace's stack frames), the signal handler's
 * sets of slots (sigprof.c, used by sample.c and tsample.c), pprof.c's
 * profile.proto encoder (the CPU profile's and block.c's), and
 * schedstat.c's readers of /proc (the thread list, each thread's
 * scheduling: block.c's, sample.c's and /metrics').
 *
 * The table: open addressing on a hash of (thread, call chain), grown at
 * half full; each entry's frames live in one growing array of addresses
 * (leaf first, as the kernel gives them). Only the collector writes it,
 * under mu, until prof_stop; then only the encoder reads it.
 */
#ifndef MW_PROF_INTERNAL_H
#define MW_PROF_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "prof/prof.h"
#include "trace/perf.h"
#include "trace/trace.h"

#define PROF_FRAMES_MAX 128 /* the kernel's default perf_event_max_stack is 127 */

struct prof_stack {
	uint64_t hash;  /* 0: the slot is free */
	int tid;
	struct trace_labels labels;
	uint32_t depth;
	size_t at;      /* its frames: ips[at .. at + depth) */
	uint64_t count;
};

struct prof_thread {
	int tid;
	char name[16];
	struct perf_ring ring;
};

struct prof {
	pthread_mutex_t mu;
	pthread_t collector;
	int collector_tid; /* never sampled: it is the profiler's own */
	int running, collecting;
	unsigned hz;
	uint64_t start_ns, end_ns;
	uint64_t start_wall_ns;
	struct prof_thread *th;
	unsigned nth;
	struct prof_stack *tab;
	size_t cap, n;
	uint64_t *ips;
	size_t nips, capips;
	uint64_t samples, lost;
	int oom;
	int sigprof;       /* sampled by sigprof.c's timers: perf_event_open was refused */
	char how[320];     /* how it was sampled, for the profile's comment */
	char note[160];    /* a second comment, when the owner has one (prof_note) */
};

/* Array a (capacity *cap elements of size bytes) with room for need: a
 * itself, or where realloc moved it (capacity doubled from first); NULL
 * when out of memory, a and *cap as they were. */
static inline void *prof_grow(void *a, size_t *cap, size_t need, size_t size, size_t first)
{
	if (need <= *cap)
		return a;
	size_t c = *cap ? *cap * 2 : first;
	while (c < need)
		c *= 2;
	void *q = realloc(a, c * size);
	if (q)
		*cap = c;
	return q;
}

/* Counts weight samples of thread tid with frames ips[0..n) (leaf first).
 * Under mu. */
void prof_add_sample_(struct prof *p, int tid, const uint64_t *ips, uint32_t n, uint32_t weight,
		      struct trace_labels labels);

/* symbols.c: this process's addresses to functions, files and lines
 * (libdw); one session is used by one thread at a time. */
struct prof_syms;
struct prof_syms *prof_syms_open(void); /* NULL: out of memory */
/* The function holding address a (a caller's frame: its return address
 * less one), with its source file and line where DWARF says, and its
 * module (1.., 0 when none): the name, or NULL. The strings live as long
 * as the session. */
const char *prof_syms_at(struct prof_syms *s, uint64_t a, const char **file, int *line,
			 unsigned *mapping);
/* The function holding address a and the file it is defined in (its
 * DWARF subprogram's DW_AT_decl_file: not the file of the line at a, which
 * for inlined code is the header it came from), else the line's file.
 * The name, or NULL. */
const char *prof_syms_function(struct prof_syms *s, uint64_t a, const char **file);
unsigned prof_syms_modules(const struct prof_syms *s);
/* Module i (0..): its file's name and its address range. */
const char *prof_syms_module(struct prof_syms *s, unsigned i, uint64_t *start, uint64_t *end);
void prof_syms_close(struct prof_syms *s);

/* The process's threads now (/proc/self/task): a malloc'd array of *n
 * tids (free it), or NULL with *n 0 when it cannot be read. schedstat.c's,
 * for every file here that walks the threads. */
int *prof_tasks(size_t *n);

/* schedstat.c's readers, for block.c. */
uint64_t prof_parse_u64(const char **p); /* skips blanks, then digits */
/* An open /proc/.../schedstat: on-CPU and runnable ns; 0 or -1. */
int prof_schedstat_fd(int fd, uint64_t *oncpu, uint64_t *runnable);
int prof_read_file(const char *path, char *buf, size_t len); /* NUL-ended; 0 or -1 */

/* pprof.c's encoder, for the CPU profile and the block profile (block.c):
 * sample types first, then each sample, then the profile's numbers. */
struct pprof_enc;
/* types[i] = {type, unit}, as "samples", "count": NULL when out of memory. */
struct pprof_enc *pprof_enc_new(const char *const types[][2], unsigned ntypes);
/* A sample: frames ips[0..n) (leaf first, callers' as return addresses),
 * below them (as the leaf) a frame that is no code named pseudo where it
 * is not NULL (then every frame of ips is a caller's); one value per type; labels as key, value pairs ending in
 * NULL (static strings, or strings that outlive the encoder); tid, where
 * nonzero, as a numeric label. */
void pprof_enc_sample(struct pprof_enc *e, const char *pseudo, const uint64_t *ips, uint32_t n,
		      const int64_t *values, const char *const *labels, int tid);
struct pprof_meta {
	uint64_t start_wall_ns, duration_ns;
	const char *period_type, *period_unit;
	uint64_t period;
	const char *comment[2]; /* NULL or "": none */
};
/* Writes the profile, gzipped: 0 with *out malloc'd, or -ENOMEM. Frees e. */
int pprof_enc_finish(struct pprof_enc *e, const struct pprof_meta *meta, unsigned char **out,
		     size_t *len);
void pprof_enc_free(struct pprof_enc *e);

/* sigprof.c: the timer sampler, in sets of slots: the profile's and the
 * trace's. A set is armed, collected, disarmed and released by its owner
 * only (sample.c, tsample.c), under that owner's lock. */
enum { SIG_PROFILE, SIG_TRACE, SIG_SETS };
#define SIG_THREADS 256 /* threads a set samples, at most */
#define SIG_RING 256    /* samples a thread holds between two collections */
#define SIG_FRAMES 64

struct sig_sample {
	uint64_t ts; /* trace_now() at the signal */
	uint32_t depth, weight;
	struct trace_labels labels; /* the thread's at the signal */
	uint64_t ips[SIG_FRAMES]; /* leaf first; callers' are return addresses */
};

/* The handler, once for the process: 0 or -errno (why says it). */
int sig_install(char *why, size_t len);
/* Samples thread tid at hz in set: its slot (0..), or -errno (-ESRCH:
 * it ended; -ENOSPC: the set is full). */
int sig_arm(int set, int tid, unsigned hz);
typedef void (*sig_fn)(void *ctx, int slot, int tid, const struct sig_sample *x);
/* Hands every sample the set's rings hold to fn; adds what the rings
 * dropped (full) to *lost. Returns how many it handed. */
unsigned sig_collect(int set, sig_fn fn, void *ctx, uint64_t *lost);
/* The set's collector sleeps until until (CLOCK_REALTIME), or with none
 * until a sample waits to be collected (the handler wakes it); either
 * returns at sig_kick, and may return early. Only the owner's collector
 * calls it, without the owner's lock. */
void sig_wait(int set, const struct timespec *until);
void sig_kick(int set);
/* Deletes the set's timers (collect once more after it), then frees its
 * slots. */
void sig_disarm(int set);
void sig_release(int set);

#endif
