/* perfetto.c - Perfetto's TracePacket stream of a capture (see perfetto.h;
 * field numbers from Perfetto's protos, the subset in trace/perfetto.proto). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/perfetto.h"
#include "trace/ring.h"

/* TracePacket */
#define TP_CLOCK_SNAPSHOT 6
#define TP_TIMESTAMP 8
#define TP_SEQUENCE_ID 10
#define TP_TRACK_EVENT 11
#define TP_INTERNED_DATA 12
#define TP_SEQUENCE_FLAGS 13
#define TP_DEFAULTS 59
#define TP_TRACK_DESCRIPTOR 60
#define TP_PERF_SAMPLE 66
#define TP_FIRST_ON_SEQUENCE 87
#define SEQ_CLEARED 1
#define SEQ_NEEDS_STATE 2
/* TracePacketDefaults, TrackEventDefaults */
#define DEF_CLOCK_ID 58
#define DEF_TRACK_EVENT 11
#define TED_TRACK_UUID 11
/* ClockSnapshot and its Clock */
#define CS_CLOCKS 1
#define CS_PRIMARY 2
#define CLOCK_ID 1
#define CLOCK_TIMESTAMP 2
#define CLOCK_MONOTONIC_ID 3 /* BUILTIN_CLOCK_MONOTONIC */
#define CLOCK_OURS 64        /* sequence-scoped: ns from the window's start */
/* TrackDescriptor, ProcessDescriptor, ThreadDescriptor */
#define TD_UUID 1
#define TD_NAME 2
#define TD_PROCESS 3
#define TD_THREAD 4
#define TD_PARENT 5
#define TD_COUNTER 8
#define PD_PID 1
#define PD_NAME 6
#define THD_PID 1
#define THD_TID 2
#define THD_NAME 5
/* TrackEvent */
#define TE_ANNOTATIONS 4
#define TE_TYPE 9
#define TE_NAME_IID 10
#define TE_TRACK_UUID 11
#define TE_COUNTER_VALUE 30
#define TE_FLOW_IDS 47
#define TE_TERMINATING_FLOW_IDS 48
#define TYPE_BEGIN 1
#define TYPE_END 2
#define TYPE_INSTANT 3
#define TYPE_COUNTER 4
/* DebugAnnotation */
#define DA_NAME_IID 1
#define DA_INT 4
#define DA_STRING 6
/* InternedData and its entries */
#define ID_EVENT_NAMES 2
#define ID_ANNOTATION_NAMES 3
#define ID_FUNCTION_NAMES 5
#define ID_FRAMES 6
#define ID_CALLSTACKS 7
#define ID_BUILD_IDS 16
#define ID_MAPPING_PATHS 17
#define ID_MAPPINGS 19
#define ENTRY_IID 1
#define ENTRY_NAME 2 /* EventName.name, DebugAnnotationName.name, InternedString.str */
#define FRAME_FUNCTION 2
#define FRAME_MAPPING 3
#define FRAME_REL_PC 4
#define CALLSTACK_FRAMES 2
#define MAPPING_BUILD_ID 2
#define MAPPING_START 4
#define MAPPING_END 5
#define MAPPING_PATHS 7
/* PerfSample */
#define PS_PID 2
#define PS_TID 3
#define PS_CALLSTACK 4
#define PS_CPU_MODE 5
#define CPU_MODE_USER 2

/* Track uuids (perfetto.h). */
#define UUID_PROCESS 1
#define UUID_COUNTER0 2
#define COUNTERS_MAX 250
#define UUID_THREAD(ring) (256 + 2 * (uint64_t)(ring))
#define UUID_KERNEL(ring) (257 + 2 * (uint64_t)(ring))
#define UUID_ASYNC(id) ((UINT64_C(1) << 20) + (id))

#define SEQ_PROCESS 1
#define SEQ_RING(ring) (2 + (ring))
#define SEQS (TRACE_THREADS_MAX + 2)
#define STRINGS_MAX 1024 /* interned names and annotation names, by pointer */
#define PACKET_MAX 2048

struct sequence {
	int started;
	/* the strings this sequence has been given: as event names, as
	 * annotation names (two indexes: one string may be in both) */
	uint64_t sent[2][STRINGS_MAX / 64];
};

