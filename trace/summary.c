/*
 * summary.c - the plain-text summary of a window (see summary.h).
 *
 * Costs: a thread's states come first (capture.c's summary pass), and only
 * its runnable and blocked intervals are kept; its spans then stream by:
 * each is tallied, and finds by binary search the runnable intervals whose
 * middle it covers (the innermost such span, the latest begun, is where
 * that runnable time goes) and, for a wait, the blocked intervals it
 * overlaps. So memory grows with the kernel's switches, not with the
 * spans (a million-job px trace), and only up to STATES_KEPT intervals of
 * each kind a thread: a full list merges its neighbours in pairs (an
 * interval then stands for the runnable or blocked time of a run of them,
 * ns of it between t0 and t1, and a span overlapping it takes as much of
 * that as the overlap holds), and the shares by span and by wait of that
 * thread become approximate, which its text says. The thread's totals
 * stay exact. Async slices keep their durations for the percentiles.
 * Everything else is a small table per name, searched linearly: a trace
 * has tens of names, not thousands.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/anatomy.h"
#include "trace/json.h"
#include "trace/kview.h"
#include "trace/summary.h"

#define NAMES_MAX 48 /* per table; further names are added up as "(other names)" */
#define SPANS_SHOWN 8
#define SLOWEST_SHOWN 5
#define SLOWEST_JSON ANATOMY_PICK
#define STATES_KEPT 32768 /* runnable and blocked intervals a thread keeps: 2.75 MiB */

struct tally {
	const char *name;
	uint64_t ns, count;
};

struct table {
	unsigned n;
	struct tally t[NAMES_MAX + 1];
};

/* ns of a state between t0 and t1: all of [t0, t1), or, for intervals
 * merged to fit, the sum of theirs. */
struct ival {
	uint64_t t0, t1, ns;
};

/* A runnable interval, and the innermost span seen so far that covers
 * its middle (merged: the middle of the longer of the two). */
struct runnable {
	struct ival iv;
	uint64_t mid;
	const char *in;
	uint64_t in_start, in_dur;
};

/* A blocked interval, and how much of it waits have claimed. */
struct blocked {
	struct ival iv;
	uint64_t claimed;
};

struct thread {
	int tid;
	const char *name;
	int states;
	uint64_t running, runnable, blocked;
	struct table spans, reasons, preempted;
	struct runnable *rq;
	size_t nrq, caprq;
	struct blocked *bl;
	size_t nbl, capbl;
	uint64_t states_seen, states_merged; /* intervals; those merged into a neighbour */
};

struct async {
	const char *name;
	uint64_t *dur;
	size_t n, cap;
};

struct summary {
	uint64_t start, end;
	struct thread *th;
	size_t nth, capth;
	struct async as[NAMES_MAX];
	unsigned nas;
	struct anatomy *an; /* the slowest requests */
	int oom;
};

struct summary *summary_new(uint64_t start, uint64_t end)
{
	struct summary *s = calloc(1, sizeof *s);
	if (s) {
		s->start = start;
		s->end = end;
		s->an = anatomy_new();
	}
	return s;
}

/* Grows *p (of *cap elements of size sz) to hold one more: 0, or -1 (and
 * the summary says it is incomplete). */
static int grow(struct summary *s, void **p, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 64;
	void *q = realloc(*p, c * sz);
	if (!q) {
		s->oom = 1;
		return -1;
	}
	*p = q;
	*cap = c;
	return 0;
}

static void tally(struct table *t, const char *name, uint64_t ns)
{
	unsigned i;
	for (i = 0; i < t->n && strcmp(t->t[i].name, name) != 0; i++)
		;
	if (i == t->n) {
		if (t->n == NAMES_MAX)
			i = NAMES_MAX, name = "(other names)";
		else
			t->n++;
		t->t[i].name = name;
	}
	t->t[i].ns += ns;
	t->t[i].count++;
}

void summary_thread(struct summary *s, int tid, const char *name, int states)
{
	if (grow(s, (void **)&s->th, &s->capth, s->nth, sizeof *s->th) < 0)
		return;
	s->th[s->nth++] = (struct thread){.tid = tid, .name = name, .states = states};
}

