/*
 * capture.c - the capture session: reading the rings for a window, and
 * feeding what is in it to the Chrome JSON writer (chrome.c). See
 * capture.h; the seqlock rule for reading a ring is in ring.h.
 *
 * The document is produced in pieces as the reader asks: the header and
 * the process's name, each thread's metadata, then each ring's records in
 * the order they were written, then the lost-events counter and the
 * facts. Each piece is formatted into a 2 KiB scratch buffer and moved to
 * the staging buffer whole, so a read never ends inside a broken event and
 * nothing grows with the size of the trace.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/capture.h"
#include "trace/chrome.h"
#include "trace/json.h"
#include "trace/kview.h"
#include "trace/pb.h"
#include "trace/perfetto.h"
#include "trace/ring.h"
#include "trace/samples.h"
#include "trace/spill.h"
#include "trace/summary.h"
#include "trace/window.h"

#define EVENT_MAX 2048 /* an event's JSON: names are short static strings */

static atomic_int session; /* 1 while a capture exists */

/* Takes the session and allocates a capture: 0, -EBUSY or -ENOMEM. */
static int capture_new(struct trace_capture **out)
{
	int idle = 0;
	if (!atomic_compare_exchange_strong(&session, &idle, 1))
		return -EBUSY;
	struct trace_capture *c = calloc(1, sizeof *c);
	if (!c) {
		atomic_store(&session, 0);
		return -ENOMEM;
	}
	c->pid = (int)getpid();
	c->samples = 1;
	*out = c;
	return 0;
}

int trace_capture_open(struct trace_capture **out)
{
	struct trace_capture *c;
	char why[80];
	int rc = capture_new(&c);
	if (rc < 0)
		return rc;
	/* Where each ring stands, then the start: a record written in
	 * between is older than the start and filtered out. */
	unsigned n = trace_rings_();
	for (unsigned i = 0; i < n; i++) {
		struct trace_ring *r = trace_ring_(i);
		for (int l = 0; r && l < TRACE_LANES; l++)
			r->lane[l].w_open = atomic_load_explicit(&r->lane[l].w, memory_order_acquire);
	}
	c->nrings = n; /* rings registered later start from 0 */
	/* What the rings receive from now on is copied out as they fill
	 * (spill.h); without a spill, the window is what they hold. */
	if (trace_spill_mb_() == TRACE_SPILL_OFF) {
		snprintf(c->spill_why, sizeof c->spill_why, "off: turned off");
	} else if (spill_open(&c->spill, trace_spill_dir_(), trace_spill_mb_(), why, sizeof why) < 0) {
		snprintf(c->spill_why, sizeof c->spill_why, "off: %s", why);
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct trace_ring *r = trace_ring_(i);
			for (int l = 0; r && l < TRACE_LANES; l++)
				atomic_store(&c->spill->lane[i][l].to, r->lane[l].w_open);
		}
		spill_attach(c->spill);
	}
	trace_arm_(1);
	c->armed = 1;
	c->start = trace_now();
	c->end = UINT64_MAX;
	*out = c;
	return 0;
}

int trace_capture_last(struct trace_capture **out, uint64_t ns)
{
	if (!trace_flight_recording())
		return -ENODATA;
	struct trace_capture *c;
	int rc = capture_new(&c);
	if (rc < 0)
		return rc;
	c->last = 1;
	c->end = trace_now();
	c->start = c->end > ns ? c->end - ns : 0;
	*out = c;
	return 0;
}

void trace_capture_close(struct trace_capture *c)
{
	if (c->end == UINT64_MAX)
		c->end = trace_now();
	if (c->armed) {
		c->armed = 0;
		trace_arm_(-1);
	}
	if (c->spill && atomic_load(&trace_spill_) == c->spill) {
		/* What is left in every lane joins what was copied: the window's
		 * records are then all in the spill (the kernel's view drained
		 * first), and reading it again gives the same document. */
		spill_attach(NULL);
		unsigned n = trace_rings_();
		for (unsigned i = 0; i < n; i++) {
			struct trace_ring *r = trace_ring_(i);
			if (!r)
				continue;
			kv_drain(r);
			for (int l = 0; l < TRACE_LANES; l++)
				if (r->lane[l].rec)
					spill_lane_all(c->spill, r, l);
		}
	}
}

