/*
 * kernel_vec.h - the SIMD kernel, written once with GCC/Clang vector
 * extensions and instantiated per instruction set by a few-line file
 * (kernel_sse2.c, kernel_avx2.c, ...). Include it after defining:
 *   KV_BYTES  vector size in bytes (16, 32 or 64)
 *   KV_ILV    independent vectors interleaved, to hide the ~10-cycle
 *             dependency chain of one iteration (chosen by the roofline:
 *             `make bench`, roofline_* lines)
 *   KV_FN     name of the kernel_fn to define
 * and optionally:
 *   KV_HEAD   iterations every pixel of a span first runs in lockstep
 *             blocks (kv_head, below); 0 or undefined: none. Chosen by
 *             measurement per instruction set (docs/benchmarks.md)
 *   KV_NARROW 1: a span's tail goes on with fewer vectors (kv_compact);
 *             undefined: where a vector has 4 lanes or more (measured)
 *
 * Lane refill. Each lane of KV_ILV vectors holds one pixel of the span; the
 * iteration after a lane's pixel is finished (escaped, ran max_iter
 * iterations, or its cycle is settled) the lane is written out and takes
 * the next pixel, so lanes idle only in the span's tail. The block kernel
 * this replaces kept every lane until its block's slowest pixel was done:
 * 46% of the default picture's lane-iterations were idle.
 *
 * The hot loop (kernel_vec_loop.h) is the formula and two compares, nothing
 * else: per vector, 3 multiplies and 5 adds (2*Zr as Zr + Zr, the same bits),
 * "Tr + Ti > bailout" and, in half of the iterations (see Cycle detection),
 * "(Zr, Zi) equals the saved state", ORed into one mask (comparing Zr alone
 * measured slower: Zr settles before Zi on a quarter of the default
 * picture, each a false event). The compare with the saved state is 5 of a
 * vector's 14 operations, and the loop is bound by how many it issues, not
 * by its chain: without the compare the roofline loop runs 28% faster
 * (AVX2 at 3 vectors, AMD Zen 3).
 * Nothing on the loop-carried chain is masked (a finished lane's values
 * are read in the event path before it is refilled), and there is no
 * per-lane counter: a lane's count is the span's iteration less the one its
 * pixel began at, and max_iter is reached at a time known in advance (the
 * smallest over the lanes, next_end). Everything else happens in
 * kv_events, off the hot loop, once per finished pixel or so. With a head
 * (KV_HEAD), the pixels that escape early never reach the refill loop:
 * kv_head runs every pixel's first iterations in lockstep blocks, and the
 * rest enter the loop with their state. Once a span has no pixel left to
 * take, its live lanes move to as few vectors as hold them and the loop
 * goes on with those (KV_NARROW). A span of one pixel (the px and workers
 * modes) runs kv_pixel: the same loop and events for one lane, in scalar
 * code.
 *
 * How it stays bit-identical to kernel_scalar:
 *  - Same operations in the same order, no contraction (-ffp-contract=off).
 *  - A lane's results are read at the iteration its pixel finished (in
 *    the head, from the states it stored at every iteration).
 *  - A pixel the head hands over resumes from its exact state, its count
 *    starting h iterations back (began = it - h).
 *  - A lane that kv_compact moves takes all of its pixel with it: C, Z, T,
 *    its saved state and the iteration its pixel began at. Saves are the
 *    span's, at the same iterations whichever loop runs it.
 *  - The escape test is "Tr + Ti > bailout", ordered, where the reference
 *    stops on !(Tr + Ti <= bailout): the two differ only for a NaN, and a
 *    lane's state stays finite until it escapes when C and the bailout are
 *    finite (|Zr|, |Zi| <= sqrt(bailout) before an iteration, so the next
 *    values are finite, and an overflow to infinity is itself an escape).
 *    KV_FN gives anything else (a bailout the start fails, a NaN or
 *    infinite one, C not finite) to the reference.
 *  - Cycle detection: every T iterations of the span (T = 16, doubled with
 *    max_iter / 64) each lane's state (Zr, Zi) is saved at iteration j, and
 *    the states of the window's second half, k = j + T/2 .. j + T, are
 *    compared with it (the event path compares every state it sees). If
 *    s_k == s_j (j < k) and every state up to s_k passed the bailout test,
 *    the orbit cycles with a period that divides d = k - j and never
 *    escapes, and the state after max_iter iterations is s_{k + r},
 *    r = (max_iter - k) mod d: the event path runs those r iterations in
 *    scalar (r < d <= T; in the vector they cost a second event, measured
 *    7% slower) and the lane is finished. Every period p <= T has a
 *    multiple among the T/2 + 1 distances T/2 .. T (p <= T/2: some
 *    multiple of it, the distances being consecutive; p > T/2: p itself),
 *    so a window finds every such cycle that began by its save, as a
 *    compare after every iteration did; only later, by p or a few
 *    multiples. Half the compares: the default picture's lane-iterations
 *    +1.7%, its time about 3% less with AVX2, a deep zoom's 6% (Zen 3,
 *    docs/benchmarks.md). Equality is '==':
 *    two states that differ only in the sign of a zero give identical states
 *    one iteration later, and the outputs Tr, Ti are squares. A lane refilled
 *    after a save has NaN saved until the next one, so it is only compared
 *    with its own past. Periods longer than T are not found; those pixels
 *    run all max_iter iterations, exactly, without the shortcut.
 *  - An idle lane (the span has no pixel left for it) holds Z = NaN, which
 *    never compares greater or equal: it raises no event.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "render/kernel.h"

typedef double kv_d __attribute__((vector_size(KV_BYTES)));
typedef int64_t kv_l __attribute__((vector_size(KV_BYTES)));

#define KV_W (KV_BYTES / 8)
#define KV_LANES (KV_W * KV_ILV)
#ifndef KV_HEAD
#define KV_HEAD 0
#endif

#include "render/kernel_any.h"

/* One iteration of kernel.h's formula, in its order, on values of type
 * T: the hot loop and the head (vectors), and the event path's and the
 * lone pixel's scalar steps all run this one, so they compute the same
 * bits. */
