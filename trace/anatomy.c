/* anatomy.c - the slowest requests, taken apart (see anatomy.h). */
#include <stdlib.h>
#include <string.h>

#include "trace/anatomy.h"
#include "trace/json.h"
#include "trace/summary.h"

enum phase { PH_QUEUED, PH_RENDER, PH_ENCODE, PH_SEND, PH_HELD, PH_N };
static const char *const phase_names[PH_N] = {"queued", "render", "encode", "send", "held refusal"};

struct req {
	uint64_t id; /* 0: a free slot */
	uint64_t total;
	const char *method, *route;
	int64_t status;
	uint64_t phase[PH_N];
	unsigned jobs, threads_seen;
	int known, followed;
	const char *resumer; /* the thread that resumed it */
	uint64_t job_ns, runnable, blocked;
	uint64_t last_end;
	unsigned last;          /* the thread whose job ended last: threads[last] */
	const char *threads[4]; /* the first few threads its jobs ran on */
	uint64_t th_ns[4], th_runnable[4], th_blocked[4]; /* their jobs' time */
};

/* A request picked: its id and duration. */
struct pick {
	uint64_t id, dur;
};

struct anatomy {
	struct req *r;
	size_t n, cap;
	int oom;
	int picked;         /* anatomy_picked was called: only the picked are taken apart */
	uint64_t ended;     /* 'request' slices seen by anatomy_pick */
	unsigned npick;
	struct pick pick[ANATOMY_PICK]; /* the slowest seen, slowest first */
};

struct anatomy *anatomy_new(void)
{
	return calloc(1, sizeof(struct anatomy));
}

/* Whether e is a request's whole slice. */
static int is_request(const struct chrome_rec *e)
{
	return e->kind == TRACE_ASYNC && e->id && strcmp(e->d->name, "request") == 0;
}

void anatomy_pick(struct anatomy *a, const struct chrome_rec *e)
{
	if (!a || !is_request(e))
		return;
	a->ended++;
	unsigned i = a->npick;
	if (i == ANATOMY_PICK) {
		if (e->dur <= a->pick[i - 1].dur)
			return;
		i--; /* the fastest kept makes room */
	} else {
		a->npick++;
	}
	for (; i > 0 && a->pick[i - 1].dur < e->dur; i--)
		a->pick[i] = a->pick[i - 1];
	a->pick[i] = (struct pick){e->id, e->dur};
}

/* Where id's probe begins in a table of cap slots (a power of two). */
static size_t home(uint64_t id, size_t cap)
{
	return (id * 0x9e3779b97f4a7c15u) >> 17 & (cap - 1);
}

/* Request id's entry, made if need be (once picked, only a picked one
 * has an entry: NULL for the rest). */
static struct req *find(struct anatomy *a, uint64_t id)
{
	if (!a->picked && (a->n + 1) * 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		struct req *t = calloc(cap, sizeof *t);
		if (!t) {
			a->oom = 1;
			return NULL;
		}
		for (size_t i = 0; i < a->cap; i++) {
			if (!a->r[i].id)
				continue;
			size_t j = home(a->r[i].id, cap);
			while (t[j].id)
				j = (j + 1) & (cap - 1);
			t[j] = a->r[i];
		}
		free(a->r);
		a->r = t;
		a->cap = cap;
	}
	if (!a->cap)
		return NULL; /* picked, and nothing was */
	size_t j = home(id, a->cap);
	for (; a->r[j].id; j = (j + 1) & (a->cap - 1))
		if (a->r[j].id == id)
			return &a->r[j];
	if (a->picked)
		return NULL;
	a->r[j].id = id;
	a->n++;
	return &a->r[j];
}

void anatomy_picked(struct anatomy *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->npick; i++)
		find(a, a->pick[i].id);
	a->picked = 1;
}