/* Halves a full runnable list: each pair of neighbours becomes one. */
static void merge_runnable(struct thread *t)
{
	size_t j = 0;
	for (size_t i = 0; i + 1 < t->nrq; i += 2) {
		const struct runnable *x = &t->rq[i], *y = &t->rq[i + 1];
		t->rq[j++] = (struct runnable){{x->iv.t0, y->iv.t1, x->iv.ns + y->iv.ns},
					       y->iv.ns > x->iv.ns ? y->mid : x->mid, NULL, 0, 0};
	}
	if (t->nrq % 2)
		t->rq[j++] = t->rq[t->nrq - 1];
	t->states_merged += t->nrq - j;
	t->nrq = j;
}

/* Halves a full blocked list (no wait has claimed any of it yet: states
 * come before spans). */
static void merge_blocked(struct thread *t)
{
	size_t j = 0;
	for (size_t i = 0; i + 1 < t->nbl; i += 2) {
		const struct blocked *x = &t->bl[i], *y = &t->bl[i + 1];
		t->bl[j++] = (struct blocked){{x->iv.t0, y->iv.t1, x->iv.ns + y->iv.ns}, 0};
	}
	if (t->nbl % 2)
		t->bl[j++] = t->bl[t->nbl - 1];
	t->states_merged += t->nbl - j;
	t->nbl = j;
}

/* States arrive in time order, one after another, so both lists are
 * sorted by start (and by middle): binary searches below rely on it. */
static void add_state(struct summary *s, struct thread *t, const struct chrome_rec *e)
{
	uint64_t a = e->ts, b = e->ts + e->dur;
	if (e->d == &trace_kv_running_) {
		t->running += e->dur;
	} else if (e->d == &trace_kv_runnable_) {
		t->runnable += e->dur;
		t->states_seen++;
		if (t->nrq == STATES_KEPT)
			merge_runnable(t);
		if (grow(s, (void **)&t->rq, &t->caprq, t->nrq, sizeof *t->rq) == 0)
			t->rq[t->nrq++] = (struct runnable){{a, b, b - a}, a + (b - a) / 2, NULL, 0, 0};
	} else if (e->d == &trace_kv_blocked_) {
		t->blocked += e->dur;
		t->states_seen++;
		if (t->nbl == STATES_KEPT)
			merge_blocked(t);
		if (grow(s, (void **)&t->bl, &t->capbl, t->nbl, sizeof *t->bl) == 0)
			t->bl[t->nbl++] = (struct blocked){{a, b, b - a}, 0};
	}
}

/* The span [a, b) named name: the runnable intervals whose middle it
 * covers take it as theirs if it began later (it nests inside the one
 * they had; on a tie, the shorter nests in the longer). */
static void cover_runnable(struct thread *t, uint64_t a, uint64_t b, const char *name)
{
	size_t lo = 0, hi = t->nrq;
	while (lo < hi) { /* the first whose middle is at or after a */
		size_t m = (lo + hi) / 2;
		if (t->rq[m].mid < a)
			lo = m + 1;
		else
			hi = m;
	}
	for (size_t i = lo; i < t->nrq && t->rq[i].mid < b; i++) {
		struct runnable *r = &t->rq[i];
		if (!r->in || a > r->in_start || (a == r->in_start && b - a < r->in_dur)) {
			r->in = name;
			r->in_start = a;
			r->in_dur = b - a;
		}
	}
}

/* A thread's runnable or blocked intervals: n elements of size bytes,
 * sorted and apart, each beginning with its struct ival. */
struct ivals {
	const unsigned char *p;
	size_t n, size;
};
#define IVALS(arr, count, type) ((struct ivals){(const unsigned char *)(arr), (count), sizeof(type)})

static const struct ival *iv_at(const struct ivals *v, size_t i)
{
	return (const struct ival *)(const void *)(v->p + i * v->size);
}

/* The first interval that ends after a. */
static size_t iv_first_after(const struct ivals *v, uint64_t a)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (iv_at(v, m)->t1 <= a)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

