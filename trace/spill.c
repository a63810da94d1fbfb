/*
 * spill.c - a capture's spill (see spill.h; the seqlock rule for reading a
 * ring is in ring.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/spill.h"

_Atomic(struct trace_spill *) trace_spill_;

static const struct trace_desc TD_SPILL = {"trace spill", "trace", {"records", "bytes"}, 0};

#define REC_MAX 80 /* a record's bytes, at most: 7 varints of 10 and a header */

/* ---- the file ---- */

static int tmpfile_in(const char *dir)
{
#ifdef O_TMPFILE
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
		return fd >= 0 ? fd : -errno;
#endif
	char path[512];
	snprintf(path, sizeof path, "%s/mandelweb-trace-XXXXXX", dir);
	int f = mkstemp(path);
	if (f < 0)
		return -errno;
	unlink(path);
	fcntl(f, F_SETFD, FD_CLOEXEC);
	return f;
}

int spill_open(struct trace_spill **out, const char *dir, unsigned mb, char *why, size_t len)
{
	if (!dir || !*dir)
		dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	struct trace_spill *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	int fd = tmpfile_in(dir);
	if (fd < 0) {
		snprintf(why, len, "%s: %s", dir, strerror(-fd));
		free(s);
		return fd;
	}
	s->fd = fd;
	s->max = (uint64_t)(mb ? mb : SPILL_MB_DEFAULT) << 20;
	for (unsigned i = 0; i < TRACE_THREADS_MAX; i++)
		for (int l = 0; l < TRACE_LANES; l++)
			pthread_mutex_init(&s->lane[i][l].mu, NULL);
	*out = s;
	return 0;
}

void spill_attach(struct trace_spill *s)
{
	struct trace_spill *was = atomic_exchange(&trace_spill_, s);
	if (was) /* its writers: out before it is read or freed */
		while (atomic_load(&was->users))
			sched_yield();
}

void spill_free(struct trace_spill *s)
{
	if (!s)
		return;
	if (atomic_load(&trace_spill_) == s)
		spill_attach(NULL);
	for (unsigned i = 0; i < TRACE_THREADS_MAX; i++)
		for (int l = 0; l < TRACE_LANES; l++) {
			free(s->lane[i][l].chunk);
			pthread_mutex_destroy(&s->lane[i][l].mu);
		}
	close(s->fd);
	free(s);
}

/* ---- encoding ---- */

static size_t put_varint(unsigned char *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* The desc's index in s: interned on first sight (lock-free: a slot, once
 * set, never changes), or -1 when the table is full. */
static int desc_index(struct trace_spill *s, const struct trace_desc *d)
{
	uintptr_t want = (uintptr_t)d;
	unsigned h = (unsigned)((want >> 4) * 0x9e3779b1u) % SPILL_DESCS;
	for (unsigned k = 0; k < SPILL_DESCS; k++, h = (h + 1) % SPILL_DESCS) {
		uintptr_t have = atomic_load_explicit(&s->desc[h], memory_order_acquire);
		if (have == want)
			return (int)h;
		if (have == 0) {
			if (atomic_compare_exchange_strong_explicit(&s->desc[h], &have, want,
								    memory_order_acq_rel,
								    memory_order_acquire))
				return (int)h;
			if (have == want)
				return (int)h;
		}
	}
	return -1;
}

/* Header bits: kind (2), flow (2), arguments (3), an own flow id (1). */
static size_t encode(struct trace_spill *s, unsigned char *p, const struct chrome_rec *e,
		     uint64_t *prev)
{
	int di = desc_index(s, e->d);
	if (di < 0)
		return 0;
	unsigned nargs = 0;
	for (unsigned i = 0; i < TRACE_ARGS; i++)
		if (e->a[i])
			nargs = i + 1;
	int own = e->id >= TRACE_ID_OWN;
	int has_id = e->flow != TRACE_FLOW_NONE || e->kind == TRACE_ASYNC;
	size_t n = put_varint(p, (uint64_t)di << 8 | (uint64_t)own << 7 | nargs << 4 |
				      (unsigned)e->flow << 2 | (unsigned)e->kind);
	n += put_varint(p + n, zigzag((int64_t)(e->ts - *prev)));
	*prev = e->ts;
	if (e->kind == TRACE_SPAN || e->kind == TRACE_ASYNC)
		n += put_varint(p + n, e->dur);
	if (has_id)
		n += put_varint(p + n, own ? e->id - TRACE_ID_OWN : e->id);
	for (unsigned i = 0; i < nargs; i++)
		n += put_varint(p + n, zigzag(e->a[i]));
	return n;
}