#define KV_STEP_T(T, zr, zi, tr, ti, cr, ci)                                    \
	do {                                                                    \
		T kv_t_ = ((zr) + (zr)) * (zi);                                 \
		(zi) = kv_t_ + (ci);                                            \
		(zr) = ((tr) - (ti)) + (cr);                                    \
		(tr) = (zr) * (zr);                                             \
		(ti) = (zi) * (zi);                                             \
	} while (0)
#define KV_STEP(zr, zi, tr, ti, cr, ci) KV_STEP_T(kv_d, zr, zi, tr, ti, cr, ci)

/* The save interval: periods up to T are found within 2T iterations. */
static inline int64_t kv_period_max(uint32_t max_iter)
{
	int64_t T = KERNEL_FIRST_SAVE;
	while (T * 64 < (int64_t)max_iter)
		T *= 2;
	return T;
}

/* A span in progress: what the event path needs. The hot loop keeps the
 * vectors in registers and stores them here when an event comes (an event
 * path that indexed the loop's own vectors by a variable would pin them to
 * memory, and the hot loop would store them every iteration). Here each
 * is an array of lanes, lane j of vector k at [k * KV_W + j], so the event
 * path reads and writes a lane as one double: settling a lane with blends
 * into the vectors (a broadcast, a mask and a blend for each of seven)
 * measured 2% slower on the default picture. */
struct kv_state {
	const struct kernel_args *a;
	struct kernel_out *out;
	const double *crs; /* C's real part of each pixel of the span */
	/* The pixels the refill loop takes, in order: todo[0 .. count - 1],
	 * or with no todo the span's own 0 .. count - 1; next: the first not
	 * yet taken. With a head (h > 0, kv_head) a pixel starts from its
	 * state after h iterations, hzr[i] .. hti[i]; without, from zero. */
	const uint32_t *todo;
	const double *hzr, *hzi, *htr, *hti;
	uint32_t h;
	uint32_t count, next;
	unsigned ilv, live;   /* vectors in use; lanes holding a pixel */
	int64_t it;           /* iterations of the span so far */
	int64_t saved;        /* the iteration of the last save */
	int64_t next_end;     /* the first iteration a lane reaches max_iter */
	uint64_t executed;    /* lane-iterations of finished pixels */
	double ci;            /* C's imaginary part: the row's */
	/* Each lane's C, state and saved state (sr, si; NaN: none). */
	_Alignas(KV_BYTES) double cr[KV_LANES], zr[KV_LANES], zi[KV_LANES];
	_Alignas(KV_BYTES) double tr[KV_LANES], ti[KV_LANES], sr[KV_LANES], si[KV_LANES];
	int64_t began[KV_LANES]; /* the iteration its pixel began at */
	uint32_t idx[KV_LANES];  /* its pixel in the span; UINT32_MAX: idle */
};