int trace_capture_active(void)
{
	return atomic_load(&session);
}

/* Lets the flow points go. */
static void flows_free(struct trace_capture *c)
{
	free(c->flows);
	c->flows = NULL;
	c->nflows = c->capflows = c->flow_at = 0;
}

void trace_capture_free(struct trace_capture *c)
{
	if (!c)
		return;
	trace_capture_close(c);
	spill_free(c->spill);
	pf_free(c->pf);
	flows_free(c);
	samples_frames_free(c->frames);
	free(c->text);
	free(c);
	atomic_store(&session, 0);
}

void trace_capture_samples(struct trace_capture *c, int on)
{
	c->samples = on;
}

void trace_capture_note(struct trace_capture *c, const char *note)
{
	snprintf(c->note, sizeof c->note, "%s", note);
}

void trace_capture_format(struct trace_capture *c, enum trace_format f)
{
	c->format = f;
}

void trace_capture_rewind(struct trace_capture *c)
{
	trace_capture_close(c);
	memset(c->cur, 0, sizeof c->cur);
	memset(c->ss, 0, sizeof c->ss);
	memset(&c->facts, 0, sizeof c->facts);
	memset(c->rs, 0, sizeof c->rs);
	free(c->text);
	c->text = NULL;
	samples_frames_free(c->frames);
	c->frames = NULL;
	flows_free(c);
	c->merged = 0;
	pf_free(c->pf);
	c->pf = NULL;
	c->sampled = 0;
	c->frame = 0;
	c->held = 0;
	c->off = c->len = 0;
	c->phase = PH_HEAD;
}

void trace_capture_facts(const struct trace_capture *c, struct trace_facts *f)
{
	*f = c->facts;
	f->track_events = pf_track_events(c->pf);
	f->start_ns = c->start;
	f->end_ns = c->end;
}

/* ---- the JSON ---- */

/* Moves Perfetto packets into the stage: fill() leaves room for a record's
 * (EVENT_MAX * 4) before each, so they always fit; a record whose
 * packets did not fit in their scratch is dropped, and counted. */
static void stage_pb(struct trace_capture *c, const struct pb *p)
{
	if (p->full || STAGE_BYTES - c->len < p->n) {
		c->facts.lost++;
		return;
	}
	memcpy(c->stage + c->len, p->p, p->n);
	c->len += p->n;
}

/* Perfetto's records: each packet formatted once (the writer's interning
 * state moves as it writes), so only while the stage has a record's room. */
static void pf_events(struct trace_capture *c)
{
	unsigned char scratch[EVENT_MAX * 4];
	struct chrome_rec e;
	int tid;
	unsigned ring;
	while (STAGE_BYTES - c->len >= sizeof scratch) {
		if (!window_next(c, PASS_EVENTS, &e, &tid, &ring)) {
			c->phase = c->samples && (c->frames = samples_frames_new()) ? PH_FRAMES : PH_TAIL;
			return;
		}
		struct pb o = pb_fixed(scratch, sizeof scratch);
		pf_event(c->pf, &o, ring, tid != trace_ring_(ring)->tid, &e);
		stage_pb(c, &o);
	}
}

static void merge_frames(struct trace_capture *c);

/* Perfetto's frames come first: the samples' callstacks name them. */
static void pf_frames(struct trace_capture *c)
{
	unsigned char scratch[EVENT_MAX * 4];
	if (!c->merged)
		merge_frames(c);
	while (STAGE_BYTES - c->len >= sizeof scratch) {
		struct pb o = pb_fixed(scratch, sizeof scratch);
		const char *name, *file;
		uint32_t parent;
		uint32_t id = samples_frames_next(c->frames, &c->frame, &name, &file, &parent);
		if (!id) {
			pf_frames_end(c->pf, &o);
			stage_pb(c, &o);
			c->phase = PH_SAMPLES;
			return;
		}
		pf_frame(c->pf, &o, id, name, parent);
		stage_pb(c, &o);
	}
}