struct pf_writer {
	int pid;
	uint64_t start;
	const char *str[STRINGS_MAX]; /* iid - 1 -> the string (a static one: names are) */
	unsigned nstr;
	unsigned short slot[2 * STRINGS_MAX]; /* hash of the pointer -> iid */
	const struct trace_desc *counter[COUNTERS_MAX];
	unsigned ncounters;
	uint64_t *async; /* async ids with a track described, open addressing (0: free) */
	size_t nasync, capasync;
	uint32_t *parent; /* by frame id: its parent + 1 (0: no such frame) */
	size_t nparent;
	uint64_t events; /* TrackEvents */
	struct sequence seq[SEQS];
};

uint64_t pf_track_events(const struct pf_writer *w)
{
	return w ? w->events : 0;
}

struct pf_writer *pf_new(int pid, uint64_t start)
{
	struct pf_writer *w = calloc(1, sizeof *w);
	if (w) {
		w->pid = pid;
		w->start = start;
	}
	return w;
}

void pf_free(struct pf_writer *w)
{
	if (w) {
		free(w->async);
		free(w->parent);
		free(w);
	}
}

/* ---- interning ---- */

/* The iid of string s (a pointer that lives as long as the writer), or 0
 * when the table is full (the caller then writes no name). */
static unsigned string_iid(struct pf_writer *w, const char *s)
{
	size_t h = ((uintptr_t)s >> 3) * 0x9e3779b97f4a7c15u >> 40;
	for (size_t k = 0; k < 2 * STRINGS_MAX; k++) {
		unsigned short *slot = &w->slot[(h + k) % (2 * STRINGS_MAX)];
		if (*slot && w->str[*slot - 1] == s)
			return *slot;
		if (!*slot) {
			if (w->nstr == STRINGS_MAX)
				return 0;
			w->str[w->nstr++] = s;
			*slot = (unsigned short)w->nstr;
			return *slot;
		}
	}
	return 0;
}

/* Adds string s's entry (as field 'kind' of InternedData) to in unless
 * sequence q has it already; its iid. */
static unsigned intern(struct pf_writer *w, struct sequence *q, struct pb *in, unsigned kind,
		       const char *s)
{
	unsigned iid = string_iid(w, s);
	uint64_t *sent = q->sent[kind == ID_EVENT_NAMES ? 0 : 1];
	if (!iid || (sent[(iid - 1) / 64] >> ((iid - 1) % 64) & 1))
		return iid;
	unsigned char buf[256];
	struct pb e = pb_fixed(buf, sizeof buf);
	pb_uint(&e, ENTRY_IID, iid);
	pb_str(&e, ENTRY_NAME, s);
	pb_msg(in, kind, &e);
	sent[(iid - 1) / 64] |= UINT64_C(1) << ((iid - 1) % 64);
	return iid;
}

/* ---- packets ---- */

/* Packet p as the next of the Trace (its field 1). */
static void emit(struct pb *o, struct pb *p)
{
	pb_msg(o, 1, p);
}

/* The first packet of sequence s: incremental state cleared, our clock
 * (tied to CLOCK_MONOTONIC at the window's start), the events' default
 * track (0: none). */
static void sequence_start(struct pf_writer *w, struct pb *o, unsigned s, uint64_t track)
{
	unsigned char pb[PACKET_MAX], sb[256], cb[64];
	struct pb p = pb_fixed(pb, sizeof pb), sub = pb_fixed(sb, sizeof sb), c = pb_fixed(cb, sizeof cb);
	pb_uint(&p, TP_SEQUENCE_ID, s);
	pb_uint(&p, TP_SEQUENCE_FLAGS, SEQ_CLEARED);
	pb_uint(&p, TP_FIRST_ON_SEQUENCE, 1);
	if (track) {
		pb_uint(&c, TED_TRACK_UUID, track);
		pb_msg(&sub, DEF_TRACK_EVENT, &c);
	}
	pb_uint(&sub, DEF_CLOCK_ID, CLOCK_OURS);
	pb_msg(&p, TP_DEFAULTS, &sub);
	pb_uint(&c, CLOCK_ID, CLOCK_OURS);
	pb_uint(&c, CLOCK_TIMESTAMP, 0);
	pb_msg(&sub, CS_CLOCKS, &c);
	pb_uint(&c, CLOCK_ID, CLOCK_MONOTONIC_ID);
	pb_uint(&c, CLOCK_TIMESTAMP, w->start);
	pb_msg(&sub, CS_CLOCKS, &c);
	pb_uint(&sub, CS_PRIMARY, CLOCK_MONOTONIC_ID);
	pb_msg(&p, TP_CLOCK_SNAPSHOT, &sub);
	emit(o, &p);
	w->seq[s].started = 1;
}

