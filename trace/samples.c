/*
 * samples.c - CPU samples in the tracer: the attached sampler, the tree of
 * stack frames, and each sample filed in its ring (see samples.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/samples.h"

const struct trace_desc trace_sample_desc_ = {"cpu", "sample", {"frame", "weight"}, 0};

struct node {
	uint64_t pc;
	uint32_t parent;
};

static const struct trace_sampler *sampler;
static struct node *nodes;      /* [SAMPLES_NODES]; node 0 is no node */
static uint32_t *slot;          /* [2 * SAMPLES_NODES]: hash -> node */
static _Atomic uint32_t nnodes; /* nodes in use, 0 included */
static _Atomic uint64_t truncated;

int trace_sampler_attach(const struct trace_sampler *s)
{
	if (!nodes) {
		nodes = calloc(SAMPLES_NODES, sizeof *nodes);
		slot = calloc(2 * SAMPLES_NODES, sizeof *slot);
		if (!nodes || !slot) {
			free(nodes);
			free(slot);
			nodes = NULL;
			slot = NULL;
			return -ENOMEM;
		}
		atomic_store_explicit(&nnodes, 1, memory_order_release);
	}
	sampler = s;
	return 0;
}

const struct trace_sampler *samples_sampler(void)
{
	return sampler;
}

unsigned samples_lane_size(unsigned ring_events)
{
	return ring_events / 32 < TRACE_RING_EVENTS_MIN ? TRACE_RING_EVENTS_MIN : ring_events / 32;
}

uint64_t samples_truncated(void)
{
	return atomic_load_explicit(&truncated, memory_order_relaxed);
}

/* The node (parent, pc), added if new: its id, or 0 when the tree is full.
 * The collector's alone. */
static uint32_t intern(uint32_t parent, uint64_t pc)
{
	uint64_t h = (pc ^ ((uint64_t)parent << 40 | parent)) * 0x9e3779b97f4a7c15u;
	uint32_t mask = 2 * SAMPLES_NODES - 1;
	for (uint32_t j = (uint32_t)(h >> 40) & mask;; j = (j + 1) & mask) {
		uint32_t id = slot[j];
		if (!id)
			break;
		if (nodes[id].pc == pc && nodes[id].parent == parent)
			return id;
	}
	uint32_t n = atomic_load_explicit(&nnodes, memory_order_relaxed);
	if (n >= SAMPLES_NODES)
		return 0;
	nodes[n] = (struct node){pc, parent};
	for (uint32_t j = (uint32_t)(h >> 40) & mask;; j = (j + 1) & mask)
		if (!slot[j]) {
			slot[j] = n; /* at most half full: a free slot is near */
			break;
		}
	atomic_store_explicit(&nnodes, n + 1, memory_order_release);
	return n;
}

void trace_sample(unsigned ring, uint64_t ts, const uint64_t *ips, unsigned n, unsigned weight)
{
	struct trace_ring *r = trace_ring_(ring);
	if (!r || !nodes || n == 0 || !r->lane[TRACE_LANE_SAMPLES].rec)
		return;
	uint32_t id = 0;
	for (unsigned i = n; i-- > 0;) { /* from the root down */
		uint32_t k = intern(id, i ? ips[i] - 1 : ips[i]);
		if (!k) {
			atomic_fetch_add_explicit(&truncated, 1, memory_order_relaxed);
			break;
		}
		id = k;
	}
	if (!id)
		return;
	const int64_t a[TRACE_ARGS] = {id, weight, 0, 0};
	trace_lane_put_(r, TRACE_LANE_SAMPLES, &trace_sample_desc_,
			trace_meta_(TRACE_INSTANT, 0, 0), ts, 0, a);
}

struct trace_frames {
	unsigned char *used;  /* [SAMPLES_NODES] */
	uint32_t *canon;      /* [n], after the merge: a node's frame */
	uint32_t n;           /* nodes when merged: a later one was not marked */
	const char **name;    /* [SAMPLES_NODES], after the merge: a used node's function (NULL: unknown) */
	const char **file;
	void *sym;
	char hex[24];
};