/* The state's ns in [a, b) of interval x: the overlap (for merged
 * intervals, as much of their ns as the overlap holds: spans that explain
 * a state, waits above all, cover it rather than what lies between). */
static uint64_t iv_part(const struct ival *x, uint64_t a, uint64_t b)
{
	uint64_t s0 = x->t0 > a ? x->t0 : a, s1 = x->t1 < b ? x->t1 : b;
	uint64_t part = s1 > s0 ? s1 - s0 : 0;
	return part < x->ns ? part : x->ns;
}

/* How much of [a, b) the intervals cover. */
static uint64_t iv_overlap(const struct ivals *v, uint64_t a, uint64_t b)
{
	uint64_t sum = 0;
	for (size_t i = iv_first_after(v, a); i < v->n && iv_at(v, i)->t0 < b; i++)
		sum += iv_part(iv_at(v, i), a, b);
	return sum;
}

/* A wait span [a, b): the blocked time it overlaps is blocked in it
 * (waits do not overlap within a thread's one blocking call; where they
 * would, a blocked interval is claimed once at most). */
static void cover_blocked(struct thread *t, uint64_t a, uint64_t b, const char *name)
{
	struct ivals v = IVALS(t->bl, t->nbl, struct blocked);
	for (size_t i = iv_first_after(&v, a); i < t->nbl && t->bl[i].iv.t0 < b; i++) {
		struct blocked *x = &t->bl[i];
		uint64_t part = iv_part(&x->iv, a, b), room = x->iv.ns - x->claimed;
		if (part > room)
			part = room;
		if (part) {
			tally(&t->reasons, name, part);
			x->claimed += part;
		}
	}
}

void summary_pick(struct summary *s, const struct chrome_rec *e)
{
	anatomy_pick(s->an, e);
}

void summary_picked(struct summary *s)
{
	anatomy_picked(s->an);
}

void summary_add(struct summary *s, const struct chrome_rec *e, int state)
{
	if (s->nth == 0)
		return;
	struct thread *t = &s->th[s->nth - 1];
	if (state) {
		add_state(s, t, e);
		return;
	}
	if (e->kind == TRACE_SPAN) {
		tally(&t->spans, e->d->name, e->dur);
		cover_runnable(t, e->ts, e->ts + e->dur, e->d->name);
		if (strncmp(e->d->name, "wait", 4) == 0)
			cover_blocked(t, e->ts, e->ts + e->dur, e->d->name);
		if (strcmp(e->d->name, "resume follower") == 0)
			anatomy_follower(s->an, (uint64_t)e->a[0], t->name);
		if (e->d->arg[1] && e->a[1] > 0 && strcmp(e->d->name, "encode png") == 0 &&
		    strcmp(e->d->arg[1], "request") == 0)
			anatomy_resumer(s->an, (uint64_t)e->a[1], t->name);
		if (e->d->arg[3] && e->a[3] > 0 && strcmp(e->d->arg[3], "request") == 0) {
			uint64_t a = e->ts, b = e->ts + e->dur;
			struct ivals rq = IVALS(t->rq, t->nrq, struct runnable);
			struct ivals bl = IVALS(t->bl, t->nbl, struct blocked);
			anatomy_job(s->an, (uint64_t)e->a[3], t->name, a, b, iv_overlap(&rq, a, b),
				    iv_overlap(&bl, a, b), t->states);
		}
	} else if (e->kind == TRACE_ASYNC) {
		anatomy_async(s->an, e);
		unsigned i;
		for (i = 0; i < s->nas && strcmp(s->as[i].name, e->d->name) != 0; i++)
			;
		if (i == s->nas) {
			if (s->nas == NAMES_MAX)
				return;
			s->as[s->nas++].name = e->d->name;
		}
		struct async *a = &s->as[i];
		if (grow(s, (void **)&a->dur, &a->cap, a->n, sizeof *a->dur) == 0)
			a->dur[a->n++] = e->dur;
	}
}

static int by_ns_desc(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;
	return x->ns > y->ns ? -1 : x->ns < y->ns;
}

