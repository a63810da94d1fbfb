/*
 * pprof.c - a stopped profile as profile.proto (github.com/google/pprof,
 * proto/profile.proto), symbolized in-process and gzipped.
 *
 * Symbols: symbols.c (libdw: the ELF symbol tables, static functions
 * included, and DWARF lines). A caller's frame is a return address: it is
 * looked up, and stored, one byte earlier, inside the call instruction, as
 * pprof expects.
 *
 * Encoding: protobuf by hand (varints and length-delimited fields; a
 * nested message is built in a scratch buffer and copied in); strings
 * interned in string_table, index 0 the empty string.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "prof/internal.h"
#include "trace/pb.h"

/* proto3: a field at its default (0) is not written. */
static void pb_u(struct pb *b, unsigned field, uint64_t v)
{
	if (v)
		pb_uint(b, field, v);
}

/* ---- strings ---- */

struct strings {
	const char **s; /* by index */
	size_t n, cap;
	size_t *slot;   /* hash -> index + 1 */
	size_t nslot;
	int oom;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static int str_grow(struct strings *t)
{
	size_t nslot = t->nslot ? t->nslot * 2 : 256;
	size_t *slot = calloc(nslot, sizeof *slot);
	if (!slot)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t j = hash_str(t->s[i]) & (nslot - 1);
		while (slot[j])
			j = (j + 1) & (nslot - 1);
		slot[j] = i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = nslot;
	return 0;
}

/* The index of s in the table (added if new); s must outlive the table. */
static int64_t str_id(struct strings *t, const char *s)
{
	if (!s)
		s = "";
	if ((t->n + 1) * 2 > t->nslot && str_grow(t) < 0) {
		t->oom = 1;
		return 0;
	}
	size_t j = hash_str(s) & (t->nslot - 1);
	for (; t->slot[j]; j = (j + 1) & (t->nslot - 1))
		if (strcmp(t->s[t->slot[j] - 1], s) == 0)
			return (int64_t)(t->slot[j] - 1);
	const char **q = prof_grow(t->s, &t->cap, t->n + 1, sizeof *t->s, 256);
	if (!q) {
		t->oom = 1;
		return 0;
	}
	t->s = q;
	t->s[t->n] = s;
	t->slot[j] = ++t->n;
	return (int64_t)(t->n - 1);
}

/* ---- locations and functions ---- */

struct loc {
	uint64_t addr; /* 0: the slot is free */
	uint64_t id, function;
	unsigned mapping;
	int line;
};

struct func {
	int64_t name, file;
};

struct syms {
	struct prof_syms *sym;
	struct loc *loc; /* open addressing by address */
	size_t nloc, cap;
	struct func *fn;
	size_t nfn, capfn;
	struct strings *str;
	int oom;
};

static uint64_t function_id(struct syms *s, const char *name, const char *file)
{
	int64_t n = str_id(s->str, name), f = str_id(s->str, file);
	for (size_t i = s->nfn; i-- > 0;) /* recent first: a stack's frames repeat */
		if (s->fn[i].name == n && s->fn[i].file == f)
			return i + 1;
	struct func *q = prof_grow(s->fn, &s->capfn, s->nfn + 1, sizeof *s->fn, 256);
	if (!q) {
		s->oom = 1;
		return 0;
	}
	s->fn = q;
	s->fn[s->nfn++] = (struct func){n, f};
	return s->nfn;
}

/* The location of address a (nonzero: 0 marks a free slot): its id
 * (1..), made and symbolized once. */
static uint64_t location_id(struct syms *s, uint64_t a)
{
	if ((s->nloc + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct loc *t = calloc(cap, sizeof *t);
		if (!t) {
			s->oom = 1;
			return 0;
		}
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->loc[i].addr)
				continue;
			size_t j = (s->loc[i].addr * 0x9e3779b97f4a7c15u) >> 20 & (cap - 1);
			while (t[j].addr)
				j = (j + 1) & (cap - 1);
			t[j] = s->loc[i];
		}
		free(s->loc);
		s->loc = t;
		s->cap = cap;
	}
	size_t j = (a * 0x9e3779b97f4a7c15u) >> 20 & (s->cap - 1);
	for (; s->loc[j].addr; j = (j + 1) & (s->cap - 1))
		if (s->loc[j].addr == a)
			return s->loc[j].id;
	struct loc l = {.addr = a, .id = ++s->nloc};
	const char *file, *name = prof_syms_at(s->sym, a, &file, &l.line, &l.mapping);
	if (name)
		l.function = function_id(s, name, file);
	s->loc[j] = l;
	return l.id;
}