void anatomy_async(struct anatomy *a, const struct chrome_rec *e)
{
	if (!a || !e->id)
		return;
	const char *name = e->d->name;
	int ph = -1;
	for (int i = 0; i < PH_N; i++)
		if (strcmp(name, phase_names[i]) == 0 && strcmp(e->d->cat, "http") == 0)
			ph = i;
	int whole = is_request(e);
	if (ph < 0 && !whole)
		return;
	struct req *r = find(a, e->id);
	if (!r)
		return;
	if (whole) {
		r->total = e->dur;
		r->method = (const char *)(intptr_t)e->a[0];
		r->route = (const char *)(intptr_t)e->a[1];
		r->status = e->a[2];
	} else {
		r->phase[ph] += e->dur;
	}
}

void anatomy_follower(struct anatomy *a, uint64_t id, const char *thread)
{
	struct req *r;
	if (a && id && (r = find(a, id))) {
		r->followed = 1;
		r->resumer = thread;
	}
}

void anatomy_resumer(struct anatomy *a, uint64_t id, const char *thread)
{
	struct req *r;
	if (a && id && (r = find(a, id)))
		r->resumer = thread;
}

void anatomy_job(struct anatomy *a, uint64_t id, const char *thread, uint64_t t0, uint64_t t1,
		 uint64_t runnable, uint64_t blocked, int known)
{
	struct req *r;
	if (!a || !id || !(r = find(a, id)))
		return;
	r->jobs++;
	r->job_ns += t1 - t0;
	r->runnable += runnable;
	r->blocked += blocked;
	r->known |= known;
	unsigned k;
	for (k = 0; k < r->threads_seen && k < 4 && strcmp(r->threads[k], thread) != 0; k++)
		;
	if (k == r->threads_seen && k < 4)
		r->threads[r->threads_seen++] = thread;
	if (k < 4) {
		r->th_ns[k] += t1 - t0;
		r->th_runnable[k] += runnable;
		r->th_blocked[k] += blocked;
		if (t1 >= r->last_end) {
			r->last_end = t1;
			r->last = k;
		}
	}
}

/* s as a JSON string (escaped), or null. */
static void jstr(FILE *f, const char *s)
{
	char b[256];
	struct json_out o = {b, 0, sizeof b, 0};
	json_str(&o, s);
	fwrite(b, 1, o.len, f);
}

static int by_total_desc(const void *x, const void *y)
{
	const struct req *a = *(const struct req *const *)x, *b = *(const struct req *const *)y;
	return a->total > b->total ? -1 : a->total < b->total;
}

/* The requests that ended in the window, slowest first: an array to
 * free, *m of them (NULL when out of memory). */
static struct req **slowest(struct anatomy *a, size_t *m)
{
	struct req **v = malloc((a->n ? a->n : 1) * sizeof *v);
	*m = 0;
	for (size_t i = 0; v && i < a->cap; i++)
		if (a->r[i].id && a->r[i].total)
			v[(*m)++] = &a->r[i];
	if (v)
		qsort(v, *m, sizeof *v, by_total_desc);
	return v;
}

void anatomy_json(struct anatomy *a, FILE *f, unsigned n)
{
	if (!a)
		return;
	size_t m;
	struct req **v = slowest(a, &m);
	fputc('[', f);
	for (size_t i = 0; v && i < m && i < n; i++) {
		const struct req *r = v[i];
		uint64_t parts = 0;
		fprintf(f, "%s{\"id\":%llu,\"method\":", i ? "," : "", (unsigned long long)r->id);
		jstr(f, r->method);
		fputs(",\"route\":", f);
		jstr(f, r->route);
		fprintf(f, ",\"status\":%lld,\"total_ns\":%llu", (long long)r->status,
			(unsigned long long)r->total);
		static const char *const keys[PH_N] = {"queued_ns", "render_ns", "encode_ns", "send_ns",
						       "held_ns"};
		for (int p = 0; p < PH_N; p++) {
			fprintf(f, ",\"%s\":%llu", keys[p], (unsigned long long)r->phase[p]);
			parts += r->phase[p];
		}
		fprintf(f, ",\"other_ns\":%llu,\"followed\":%s,\"resumed_by\":",
			(unsigned long long)(r->total > parts ? r->total - parts : 0),
			r->followed ? "true" : "false");
		jstr(f, r->resumer);
		fprintf(f, ",\"jobs\":%u,\"job_ns\":%llu,\"threads\":[", r->jobs,
			(unsigned long long)r->job_ns);
		for (unsigned k = 0; k < r->threads_seen; k++) {
			if (k)
				fputc(',', f);
			jstr(f, r->threads[k]);
		}
		fputc(']', f);
		if (r->jobs && r->known)
			fprintf(f, ",\"running_ns\":%llu,\"runnable_ns\":%llu,\"blocked_ns\":%llu",
				(unsigned long long)(r->job_ns - r->runnable - r->blocked),
				(unsigned long long)r->runnable, (unsigned long long)r->blocked);
		if (r->jobs) {
			fputs(",\"critical_thread\":", f);
			jstr(f, r->threads[r->last]);
			fprintf(f, ",\"critical_ns\":%llu", (unsigned long long)r->th_ns[r->last]);
		}
		fputc('}', f);
	}
	fputc(']', f);
	free(v);
	free(a->r);
	free(a);
}