static int by_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return *x < *y ? -1 : *x > *y;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* The nearest-rank percentile p of n sorted durations. */
static uint64_t rank(const uint64_t *d, size_t n, double p)
{
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
	k = k < 1 ? 1 : k > n ? n : k;
	return d[k - 1];
}

const char *summary_duration(char buf[SUMMARY_DURATION_MAX], double ns)
{
	static const struct {
		double scale;
		const char *unit;
	} u[] = {{1, "ns"}, {1e3, "us"}, {1e6, "ms"}, {1e9, "s"}};
	unsigned i = 0;
	/* The unit in which the value, rounded to 3 digits, is under 1000. */
	while (i + 1 < sizeof u / sizeof u[0] && ns >= u[i + 1].scale * 0.9995)
		i++;
	double v = ns / u[i].scale;
	if (i == 0)
		snprintf(buf, SUMMARY_DURATION_MAX, "%.0f ns", v);
	else
		snprintf(buf, SUMMARY_DURATION_MAX, "%.*f %s", v < 9.995 ? 2 : v < 99.95 ? 1 : 0, v,
			 u[i].unit);
	return buf;
}

static void thread_text(FILE *f, struct thread *t, uint64_t win)
{
	fprintf(f, "\n%s (tid %d)\n", t->name, t->tid);
	if (t->states) {
		uint64_t seen = t->running + t->runnable + t->blocked, no_wait = t->blocked;
		uint64_t unknown = seen < win ? win - seen : 0;
		for (unsigned i = 0; i <= NAMES_MAX; i++)
			no_wait -= t->reasons.t[i].ns < no_wait ? t->reasons.t[i].ns : no_wait;
		for (size_t i = 0; i < t->nrq; i++)
			tally(&t->preempted, t->rq[i].in ? t->rq[i].in : "outside any span", t->rq[i].iv.ns);
		fprintf(f, "  running %5.1f%%  runnable %5.1f%%  blocked %5.1f%%  unknown %5.1f%%\n",
			pct(t->running, win), pct(t->runnable, win), pct(t->blocked, win),
			pct(unknown, win));
		if (t->states_merged)
			fprintf(f, "  (%llu of its %llu runnable and blocked intervals merged into "
				   "neighbours to fit the summary's memory: the shares below are "
				   "approximate)\n",
				(unsigned long long)t->states_merged, (unsigned long long)t->states_seen);
		if (t->blocked) {
			qsort(t->reasons.t, t->reasons.n, sizeof *t->reasons.t, by_ns_desc);
			fprintf(f, "  blocked in:");
			for (unsigned i = 0; i < t->reasons.n; i++)
				fprintf(f, " %s %.1f%%,", t->reasons.t[i].name,
					pct(t->reasons.t[i].ns, win));
			fprintf(f, " outside a wait span %.1f%%\n", pct(no_wait, win));
		}
		if (t->runnable) {
			qsort(t->preempted.t, t->preempted.n, sizeof *t->preempted.t, by_ns_desc);
			fprintf(f, "  runnable in:");
			for (unsigned i = 0; i < t->preempted.n; i++)
				fprintf(f, "%s %s %.1f%%", i ? "," : "", t->preempted.t[i].name,
					pct(t->preempted.t[i].ns, win));
			fprintf(f, "\n");
		}
	}
	unsigned n = t->spans.n + (t->spans.t[NAMES_MAX].count != 0);
	if (t->spans.t[NAMES_MAX].count)
		t->spans.t[t->spans.n] = t->spans.t[NAMES_MAX];
	qsort(t->spans.t, n, sizeof *t->spans.t, by_ns_desc);
	for (unsigned i = 0; i < n && i < SPANS_SHOWN; i++) {
		char mean[SUMMARY_DURATION_MAX];
		fprintf(f, "  in %-24s %5.1f%%  %8llu %s, mean %s\n", t->spans.t[i].name,
			pct(t->spans.t[i].ns, win), (unsigned long long)t->spans.t[i].count,
			t->spans.t[i].count == 1 ? "span" : "spans",
			summary_duration(mean, (double)t->spans.t[i].ns / (double)t->spans.t[i].count));
	}
	if (n > SPANS_SHOWN)
		fprintf(f, "  (%u more span names)\n", n - SPANS_SHOWN);
}