struct trace_frames *samples_frames_new(void)
{
	if (!sampler || !nodes)
		return NULL;
	struct trace_frames *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->used = calloc(SAMPLES_NODES, 1);
	if (!f->used) {
		free(f);
		return NULL;
	}
	return f;
}

void samples_frames_use(struct trace_frames *f, uint32_t id)
{
	for (; id && !f->used[id]; id = nodes[id].parent)
		f->used[id] = 1;
}

uint32_t samples_frames_canon(const struct trace_frames *f, uint32_t id)
{
	if (id >= SAMPLES_NODES || !f->used[id])
		return 0;
	if (!f->canon)
		return id;
	return id < f->n ? f->canon[id] : 0;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

int samples_frames_merge(struct trace_frames *f)
{
	uint32_t n = atomic_load_explicit(&nnodes, memory_order_acquire); /* every used one is below */
	f->canon = calloc(n ? n : 1, sizeof *f->canon);
	f->name = calloc(n ? n : 1, sizeof *f->name);
	f->file = calloc(n ? n : 1, sizeof *f->file);
	f->n = n;
	uint32_t used = 0;
	for (uint32_t i = 1; i < n; i++)
		used += f->used[i];
	size_t cap = 16;
	while (cap < 2 * (size_t)used)
		cap *= 2;
	uint32_t *tab = calloc(cap, sizeof *tab); /* a frame's id, by (parent frame, function) */
	if (!f->canon || !f->name || !f->file || !tab) {
		free(tab);
		free(f->canon);
		f->canon = NULL;
		return -ENOMEM;
	}
	if (!f->sym && sampler->sym_open)
		f->sym = sampler->sym_open();
	/* A parent is interned before its children: its frame is known. */
	for (uint32_t i = 1; i < n; i++) {
		if (!f->used[i])
			continue;
		uint32_t parent = nodes[i].parent ? f->canon[nodes[i].parent] : 0;
		f->name[i] = f->sym ? sampler->sym_name(f->sym, nodes[i].pc, &f->file[i]) : NULL;
		uint64_t h = (f->name[i] ? name_hash(f->name[i]) : nodes[i].pc) * 31 + parent;
		size_t j = (size_t)(h * 0x9e3779b97f4a7c15u >> 20) & (cap - 1);
		for (;; j = (j + 1) & (cap - 1)) {
			uint32_t k = tab[j];
			if (!k) {
				tab[j] = i;
				f->canon[i] = i;
				break;
			}
			uint32_t kp = nodes[k].parent ? f->canon[nodes[k].parent] : 0;
			int same = kp == parent &&
				   (f->name[i] && f->name[k] ? strcmp(f->name[i], f->name[k]) == 0
							  : !f->name[i] && !f->name[k] && nodes[i].pc == nodes[k].pc);
			if (same) {
				f->canon[i] = k;
				break;
			}
		}
	}
	free(tab);
	return 0;
}

uint32_t samples_frames_next(struct trace_frames *f, uint32_t *at, const char **name,
			     const char **file, uint32_t *parent)
{
	uint32_t n = atomic_load_explicit(&nnodes, memory_order_acquire); /* every used one is below */
	uint32_t i = *at ? *at : 1;
	while (i < n && (!f->used[i] || (f->canon && f->canon[i] != i)))
		i++;
	if (i >= n)
		return 0;
	if (f->canon) {
		*name = f->name[i];
		*file = f->file[i];
	} else {
		if (!f->sym && sampler->sym_open)
			f->sym = sampler->sym_open();
		*file = NULL;
		*name = f->sym ? sampler->sym_name(f->sym, nodes[i].pc, file) : NULL;
	}
	if (!*name) {
		snprintf(f->hex, sizeof f->hex, "0x%llx", (unsigned long long)nodes[i].pc);
		*name = f->hex;
	}
	*parent = nodes[i].parent && f->canon ? f->canon[nodes[i].parent] : nodes[i].parent;
	*at = i + 1;
	return i;
}

void samples_frames_free(struct trace_frames *f)
{
	if (!f)
		return;
	if (f->sym)
		sampler->sym_close(f->sym);
	free(f->used);
	free(f->canon);
	free(f->name);
	free(f->file);
	free(f);
}