/* ---- the encoder ---- */

/* A frame that is no code: a location of its own (its id from the same
 * count as the addresses'), whose function is the name. */
struct pseudo {
	const char *name;
	uint64_t id, function;
};

struct pprof_enc {
	struct strings str;
	struct syms s;
	struct pb b, m, sub;
	struct pseudo *ps;
	size_t nps, capps;
	unsigned ntypes;
	int oom;
};

static void value_type(struct pb *b, unsigned field, struct strings *str, const char *type,
		       const char *unit, struct pb *scratch)
{
	pb_u(scratch, 1, (uint64_t)str_id(str, type));
	pb_u(scratch, 2, (uint64_t)str_id(str, unit));
	pb_msg(b, field, scratch);
}

struct pprof_enc *pprof_enc_new(const char *const types[][2], unsigned ntypes)
{
	struct pprof_enc *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->s = (struct syms){.str = &e->str, .sym = prof_syms_open()};
	e->b.grows = e->m.grows = e->sub.grows = 1;
	e->ntypes = ntypes;
	str_id(&e->str, "");
	for (unsigned i = 0; i < ntypes; i++)
		value_type(&e->b, 1, &e->str, types[i][0], types[i][1], &e->m);
	return e;
}

static uint64_t pseudo_id(struct pprof_enc *e, const char *name)
{
	for (size_t i = 0; i < e->nps; i++)
		if (strcmp(e->ps[i].name, name) == 0)
			return e->ps[i].id;
	struct pseudo *q = prof_grow(e->ps, &e->capps, e->nps + 1, sizeof *e->ps, 16);
	if (!q) {
		e->oom = 1;
		return 0;
	}
	e->ps = q;
	e->ps[e->nps] = (struct pseudo){name, ++e->s.nloc, function_id(&e->s, name, NULL)};
	return e->ps[e->nps++].id;
}

void pprof_enc_sample(struct pprof_enc *e, const char *pseudo, const uint64_t *ips, uint32_t n,
		      const int64_t *values, const char *const *labels, int tid)
{
	uint64_t ids[PROF_FRAMES_MAX + 1];
	uint32_t k = 0;
	if (pseudo)
		ids[k++] = pseudo_id(e, pseudo);
	for (uint32_t i = 0; i < n && k < PROF_FRAMES_MAX + 1; i++)
		ids[k++] = location_id(&e->s, i || pseudo ? ips[i] - 1 : ips[i]);
	/* Sample{location_id (packed), value (packed), label} */
	for (uint32_t i = 0; i < k; i++)
		pb_varint(&e->sub, ids[i]);
	pb_msg(&e->m, 1, &e->sub);
	for (unsigned i = 0; i < e->ntypes; i++)
		pb_varint(&e->sub, (uint64_t)values[i]);
	pb_msg(&e->m, 2, &e->sub);
	for (; labels && labels[0]; labels += 2) {
		pb_u(&e->sub, 1, (uint64_t)str_id(&e->str, labels[0]));
		pb_u(&e->sub, 2, (uint64_t)str_id(&e->str, labels[1]));
		pb_msg(&e->m, 3, &e->sub);
	}
	if (tid) {
		pb_u(&e->sub, 1, (uint64_t)str_id(&e->str, "tid"));
		pb_u(&e->sub, 3, (uint64_t)tid);
		pb_msg(&e->m, 3, &e->sub);
	}
	pb_msg(&e->b, 2, &e->m);
}

static int gzip(const struct pb *in, unsigned char **out, size_t *len)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t cap = deflateBound(&z, (uLong)in->n);
	unsigned char *o = malloc(cap);
	if (!o) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = in->p;
	z.avail_in = (uInt)in->n;
	z.next_out = o;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(o);
		return -ENOMEM;
	}
	*out = o;
	return 0;
}