/* A track's descriptor: uuid, its name, its parent (0: none); counter:
 * a counter track. */
static void track(struct pb *o, unsigned s, uint64_t uuid, const char *name, uint64_t parent,
		  int counter)
{
	unsigned char pb[PACKET_MAX], tb[512], cb[8];
	struct pb p = pb_fixed(pb, sizeof pb), t = pb_fixed(tb, sizeof tb), c = pb_fixed(cb, sizeof cb);
	pb_uint(&p, TP_SEQUENCE_ID, s);
	pb_uint(&t, TD_UUID, uuid);
	pb_str(&t, TD_NAME, name);
	if (parent)
		pb_uint(&t, TD_PARENT, parent);
	if (counter)
		pb_msg(&t, TD_COUNTER, &c); /* an empty CounterDescriptor */
	pb_msg(&p, TP_TRACK_DESCRIPTOR, &t);
	emit(o, &p);
}

void pf_head(struct pf_writer *w, struct pb *o, const char *process)
{
	sequence_start(w, o, SEQ_PROCESS, 0);
	unsigned char pb[PACKET_MAX], tb[512], db[256];
	struct pb p = pb_fixed(pb, sizeof pb), t = pb_fixed(tb, sizeof tb), d = pb_fixed(db, sizeof db);
	pb_uint(&p, TP_SEQUENCE_ID, SEQ_PROCESS);
	pb_uint(&t, TD_UUID, UUID_PROCESS);
	pb_uint(&d, PD_PID, (uint64_t)w->pid);
	pb_str(&d, PD_NAME, process);
	pb_msg(&t, TD_PROCESS, &d);
	pb_msg(&p, TP_TRACK_DESCRIPTOR, &t);
	emit(o, &p);
}

void pf_thread(struct pf_writer *w, struct pb *o, unsigned ring, int tid, const char *name, int kview)
{
	(void)w;
	unsigned char pb[PACKET_MAX], tb[512], db[256];
	struct pb p = pb_fixed(pb, sizeof pb), t = pb_fixed(tb, sizeof tb), d = pb_fixed(db, sizeof db);
	pb_uint(&p, TP_SEQUENCE_ID, SEQ_PROCESS);
	pb_uint(&t, TD_UUID, UUID_THREAD(ring));
	pb_uint(&d, THD_PID, (uint64_t)w->pid);
	pb_uint(&d, THD_TID, (uint64_t)tid);
	pb_str(&d, THD_NAME, name);
	pb_msg(&t, TD_THREAD, &d);
	pb_msg(&p, TP_TRACK_DESCRIPTOR, &t);
	emit(o, &p);
	if (kview) {
		char kname[TRACE_NAME_MAX + 16];
		size_t n = strlen(name) < TRACE_NAME_MAX ? strlen(name) : TRACE_NAME_MAX;
		memcpy(kname, name, n);
		memcpy(kname + n, " [kernel]", 10);
		track(o, SEQ_PROCESS, UUID_KERNEL(ring), kname, UUID_THREAD(ring), 0);
	}
}

/* The counter track of d: described on first use (on sequence s). */
static uint64_t counter_track(struct pf_writer *w, struct pb *o, unsigned s, const struct trace_desc *d)
{
	for (unsigned i = 0; i < w->ncounters; i++)
		if (w->counter[i] == d)
			return UUID_COUNTER0 + i;
	if (w->ncounters == COUNTERS_MAX)
		return 0;
	w->counter[w->ncounters] = d;
	char name[128];
	snprintf(name, sizeof name, "%s %s", d->name, d->arg[0] ? d->arg[0] : "value");
	track(o, s, UUID_COUNTER0 + w->ncounters, name, UUID_PROCESS, 1);
	return UUID_COUNTER0 + w->ncounters++;
}

