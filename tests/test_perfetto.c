/* test_perfetto.c - trace/perfetto.c: one capture read as Chrome JSON and
 * as Perfetto's protobuf gives the same events, one for one. The protobuf
 * is decoded here by hand (its interning, defaults and tracks resolved) and
 * checked with Debian's protoc against trace/perfetto.proto; the bytes per
 * TrackEvent are held to the target. Suite "perfetto". */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prof/prof.h"
#include "trace/capture.h"
#include "trace/trace.h"

/* ---- the lines both sides are turned into ---- */

struct lines {
	char **s;
	size_t n, cap;
};

static void add(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct lines *l, const char *fmt, ...)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->s = realloc(l->s, l->cap * sizeof *l->s);
	}
	va_list ap;
	va_start(ap, fmt);
	cr_assert(ge(int, vasprintf(&l->s[l->n++], fmt, ap), 0));
	va_end(ap);
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->s[i]);
	free(l->s);
}

/* ---- the JSON side ---- */

static long long ns_of(json_t *v)
{
	return llround(json_number_value(v) * 1000.0);
}

/* "k=v,k=v" in the document's order. */
static void args_text(json_t *args, char *out, size_t len)
{
	const char *k;
	json_t *v;
	size_t n = 0;
	out[0] = '\0';
	json_object_foreach(args, k, v) {
		int w = json_is_string(v) ? snprintf(out + n, len - n, "%s%s=%s", n ? "," : "", k, json_string_value(v))
					  : snprintf(out + n, len - n, "%s%s=%lld", n ? "," : "", k,
						     (long long)json_integer_value(v));
		n += w > 0 && (size_t)w < len - n ? (size_t)w : 0;
	}
}

static void from_json(json_t *doc, struct lines *l)
{
	json_t *ev, *frames = json_object_get(doc, "stackFrames");
	size_t i;
	char args[512];
	json_array_foreach(json_object_get(doc, "traceEvents"), i, ev) {
		const char *ph = json_string_value(json_object_get(ev, "ph"));
		const char *name = json_string_value(json_object_get(ev, "name"));
		long long tid = json_integer_value(json_object_get(ev, "tid"));
		long long ts = ns_of(json_object_get(ev, "ts"));
		args_text(json_object_get(ev, "args"), args, sizeof args);
		if (!strcmp(ph, "M") && !strcmp(name, "thread_name")) {
			add(l, "T %lld %s", tid, json_string_value(json_object_get(json_object_get(ev, "args"), "name")));
		} else if (!strcmp(ph, "X")) {
			add(l, "X %lld %lld %lld %s %s", tid, ts, ns_of(json_object_get(ev, "dur")), name, args);
		} else if (!strcmp(ph, "i")) {
			add(l, "I %lld %lld %s %s", tid, ts, name, args);
		} else if (!strcmp(ph, "C")) {
			const char *k;
			json_t *v;
			json_object_foreach(json_object_get(ev, "args"), k, v)
				add(l, "C %s %s %lld %lld", name, k, ts, (long long)json_integer_value(v));
		} else if (!strcmp(ph, "b")) {
			/* its end is the next "e" with its id and name */
			json_t *e2;
			size_t j;
			long long end = -1;
			json_array_foreach(json_object_get(doc, "traceEvents"), j, e2) {
				if (j > i && !strcmp(json_string_value(json_object_get(e2, "ph")), "e") &&
				    json_integer_value(json_object_get(e2, "id")) == json_integer_value(json_object_get(ev, "id")) &&
				    !strcmp(json_string_value(json_object_get(e2, "name")), name)) {
					end = ns_of(json_object_get(e2, "ts"));
					break;
				}
			}
			add(l, "A %lld %s %lld %lld %s", (long long)json_integer_value(json_object_get(ev, "id")), name,
			    ts, end - ts, args);
		} else if (!strcmp(ph, "s") || !strcmp(ph, "t") || !strcmp(ph, "f")) {
			add(l, "F %lld %lld %s %lld", tid, ts, ph, (long long)json_integer_value(json_object_get(ev, "id")));
		}
	}
	json_array_foreach(json_object_get(doc, "samples"), i, ev) {
		char chain[1024] = "", key[24];
		snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(ev, "sf")));
		/* root first, as Perfetto's callstacks */
		const char *names[256];
		int n = 0;
		for (json_t *f = json_object_get(frames, key); f && n < 256;) {
			names[n++] = json_string_value(json_object_get(f, "name"));
			json_t *p = json_object_get(f, "parent");
			if (!p)
				break;
			snprintf(key, sizeof key, "%lld", (long long)json_integer_value(p));
			f = json_object_get(frames, key);
		}
		size_t at = 0;
		while (n--)
			at += (size_t)snprintf(chain + at, sizeof chain - at, "%s;", names[n]);
		add(l, "S %lld %lld %lld %s", (long long)json_integer_value(json_object_get(ev, "tid")),
		    ns_of(json_object_get(ev, "ts")), (long long)json_integer_value(json_object_get(ev, "weight")), chain);
	}
}