void anatomy_text(struct anatomy *a, FILE *f, unsigned n)
{
	if (!a)
		return;
	size_t m = 0;
	struct req **v = slowest(a, &m);
	if (f && v && m) {
		fprintf(f, "\nslowest requests (%u of the %llu that ended in the window)%s\n",
			m < n ? (unsigned)m : n, (unsigned long long)(a->picked ? a->ended : m),
			a->oom ? " (out of memory: partial)" : "");
		for (size_t i = 0; i < m && i < n; i++) {
			const struct req *r = v[i];
			char d[SUMMARY_DURATION_MAX];
			uint64_t parts = 0;
			fprintf(f, "  request %llu %s %s %lld: %s =", (unsigned long long)r->id,
				r->method ? r->method : "?", r->route ? r->route : "?",
				(long long)r->status, summary_duration(d, (double)r->total));
			for (int p = 0; p < PH_N; p++) {
				if (!r->phase[p])
					continue;
				fprintf(f, " %s %s +", phase_names[p], summary_duration(d, (double)r->phase[p]));
				parts += r->phase[p];
			}
			fprintf(f, " %s %s\n",
				r->followed ? "following another request's render (single flight)" : "other",
				summary_duration(d, (double)(r->total > parts ? r->total - parts : 0)));
			if (r->resumer)
				fprintf(f, "    resumed by %s%s\n", r->resumer,
					r->followed ? " (the render it followed was done)" : " (it encoded the PNG)");
			if (!r->jobs)
				continue;
			fprintf(f, "    its %u job%s ran %s on %u thread%s (", r->jobs, r->jobs == 1 ? "" : "s",
				summary_duration(d, (double)r->job_ns), r->threads_seen,
				r->threads_seen == 1 ? "" : "s");
			for (unsigned k = 0; k < r->threads_seen; k++)
				fprintf(f, "%s%s", k ? ", " : "", r->threads[k]);
			if (r->known) {
				uint64_t run = r->job_ns - r->runnable - r->blocked;
				fprintf(f, "): running %s", summary_duration(d, (double)run));
				fprintf(f, ", runnable %s", summary_duration(d, (double)r->runnable));
				fprintf(f, ", blocked %s\n", summary_duration(d, (double)r->blocked));
			} else {
				fprintf(f, "): no kernel view\n");
			}
			/* The render ends with its last job: the thread that ran it,
			 * and what its jobs of this request cost it, are the path. */
			unsigned l = r->last;
			fprintf(f, "    critical path: %s ran its last job; its jobs of this request took %s",
				r->threads[l], summary_duration(d, (double)r->th_ns[l]));
			if (r->known) {
				fprintf(f, " (runnable %s", summary_duration(d, (double)r->th_runnable[l]));
				fprintf(f, ", blocked %s)", summary_duration(d, (double)r->th_blocked[l]));
			}
			fprintf(f, "\n");
		}
	}
	free(v);
	free(a->r);
	free(a);
}
