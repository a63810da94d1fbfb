/*
 * ring.h - the tracer's rings, for trace.c (writers) and capture.c (the
 * reader) only; users include trace.h and capture.h.
 *
 * Owns: struct trace_ring, one per registered thread, never freed before
 * exit (a capture may be reading it), and the registry of them.
 *
 * Memory-ordering rules (a seqlock reader over a single-writer ring):
 * - Only the owning thread writes its ring. It stores a record's fields,
 *   then publishes the record by storing w + 1 with release: 'w' counts
 *   records ever written (it only grows; slot = index & mask).
 * - The reader loads w with acquire, so every record below it is visible,
 *   copies a record's fields, then loads w again. The writer overwrites
 *   the slot of index i while writing index i + size, that is once
 *   w >= i + size; if the second load says w < i + size, the copy is
 *   whole. Otherwise the record counts as lost. So a ring of size slots
 *   keeps size - 1 readable records: the oldest slot may be the one being
 *   written.
 * - Why the second load can be trusted: the fields are stored with release
 *   and loaded with acquire. If the reader saw any field of the overwrite
 *   of index i + size, that load synchronises with its store, and the
 *   writer's earlier store of w = i + size happens before the reader's
 *   second load of w. (The textbook form uses fences; GCC's
 *   ThreadSanitizer does not model fences, and on x86-64 release stores
 *   and acquire loads are plain moves anyway.) The fields are atomics so
 *   the race is defined C.
 */
#ifndef MW_TRACE_RING_H
#define MW_TRACE_RING_H

#include <stdatomic.h>
#include <stdint.h>

#include "trace/trace.h"

struct trace_rec { /* 64 bytes: one cache line */
	_Atomic uint64_t ts, dur, meta;
	_Atomic uintptr_t desc;
	_Atomic int64_t a[TRACE_ARGS];
};

#define TRACE_NAME_MAX 32

struct trace_ring {
	_Atomic uint64_t w; /* records written; the owner's release store publishes */
	uint32_t mask;      /* size - 1 */
	int tid;
	uint64_t w_open;    /* w when the current capture opened (capture.c) */
	_Atomic uintptr_t name; /* a static or leaked name set by trace_thread_name */
	char pname[TRACE_NAME_MAX]; /* the pthread name at registration */
	struct trace_rec *rec;
};

/* Rings registered so far, and ring i (i < that count). */
unsigned trace_rings_(void);
struct trace_ring *trace_ring_(unsigned i);
const char *trace_process_(void);
uint64_t trace_ring_size_(void);

static inline enum trace_kind trace_meta_kind(uint64_t m) { return (enum trace_kind)(m & 3); }
static inline enum trace_flow trace_meta_flow(uint64_t m) { return (enum trace_flow)((m >> 2) & 3); }
static inline uint64_t trace_meta_id(uint64_t m) { return m >> 4; }

#endif