/* Vector k of a lane array, and back. */
static inline kv_d kv_get(const double *lanes, unsigned k)
{
	kv_d x;
	memcpy(&x, lanes + k * KV_W, sizeof x);
	return x;
}

static inline void kv_put(double *lanes, unsigned k, kv_d x)
{
	memcpy(lanes + k * KV_W, &x, sizeof x);
}

/* Lane L's pixel is done after n iterations (if it had one): it is
 * written out, and the lane takes the next pixel of the span, or goes
 * idle with Z = NaN, which never compares greater or equal, so an idle
 * lane raises no event. */
static void kv_settle(struct kv_state *v, unsigned L, uint32_t n)
{
	uint32_t i = v->idx[L];
	bool had = i != UINT32_MAX;
	if (had) {
		v->out->n[i] = n;
		v->out->tr[i] = v->tr[L];
		v->out->ti[i] = v->ti[L];
		v->executed += (uint64_t)(v->it - v->began[L]);
	}
	v->sr[L] = v->si[L] = NAN;
	if (v->next < v->count) {
		i = v->todo ? v->todo[v->next] : v->next;
		v->next++;
		v->idx[L] = i;
		v->began[L] = v->it - v->h;
		/* A pixel from the head ends before those begun since. */
		if (v->began[L] + (int64_t)v->a->max_iter < v->next_end)
			v->next_end = v->began[L] + (int64_t)v->a->max_iter;
		v->cr[L] = v->crs[i];
		if (v->h) {
			v->zr[L] = v->hzr[i], v->zi[L] = v->hzi[i];
			v->tr[L] = v->htr[i], v->ti[L] = v->hti[i];
		} else {
			v->zr[L] = v->zi[L] = v->tr[L] = v->ti[L] = 0;
		}
		v->live += !had;
	} else {
		v->live -= had;
		v->idx[L] = UINT32_MAX;
		v->zr[L] = v->zi[L] = v->tr[L] = v->ti[L] = NAN;
	}
}

/* The event path: lanes that escaped, repeat their saved state, or
 * reached max_iter are settled. */
static void kv_events(struct kv_state *v)
{
	const uint32_t max_iter = v->a->max_iter;
	const kv_d bail = (kv_d){0} + v->a->bailout;
	const int64_t it = v->it;

	for (unsigned k = 0; k < v->ilv; k++) {
		kv_d tr = kv_get(v->tr, k), ti = kv_get(v->ti, k);
		kv_d zr = kv_get(v->zr, k), zi = kv_get(v->zi, k);
		unsigned esc = KV_BITS(KV_GT(tr + ti, bail));
		unsigned cyc = KV_BITS(KV_EQ(zr, kv_get(v->sr, k)) & KV_EQ(zi, kv_get(v->si, k))) & ~esc;
		for (; esc; esc &= esc - 1) {
			unsigned L = k * KV_W + (unsigned)__builtin_ctz(esc);
			kv_settle(v, L, (uint32_t)(it - v->began[L]));
		}
		for (; cyc; cyc &= cyc - 1) {
			unsigned L = k * KV_W + (unsigned)__builtin_ctz(cyc);
			/* A multiple of the period: the iterations since the
			 * save before this iteration's compare (saves come
			 * after the events). The r iterations left to
			 * max_iter, here: a few (r < that <= T), and the lane
			 * is free at once. */
			uint32_t r = (max_iter - (uint32_t)(it - v->began[L])) % (uint32_t)(it - v->saved);
			if (r) {
				double zr1 = v->zr[L], zi1 = v->zi[L], tr1 = v->tr[L], ti1 = v->ti[L];
				const double cr1 = v->cr[L];
				for (uint32_t q = 0; q < r; q++)
					KV_STEP_T(double, zr1, zi1, tr1, ti1, cr1, v->ci);
				v->tr[L] = tr1, v->ti[L] = ti1;
				v->executed += r;
			}
			kv_settle(v, L, max_iter);
		}
	}
	if (it < v->next_end)
		return;
	/* Lanes at max_iter, and the next one, in one pass (two passes
	 * measured 2% slower on the default picture). next_end may be stale
	 * (its lane escaped): then this finds none, and only recomputes it. A
	 * lane settled here may take a pixel, which ends max_iter from now. */
	int64_t end = INT64_MAX;
	for (unsigned L = 0; L < v->ilv * KV_W; L++) {
		if (v->idx[L] == UINT32_MAX)
			continue;
		if (it - v->began[L] == (int64_t)max_iter)
			kv_settle(v, L, max_iter);
		int64_t e = v->idx[L] == UINT32_MAX ? INT64_MAX : v->began[L] + (int64_t)max_iter;
		end = e < end ? e : end;
	}
	v->next_end = end;
}

