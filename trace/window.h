/*
 * window.h - a capture's state, and the reading of its window from the
 * rings, for capture.c (the session, the document's pieces, staging) and
 * window.c (which records are in the window) only.
 *
 * Passes read the rings, each with its own cursor: the events pass
 * (each ring's events, counters and kernel states, then its thread's
 * pending state: traceEvents), the samples pass (each ring's CPU
 * samples: the document's "samples") and the summary's pass (the events
 * pass's records, states first), and the pick's before it (each ring's
 * events). The samples pass keeps its own counts; the pick's counts none.
 *
 * Thread-safety: a capture is used by one thread at a time; the rings'
 * writers go on meanwhile (the seqlock rule of ring.h).
 */
#ifndef MW_TRACE_WINDOW_H
#define MW_TRACE_WINDOW_H

#include "trace/capture.h"
#include "trace/chrome.h"
#include "trace/ring.h"
#include "trace/spill.h"

#define STAGE_BYTES (64 * 1024)

enum phase { PH_HEAD, PH_THREADS, PH_EVENTS, PH_FLOWS, PH_SAMPLES, PH_FRAMES, PH_TAIL, PH_TEXT, PH_DONE };

/* A flow point, held until the slices are written (chrome_flow). */
struct flow_point {
	uint64_t ts, id;
	int tid;
	enum trace_flow f;
};
#define FLOW_POINTS_MAX (1u << 20) /* 24 MiB; past it, points are written with their slices */

struct ring_stats {
	uint64_t written, events, lost;
};

/* Where a pass stands: ring, lane (TRACE_LANES: the thread's pending
 * state), the next record and the lane's end. */
struct cursor {
	unsigned ring;
	int lane, begun, check_oldest;
	int in_spill; /* reading the lane's spilled records, before its ring's */
	uint64_t idx, hi;
};

/* PASS_SUMMARY: the events pass's records, each thread's states first
 * (the summary attributes its spans to them as they stream by).
 * PASS_PICK: each ring's events alone, before the summary's pass, to pick
 * the requests it takes apart; it counts nothing in the rings' stats, and
 * its caller (capture.c) puts back the facts it touched (records clipped,
 * completeness). */
enum pass { PASS_EVENTS, PASS_SAMPLES, PASS_SUMMARY, PASS_PICK, PASSES };

struct trace_capture {
	uint64_t start, end;
	int armed;  /* this capture holds the tracer armed */
	int last;   /* a flight-recorder window: where each ring stood at the start is unknown */
	int pid;
	int samples; /* write the CPU samples (trace_capture_samples) */
	struct trace_spill *spill; /* what the rings passed on while the window was open; NULL: none */
	char spill_why[96];        /* why there is none */
	char note[128];            /* trace_capture_note's */
	enum trace_format format;
	enum phase phase;
	unsigned nrings;       /* rings registered at open */
	unsigned ring;         /* PH_THREADS: the ring being named */
	struct cursor cur[PASSES];
	int held, held_tid;    /* a record read but not yet staged (the stage was full) */
	struct chrome_rec held_rec;
	struct trace_facts facts;
	struct ring_stats rs[TRACE_THREADS_MAX];
	struct ring_stats ss[TRACE_THREADS_MAX]; /* the samples lanes' */
	struct trace_frames *frames; /* PH_SAMPLES, PH_FRAMES: the frames the samples use */
	uint64_t sampled;      /* PH_SAMPLES: samples written */
	int merged;            /* PH_SAMPLES: the frames are merged (samples_frames_merge) */
	uint32_t frame;        /* PH_FRAMES: where the next frame is looked for */
	struct chrome_thread_facts threads[TRACE_THREADS_MAX]; /* otherData's list, at the end */
	struct spill_reader rd[PASSES];
	struct pf_writer *pf;          /* TRACE_FORMAT_PERFETTO's state, from PH_HEAD on */
	struct flow_point *flows;      /* PH_EVENTS collects them, PH_FLOWS writes and frees them */
	size_t nflows, capflows, flow_at;
	char *text;      /* the summary, when that is the format */
	size_t text_len, text_off;
	size_t off, len; /* staged bytes not yet read */
	char stage[STAGE_BYTES];
};

/* The next record of pass p in the window, in ring order: 1, with the
 * thread it is shown on and its ring, or 0 at the end of the pass (whose
 * counts are then in the capture's facts). */
int window_next(struct trace_capture *c, enum pass p, struct chrome_rec *e, int *tid,
		unsigned *ring);

/* The pseudo-thread a ring's kernel states are shown on. */
int window_states_tid(const struct trace_ring *r);

/* The name a ring's thread is shown by. */
const char *window_ring_name(struct trace_ring *r);

#endif