static void pf_samples(struct trace_capture *c)
{
	unsigned char scratch[EVENT_MAX * 4];
	struct chrome_rec e;
	int tid;
	unsigned ring;
	while (STAGE_BYTES - c->len >= sizeof scratch) {
		if (!window_next(c, PASS_SAMPLES, &e, &tid, &ring)) {
			c->phase = PH_TAIL;
			return;
		}
		uint32_t frame = samples_frames_canon(c->frames, (uint32_t)e.a[0]);
		if (!frame)
			continue;
		struct pb o = pb_fixed(scratch, sizeof scratch);
		pf_sample(c->pf, &o, tid, e.ts, frame, (uint64_t)e.a[1]);
		stage_pb(c, &o);
		c->sampled++;
	}
}

/* Moves a formatted event into the stage: 1, or 0 when it must wait for
 * room (the event is formatted again next time). */
static int stage(struct trace_capture *c, const struct json_out *ev)
{
	if (ev->full)
		return 1; /* cannot happen with static names; dropped, not split */
	if (STAGE_BYTES - c->len < ev->len)
		return 0;
	memcpy(c->stage + c->len, ev->p, ev->len);
	c->len += ev->len;
	return 1;
}

static int before(const struct flow_point *x, const struct flow_point *y)
{
	return x->ts < y->ts || (x->ts == y->ts && x->f < y->f);
}

/* Moves the larger child down until p[i] tops its subtree of p[0, n). */
static void sift(struct flow_point *p, size_t i, size_t n)
{
	for (size_t k; (k = 2 * i + 1) < n; i = k) {
		if (k + 1 < n && before(&p[k], &p[k + 1]))
			k++;
		if (!before(&p[i], &p[k]))
			return;
		struct flow_point t = p[i];
		p[i] = p[k];
		p[k] = t;
	}
}

/* Sorts the flow points by time (ties: starts before ends), in place: a
 * heap sort, since glibc's qsort takes a copy the size of the array (24
 * MiB more at the peak of a capture's memory). */
static void sort_flows(struct flow_point *p, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(p, i, n);
	while (n > 1) {
		struct flow_point t = p[0];
		p[0] = p[--n];
		p[n] = t;
		sift(p, 0, n);
	}
}

/* Keeps span e's flow point for PH_FLOWS: 1, or 0 when there is no room
 * (it is written with its span). */
static int keep_flow(struct trace_capture *c, int tid, const struct chrome_rec *e)
{
	if (c->nflows == c->capflows) {
		size_t cap = c->capflows ? 2 * c->capflows : 256;
		struct flow_point *f = cap <= FLOW_POINTS_MAX ? realloc(c->flows, cap * sizeof *f) : NULL;
		if (!f)
			return 0;
		c->flows = f;
		c->capflows = cap;
	}
	c->flows[c->nflows++] = (struct flow_point){e->ts, e->id, tid, e->flow};
	return 1;
}

/* Formats the window's records into the stage until it is full; at their
 * end, the flow points in time order. */
static void fill_events(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	unsigned ring;
	for (;;) {
		struct json_out o = {scratch, 0, sizeof scratch, 0};
		if (!c->held &&
		    !(c->held = window_next(c, PASS_EVENTS, &c->held_rec, &c->held_tid, &ring))) {
			if (c->nflows)
				sort_flows(c->flows, c->nflows);
			c->phase = PH_FLOWS;
			return;
		}
		const struct chrome_rec *e = &c->held_rec;
		struct chrome_rec rel = *e; /* the document's times are from the window's start */
		rel.ts -= c->start;
		chrome_event(&o, c->pid, c->held_tid, &rel);
		if (e->kind == TRACE_SPAN && e->flow != TRACE_FLOW_NONE && !keep_flow(c, c->held_tid, e))
			chrome_flow(&o, c->pid, c->held_tid, rel.ts, e->flow, e->id);
		if (!stage(c, &o)) {
			if (e->kind == TRACE_SPAN && e->flow != TRACE_FLOW_NONE && c->nflows &&
			    c->flows[c->nflows - 1].ts == e->ts && c->flows[c->nflows - 1].id == e->id)
				c->nflows--; /* kept again next time */
			return; /* the stage is full; this record again next time */
		}
		c->held = 0;
	}
}