static void summary_free(struct summary *s)
{
	if (!s)
		return;
	anatomy_text(s->an, NULL, 0);
	for (size_t i = 0; i < s->nth; i++) {
		free(s->th[i].rq);
		free(s->th[i].bl);
	}
	for (unsigned i = 0; i < s->nas; i++)
		free(s->as[i].dur);
	free(s->th);
	free(s);
}

char *summary_finish(struct summary *s, const char *kview, const struct trace_facts *f,
		     size_t *len)
{
	char *text = NULL;
	FILE *o = s ? open_memstream(&text, len) : NULL;
	if (o) {
		uint64_t win = s->end > s->start ? s->end - s->start : 0;
		fprintf(o, "trace summary: window %.3f ms, %zu thread%s, %llu events, %llu lost%s\n",
			(double)win / 1e6, s->nth, s->nth == 1 ? "" : "s", (unsigned long long)f->events,
			(unsigned long long)f->lost, s->oom ? " (out of memory: partial)" : "");
		fprintf(o, "kernel view: %s\n", kview);
		fprintf(o, "shares are of the window; spans nest, so a thread's span shares may add "
			   "up to more than 100%%\n");
		for (size_t i = 0; i < s->nth; i++)
			thread_text(o, &s->th[i], win);
		if (s->nas)
			fprintf(o, "\nasync slices                count        p50        p90        p99"
				   "        max\n");
		for (unsigned i = 0; i < s->nas; i++) {
			struct async *a = &s->as[i];
			static const double at[] = {50, 90, 99, 100};
			qsort(a->dur, a->n, sizeof *a->dur, by_u64);
			fprintf(o, "  %-22s %8zu", a->name, a->n);
			for (unsigned j = 0; j < 4; j++) {
				char d[SUMMARY_DURATION_MAX];
				fprintf(o, " %10s",
					summary_duration(d, (double)rank(a->dur, a->n, at[j])));
			}
			fprintf(o, "\n");
		}
		anatomy_text(s->an, o, SLOWEST_SHOWN);
		s->an = NULL;
		if (fclose(o) != 0) {
			free(text);
			text = NULL;
		}
	}
	summary_free(s);
	return text;
}

char *summary_finish_json(struct summary *s, const char *kview, const struct trace_facts *f,
			  size_t *len)
{
	char *text = NULL;
	FILE *o = s ? open_memstream(&text, len) : NULL;
	if (o) {
		char b[256];
		struct json_out k = {b, 0, sizeof b, 0};
		json_str(&k, kview);
		fprintf(o, "{\"window_ns\":%llu,\"events\":%llu,\"lost\":%llu,\"partial\":%s,"
			   "\"kernel_view\":%.*s,\"threads\":[",
			(unsigned long long)(s->end > s->start ? s->end - s->start : 0),
			(unsigned long long)f->events, (unsigned long long)f->lost,
			s->oom ? "true" : "false", (int)k.len, b);
		for (size_t i = 0; i < s->nth; i++) {
			const struct thread *t = &s->th[i];
			struct json_out n = {b, 0, sizeof b, 0};
			json_str(&n, t->name);
			fprintf(o, "%s{\"name\":%.*s,\"tid\":%d,\"running_ns\":%llu,\"runnable_ns\":%llu,"
				   "\"blocked_ns\":%llu,\"states_merged\":%llu}",
				i ? "," : "", (int)n.len, b, t->tid, (unsigned long long)t->running,
				(unsigned long long)t->runnable, (unsigned long long)t->blocked,
				(unsigned long long)t->states_merged);
		}
		fputs("],\"slowest_requests\":", o);
		anatomy_json(s->an, o, SLOWEST_JSON);
		s->an = NULL;
		fputs("}\n", o);
		if (fclose(o) != 0) {
			free(text);
			text = NULL;
		}
	}
	summary_free(s);
	return text;
}