#if KV_HEAD > 0
/*
 * The head: the first h iterations of every pixel of the span, KV_LANES
 * pixels at a time in lockstep, with no event. Most of a picture's outside
 * escapes within a few iterations, and in the refill loop each such pixel
 * costs an event (the loop's exit, mispredicted, and the settle: about as
 * much as 20 iterations of every lane). Here each iteration stores Tr and
 * Ti (stores, not blends: the load and store ports are idle) and counts,
 * per lane, the iterations since its first escape (a sticky mask, subtracted
 * as -1); a lane that escaped goes on iterating on garbage (growing to
 * infinity, then NaN) until its block ends, all escaped or h iterations
 * done. The count gives a lane's escape iteration, and the stores its Tr
 * and Ti there. Blends of the iteration, Tr and Ti into three more vectors
 * a lane (about 22 operations a vector-iteration, with spills) made the
 * head 11% of AVX2's samples on the default picture; with the stores (12
 * operations and 2 stores) the kernel took 4-5% less at h = 16, and a
 * longer head paid: 7% at 32 (docs/benchmarks.md). A pixel still going is
 * put on todo with its state, and the refill loop resumes it as if it had
 * run those h iterations there (its count and its cycle test are its own:
 * see kv_settle). The same operations in the same order as the loop, so
 * the same bits. At h == max_iter, every pixel ends here.
 * Returns the number put on todo.
 */
static uint32_t kv_head(struct kv_state *v, uint32_t *todo, double *hzr, double *hzi,
			double *htr, double *hti, uint32_t span)
{
	const kv_d ci = (kv_d){0} + v->ci, bail = (kv_d){0} + v->a->bailout;
	const uint32_t h = v->h, max_iter = v->a->max_iter;
	struct kernel_out *out = v->out;
	uint32_t nt = 0;
	kv_l iota;
	for (int j = 0; j < KV_W; j++)
		iota[j] = j;

	for (uint32_t b = 0; b < span; b += KV_LANES) {
		kv_d cr[KV_ILV], zr[KV_ILV], zi[KV_ILV], tr[KV_ILV], ti[KV_ILV];
		kv_d str[KV_HEAD][KV_ILV], sti[KV_HEAD][KV_ILV];
		kv_l done[KV_ILV], cnt[KV_ILV];
		for (int k = 0; k < KV_ILV; k++) {
			/* crs has KV_LANES of padding; lanes past the span are
			 * done from the start. */
			memcpy(&cr[k], &v->crs[b + (uint32_t)k * KV_W], sizeof cr[k]);
			done[k] = iota + (int64_t)(b + (uint32_t)k * KV_W) >= (kv_l){0} + (int64_t)span;
			zr[k] = zi[k] = tr[k] = ti[k] = (kv_d){0};
			cnt[k] = (kv_l){0};
		}
		uint32_t it = 0;
		while (it < h) {
			kv_l all = ~(kv_l){0};
			for (int k = 0; k < KV_ILV; k++) {
				KV_STEP(zr[k], zi[k], tr[k], ti[k], cr[k], ci);
				str[it][k] = tr[k], sti[it][k] = ti[k];
				done[k] |= KV_GT(tr[k] + ti[k], bail);
				cnt[k] -= done[k];
				all &= done[k];
			}
			it++;
			if (KV_BITS(all) == (1u << KV_W) - 1)
				break;
		}
		for (int k = 0; k < KV_ILV; k++) {
			double a_zr[KV_W], a_zi[KV_W], a_tr[KV_W], a_ti[KV_W];
			int64_t a_cnt[KV_W];
			memcpy(a_zr, &zr[k], sizeof a_zr), memcpy(a_zi, &zi[k], sizeof a_zi);
			memcpy(a_tr, &tr[k], sizeof a_tr), memcpy(a_ti, &ti[k], sizeof a_ti);
			memcpy(a_cnt, &cnt[k], sizeof a_cnt);
			for (unsigned j = 0; j < KV_W; j++) {
				uint32_t i = b + (uint32_t)k * KV_W + j;
				if (i >= span)
					break;
				if (a_cnt[j]) {
					uint32_t e = it + 1 - (uint32_t)a_cnt[j];
					out->n[i] = e;
					out->tr[i] = str[e - 1][k][j], out->ti[i] = sti[e - 1][k][j];
					v->executed += e;
				} else if (h == max_iter) {
					out->n[i] = max_iter;
					out->tr[i] = a_tr[j], out->ti[i] = a_ti[j];
					v->executed += max_iter;
				} else {
					todo[nt++] = i;
					hzr[i] = a_zr[j], hzi[i] = a_zi[j];
					htr[i] = a_tr[j], hti[i] = a_ti[j];
				}
			}
		}
	}
	return nt;
}
#endif