/* The flow points, then the lost-events counter and the end of
 * traceEvents. */
static void fill_flows(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	for (;;) {
		struct json_out o = {scratch, 0, sizeof scratch, 0};
		if (c->flow_at == c->nflows) {
			chrome_events_end(&o, c->pid, 0, c->end - c->start, c->facts.lost);
			if (!stage(c, &o))
				return;
			flows_free(c); /* up to 24 MiB, not held through the rest */
			c->phase = PH_TAIL;
			if (c->samples && (c->frames = samples_frames_new()))
				c->phase = PH_SAMPLES;
			return;
		}
		const struct flow_point *p = &c->flows[c->flow_at];
		chrome_flow(&o, c->pid, p->tid, p->ts - c->start, p->f, p->id);
		if (!stage(c, &o))
			return;
		c->flow_at++;
	}
}

/* Reads the window's samples once to mark the frames they use, merges
 * those frames (one a function and call path), and starts the pass again
 * for writing them. */
static void merge_frames(struct trace_capture *c)
{
	struct chrome_rec e;
	int tid;
	unsigned ring;
	while (window_next(c, PASS_SAMPLES, &e, &tid, &ring))
		samples_frames_use(c->frames, (uint32_t)e.a[0]);
	samples_frames_merge(c->frames); /* out of memory: every node a frame */
	memset(&c->cur[PASS_SAMPLES], 0, sizeof c->cur[PASS_SAMPLES]);
	memset(c->ss, 0, sizeof c->ss);
	c->facts.samples = c->facts.samples_lost = 0;
	c->merged = 1;
}

/* The window's CPU samples, each thread's in time order, each naming its
 * leaf frame. */
static void fill_samples(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	unsigned ring;
	if (!c->merged)
		merge_frames(c);
	for (;;) {
		if (!c->held &&
		    !(c->held = window_next(c, PASS_SAMPLES, &c->held_rec, &c->held_tid, &ring))) {
			c->phase = c->sampled ? PH_FRAMES : PH_TAIL;
			return;
		}
		struct json_out o = {scratch, 0, sizeof scratch, 0};
		const struct chrome_rec *e = &c->held_rec;
		uint32_t frame = samples_frames_canon(c->frames, (uint32_t)e->a[0]);
		if (!frame) {
			c->held = 0;
			continue;
		}
		chrome_sample(&o, c->sampled == 0, c->pid, c->held_tid, e->ts - c->start, frame,
			      (uint64_t)e->a[1]);
		if (!stage(c, &o))
			return;
		c->sampled++;
		c->held = 0;
	}
}

/* The frames the samples use, named, then the end of stackFrames. */
static void fill_frames(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	for (;;) {
		struct json_out o = {scratch, 0, sizeof scratch, 0};
		const char *name, *file;
		uint32_t at = c->frame, parent;
		uint32_t id = samples_frames_next(c->frames, &at, &name, &file, &parent);
		if (!id) {
			json_raw(&o, "}");
			if (stage(c, &o))
				c->phase = PH_TAIL;
			return;
		}
		chrome_frame(&o, c->frame == 0, id, name, file, parent);
		if (!stage(c, &o))
			return; /* this frame again next time */
		c->frame = at;
	}
}

static int fill_head(struct trace_capture *c)
{
	char scratch[EVENT_MAX];
	struct json_out o = {scratch, 0, sizeof scratch, 0};

	if (c->format == TRACE_FORMAT_PERFETTO) {
		if (!c->pf && !(c->pf = pf_new(c->pid, c->start))) {
			c->phase = PH_DONE; /* out of memory: the document ends empty */
			return 0;
		}
		struct pb p = pb_fixed(scratch, sizeof scratch);
		pf_head(c->pf, &p, trace_process_());
		stage_pb(c, &p);
		return 1;
	}
	chrome_head(&o, c->pid, trace_process_());
	return stage(c, &o);
}