/* ---- the protobuf side ---- */

struct rd {
	const unsigned char *p, *end;
};

static int varint(struct rd *r, uint64_t *v)
{
	*v = 0;
	for (unsigned s = 0; s < 64 && r->p < r->end; s += 7) {
		unsigned char b = *r->p++;
		*v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return 1;
	}
	return 0;
}

/* The next field of r: 1 with its number, and its value (wire types 0 and
 * 1) or its bytes (2) in sub; 0 at the end. */
static int field(struct rd *r, unsigned *f, uint64_t *v, struct rd *sub)
{
	uint64_t key;
	if (r->p >= r->end)
		return 0;
	cr_assert(varint(r, &key), "a broken key");
	*f = (unsigned)(key >> 3);
	switch (key & 7) {
	case 0:
		cr_assert(varint(r, v));
		return 1;
	case 1:
		cr_assert(le(long, 8L, (long)(r->end - r->p)));
		*v = 0;
		for (int i = 0; i < 8; i++)
			*v |= (uint64_t)r->p[i] << (8 * i);
		r->p += 8;
		return 1;
	case 2:
		cr_assert(varint(r, v));
		cr_assert(le(long, (long)*v, (long)(r->end - r->p)));
		sub->p = r->p;
		sub->end = r->p + *v;
		r->p += *v;
		return 1;
	}
	cr_assert(eq(int, (int)(key & 7), 0), "a wire type this writer never uses");
	return 0;
}

static char *text(struct rd s)
{
	return strndup((const char *)s.p, (size_t)(s.end - s.p));
}

#define IIDS 4096
struct pseq {
	uint64_t track;        /* the events' default */
	char *name[IIDS], *arg[IIDS];
};

struct ptrack {
	uint64_t uuid, parent;
	long long tid;   /* a thread's (the kernel track: its thread's + 2^22) */
	char *name;      /* a counter's, an async track's */
	int counter;
	/* open slices: begun, not ended */
	struct open {
		long long ts;
		char *name, args[512], flow[64];
	} open[64];
	int depth;
};

struct proto {
	struct pseq seq[300];
	struct ptrack *tr;
	size_t ntr;
	char *fn[IIDS];        /* function names */
	uint64_t frame_fn[IIDS];
	uint64_t stack[IIDS][64];
	int depth[IIDS];
	long long last_s_tid, last_s_ts, last_s_weight;
	uint64_t last_s_cs;
	size_t events;          /* TrackEvents */
};

static struct ptrack *track_of(struct proto *p, uint64_t uuid)
{
	for (size_t i = 0; i < p->ntr; i++)
		if (p->tr[i].uuid == uuid)
			return &p->tr[i];
	p->tr = realloc(p->tr, (p->ntr + 1) * sizeof *p->tr);
	p->tr[p->ntr] = (struct ptrack){.uuid = uuid, .tid = -1};
	return &p->tr[p->ntr++];
}

static void flush_sample(struct proto *p, struct lines *l)
{
	if (!p->last_s_weight)
		return;
	char chain[1024] = "";
	size_t at = 0;
	for (int i = 0; i < p->depth[p->last_s_cs]; i++)
		at += (size_t)snprintf(chain + at, sizeof chain - at, "%s;", p->fn[p->frame_fn[p->stack[p->last_s_cs][i]]]);
	add(l, "S %lld %lld %lld %s", p->last_s_tid, p->last_s_ts, p->last_s_weight, chain);
	p->last_s_weight = 0;
}

static void interned(struct proto *p, struct pseq *q, struct rd in)
{
	unsigned f;
	uint64_t v;
	struct rd sub;
	while (field(&in, &f, &v, &sub)) {
		unsigned g;
		uint64_t iid = 0, w;
		struct rd s2, name = {0};
		uint64_t fn = 0;
		uint64_t frames[64];
		int nf = 0;
		while (field(&sub, &g, &w, &s2)) {
			if (g == 1)
				iid = w;
			else if (g == 2 && (f == 2 || f == 3 || f == 5))
				name = s2;
			else if (g == 2 && f == 6)
				fn = w;
			else if (g == 2 && f == 7 && nf < 64)
				frames[nf++] = w;
		}
		cr_assert(lt(u64, iid, (uint64_t)IIDS));
		if (f == 2)
			q->name[iid] = text(name);
		else if (f == 3)
			q->arg[iid] = text(name);
		else if (f == 5)
			p->fn[iid] = text(name);
		else if (f == 6)
			p->frame_fn[iid] = fn;
		else if (f == 7) {
			memcpy(p->stack[iid], frames, (size_t)nf * sizeof *frames);
			p->depth[iid] = nf;
		}
	}
}