/* kv_run1 .. kv_run3: the hot loop on 1 .. 3 vectors (KV_ILV <= 3).
 * KV_NARROW: whether a span's tail goes on with fewer vectors as its lanes
 * idle. With 4 lanes a vector and more it does (Zen 3: AVX2's default
 * picture 2% faster, the generic kernel's 3.4%). With 2 (SSE2, NEON) it
 * does not: SSE2's 3-vector loop spills with 16 registers, and the way out
 * to the narrower loop changed which values it spills: that loop took 6%
 * longer, the kernel 9-14%. */
#ifndef KV_NARROW
#define KV_NARROW (KV_W >= 4)
#endif
#if KV_ILV > 3
#error "kernel_vec.h: KV_ILV above 3 needs a kv_run4"
#endif
#define KVL_NAME kv_run1
#define KVL_ILV 1
#include "render/kernel_vec_loop.h"
#if KV_ILV >= 2
#define KVL_NAME kv_run2
#define KVL_ILV 2
#include "render/kernel_vec_loop.h"
#endif
#if KV_ILV >= 3
#define KVL_NAME kv_run3
#define KVL_ILV 3
#include "render/kernel_vec_loop.h"
#endif

/* Moves the live lanes of v to its first n vectors, in order, and idles
 * the rest of those (Z = NaN): v's loop goes on with n vectors. */
static void kv_compact(struct kv_state *v, unsigned n)
{
	unsigned d = 0;
	for (unsigned L = 0; L < v->ilv * KV_W; L++) {
		if (v->idx[L] == UINT32_MAX)
			continue;
		if (L != d) {
			v->cr[d] = v->cr[L], v->zr[d] = v->zr[L], v->zi[d] = v->zi[L];
			v->tr[d] = v->tr[L], v->ti[d] = v->ti[L];
			v->sr[d] = v->sr[L], v->si[d] = v->si[L];
			v->began[d] = v->began[L], v->idx[d] = v->idx[L];
		}
		d++;
	}
	for (; d < n * KV_W; d++) {
		v->idx[d] = UINT32_MAX;
		v->zr[d] = v->zi[d] = v->tr[d] = v->ti[d] = v->sr[d] = v->si[d] = NAN;
	}
	v->ilv = n;
}

/*
 * A span of more than one pixel: with more than a vector's worth, the head
 * (KV_HEAD) first; then the refill loop on as many vectors as the pixels
 * left fill, at most KV_ILV, and (KV_NARROW) on fewer as the span's tail
 * leaves lanes idle: on the default picture with AVX2, 6% of the span
 * iterations had 4 live lanes of 12 or fewer, and 6% 5 to 8. Returns the
 * lane-iterations computed.
 */
static uint64_t kv_span(const struct kernel_args *a, double ci, uint32_t px0, uint32_t count,
			struct kernel_out *out)
{
	double crs[KERNEL_SPAN_MAX + KV_LANES];
	/* Field by field: zeroing the whole state (its vectors and lane
	 * arrays, 0.8 KB with AVX2) measured 4% of a pixel-per-call render. */
	struct kv_state v;
	v.a = a, v.out = out, v.crs = crs, v.ci = ci;
	v.todo = NULL, v.hzr = v.hzi = v.htr = v.hti = NULL, v.h = 0;
	v.count = count, v.next = 0, v.live = 0;
	v.it = 0, v.saved = 0, v.next_end = INT64_MAX, v.executed = 0;

