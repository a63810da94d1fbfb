/* chrome.c - the Chrome Trace Event JSON writer (see chrome.h). */
#include <string.h>

#include "trace/chrome.h"


/* ,{"ph":"X","pid":1,"tid":2,"ts":3.000 : the common head of an event. */
static void head(struct json_out *o, int pid, const char *ph, int tid, uint64_t ts)
{
	json_raw(o, ",{\"ph\":\"");
	json_raw(o, ph);
	json_raw(o, "\",\"pid\":");
	json_i64(o, pid);
	json_raw(o, ",\"tid\":");
	json_i64(o, tid);
	json_raw(o, ",\"ts\":");
	json_us(o, ts);
}

static void names(struct json_out *o, const struct trace_desc *d, const char *cat)
{
	json_raw(o, ",\"name\":");
	json_str(o, d->name);
	json_raw(o, ",\"cat\":");
	json_str(o, cat ? cat : d->cat ? d->cat : "trace");
}

static void args(struct json_out *o, const struct trace_desc *d, const int64_t *a)
{
	json_raw(o, ",\"args\":{");
	for (int i = 0; i < TRACE_ARGS && d->arg[i]; i++) {
		if (i)
			json_raw(o, ",");
		json_str(o, d->arg[i]);
		json_raw(o, ":");
		if (d->strargs & (1u << i))
			json_str(o, (const char *)(intptr_t)a[i]);
		else
			json_i64(o, a[i]);
	}
	json_raw(o, "}");
}

void chrome_event(struct json_out *o, int pid, int tid, const struct chrome_rec *e)
{
	uint64_t id = e->id;
	switch (e->kind) {
	case TRACE_SPAN: {
		head(o, pid, "X", tid, e->ts);
		json_raw(o, ",\"dur\":");
		/* A nanosecond short: a slice that begins where this one ends
		 * (a thread's states, a wait and its wake-up) must not overlap
		 * it in a viewer that adds ts and dur in floating point;
		 * speedscope did, and broke its stacks. */
		json_us(o, e->dur > 1 ? e->dur - 1 : e->dur);
		enum trace_flow f = e->flow;
		/* A span in a flow, and each of the flow's points, share the
		 * category "flow", and a point has its span's ts: Chrome's
		 * trace engine binds a point to the slice with its ts, pid, tid
		 * and cat, and keeps one flow's points together by cat, name
		 * and id (a request's flow crosses http, render and png). */
		/* A span's category only where a viewer needs it: Chrome's
		 * trace engine binds flows by it (the rest said nothing a
		 * span's name does not, in a sixth of its bytes). */
		json_raw(o, ",\"name\":");
		json_str(o, e->d->name);
		if (f != TRACE_FLOW_NONE)
			json_raw(o, ",\"cat\":\"flow\"");
		args(o, e->d, e->a);
		json_raw(o, "}");
		break;
	}
	case TRACE_INSTANT:
		head(o, pid, "i", tid, e->ts);
		json_raw(o, ",\"s\":\"t\"");
		names(o, e->d, NULL);
		args(o, e->d, e->a);
		json_raw(o, "}");
		break;
	case TRACE_COUNTER:
		head(o, pid, "C", tid, e->ts);
		json_raw(o, ",\"name\":");
		json_str(o, e->d->name);
		json_raw(o, ",\"args\":{");
		json_str(o, e->d->arg[0] ? e->d->arg[0] : "value");
		json_raw(o, ":");
		json_i64(o, e->a[0]);
		json_raw(o, "}}");
		break;
	case TRACE_ASYNC:
		head(o, pid, "b", tid, e->ts);
		names(o, e->d, NULL);
		json_raw(o, ",\"id\":");
		json_u64(o, id);
		args(o, e->d, e->a);
		json_raw(o, "}");
		head(o, pid, "e", tid, e->ts + e->dur);
		names(o, e->d, NULL);
		json_raw(o, ",\"id\":");
		json_u64(o, id);
		json_raw(o, "}");
		break;
	}
}

void chrome_flow(struct json_out *o, int pid, int tid, uint64_t ts, enum trace_flow f, uint64_t id)
{
	head(o, pid, f == TRACE_FLOW_START ? "s" : f == TRACE_FLOW_STEP ? "t" : "f", tid, ts);
	json_raw(o, ",\"name\":\"flow\",\"cat\":\"flow\",\"id\":");
	json_u64(o, id);
	json_raw(o, f == TRACE_FLOW_START ? "}" : ",\"bp\":\"e\"}");
}

/* {"ph":"M","name":what,"pid":..,"tid":tid,"args":{key:value}}: a string
 * value, or the number n when str is NULL. */
static void metadata(struct json_out *o, int pid, const char *what, int tid, const char *key,
		     const char *str, uint64_t n)
{
	json_raw(o, "{\"ph\":\"M\",\"name\":\"");
	json_raw(o, what);
	json_raw(o, "\",\"pid\":");
	json_i64(o, pid);
	json_raw(o, ",\"tid\":");
	json_i64(o, tid);
	json_raw(o, ",\"args\":{\"");
	json_raw(o, key);
	json_raw(o, "\":");
	if (str)
		json_str(o, str);
	else
		json_u64(o, n);
	json_raw(o, "}}");
}