static void track_event(struct proto *p, struct pseq *q, long long ts, struct rd e, struct lines *l)
{
	unsigned f;
	uint64_t v, type = 0, track = q->track, name = 0;
	int64_t value = 0;
	char args[512] = "", flow[64] = "";
	size_t na = 0;
	struct rd sub;
	while (field(&e, &f, &v, &sub)) {
		if (f == 9)
			type = v;
		else if (f == 11)
			track = v;
		else if (f == 10)
			name = v;
		else if (f == 30)
			value = (int64_t)v;
		else if (f == 47 || f == 48)
			snprintf(flow, sizeof flow, "%c %llu", f == 48 ? 'f' : 'x', (unsigned long long)v);
		else if (f == 4) {
			unsigned g;
			uint64_t w, an = 0;
			struct rd s2, str = {0};
			int is_str = 0;
			int64_t iv = 0;
			while (field(&sub, &g, &w, &s2)) {
				if (g == 1)
					an = w;
				else if (g == 4)
					iv = (int64_t)w;
				else if (g == 6)
					str = s2, is_str = 1;
			}
			cr_assert(not(eq(ptr, q->arg[an], NULL)), "annotation name %llu not interned", (unsigned long long)an);
			int k = is_str ? snprintf(args + na, sizeof args - na, "%s%s=%.*s", na ? "," : "", q->arg[an],
						  (int)(str.end - str.p), (const char *)str.p)
				       : snprintf(args + na, sizeof args - na, "%s%s=%lld", na ? "," : "", q->arg[an],
						  (long long)iv);
			na += k > 0 && (size_t)k < sizeof args - na ? (size_t)k : 0;
		}
	}
	p->events++;
	struct ptrack *t = track_of(p, track);
	const char *nm = name ? q->name[name] : NULL;
	if (name)
		cr_assert(not(eq(ptr, (void *)nm, NULL)), "event name %llu not interned", (unsigned long long)name);
	if (type == 1) {
		cr_assert(lt(int, t->depth, 64));
		struct open *o = &t->open[t->depth++];
		o->ts = ts;
		o->name = (char *)nm;
		snprintf(o->args, sizeof o->args, "%s", args);
		snprintf(o->flow, sizeof o->flow, "%s", flow);
	} else if (type == 2) {
		cr_assert(lt(int, 0, t->depth), "an end with no begin on track %llu", (unsigned long long)track);
		struct open *o = &t->open[--t->depth];
		long long dur = ts - o->ts;
		if (t->uuid >= (UINT64_C(1) << 20)) {
			add(l, "A %llu %s %lld %lld %s", (unsigned long long)(t->uuid - (UINT64_C(1) << 20)), o->name,
			    o->ts, dur, o->args);
			return;
		}
		/* as the JSON writes a span: a nanosecond short */
		add(l, "X %lld %lld %lld %s %s", t->tid, o->ts, dur > 1 ? dur - 1 : dur, o->name, o->args);
		if (o->flow[0]) {
			char ph = o->flow[0];
			unsigned long long id = strtoull(o->flow + 2, NULL, 10);
			if (ph == 'x') /* a start or a step: the first of its id is the start */
				ph = 0;
			add(l, "F %lld %lld %c %llu", t->tid, o->ts, ph ? ph : '?', id);
		}
	} else if (type == 3) {
		if (t->uuid == 1)
			return; /* the facts: compared apart */
		add(l, "I %lld %lld %s %s", t->tid, ts, nm, args);
	} else if (type == 4) {
		cr_assert(t->counter, "a counter on a track that is not one");
		const char *sp = strrchr(t->name, ' ');
		add(l, "C %.*s %s %lld %lld", (int)(sp - t->name), t->name, sp + 1, ts, (long long)value);
	}
}

