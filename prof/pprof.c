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

/* ---- the profile ---- */

static void value_type(struct pb *b, unsigned field, struct strings *str, const char *type,
		       const char *unit, struct pb *scratch)
{
	pb_u(scratch, 1, (uint64_t)str_id(str, type));
	pb_u(scratch, 2, (uint64_t)str_id(str, unit));
	pb_msg(b, field, scratch);
}

static const char *thread_name(const struct prof *p, int tid)
{
	for (unsigned i = 0; i < p->nth; i++)
		if (p->th[i].tid == tid && p->th[i].name[0])
			return p->th[i].name;
	return "?";
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

int prof_pprof(struct prof *p, unsigned char **out, size_t *len)
{
	prof_stop(p);
	struct strings str = {0};
	struct syms s = {.str = &str, .sym = prof_syms_open()};
	struct pb b = {.grows = 1}, m = {.grows = 1}, sub = {.grows = 1};
	str_id(&str, "");
	value_type(&b, 1, &str, "samples", "count", &m);
	value_type(&b, 1, &str, "cpu", "nanoseconds", &m);
	uint64_t period = 1000000000u / p->hz;
	uint64_t *ids = malloc(128 * sizeof *ids);
	for (size_t i = 0; ids && i < p->cap; i++) {
		const struct prof_stack *st = &p->tab[i];
		if (!st->hash)
			continue;
		/* Sample{location_id (packed), value (packed), label} */
		for (uint32_t k = 0; k < st->depth && k < 128; k++)
			ids[k] = location_id(&s, k ? p->ips[st->at + k] - 1 : p->ips[st->at + k]);
		for (uint32_t k = 0; k < st->depth && k < 128; k++)
			pb_varint(&sub, ids[k]);
		pb_msg(&m, 1, &sub);
		pb_varint(&sub, st->count);
		pb_varint(&sub, st->count * period);
		pb_msg(&m, 2, &sub);
		pb_u(&sub, 1, (uint64_t)str_id(&str, "thread"));
		pb_u(&sub, 2, (uint64_t)str_id(&str, thread_name(p, st->tid)));
		pb_msg(&m, 3, &sub);
		pb_u(&sub, 1, (uint64_t)str_id(&str, "tid"));
		pb_u(&sub, 3, (uint64_t)st->tid);
		pb_msg(&m, 3, &sub);
		pb_msg(&b, 2, &m);
	}
	free(ids);
	for (unsigned i = 0; i < prof_syms_modules(s.sym); i++) { /* Mapping */
		uint64_t start, end;
		const char *file = prof_syms_module(s.sym, i, &start, &end);
		pb_u(&m, 1, i + 1);
		pb_u(&m, 2, start);
		pb_u(&m, 3, end);
		pb_u(&m, 5, (uint64_t)str_id(&str, file));
		pb_u(&m, 7, 1);
		pb_u(&m, 8, 1);
		pb_u(&m, 9, 1);
		pb_msg(&b, 3, &m);
	}
	for (size_t i = 0; i < s.cap; i++) { /* Location */
		const struct loc *l = &s.loc[i];
		if (!l->addr)
			continue;
		pb_u(&m, 1, l->id);
		pb_u(&m, 2, l->mapping);
		pb_u(&m, 3, l->addr);
		if (l->function) {
			pb_u(&sub, 1, l->function);
			pb_u(&sub, 2, (uint64_t)(l->line > 0 ? l->line : 0));
			pb_msg(&m, 4, &sub);
		}
		pb_msg(&b, 4, &m);
	}
	for (size_t i = 0; i < s.nfn; i++) { /* Function */
		pb_u(&m, 1, i + 1);
		pb_u(&m, 2, (uint64_t)s.fn[i].name);
		pb_u(&m, 3, (uint64_t)s.fn[i].name);
		pb_u(&m, 4, (uint64_t)s.fn[i].file);
		pb_msg(&b, 5, &m);
	}
	/* Profile-level numbers: their strings first, then the table last. */
	struct pb tail = {.grows = 1};
	pb_u(&tail, 9, p->start_wall_ns);
	pb_u(&tail, 10, p->end_ns - p->start_ns);
	value_type(&tail, 11, &str, "cpu", "nanoseconds", &m);
	pb_u(&tail, 12, period);
	pb_u(&tail, 13, (uint64_t)str_id(&str, p->how)); /* comment: how it was sampled */
	if (p->note[0])
		pb_u(&tail, 13, (uint64_t)str_id(&str, p->note));
	for (size_t i = 0; i < str.n; i++)
		pb_bytes(&b, 6, str.s[i], strlen(str.s[i]));
	pb_put(&b, tail.p, tail.n);
	int oom = b.full || m.full || sub.full || tail.full || s.oom || str.oom || p->oom;
	int rc = oom ? -ENOMEM : gzip(&b, out, len);
	free(tail.p);
	free(b.p);
	free(m.p);
	free(sub.p);
	free(s.loc);
	free(s.fn);
	free(str.s);
	free(str.slot);
	prof_syms_close(s.sym); /* after the strings it owned are written */
	return rc;
}