static int fill_thread(struct trace_capture *c, struct trace_ring *r)
{
	char scratch[EVENT_MAX], name[TRACE_NAME_MAX + 16];
	struct json_out o = {scratch, 0, sizeof scratch, 0};

	if (c->format == TRACE_FORMAT_PERFETTO) {
		struct pb p = pb_fixed(scratch, sizeof scratch);
		pf_thread(c->pf, &p, c->ring, r->tid, window_ring_name(r),
			  atomic_load_explicit(&r->kv, memory_order_acquire) != NULL);
		stage_pb(c, &p);
		return 1;
	}
	chrome_thread(&o, c->pid, r->tid, window_ring_name(r), 2 * c->ring);
	if (atomic_load_explicit(&r->kv, memory_order_acquire)) {
		snprintf(name, sizeof name, "%s [kernel]", window_ring_name(r));
		chrome_thread(&o, c->pid, window_states_tid(r), name, 2 * c->ring + 1);
	}
	return stage(c, &o);
}

static const char *clock_name(void)
{
	if (!trace_clock_.counter)
		return "CLOCK_MONOTONIC";
#if defined(__x86_64__)
	return "TSC, calibrated against CLOCK_MONOTONIC";
#else
	return "CNTVCT_EL0, calibrated against CLOCK_MONOTONIC";
#endif
}

static int fill_tail(struct trace_capture *c)
{
	char scratch[EVENT_MAX * 4];
	struct json_out o = {scratch, 0, sizeof scratch, 0};
	struct chrome_facts f = {
		.clock = clock_name(),
		.start = c->start,
		.end = c->end,
		.flight_recorder = c->last,
		.events = c->facts.events,
		.written = c->facts.written,
		.lost = c->facts.lost,
		.clipped = c->facts.clipped,
		.complete = c->facts.complete,
		.threads = c->threads,
	};

	trace_usage(&f.usage);
	trace_kview_usage(&f.kview);
	f.ring_bytes = (uint64_t)f.usage.ring_events * sizeof(struct trace_rec);
	for (unsigned i = 0; i < c->facts.threads; i++) {
		struct trace_ring *r = trace_ring_(i);
		if (r)
			c->threads[f.nthreads++] = (struct chrome_thread_facts){
				r->tid, window_ring_name(r), c->rs[i].written, c->rs[i].events, c->rs[i].lost};
	}
	char how[160] = "off: no sampler";
	const struct trace_sampler *sm = samples_sampler();
	if (sm && !c->samples)
		snprintf(how, sizeof how, "off: not asked for");
	else if (sm)
		sm->how(how, sizeof how);
	f.sampler = how;
	f.note = c->note;
	char spill[sizeof c->spill_why + 16] = "on";
	if (!c->spill)
		snprintf(spill, sizeof spill, "%s", c->spill_why);
	else if (atomic_load(&c->spill->stopped))
		snprintf(spill, sizeof spill, "stopped: %s", c->spill->why);
	f.spill = c->last ? "off: a flight-recorder window is what the rings hold" : spill;
	if (c->spill) {
		f.spill_bytes = atomic_load(&c->spill->bytes);
		f.spill_records = atomic_load(&c->spill->records);
	}
	f.samples = c->facts.samples;
	f.samples_lost = c->facts.samples_lost;
	f.truncated = samples_truncated();
	if (c->format == TRACE_FORMAT_PERFETTO) {
		struct pb p = pb_fixed(scratch, sizeof scratch);
		pf_tail(c->pf, &p, &f);
		stage_pb(c, &p);
		return 1;
	}
	chrome_tail(&o, &f);
	return stage(c, &o);
}