void chrome_head(struct json_out *o, int pid, const char *process)
{
	/* displayTimeUnit first: Perfetto flags it when it comes late. */
	json_raw(o, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
	metadata(o, pid, "process_name", pid, "name", process, 0);
}

void chrome_thread(struct json_out *o, int pid, int tid, const char *name, unsigned sort_index)
{
	json_raw(o, ",");
	metadata(o, pid, "thread_name", tid, "name", name, 0);
	json_raw(o, ",");
	metadata(o, pid, "thread_sort_index", tid, "sort_index", NULL, sort_index);
}

/* ,"key":n */
static void field_u64(struct json_out *o, const char *key, uint64_t n)
{
	json_raw(o, ",\"");
	json_raw(o, key);
	json_raw(o, "\":");
	json_u64(o, n);
}

void chrome_events_end(struct json_out *o, int pid, uint64_t start, uint64_t end, uint64_t lost)
{
	static const struct trace_desc d = {"trace lost events", "trace", {"lost"}, 0};
	struct chrome_rec e = {.kind = TRACE_COUNTER, .d = &d};

	e.ts = start;
	chrome_event(o, pid, pid, &e);
	e.ts = end;
	e.a[0] = (int64_t)lost;
	chrome_event(o, pid, pid, &e);
	json_raw(o, "]");
}

void chrome_sample(struct json_out *o, int first, int pid, int tid, uint64_t ts, uint32_t frame,
		   uint64_t weight)
{
	json_raw(o, first ? ",\"samples\":[{\"pid\":" : ",{\"pid\":");
	json_i64(o, pid);
	json_raw(o, ",\"tid\":");
	json_i64(o, tid);
	json_raw(o, ",\"ts\":");
	json_us(o, ts);
	json_raw(o, ",\"name\":\"cpu\",\"sf\":");
	json_u64(o, frame);
	json_raw(o, ",\"weight\":");
	json_u64(o, weight);
	json_raw(o, "}");
}

void chrome_frame(struct json_out *o, int first, uint32_t id, const char *name, const char *file,
		  uint32_t parent)
{
	json_raw(o, first ? "],\"stackFrames\":{\"" : ",\"");
	json_u64(o, id);
	json_raw(o, "\":{\"name\":");
	json_str(o, name);
	json_raw(o, ",\"category\":");
	const char *base = file ? strrchr(file, '/') : NULL;
	json_str(o, base ? base + 1 : file ? file : "?");
	if (parent) {
		json_raw(o, ",\"parent\":");
		json_u64(o, parent);
	}
	json_raw(o, "}");
}

void chrome_tail(struct json_out *o, const struct chrome_facts *f)
{
	size_t facts_at = o->len;
	json_raw(o, ",\"otherData\":{\"tracer\":\"trace/\"");
	json_raw(o, ",\"clock\":");
	json_str(o, f->clock);
	json_raw(o, ",\"window_start_us\":");
	json_us(o, f->start);
	json_raw(o, ",\"window_end_us\":");
	json_us(o, f->end);
	if (f->note && f->note[0]) {
		json_raw(o, ",\"note\":");
		json_str(o, f->note);
	}
	json_raw(o, ",\"flight_recorder\":");
	json_raw(o, f->flight_recorder ? "true" : "false");
	field_u64(o, "events", f->events);
	field_u64(o, "events_written", f->written);
	field_u64(o, "events_lost", f->lost);
	field_u64(o, "events_clipped", f->clipped);
	json_raw(o, ",\"complete\":");
	json_raw(o, f->lost == 0 && f->complete ? "true" : "false");
	field_u64(o, "ring_events", f->usage.ring_events);
	field_u64(o, "ring_bytes", f->ring_bytes);
	field_u64(o, "memory_bytes", f->usage.bytes);
	field_u64(o, "threads_dropped", f->usage.threads_dropped);
	json_raw(o, ",\"kernel_view\":");
	json_str(o, f->kview.state);
	if (f->kview.why[0]) {
		json_raw(o, ",\"kernel_view_why\":");
		json_str(o, f->kview.why);
	}
	field_u64(o, "kernel_view_threads", f->kview.threads);
	field_u64(o, "kernel_view_refused", f->kview.refused);
	field_u64(o, "kernel_switches", f->kview.switches);
	field_u64(o, "kernel_switches_lost", f->kview.lost);
	json_raw(o, ",\"spill\":");
	json_str(o, f->spill);
	field_u64(o, "spill_bytes", f->spill_bytes);
	field_u64(o, "spill_records", f->spill_records);
	json_raw(o, ",\"cpu_sampler\":");
	json_str(o, f->sampler);
	field_u64(o, "cpu_samples", f->samples);
	field_u64(o, "cpu_samples_lost", f->samples_lost);
	field_u64(o, "cpu_stacks_truncated", f->truncated);
	json_raw(o, ",\"threads\":[");
	const char *sep = "{\"tid\":";
	for (unsigned i = 0; i < f->nthreads; i++) {
		const struct chrome_thread_facts *t = &f->threads[i];
		json_raw(o, sep);
		sep = ",{\"tid\":";
		json_i64(o, t->tid);
		json_raw(o, ",\"name\":");
		json_str(o, t->name);
		field_u64(o, "written", t->written);
		field_u64(o, "events", t->events);
		field_u64(o, "lost", t->lost);
		json_raw(o, "}");
	}
	json_raw(o, "]}}\n");
	if (o->full && facts_at < o->cap) { /* a very long thread list: the facts without it */
		o->len = facts_at, o->full = 0;
		json_raw(o, ",\"otherData\":{\"tracer\":\"trace/\"");
		field_u64(o, "events_lost", f->lost);
		json_raw(o, "}}\n");
	}
}