/* The track of async id (as the JSON's "b"/"e" with that id): described
 * on first use, named by its first slice, "request 12". */
static uint64_t async_track(struct pf_writer *w, struct pb *o, unsigned s, uint64_t id, const char *name)
{
	if (w->nasync * 2 >= w->capasync) {
		size_t cap = w->capasync ? 2 * w->capasync : 256;
		uint64_t *t = calloc(cap, sizeof *t);
		if (!t)
			return UUID_ASYNC(id); /* described again: harmless */
		for (size_t i = 0; i < w->capasync; i++)
			if (w->async[i])
				for (size_t j = w->async[i] * 0x9e3779b97f4a7c15u >> 32 & (cap - 1);; j = (j + 1) & (cap - 1))
					if (!t[j]) {
						t[j] = w->async[i];
						break;
					}
		free(w->async);
		w->async = t;
		w->capasync = cap;
	}
	uint64_t key = id + 1; /* 0 marks a free slot */
	size_t j = key * 0x9e3779b97f4a7c15u >> 32 & (w->capasync - 1);
	for (; w->async[j]; j = (j + 1) & (w->capasync - 1))
		if (w->async[j] == key)
			return UUID_ASYNC(id);
	w->async[j] = key;
	w->nasync++;
	char tname[96];
	snprintf(tname, sizeof tname, "%s %llu", name, (unsigned long long)id);
	track(o, s, UUID_ASYNC(id), tname, UUID_PROCESS, 0);
	return UUID_ASYNC(id);
}

/* A TrackEvent packet at ts (trace clock) on sequence s: its type, track
 * (0: the sequence's default), name (NULL: none), the desc's arguments
 * (d NULL: none), a counter's value, a flow. */
struct event {
	unsigned type;
	uint64_t track;
	const char *name;
	const struct trace_desc *d;
	const int64_t *a;
	int counter;
	int64_t value;
	enum trace_flow flow;
	uint64_t flow_id;
};

static void event(struct pf_writer *w, struct pb *o, unsigned s, uint64_t ts, const struct event *ev)
{
	struct sequence *q = &w->seq[s];
	unsigned char pb[PACKET_MAX], eb[PACKET_MAX], ib[PACKET_MAX], ab[512];
	struct pb p = pb_fixed(pb, sizeof pb), e = pb_fixed(eb, sizeof eb), in = pb_fixed(ib, sizeof ib),
		  an = pb_fixed(ab, sizeof ab);
	pb_uint(&e, TE_TYPE, ev->type);
	if (ev->track)
		pb_uint(&e, TE_TRACK_UUID, ev->track);
	if (ev->name) {
		unsigned iid = intern(w, q, &in, ID_EVENT_NAMES, ev->name);
		if (iid)
			pb_uint(&e, TE_NAME_IID, iid);
	}
	for (int i = 0; ev->d && i < TRACE_ARGS && ev->d->arg[i]; i++) {
		unsigned iid = intern(w, q, &in, ID_ANNOTATION_NAMES, ev->d->arg[i]);
		if (!iid)
			continue;
		pb_uint(&an, DA_NAME_IID, iid);
		if (ev->d->strargs & (1u << i))
			pb_str(&an, DA_STRING, (const char *)(intptr_t)ev->a[i]);
		else
			pb_uint(&an, DA_INT, (uint64_t)ev->a[i]);
		pb_msg(&e, TE_ANNOTATIONS, &an);
	}
	if (ev->counter)
		pb_uint(&e, TE_COUNTER_VALUE, (uint64_t)ev->value);
	if (ev->flow == TRACE_FLOW_START || ev->flow == TRACE_FLOW_STEP)
		pb_fixed64(&e, TE_FLOW_IDS, ev->flow_id);
	else if (ev->flow == TRACE_FLOW_END)
		pb_fixed64(&e, TE_TERMINATING_FLOW_IDS, ev->flow_id);
	pb_uint(&p, TP_TIMESTAMP, ts - w->start);
	pb_uint(&p, TP_SEQUENCE_ID, s);
	pb_uint(&p, TP_SEQUENCE_FLAGS, SEQ_NEEDS_STATE);
	if (in.n)
		pb_msg(&p, TP_INTERNED_DATA, &in);
	pb_msg(&p, TP_TRACK_EVENT, &e);
	emit(o, &p);
	w->events++;
}

