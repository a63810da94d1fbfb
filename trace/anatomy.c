/* anatomy.c - the slowest requests, taken apart (see anatomy.h). */
#include <stdlib.h>
#include <string.h>

#include "trace/anatomy.h"
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
	uint64_t job_ns, runnable, blocked;
	uint64_t last_end;
	unsigned last;          /* the thread whose job ended last: threads[last] */
	const char *threads[4]; /* the first few threads its jobs ran on */
	uint64_t th_ns[4], th_runnable[4], th_blocked[4]; /* their jobs' time */
};

struct anatomy {
	struct req *r;
	size_t n, cap;
	int oom;
};

struct anatomy *anatomy_new(void)
{
	return calloc(1, sizeof(struct anatomy));
}

static struct req *find(struct anatomy *a, uint64_t id)
{
	if ((a->n + 1) * 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		struct req *t = calloc(cap, sizeof *t);
		if (!t) {
			a->oom = 1;
			return NULL;
		}
		for (size_t i = 0; i < a->cap; i++) {
			if (!a->r[i].id)
				continue;
			size_t j = (a->r[i].id * 0x9e3779b97f4a7c15u) >> 17 & (cap - 1);
			while (t[j].id)
				j = (j + 1) & (cap - 1);
			t[j] = a->r[i];
		}
		free(a->r);
		a->r = t;
		a->cap = cap;
	}
	size_t j = (id * 0x9e3779b97f4a7c15u) >> 17 & (a->cap - 1);
	for (; a->r[j].id; j = (j + 1) & (a->cap - 1))
		if (a->r[j].id == id)
			return &a->r[j];
	a->r[j].id = id;
	a->n++;
	return &a->r[j];
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
	int whole = strcmp(name, "request") == 0;
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

void anatomy_follower(struct anatomy *a, uint64_t id)
{
	struct req *r;
	if (a && id && (r = find(a, id)))
		r->followed = 1;
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

static int by_total_desc(const void *x, const void *y)
{
	const struct req *a = *(const struct req *const *)x, *b = *(const struct req *const *)y;
	return a->total > b->total ? -1 : a->total < b->total;
}

void anatomy_text(struct anatomy *a, FILE *f, unsigned n)
{
	if (!a)
		return;
	size_t m = 0;
	struct req **v = malloc((a->n ? a->n : 1) * sizeof *v);
	for (size_t i = 0; v && i < a->cap; i++)
		if (a->r[i].id && a->r[i].total)
			v[m++] = &a->r[i];
	if (f && v && m) {
		qsort(v, m, sizeof *v, by_total_desc);
		fprintf(f, "\nslowest requests (%u of the %zu that ended in the window)%s\n",
			m < n ? (unsigned)m : n, m, a->oom ? " (out of memory: partial)" : "");
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