static void stop(struct trace_spill *s, const char *why)
{
	int was = 0;
	if (atomic_compare_exchange_strong(&s->stopped, &was, 1))
		snprintf(s->why, sizeof s->why, "%s", why);
}

/* Appends a chunk of lane sl to the file: 0, or -1 (copying stops). */
static int append(struct trace_spill *s, struct spill_lane *sl, const unsigned char *buf, size_t len,
		  uint32_t count, uint64_t ts0)
{
	if (sl->n == sl->cap) {
		size_t cap = sl->cap ? 2 * sl->cap : 64;
		struct spill_chunk *c = realloc(sl->chunk, cap * sizeof *c);
		if (!c) {
			stop(s, "out of memory for the chunk list");
			return -1;
		}
		sl->chunk = c;
		sl->cap = cap;
	}
	uint64_t off = atomic_fetch_add(&s->end, len);
	if (off + len > s->max) {
		char why[64];
		snprintf(why, sizeof why, "the spill's bound (%llu MiB) was reached",
			 (unsigned long long)(s->max >> 20));
		stop(s, why);
		return -1;
	}
	for (size_t done = 0; done < len;) {
		ssize_t k = pwrite(s->fd, buf + done, len - done, (off_t)(off + done));
		if (k <= 0) {
			char why[96];
			snprintf(why, sizeof why, "writing the spill: %s", k < 0 ? strerror(errno) : "no room");
			stop(s, why);
			return -1;
		}
		done += (size_t)k;
	}
	sl->chunk[sl->n++] = (struct spill_chunk){off, (uint32_t)len, count, ts0};
	atomic_fetch_add_explicit(&s->bytes, len, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->records, count, memory_order_relaxed);
	return 0;
}

/* Copies lane l of ring r from sl->to up to at most 'upto' (and at most
 * max records), under sl->mu. Returns the records copied. */
static uint64_t copy(struct trace_spill *s, struct spill_lane *sl, struct trace_lane *ln,
		     uint64_t upto, uint64_t max, uint64_t *bytes)
{
	unsigned char buf[SPILL_CHUNK];
	uint64_t i = atomic_load_explicit(&sl->to, memory_order_relaxed), done = 0;
	if (upto - i > ln->mask) { /* lapped before we came: those are gone */
		sl->lost += upto - ln->mask - i;
		i = upto - ln->mask;
	}
	if (upto - i > max)
		upto = i + max;
	size_t len = 0;
	uint32_t count = 0;
	/* at, lost_at: where the chunk being filled began */
	uint64_t ts0 = 0, prev = 0, at = i, lost_at = sl->lost;
	while (i < upto && !atomic_load_explicit(&s->stopped, memory_order_relaxed)) {
		struct chrome_rec e;
		if (!trace_lane_read_(ln, i, &e)) { /* lapped meanwhile: skip to the oldest live one */
			uint64_t w = atomic_load_explicit(&ln->w, memory_order_acquire);
			uint64_t next = w - ln->mask > i + 1 ? w - ln->mask : i + 1;
			sl->lost += next - i;
			i = next;
			continue;
		}
		if (count == 0) {
			ts0 = prev = e.ts;
			at = i;
			lost_at = sl->lost;
		}
		size_t k = encode(s, buf + len, &e, &prev);
		if (!k) {
			stop(s, "too many distinct event names");
			break;
		}
		len += k;
		count++;
		i++;
		done++;
		if (SPILL_CHUNK - len < REC_MAX) {
			if (append(s, sl, buf, len, count, ts0) < 0)
				break;
			*bytes += len;
			len = 0;
			count = 0;
		}
	}
	if (count && !atomic_load_explicit(&s->stopped, memory_order_relaxed) &&
	    append(s, sl, buf, len, count, ts0) == 0) {
		*bytes += len;
		count = 0;
	}
	if (count) { /* not copied: the ring still has them, or will count them lost */
		i = at;
		sl->lost = lost_at;
		done -= count;
	}
	atomic_store_explicit(&sl->to, i, memory_order_release);
	return done;
}

