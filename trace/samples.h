/*
 * samples.h - the CPU samples' side of the tracer, for trace.c (a ring's
 * samples lane, the sampler's hooks) and capture.c (the frames a window's
 * samples use) only; the sampler itself sees trace.h.
 *
 * Owns: the attached sampler, and one tree of stack frames for the
 * process: node = (parent, address), interned by the collector (its one
 * writer) and never removed, at most SAMPLES_NODES nodes (a stack that
 * does not fit is cut at its deepest known frame, and counted). A caller's
 * frame is stored as its return address less one (inside the call), so
 * that it names the caller's line.
 *
 * Thread-safety: nodes are published with a release store of their count;
 * readers see every node below the count they load. The sampler's hooks
 * are called from trace.c with no lock held.
 */
#ifndef MW_TRACE_SAMPLES_H
#define MW_TRACE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "trace/ring.h"

#define SAMPLES_NODES (1u << 16)

extern const struct trace_desc trace_sample_desc_;

/* The attached sampler, or NULL. */
const struct trace_sampler *samples_sampler(void);

/* Records a ring's samples lane holds: a 32nd of its events lane, at
 * least the minimum (8192 at the default: 8 s of one busy thread at 1 kHz). */
unsigned samples_lane_size(unsigned ring_events);

/* A capture's frames: which nodes its samples use, and their names. */
struct trace_frames;
struct trace_frames *samples_frames_new(void); /* NULL: no sampler, or out of memory */
/* Marks node id and its ancestors as used. */
void samples_frames_use(struct trace_frames *f, uint32_t id);
/* Names the used nodes and merges those that are one function on one call
 * path (the tree's nodes are return addresses: several in one function,
 * inlined code included, are one frame): 0, or -ENOMEM (then each node is
 * a frame of its own). Call once every sample has been marked used. */
int samples_frames_merge(struct trace_frames *f);
/* The frame of used node id (itself before the merge), or 0 for a node
 * not marked used: a sample filed after the marking pass (a flight
 * recorder's window is read while the sampler goes on), to be skipped. */
uint32_t samples_frames_canon(const struct trace_frames *f, uint32_t id);
/* The next frame from *at (then past it): its id, with its function's
 * name, the file the function is defined in (may be NULL) and its parent
 * frame (0: a root), or 0 at the end. The names live until the frames are
 * freed. */
uint32_t samples_frames_next(struct trace_frames *f, uint32_t *at, const char **name,
			     const char **file, uint32_t *parent);
void samples_frames_free(struct trace_frames *f);

/* Stacks cut short because the tree was full. */
uint64_t samples_truncated(void);

#endif