void pf_event(struct pf_writer *w, struct pb *o, unsigned ring, int state, const struct chrome_rec *e)
{
	unsigned s = SEQ_RING(ring);
	if (!w->seq[s].started)
		sequence_start(w, o, s, UUID_THREAD(ring));
	struct event ev = {.name = e->d->name, .d = e->d, .a = e->a};
	switch (e->kind) {
	case TRACE_SPAN:
		ev.type = TYPE_BEGIN;
		ev.track = state ? UUID_KERNEL(ring) : 0;
		ev.flow = e->flow;
		ev.flow_id = e->id;
		event(w, o, s, e->ts, &ev);
		event(w, o, s, e->ts + e->dur, &(struct event){.type = TYPE_END, .track = ev.track});
		break;
	case TRACE_INSTANT:
		ev.type = TYPE_INSTANT;
		event(w, o, s, e->ts, &ev);
		break;
	case TRACE_COUNTER: {
		uint64_t t = counter_track(w, o, s, e->d);
		if (t)
			event(w, o, s, e->ts,
			      &(struct event){.type = TYPE_COUNTER, .track = t, .counter = 1, .value = e->a[0]});
		break;
	}
	case TRACE_ASYNC:
		ev.type = TYPE_BEGIN;
		ev.track = async_track(w, o, s, e->id, e->d->name);
		event(w, o, s, e->ts, &ev);
		event(w, o, s, e->ts + e->dur, &(struct event){.type = TYPE_END, .track = ev.track});
		break;
	}
}

/* ---- CPU samples ---- */

/* A packet of interned data only, on the process's sequence. */
static void interned(struct pb *o, struct pb *in)
{
	unsigned char pb[PACKET_MAX];
	struct pb p = pb_fixed(pb, sizeof pb);
	pb_uint(&p, TP_SEQUENCE_ID, SEQ_PROCESS);
	pb_uint(&p, TP_SEQUENCE_FLAGS, SEQ_NEEDS_STATE);
	pb_msg(&p, TP_INTERNED_DATA, in);
	emit(o, &p);
}

void pf_frame(struct pf_writer *w, struct pb *o, uint32_t id, const char *name, uint32_t parent)
{
	unsigned char ib[PACKET_MAX], eb[512];
	struct pb in = pb_fixed(ib, sizeof ib), e = pb_fixed(eb, sizeof eb);
	if (w->nparent == 0) {
		/* The stand-in mapping every frame names (the UI wants one):
		 * the process's, with no build id. */
		pb_uint(&e, ENTRY_IID, 1);
		pb_str(&e, ENTRY_NAME, "");
		pb_msg(&in, ID_BUILD_IDS, &e);
		pb_uint(&e, ENTRY_IID, 1);
		pb_str(&e, ENTRY_NAME, "mandelweb");
		pb_msg(&in, ID_MAPPING_PATHS, &e);
		pb_uint(&e, ENTRY_IID, 1);
		pb_uint(&e, MAPPING_BUILD_ID, 1);
		pb_uint(&e, MAPPING_START, 0);
		pb_uint(&e, MAPPING_END, UINT64_MAX);
		pb_uint(&e, MAPPING_PATHS, 1);
		pb_msg(&in, ID_MAPPINGS, &e);
	}
	if (id >= w->nparent) {
		size_t n = w->nparent ? w->nparent : 256;
		while (n <= id)
			n *= 2;
		uint32_t *q = realloc(w->parent, n * sizeof *q);
		if (!q)
			return;
		memset(q + w->nparent, 0, (n - w->nparent) * sizeof *q);
		w->parent = q;
		w->nparent = n;
	}
	w->parent[id] = parent + 1; /* 0: no frame */
	pb_uint(&e, ENTRY_IID, id);
	pb_str(&e, ENTRY_NAME, name);
	pb_msg(&in, ID_FUNCTION_NAMES, &e);
	pb_uint(&e, ENTRY_IID, id);
	pb_uint(&e, FRAME_FUNCTION, id);
	pb_uint(&e, FRAME_MAPPING, 1);
	pb_uint(&e, FRAME_REL_PC, 0);
	pb_msg(&in, ID_FRAMES, &e);
	interned(o, &in);
}