/* A writer's turn at lane l of ring r, inside s. */
static void check(struct trace_spill *s, struct trace_ring *r, int l, uint64_t w)
{
	struct spill_lane *sl = &s->lane[r->idx][l];
	struct trace_lane *ln = &r->lane[l];
	if (w - atomic_load_explicit(&sl->to, memory_order_relaxed) < (ln->mask + 1) / 2)
		return;
	if (pthread_mutex_trylock(&sl->mu) != 0)
		return; /* being copied: next time */
	uint64_t t0 = trace_now(), bytes = 0;
	uint64_t n = copy(s, sl, ln, atomic_load_explicit(&ln->w, memory_order_acquire), SPILL_BATCH,
			  &bytes);
	pthread_mutex_unlock(&sl->mu);
	/* What copying cost the thread that did it, on its own events: only a
	 * lane's owner records here (the events and counters lanes). */
	if (n && (l == TRACE_LANE_EVENTS || l == TRACE_LANE_COUNTERS)) {
		const int64_t a[TRACE_ARGS] = {(int64_t)n, (int64_t)bytes, 0, 0};
		trace_lane_append_(r, TRACE_LANE_EVENTS, &TD_SPILL, trace_meta_(TRACE_SPAN, 0, 0), t0,
				   trace_now() - t0, a);
		atomic_fetch_add_explicit(&s->spans, 1, memory_order_relaxed);
	}
}

void spill_check_(struct trace_ring *r, int l, uint64_t w)
{
	struct trace_spill *s = atomic_load_explicit(&trace_spill_, memory_order_acquire);
	if (!s)
		return;
	atomic_fetch_add(&s->users, 1);
	if (atomic_load(&trace_spill_) == s && !atomic_load_explicit(&s->stopped, memory_order_relaxed))
		check(s, r, l, w);
	atomic_fetch_sub(&s->users, 1);
}

void spill_lane_all(struct trace_spill *s, struct trace_ring *r, int l)
{
	struct spill_lane *sl = &s->lane[r->idx][l];
	struct trace_lane *ln = &r->lane[l];
	uint64_t bytes = 0;
	pthread_mutex_lock(&sl->mu);
	uint64_t w = atomic_load_explicit(&ln->w, memory_order_acquire);
	copy(s, sl, ln, w, UINT64_MAX, &bytes);
	pthread_mutex_unlock(&sl->mu);
}

/* ---- reading ---- */

static int get_varint(struct spill_reader *rd, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64 && rd->pos < rd->len; shift += 7) {
		unsigned char b = rd->buf[rd->pos++];
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 1;
		}
	}
	return 0;
}

/* One record from the reader's chunk: 1, or 0 if it does not parse. */
static int decode(struct trace_spill *s, struct spill_reader *rd, struct chrome_rec *e)
{
	uint64_t hdr, v;
	if (!get_varint(rd, &hdr))
		return 0;
	*e = (struct chrome_rec){0};
	e->kind = (enum trace_kind)(hdr & 3);
	e->flow = (enum trace_flow)((hdr >> 2) & 3);
	unsigned nargs = (hdr >> 4) & 7;
	int own = (hdr >> 7) & 1;
	uintptr_t d = atomic_load_explicit(&s->desc[(hdr >> 8) % SPILL_DESCS], memory_order_acquire);
	e->d = (const struct trace_desc *)d;
	if (!d || nargs > TRACE_ARGS || !get_varint(rd, &v))
		return 0;
	e->ts = rd->prev + (uint64_t)unzigzag(v);
	rd->prev = e->ts;
	if ((e->kind == TRACE_SPAN || e->kind == TRACE_ASYNC) && !get_varint(rd, &e->dur))
		return 0;
	if (e->flow != TRACE_FLOW_NONE || e->kind == TRACE_ASYNC) {
		if (!get_varint(rd, &e->id))
			return 0;
		if (own)
			e->id += TRACE_ID_OWN;
	}
	for (unsigned k = 0; k < nargs; k++) {
		if (!get_varint(rd, &v))
			return 0;
		e->a[k] = unzigzag(v);
	}
	return 1;
}

int spill_next(struct trace_spill *s, unsigned i, int l, struct spill_reader *rd,
	       struct chrome_rec *e, uint64_t *lost)
{
	struct spill_lane *sl = &s->lane[i][l];
	for (;;) {
		while (rd->left == 0) {
			if (rd->chunk >= sl->n)
				return 0;
			const struct spill_chunk *c = &sl->chunk[rd->chunk++];
			ssize_t k = pread(s->fd, rd->buf, c->len, (off_t)c->off);
			if (k != (ssize_t)c->len) {
				*lost += c->count;
				continue;
			}
			rd->pos = 0;
			rd->len = c->len;
			rd->left = c->count;
			rd->prev = c->ts0;
		}
		if (decode(s, rd, e)) {
			rd->left--;
			rd->idx++;
			return 1;
		}
		/* Cannot happen with what encode wrote: the chunk's rest is lost. */
		*lost += rd->left;
		rd->left = 0;
	}
}