static void from_proto(const unsigned char *buf, size_t len, struct lines *l, struct proto *p)
{
	struct rd r = {buf, buf + len}, pk;
	unsigned f;
	uint64_t v;
	while (field(&r, &f, &v, &pk)) {
		cr_assert(eq(u32, f, 1), "Trace.packet");
		uint64_t ts = 0, seq = 0;
		struct rd te = {0}, in = {0}, td = {0}, def = {0}, ps = {0}, sub;
		while (field(&pk, &f, &v, &sub)) {
			if (f == 8)
				ts = v;
			else if (f == 10)
				seq = v;
			else if (f == 11)
				te = sub;
			else if (f == 12)
				in = sub;
			else if (f == 59)
				def = sub;
			else if (f == 60)
				td = sub;
			else if (f == 66)
				ps = sub;
		}
		cr_assert(lt(u64, seq, (uint64_t)300));
		struct pseq *q = &p->seq[seq];
		if (def.p) {
			unsigned g;
			uint64_t w;
			struct rd s2, s3;
			while (field(&def, &g, &w, &s2))
				if (g == 11)
					while (field(&s2, &g, &w, &s3))
						if (g == 11)
							q->track = w;
		}
		if (in.p)
			interned(p, q, in);
		if (td.p) {
			unsigned g;
			uint64_t w, uuid = 0, parent = 0;
			long long tid = -1;
			char *name = NULL, *tname = NULL;
			int counter = 0;
			struct rd s2, s3;
			while (field(&td, &g, &w, &s2)) {
				if (g == 1)
					uuid = w;
				else if (g == 5)
					parent = w;
				else if (g == 2)
					name = text(s2);
				else if (g == 8)
					counter = 1;
				else if (g == 4)
					while (field(&s2, &g, &w, &s3)) {
						if (g == 2)
							tid = (long long)w;
						else if (g == 5)
							tname = text(s3);
					}
			}
			struct ptrack *t = track_of(p, uuid);
			t->parent = parent;
			t->tid = tid;
			t->name = name;
			t->counter = counter;
			if (tid >= 0)
				add(l, "T %lld %s", tid, tname);
			free(tname);
			struct ptrack *th = parent ? track_of(p, parent) : NULL;
			if (th && th->tid >= 0) { /* a kernel track: its thread's, moved */
				t->tid = th->tid + (1 << 22);
				add(l, "T %lld %s", t->tid, name);
			}
		}
		if (te.p)
			track_event(p, q, (long long)ts, te, l);
		if (ps.p) {
			unsigned g;
			uint64_t w, tid = 0, cs = 0;
			struct rd s2;
			while (field(&ps, &g, &w, &s2)) {
				if (g == 3)
					tid = w;
				else if (g == 4)
					cs = w;
			}
			if (p->last_s_weight && (p->last_s_tid != (long long)tid || p->last_s_ts != (long long)ts ||
						 p->last_s_cs != cs))
				flush_sample(p, l);
			p->last_s_tid = (long long)tid, p->last_s_ts = (long long)ts, p->last_s_cs = cs;
			p->last_s_weight++;
		}
	}
	flush_sample(p, l);
}

/* The JSON's flow points say s, t or f; Perfetto's flow_ids say only "a
 * start or a step" (the first of an id is its start), terminating ids the
 * end: the JSON's s and t become '?' to compare. */
static void blur_flows(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++) {
		char *s = l->s[i];
		if (s[0] != 'F')
			continue;
		char *ph = strrchr(s, ' ') - 1;
		if (*ph == 's' || *ph == 't')
			*ph = '?';
	}
}

/* ---- a capture with everything in it ---- */

static const struct trace_desc D_OUTER = {"outer", "test", {"n", "what"}, 2};
static const struct trace_desc D_INNER = {"inner", "test", {"i"}, 0};
static const struct trace_desc D_MARK = {"mark", "test", {"n"}, 0};
static const struct trace_desc D_QUEUE = {"queue", "test", {"depth"}, 0};
static const struct trace_desc D_REQ = {"request", "test", {"status", "route"}, 2};
static const struct trace_desc D_PHASE = {"phase", "test", {0}, 0};
static const struct trace_desc D_HOP = {"hop", "test", {"request"}, 0};