void pf_frames_end(struct pf_writer *w, struct pb *o)
{
	/* A callstack a frame, its iid the frame's: the chain to it, root
	 * first (Callstack.frame_ids: "bottom frame first"). */
	uint32_t chain[256];
	for (uint32_t id = 1; id < w->nparent; id++) {
		if (!w->parent[id])
			continue; /* no such frame */
		unsigned n = 0;
		for (uint32_t f = id; f && f < w->nparent && w->parent[f] && n < 256; f = w->parent[f] - 1)
			chain[n++] = f;
		unsigned char ib[PACKET_MAX], cb[PACKET_MAX];
		struct pb in = pb_fixed(ib, sizeof ib), c = pb_fixed(cb, sizeof cb);
		pb_uint(&c, ENTRY_IID, id);
		while (n)
			pb_uint(&c, CALLSTACK_FRAMES, chain[--n]);
		pb_msg(&in, ID_CALLSTACKS, &c);
		interned(o, &in);
	}
}

void pf_sample(struct pf_writer *w, struct pb *o, int tid, uint64_t ts, uint32_t frame, uint64_t weight)
{
	unsigned char pb[256], sb[64];
	for (uint64_t k = 0; k < weight && k < 1000; k++) {
		struct pb p = pb_fixed(pb, sizeof pb), s = pb_fixed(sb, sizeof sb);
		pb_uint(&p, TP_TIMESTAMP, ts - w->start);
		pb_uint(&p, TP_SEQUENCE_ID, SEQ_PROCESS);
		pb_uint(&p, TP_SEQUENCE_FLAGS, SEQ_NEEDS_STATE);
		pb_uint(&s, PS_PID, (uint64_t)w->pid);
		pb_uint(&s, PS_TID, (uint64_t)tid);
		pb_uint(&s, PS_CALLSTACK, frame);
		pb_uint(&s, PS_CPU_MODE, CPU_MODE_USER);
		pb_msg(&p, TP_PERF_SAMPLE, &s);
		emit(o, &p);
	}
}

/* ---- the facts ---- */

void pf_tail(struct pf_writer *w, struct pb *o, const struct chrome_facts *f)
{
	static const struct trace_desc lost = {"trace lost events", "trace", {"lost"}, 0};
	uint64_t t = counter_track(w, o, SEQ_PROCESS, &lost);
	if (t) {
		event(w, o, SEQ_PROCESS, f->start,
		      &(struct event){.type = TYPE_COUNTER, .track = t, .counter = 1, .value = 0});
		event(w, o, SEQ_PROCESS, f->end,
		      &(struct event){.type = TYPE_COUNTER, .track = t, .counter = 1,
				      .value = (int64_t)f->lost});
	}
	/* otherData's facts, as an instant's annotations: four at a time (the
	 * desc's arguments), strings marked. */
	static const struct trace_desc d1 = {"trace facts", "trace",
					     {"events", "events_written", "events_lost", "events_clipped"}, 0};
	static const struct trace_desc d2 = {"trace facts", "trace",
					     {"complete", "cpu_samples", "cpu_samples_lost", "spill_bytes"}, 0};
	static const struct trace_desc d3 = {"trace facts", "trace", {"spill", "kernel_view", "note", "clock"},
					     1 | 2 | 4 | 8};
	const int64_t a1[TRACE_ARGS] = {(int64_t)f->events, (int64_t)f->written, (int64_t)f->lost,
					(int64_t)f->clipped};
	const int64_t a2[TRACE_ARGS] = {f->lost == 0 && f->complete, (int64_t)f->samples,
					(int64_t)f->samples_lost, (int64_t)f->spill_bytes};
	const int64_t a3[TRACE_ARGS] = {TRACE_STR(f->spill ? f->spill : ""), TRACE_STR(f->kview.state),
					TRACE_STR(f->note ? f->note : ""), TRACE_STR(f->clock)};
	const struct trace_desc *ds[] = {&d1, &d2, &d3};
	const int64_t *as[] = {a1, a2, a3};
	for (int i = 0; i < 3; i++)
		event(w, o, SEQ_PROCESS, f->end,
		      &(struct event){.type = TYPE_INSTANT, .track = UUID_PROCESS, .name = d1.name,
				      .d = ds[i], .a = as[i]});
}
