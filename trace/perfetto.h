/*
 * perfetto.h - a capture as Perfetto's native trace: a stream of
 * TracePackets (protos/perfetto/trace/trace_packet.proto), the subset of
 * the schema in trace/perfetto.proto, what the Perfetto UI and
 * trace_processor open. About a tenth of the JSON's size, and the UI's
 * full feature set for it.
 *
 * What is written:
 * - Packet sequences: 1, the process's (its clock, its track descriptors,
 *   the CPU samples and their interned frames), and 2 + ring for each
 *   thread's events (on each, the first packet clears the incremental
 *   state and sets the defaults: the thread's track and the clock).
 * - Time: each sequence's own clock 64 (sequence-scoped, ids 64-127),
 *   nanoseconds from the window's start, tied by a ClockSnapshot to
 *   CLOCK_MONOTONIC (the trace clock's base; the primary clock): a
 *   timestamp is 3-5 bytes.
 * - Tracks: the process (uuid 1); each thread (16 + 2 ring) and its
 *   kernel view (17 + 2 ring, "NAME [kernel]", a child of the thread's);
 *   each counter (2..15: "queue depth"); each async id (1024 + id,
 *   "request N").
 * - Events: a span is TYPE_SLICE_BEGIN (name interned, its arguments as
 *   debug annotations, its flow in flow_ids or terminating_flow_ids) and
 *   TYPE_SLICE_END, an instant TYPE_INSTANT, a counter TYPE_COUNTER on its
 *   track, an async slice BEGIN/END on its id's track, a kernel state a
 *   slice on the kernel track with its CPU.
 * - CPU samples: PerfSample {pid, tid, callstack_iid} on sequence 1, a
 *   sample standing for w periods written w times (it has no weight); its
 *   callstack the merged frames (samples.h), root first, each a Frame of a
 *   function name (and one stand-in mapping: the UI wants one).
 * - The facts (the JSON's otherData) as the debug annotations of an
 *   instant "trace facts" on the process's track at the window's end, and
 *   the counter "trace lost events".
 *
 * Owns: the writer's interning state (which names each sequence has been
 * given). Pure formatting into the caller's buffer otherwise; one writer
 * is used by one thread.
 */
#ifndef MW_TRACE_PERFETTO_H
#define MW_TRACE_PERFETTO_H

#include <stdint.h>

#include "trace/chrome.h"
#include "trace/pb.h"

struct pf_writer;

/* A writer for a window starting at start (trace clock) of process pid:
 * NULL when out of memory. */
struct pf_writer *pf_new(int pid, uint64_t start);
void pf_free(struct pf_writer *w);

/* The process's sequence: the clock, the process's track. */
void pf_head(struct pf_writer *w, struct pb *o, const char *process);

/* Ring's thread tid, named name, and (kview) its kernel track. */
void pf_thread(struct pf_writer *w, struct pb *o, unsigned ring, int tid, const char *name,
	       int kview);

/* Record e of ring (state: from its kernel view). */
void pf_event(struct pf_writer *w, struct pb *o, unsigned ring, int state, const struct chrome_rec *e);

/* The samples' frames, once merged: frame id (its function's name, its
 * parent frame, 0 for a root), then pf_frames_end; each frame's callstack
 * is its chain to the root. */
void pf_frame(struct pf_writer *w, struct pb *o, uint32_t id, const char *name, uint32_t parent);
void pf_frames_end(struct pf_writer *w, struct pb *o);

/* A CPU sample of thread tid at ts with leaf frame, for weight periods. */
void pf_sample(struct pf_writer *w, struct pb *o, int tid, uint64_t ts, uint32_t frame,
	       uint64_t weight);

/* TrackEvents written so far. */
uint64_t pf_track_events(const struct pf_writer *w);

/* The lost-events counter and the facts, at the window's end. */
void pf_tail(struct pf_writer *w, struct pb *o, const struct chrome_facts *f);

#endif