	for (uint32_t i = 0; i < count; i++)
		crs[i] = kernel_cr(a, px0 + i);
#if KV_HEAD > 0
	double hzr[KERNEL_SPAN_MAX], hzi[KERNEL_SPAN_MAX], htr[KERNEL_SPAN_MAX], hti[KERNEL_SPAN_MAX];
	uint32_t todo[KERNEL_SPAN_MAX];
	if (count > KV_W) {
		for (uint32_t i = count; i < count + KV_LANES; i++)
			crs[i] = 0;
		v.h = a->max_iter < KV_HEAD ? a->max_iter : KV_HEAD;
		v.count = kv_head(&v, todo, hzr, hzi, htr, hti, count);
		if (v.count == 0)
			return v.executed;
		v.todo = todo;
		v.hzr = hzr, v.hzi = hzi, v.htr = htr, v.hti = hti;
	}
#endif
	/* Every lane starts idle and takes its first pixel. */
	unsigned n = (v.count + KV_W - 1) / KV_W;
	v.ilv = n < KV_ILV ? n : KV_ILV;
	for (unsigned L = 0; L < v.ilv * KV_W; L++) {
		v.cr[L] = 0, v.idx[L] = UINT32_MAX;
		kv_settle(&v, L, 0);
	}
	for (;;) {
#if KV_ILV >= 3
		if (v.ilv == 3)
			kv_run3(&v);
#endif
#if KV_ILV >= 2
		if (v.ilv == 2)
			kv_run2(&v);
#endif
		if (v.ilv == 1)
			kv_run1(&v);
		if (!v.live)
			return v.executed;
		kv_compact(&v, (v.live + KV_W - 1) / KV_W);
	}
}

/* A span of one pixel (the px and workers modes render a pixel a job):
 * the refill loop's work for one lane, in scalar code, without its
 * lanes' bookkeeping. Each iteration is the loop's KV_STEP, then its events
 * in its order (escape, then a repeat of the saved state, then max_iter),
 * then its save. The pixel's orbit is a chain of dependent operations
 * whatever holds it, so a vector lane bought nothing; what the vector path
 * costs a pixel besides (the lane's take and settle, the state, the event
 * call) is what this saves. It compares with the saved state after every
 * iteration, where the loop does in half of them: one lane's chain leaves
 * the CPU's ports mostly idle, so the compares cost it no time (the loop's
 * two halves here measured the same, one pixel a call over the default
 * picture and a deep zoom, Zen 3). Returns the lane-iterations computed. */
static uint64_t kv_pixel(const struct kernel_args *a, double ci, double cr,
			 struct kernel_out *out)
{
	const int64_t T = kv_period_max(a->max_iter), max = a->max_iter;
	const double bail = a->bailout;
	double zr = 0, zi = 0, tr = 0, ti = 0, sr = NAN, si = NAN;
	int64_t it = 0, saved = 0, n;

	for (;;) {
		KV_STEP_T(double, zr, zi, tr, ti, cr, ci);
		it++;
		if (tr + ti > bail || it == max) {
			n = it;
			break;
		}
		if (zr == sr && zi == si) {
			/* A cycle of period it - saved: the iterations left to
			 * max_iter modulo the period, as kv_events runs them. */
			int64_t r = (max - it) % (it - saved);
			for (int64_t q = 0; q < r; q++)
				KV_STEP_T(double, zr, zi, tr, ti, cr, ci);
			n = max;
			it += r;
			break;
		}
		if ((it & (T - 1)) == 0)
			sr = zr, si = zi, saved = it;
	}
	out->n[0] = (uint32_t)n;
	out->tr[0] = tr;
	out->ti[0] = ti;
	return (uint64_t)it;
}

#define KV_CAT2(a, b) a##b
#define KV_CAT(a, b) KV_CAT2(a, b)
const unsigned KV_CAT(KV_FN, _shape)[2] = {KV_W, KV_ILV};

void KV_FN(const struct kernel_args *a, uint32_t py, uint32_t px0,
	   uint32_t count, struct kernel_out *out)
{
	/* The loop tests after each iteration, the reference before: the
	 * same when the start (Z = 0) passes. A finite C and bailout keep a
	 * lane's state finite until it escapes, so "greater" never meets a
	 * NaN (see above). Anything else is the reference's. */
	const double ci = kernel_ci(a, py);
	if (a->max_iter == 0 || count == 0 || !(a->bailout >= 0) || !isfinite(a->bailout) ||
	    !isfinite(ci) || !isfinite(kernel_cr(a, px0)) ||
	    !isfinite(kernel_cr(a, px0 + count - 1))) {
		kernel_scalar(a, py, px0, count, out);
		return;
	}
	if (count == 1)
		out->executed = kv_pixel(a, ci, kernel_cr(a, px0), out);
	else
		out->executed = kv_span(a, ci, px0, count, out);
}