static void *worker(void *arg)
{
	long k = (long)arg;
	trace_thread_name(k ? "second" : "first");
	for (int i = 0; i < 200; i++) {
		uint64_t t0 = trace_begin();
		for (int j = 0; j < 3; j++) {
			uint64_t t1 = trace_begin();
			trace_counter(&D_QUEUE, i * 3 + j - 7);
			trace_span(&D_INNER, t1, -j, 0);
		}
		trace_instant(&D_MARK, i, 0);
		trace_span(&D_OUTER, t0, i, TRACE_STR(k ? "two" : "one"));
		/* a flow from the first thread's hop to the second's */
		uint64_t h = trace_begin();
		trace_span_flow(&D_HOP, h, k ? TRACE_FLOW_END : TRACE_FLOW_START, 1000 + (uint64_t)i, i, 0, 0, 0);
		if (i % 50 == 0) {
			uint64_t a = trace_now();
			trace_async(&D_PHASE, 500 + (uint64_t)i + 1000 * (uint64_t)k, a, a + 100, 0, 0, 0, 0);
			trace_async(&D_REQ, 500 + (uint64_t)i + 1000 * (uint64_t)k, a, a + 300, 200,
				    TRACE_STR("/mandelbrot"), 0, 0);
		}
	}
	/* CPU for the samples: 60 ms */
	uint64_t until = trace_now() + 60000000u;
	volatile uint64_t x = 0;
	while (trace_now() < until)
		x += x * 3 + 1;
	return NULL;
}

static size_t read_all(struct trace_capture *c, unsigned char **out)
{
	size_t n = 0, cap = 1 << 20, k;
	*out = malloc(cap);
	while ((k = trace_capture_read(c, (char *)*out + n, cap - n)) > 0) {
		n += k;
		if (n == cap)
			*out = realloc(*out, cap *= 2);
	}
	return n;
}

Test(perfetto, one_capture_as_json_and_as_protobuf_gives_the_same_events, .timeout = 60)
{
	trace_init(&(struct trace_config){.ring_events = 4096, .process = "perfetto-test"});
	cr_assert(eq(int, prof_trace_samples(1000), 0));
	struct trace_capture *c;
	cr_assert(eq(int, trace_capture_open(&c), 0));
	pthread_t t[2];
	for (long k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, worker, (void *)k);
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	trace_capture_close(c);

	unsigned char *json, *pf;
	size_t jlen = read_all(c, &json);
	trace_capture_rewind(c);
	trace_capture_format(c, TRACE_FORMAT_PERFETTO);
	size_t plen = read_all(c, &pf);
	trace_capture_free(c);

	/* Debian's protoc reads it with the schema subset. */
	char path[64], cmd[512];
	snprintf(path, sizeof path, "/tmp/mw-perfetto-%d.pftrace", (int)getpid());
	FILE *f = fopen(path, "wb");
	cr_assert(eq(sz, fwrite(pf, 1, plen, f), plen));
	fclose(f);
	snprintf(cmd, sizeof cmd,
		 "protoc --decode=perfetto.protos.Trace -I trace trace/perfetto.proto <%s >/dev/null", path);
	cr_expect(eq(int, system(cmd), 0), "%s", cmd);
	if (!getenv("KEEP"))
		remove(path);

	json_error_t err;
	json_t *doc = json_loadb((const char *)json, jlen, 0, &err);
	cr_assert(not(eq(ptr, doc, NULL)), "%s", err.text);
	struct lines a = {0}, b = {0};
	from_json(doc, &a);
	struct proto *p = calloc(1, sizeof *p);
	from_proto(pf, plen, &b, p);
	blur_flows(&a);
	qsort(a.s, a.n, sizeof *a.s, by_text);
	qsort(b.s, b.n, sizeof *b.s, by_text);
	size_t spans = 0, samples = 0, flows = 0;
	for (size_t i = 0; i < a.n; i++)
		spans += a.s[i][0] == 'X', samples += a.s[i][0] == 'S', flows += a.s[i][0] == 'F';
	cr_expect(lt(sz, 1000, spans), "%zu spans", spans);
	cr_expect(lt(sz, 0, samples), "%zu samples", samples);
	cr_expect(lt(sz, 0, flows), "%zu flow points", flows);
	cr_expect(eq(sz, a.n, b.n), "JSON %zu events, protobuf %zu", a.n, b.n);
	for (size_t i = 0, j = 0; i < a.n || j < b.n;) {
		int d = i == a.n ? 1 : j == b.n ? -1 : strcmp(a.s[i], b.s[j]);
		if (d == 0) {
			i++, j++;
			continue;
		}
		cr_fail("only in %s: %s", d < 0 ? "the JSON" : "the protobuf", d < 0 ? a.s[i] : b.s[j]);
		if (d < 0)
			i++;
		else
			j++;
	}
	/* Compact: the target is 24 bytes a TrackEvent, packets and all. */
	double per = (double)plen / (double)p->events;
	cr_log_info("%zu bytes, %zu TrackEvents: %.1f bytes each; JSON %zu bytes", plen, p->events, per, jlen);
	cr_expect(le(dbl, per, 24.0), "%.1f bytes a TrackEvent", per);
	lines_free(&a);
	lines_free(&b);
	json_decref(doc);
	free(json);
	free(pf);
}