int pprof_enc_finish(struct pprof_enc *e, const struct pprof_meta *meta, unsigned char **out,
		     size_t *len)
{
	struct pb *b = &e->b, *m = &e->m, *sub = &e->sub;
	for (unsigned i = 0; i < prof_syms_modules(e->s.sym); i++) { /* Mapping */
		uint64_t start, end;
		const char *file = prof_syms_module(e->s.sym, i, &start, &end);
		pb_u(m, 1, i + 1);
		pb_u(m, 2, start);
		pb_u(m, 3, end);
		pb_u(m, 5, (uint64_t)str_id(&e->str, file));
		pb_u(m, 7, 1);
		pb_u(m, 8, 1);
		pb_u(m, 9, 1);
		pb_msg(b, 3, m);
	}
	for (size_t i = 0; i < e->s.cap; i++) { /* Location */
		const struct loc *l = &e->s.loc[i];
		if (!l->addr)
			continue;
		pb_u(m, 1, l->id);
		pb_u(m, 2, l->mapping);
		pb_u(m, 3, l->addr);
		if (l->function) {
			pb_u(sub, 1, l->function);
			pb_u(sub, 2, (uint64_t)(l->line > 0 ? l->line : 0));
			pb_msg(m, 4, sub);
		}
		pb_msg(b, 4, m);
	}
	for (size_t i = 0; i < e->nps; i++) { /* a pseudo frame: no mapping, no address */
		pb_u(m, 1, e->ps[i].id);
		pb_u(sub, 1, e->ps[i].function);
		pb_msg(m, 4, sub);
		pb_msg(b, 4, m);
	}
	for (size_t i = 0; i < e->s.nfn; i++) { /* Function */
		pb_u(m, 1, i + 1);
		pb_u(m, 2, (uint64_t)e->s.fn[i].name);
		pb_u(m, 3, (uint64_t)e->s.fn[i].name);
		pb_u(m, 4, (uint64_t)e->s.fn[i].file);
		pb_msg(b, 5, m);
	}
	/* Profile-level numbers: their strings first, then the table last. */
	struct pb tail = {.grows = 1};
	pb_u(&tail, 9, meta->start_wall_ns);
	pb_u(&tail, 10, meta->duration_ns);
	value_type(&tail, 11, &e->str, meta->period_type, meta->period_unit, m);
	pb_u(&tail, 12, meta->period);
	for (unsigned i = 0; i < 2; i++)
		if (meta->comment[i] && meta->comment[i][0])
			pb_u(&tail, 13, (uint64_t)str_id(&e->str, meta->comment[i]));
	for (size_t i = 0; i < e->str.n; i++)
		pb_bytes(b, 6, e->str.s[i], strlen(e->str.s[i]));
	pb_put(b, tail.p, tail.n);
	int oom = b->full || m->full || sub->full || tail.full || e->s.oom || e->str.oom || e->oom;
	int rc = oom ? -ENOMEM : gzip(b, out, len);
	free(tail.p);
	pprof_enc_free(e);
	return rc;
}

void pprof_enc_free(struct pprof_enc *e)
{
	if (!e)
		return;
	free(e->b.p);
	free(e->m.p);
	free(e->sub.p);
	free(e->s.loc);
	free(e->s.fn);
	free(e->ps);
	free(e->str.s);
	free(e->str.slot);
	prof_syms_close(e->s.sym); /* after the strings it owned are written */
	free(e);
}

/* ---- the CPU profile ---- */

static const char *thread_name(const struct prof *p, int tid)
{
	for (unsigned i = 0; i < p->nth; i++)
		if (p->th[i].tid == tid && p->th[i].name[0])
			return p->th[i].name;
	return "?";
}

int prof_pprof(struct prof *p, unsigned char **out, size_t *len)
{
	prof_stop(p);
	static const char *const types[][2] = {{"samples", "count"}, {"cpu", "nanoseconds"}};
	struct pprof_enc *e = pprof_enc_new(types, 2);
	if (!e)
		return -ENOMEM;
	uint64_t period = 1000000000u / p->hz;
	for (size_t i = 0; i < p->cap; i++) {
		const struct prof_stack *st = &p->tab[i];
		if (!st->hash)
			continue;
		const int64_t v[2] = {(int64_t)st->count, (int64_t)(st->count * period)};
		const char *labels[7] = {"thread", thread_name(p, st->tid)};
		int nl = 2;
		if (st->labels.route)
			labels[nl++] = "route", labels[nl++] = st->labels.route;
		if (st->labels.mode)
			labels[nl++] = "mode", labels[nl++] = st->labels.mode;
		labels[nl] = NULL;
		pprof_enc_sample(e, NULL, &p->ips[st->at], st->depth, v, labels, st->tid);
	}
	if (p->oom)
		e->oom = 1;
	const struct pprof_meta meta = {p->start_wall_ns, p->end_ns - p->start_ns, "cpu",
					"nanoseconds", period, {p->how, p->note}};
	return pprof_enc_finish(e, &meta, out, len);
}