/* The summary's text, built at once from every record of the window. */
static void summarize(struct trace_capture *c)
{
	struct summary *s = summary_new(c->start, c->end);
	struct chrome_rec e;
	int tid;
	unsigned ring, was = UINT_MAX;
	/* The slowest requests first, so that only they are taken apart. */
	struct trace_facts facts = c->facts;
	c->cur[PASS_PICK] = (struct cursor){0};
	while (s && window_next(c, PASS_PICK, &e, &tid, &ring))
		summary_pick(s, &e);
	c->facts = facts;
	if (s)
		summary_picked(s);
	while (s && window_next(c, PASS_SUMMARY, &e, &tid, &ring)) {
		struct trace_ring *r = trace_ring_(ring);
		if (ring != was)
			summary_thread(s, r->tid, window_ring_name(r), r->kv != NULL);
		was = ring;
		summary_add(s, &e, tid != r->tid);
	}
	struct trace_kview_usage k;
	char line[sizeof k.why + 16];
	trace_kview_usage(&k);
	snprintf(line, sizeof line, "%s%s%s", k.state, k.why[0] ? ": " : "", k.why);
	c->facts.complete = c->facts.complete && c->facts.lost == 0;
	c->text = c->format == TRACE_FORMAT_SUMMARY_JSON
			  ? summary_finish_json(s, line, &c->facts, &c->text_len)
			  : summary_finish(s, line, &c->facts, &c->text_len);
	c->text_off = 0;
}

/* Stages the next part of the summary. */
static void fill_text(struct trace_capture *c)
{
	if (!c->text) {
		summarize(c);
		if (!c->text) {
			static const char oom[] = "trace summary: out of memory\n";
			c->text = strdup(oom);
			c->text_len = c->text ? strlen(oom) : 0;
		}
	}
	size_t k = c->text_len - c->text_off;
	if (k > STAGE_BYTES - c->len)
		k = STAGE_BYTES - c->len;
	memcpy(c->stage + c->len, c->text + c->text_off, k);
	c->len += k;
	c->text_off += k;
	if (c->text_off == c->text_len)
		c->phase = PH_DONE;
}

/* Stages the next pieces of the document until the stage is nearly full
 * or the document ends. */
static void fill(struct trace_capture *c)
{
	while (c->phase != PH_DONE && STAGE_BYTES - c->len >= EVENT_MAX * 4) {
		switch (c->phase) {
		case PH_HEAD:
			trace_capture_close(c);
			c->facts.complete = 1;
			/* Every ring registered by now; later ones hold nothing
			 * older than the end of the window. */
			c->facts.threads = trace_rings_();
			c->ring = 0;
			if (c->format == TRACE_FORMAT_SUMMARY || c->format == TRACE_FORMAT_SUMMARY_JSON)
				c->phase = PH_TEXT;
			else if (fill_head(c))
				c->phase = PH_THREADS;
			break;
		case PH_TEXT:
			fill_text(c);
			break;
		case PH_THREADS:
			if (c->ring >= c->facts.threads)
				c->phase = PH_EVENTS;
			else if (!trace_ring_(c->ring) || fill_thread(c, trace_ring_(c->ring)))
				c->ring++;
			break;
		case PH_EVENTS:
			if (c->format == TRACE_FORMAT_PERFETTO)
				pf_events(c);
			else
				fill_events(c);
			break;
		case PH_FLOWS:
			fill_flows(c);
			break;
		case PH_SAMPLES:
			if (c->format == TRACE_FORMAT_PERFETTO)
				pf_samples(c);
			else
				fill_samples(c);
			break;
		case PH_FRAMES:
			if (c->format == TRACE_FORMAT_PERFETTO)
				pf_frames(c);
			else
				fill_frames(c);
			break;
		case PH_TAIL:
			if (fill_tail(c))
				c->phase = PH_DONE;
			break;
		case PH_DONE:
			break;
		}
	}
}

size_t trace_capture_read(struct trace_capture *c, char *buf, size_t max)
{
	size_t n = 0;
	while (n < max) {
		if (c->off == c->len) {
			c->off = c->len = 0;
			fill(c);
			if (c->len == 0)
				break; /* the end */
		}
		size_t k = c->len - c->off < max - n ? c->len - c->off : max - n;
		memcpy(buf + n, c->stage + c->off, k);
		c->off += k;
		n += k;
	}
	return n;
}
