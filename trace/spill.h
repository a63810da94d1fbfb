/*
 * spill.h - a capture's spill: while a window is armed, the records its
 * rings receive are copied out, compactly, into an unlinked temporary file
 * before the rings can wrap over them, so that a window is as long as it
 * needs to be and loses nothing; the ring size bounds only how far the
 * copying may fall behind. For trace.c (the writers' check), window.c
 * (reading a lane) and capture.c (the session) only.
 *
 * Who copies: each lane's own writer (the recording thread for its
 * events and counters, whoever drains the kernel's view for its states,
 * the sampler's collector for its samples), once that lane holds half a
 * ring of records not yet copied: a batch of at most SPILL_BATCH records
 * each time it checks (every SPILL_CHECK records), so it never wraps
 * over what it has not copied. The writer that copies pays for it, and
 * the trace says so (a 'trace spill' span {records, bytes}). When the
 * window closes, capture.c copies what is left of every lane.
 *
 * The file: one chunk of at most SPILL_CHUNK bytes per batch (a batch may
 * take several), at an offset reserved with one atomic add, written with
 * pwrite; each lane keeps the list of its chunks. A record is varints: its
 * desc (interned per spill), kind and flow, the time as a delta from the
 * record before it in the chunk, the duration, the id, the arguments up to
 * the last nonzero one (8 bytes on average on a px trace, against 64 in a
 * ring). The file is bounded (trace_config.spill_mb); past the bound, or
 * when it cannot be written, copying stops and what the rings then lose is
 * counted lost, as without a spill.
 *
 * Memory: the spill's own is fixed (SPILL_LANES_BYTES, and the chunk lists:
 * 24 bytes a chunk); what it holds is on disk (the page cache may keep some
 * of it in memory, as it does any file's).
 *
 * Thread-safety: a lane's chunks are written under its mutex (its writer
 * try-locks it and skips a turn when it is taken; the final copy waits for
 * it). Writers find the spill through an atomic pointer and count
 * themselves in 'users' while they use it, so that closing can wait for
 * them. Reading starts once the spill is closed: nothing writes it then.
 */
#ifndef MW_TRACE_SPILL_H
#define MW_TRACE_SPILL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trace/chrome.h"
#include "trace/ring.h"

#define SPILL_CHECK 64       /* records between a writer's looks at its lane, at most */
#define SPILL_BATCH 8192     /* records a writer copies at most in one turn */
#define SPILL_CHUNK 16384    /* bytes of one chunk, at most */
#define SPILL_DESCS 1024     /* distinct event descriptions a spill interns */
#define SPILL_MB_DEFAULT 1024

struct spill_chunk {
	uint64_t off;    /* in the file */
	uint32_t len;    /* bytes */
	uint32_t count;  /* records */
	uint64_t ts0;    /* the time the first record's delta is from */
};

struct spill_lane {
	pthread_mutex_t mu;
	_Atomic uint64_t to;     /* the lane's records below this index are copied, or counted lost */
	uint64_t lost;           /* overwritten before they were copied */
	struct spill_chunk *chunk;
	size_t n, cap;
};

struct trace_spill {
	int fd;
	_Atomic uint64_t end;    /* bytes reserved in the file */
	uint64_t max;            /* the file's bound */
	atomic_int stopped;      /* the bound, or a failed write: no more copying */
	atomic_int users;        /* writers inside it now */
	_Atomic uint64_t records, bytes, spans;
	_Atomic uintptr_t desc[SPILL_DESCS];
	char why[96];            /* why copying stopped, if it did */
	struct spill_lane lane[TRACE_THREADS_MAX][TRACE_LANES];
};

#define SPILL_LANES_BYTES (sizeof(struct trace_spill))

extern _Atomic(struct trace_spill *) trace_spill_;

/* A spill for records from each lane's 'from' on (w_open, for rings that
 * exist now; 0 for rings registered later), in a temporary file in dir
 * (NULL: $TMPDIR, else /tmp) of at most mb MiB: 0, or -errno with why
 * (the capture then reads its rings only). Not yet in use. */
int spill_open(struct trace_spill **out, const char *dir, unsigned mb, char *why, size_t len);

/* Makes s the one the writers copy into (NULL: none), waiting for the
 * writers of the one before to leave it. */
void spill_attach(struct trace_spill *s);

/* Copies lane l of ring r (the writers' check: try-lock, a batch). */
void spill_check_(struct trace_ring *r, int l, uint64_t w);

/* A lane's check interval: often enough that half a ring and two
 * intervals are less than the ring (a check may be missed once in a
 * while: the spill's own span is appended to the events lane unchecked,
 * and can take the index a check was due at). */
static inline uint32_t spill_check_mask(uint32_t size)
{
	return (size / 8 < SPILL_CHECK ? size / 8 : SPILL_CHECK) - 1;
}

static inline void spill_maybe(struct trace_ring *r, int l, uint64_t w)
{
	if ((w & r->lane[l].check) == 0 &&
	    atomic_load_explicit(&trace_spill_, memory_order_relaxed) != NULL)
		spill_check_(r, l, w);
}

/* Copies everything lane l of ring r holds up to its writer's count now
 * (the window closed: waits for the lane's mutex). */
void spill_lane_all(struct trace_spill *s, struct trace_ring *r, int l);

/* Reading a lane's chunks, in order. */
struct spill_reader {
	size_t chunk;            /* the next chunk of the lane */
	uint32_t left;           /* records left in the buffer's chunk */
	size_t pos, len;
	uint64_t prev;           /* the last record's time */
	uint64_t idx;            /* the lane index of the next record */
	unsigned char buf[SPILL_CHUNK];
};

/* The next record of lane l of ring i: 1, or 0 at its end (or when a chunk
 * cannot be read back: then the rest of it counts as lost in *lost). */
int spill_next(struct trace_spill *s, unsigned i, int l, struct spill_reader *rd,
	       struct chrome_rec *e, uint64_t *lost);

void spill_free(struct trace_spill *s);

#endif
