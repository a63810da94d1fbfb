/*
 * kernel_avx512.c - the kernel on AVX-512F/DQ (8 doubles a vector), with
 * lane refill. Built with -mavx512f -mavx512dq.
 *
 * The arithmetic and the proof of bit-exactness are kernel_vec.h's (same
 * operations, same order, cycle detection as explained there), and so is
 * the scheduling, lane refill: each lane takes the next pixel of the span
 * the iteration after its own pixel finishes. What differs is the masks,
 * which live in k registers. kernel_vec.h instantiated at 64 bytes measured
 * 10% slower than this on an AMD Zen 5 (`make bench` of both, same run).
 *
 * Per iteration and vector: 4 multiplies, 4 adds, 1 integer add and 4
 * compares, none of them masked on the loop-carried chain (mul, sub, add:
 * the active mask never delays the next iteration). Finished lanes are rare
 * events (one per pixel; 8% of loop trips on the default picture) handled
 * off the hot path with scalar stores (a scatter is microcoded on Zen 4) and
 * an expand of the next pixel indices; there, a lane whose state repeats a
 * saved one jumps ahead as in kernel_vec.h.
 *
 * Saves are global (all lanes at once, every T iterations of the span; T is
 * 16 up to max_iter 1024 and grows with it, a fixed-interval variant of
 * kernel.h's schedule, since lanes start at different times): a refilled
 * lane's saved state is NaN until the next save, so it is only ever
 * compared with its own past. Periods longer than T are not detected; those
 * pixels run all max_iter iterations, exactly, without the shortcut.
 */
#include <immintrin.h>
#include <math.h>

#include "render/kernel.h"

#define K5_W 8
#define K5_ILV 3 /* 8 state vectors each + 5 constants: 29 of 32 registers */

const unsigned kernel_avx512_shape[2] = {K5_W, K5_ILV};

struct k5 {
	const struct kernel_args *a;
	struct kernel_out *out;
	uint32_t px0, count, next; /* next: first pixel of the span not yet taken */
	__m512d cr[K5_ILV], zr[K5_ILV], zi[K5_ILV], tr[K5_ILV], ti[K5_ILV];
	__m512d sr[K5_ILV], si[K5_ILV];
	__m512i cnt[K5_ILV], idx[K5_ILV];
	__mmask8 act[K5_ILV], jmp[K5_ILV];
	uint32_t it;                /* the span's iteration, for the event path */
	uint32_t began[K5_ILV * K5_W]; /* the iteration each lane's pixel began at */
	uint64_t executed;          /* lane-iterations of finished pixels */
};

/* Writes the results of lanes 'fin' of vector k. */
static void k5_write(struct k5 *v, int k, __mmask8 fin)
{
	struct kernel_out *out = v->out;

	/* Scalar stores: a scatter costs more on some AVX-512 machines
	 * (microcoded on AMD Zen 4), and most events finish one lane. */
	double tr[K5_W], ti[K5_W];
	uint64_t idx[K5_W], cnt[K5_W];
	_mm512_storeu_pd(tr, v->tr[k]);
	_mm512_storeu_pd(ti, v->ti[k]);
	_mm512_storeu_si512(idx, v->idx[k]);
	_mm512_storeu_si512(cnt, v->cnt[k]);
	for (unsigned m = fin; m; m &= m - 1) {
		int j = __builtin_ctz(m);
		v->executed += v->it - v->began[k * K5_W + j];
		out->n[idx[j]] = (uint32_t)cnt[j];
		out->tr[idx[j]] = tr[j];
		out->ti[idx[j]] = ti[j];
	}
}

/* Gives lanes 'fin' of vector k the next pixels of the span, from a fresh
 * start; lanes left without one go idle. */
static void k5_take(struct k5 *v, int k, __mmask8 fin)
{
	const __m512i iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
	__m512i nidx = _mm512_maskz_expand_epi64(
		fin, _mm512_add_epi64(iota, _mm512_set1_epi64(v->next)));
	__mmask8 got = _mm512_mask_cmplt_epu64_mask(fin, nidx, _mm512_set1_epi64(v->count));
	v->next += (uint32_t)__builtin_popcount(got);
	for (unsigned m = got; m; m &= m - 1)
		v->began[k * K5_W + (unsigned)__builtin_ctz(m)] = v->it;

	__m512d px = _mm512_cvtepu64_pd(_mm512_add_epi64(nidx, _mm512_set1_epi64(v->px0)));
	__m512d cr = _mm512_add_pd(_mm512_div_pd(_mm512_mul_pd(_mm512_set1_pd(v->a->s), px),
						 _mm512_set1_pd(1000.0)),
				   _mm512_set1_pd(v->a->x0));
	const __m512d zero = _mm512_setzero_pd(), nan = _mm512_set1_pd(NAN);
	v->idx[k] = _mm512_mask_mov_epi64(v->idx[k], got, nidx);
	v->cr[k] = _mm512_mask_mov_pd(v->cr[k], got, cr);
	v->zr[k] = _mm512_mask_mov_pd(v->zr[k], got, zero);
	v->zi[k] = _mm512_mask_mov_pd(v->zi[k], got, zero);
	v->tr[k] = _mm512_mask_mov_pd(v->tr[k], got, zero);
	v->ti[k] = _mm512_mask_mov_pd(v->ti[k], got, zero);
	v->sr[k] = _mm512_mask_mov_pd(v->sr[k], got, nan);
	v->si[k] = _mm512_mask_mov_pd(v->si[k], got, nan);
	v->cnt[k] = _mm512_mask_mov_epi64(v->cnt[k], got, _mm512_setzero_si512());
	v->act[k] = (__mmask8)((v->act[k] & ~fin) | got);
	v->jmp[k] &= (__mmask8)~fin;
}

/* Lanes 'cyc' of vector k repeat the state saved at iteration 'saved' of
 * the span, 'period' iterations ago: each jumps to max_iter - r, r =
 * (max_iter - count) mod period, and runs the r that remain; returns the
 * lanes with r = 0, which are finished. */
static __mmask8 k5_jump(struct k5 *v, int k, __mmask8 cyc, uint32_t period)
{
	uint64_t c[K5_W];
	__mmask8 done = 0;

	_mm512_storeu_si512(c, v->cnt[k]);
	for (int j = 0; j < K5_W; j++) {
		if (!(cyc >> j & 1))
			continue;
		uint64_t r = (v->a->max_iter - c[j]) % period;
		c[j] = v->a->max_iter - r;
		if (r == 0)
			done |= (__mmask8)(1u << j);
	}
	v->cnt[k] = _mm512_loadu_si512(c);
	v->jmp[k] |= cyc;
	return done;
}

void kernel_avx512(const struct kernel_args *a, uint32_t py, uint32_t px0,
		   uint32_t count, struct kernel_out *out)
{
	/* The loop tests after each iteration, the reference before: the
	 * same only when the start (Z = 0) passes the test. */
	if (a->max_iter == 0 || count == 0 || !(a->bailout >= 0)) {
		kernel_scalar(a, py, px0, count, out);
		return;
	}
	struct k5 v = {.a = a, .out = out, .px0 = px0, .count = count};
	const __m512d two = _mm512_set1_pd(2.0);
	const __m512d ci = _mm512_set1_pd(kernel_ci(a, py));
	const __m512d bail = _mm512_set1_pd(a->bailout);
	const __m512i one = _mm512_set1_epi64(1);
	const __m512i nmax = _mm512_set1_epi64(a->max_iter);
	/* Periods up to T are found within 2T iterations; longer ones run
	 * to max_iter, exactly, just without the shortcut. */
	uint32_t T = KERNEL_FIRST_SAVE;
	while ((uint64_t)T * 64 < a->max_iter)
		T *= 2;

	for (int k = 0; k < K5_ILV; k++) {
		v.idx[k] = _mm512_setzero_si512();
		v.cnt[k] = _mm512_setzero_si512();
		v.cr[k] = v.zr[k] = v.zi[k] = v.tr[k] = v.ti[k] = _mm512_setzero_pd();
		v.sr[k] = v.si[k] = _mm512_setzero_pd();
		v.act[k] = v.jmp[k] = 0;
		k5_take(&v, k, 0xff);
	}

	/* The hot loop works on locals, which the compiler keeps in registers
	 * (8 vectors per interleaved vector, 5 constants: 29 of 32 at ILV 3);
	 * the event path gets them through 'v' and hands them back. */
	__m512d cr[K5_ILV], zr[K5_ILV], zi[K5_ILV], tr[K5_ILV], ti[K5_ILV];
	__m512d sr[K5_ILV], si[K5_ILV];
	__m512i cnt[K5_ILV];
	__mmask8 act[K5_ILV], jmp[K5_ILV];
#define K5_LOAD(k) (cr[k] = v.cr[k], zr[k] = v.zr[k], zi[k] = v.zi[k], tr[k] = v.tr[k], \
		    ti[k] = v.ti[k], sr[k] = v.sr[k], si[k] = v.si[k], cnt[k] = v.cnt[k], \
		    act[k] = v.act[k], jmp[k] = v.jmp[k])
#define K5_STORE(k) (v.cr[k] = cr[k], v.zr[k] = zr[k], v.zi[k] = zi[k], v.tr[k] = tr[k], \
		     v.ti[k] = ti[k], v.sr[k] = sr[k], v.si[k] = si[k], v.cnt[k] = cnt[k], \
		     v.act[k] = act[k], v.jmp[k] = jmp[k])
	/* Constant indices only: one loop over k with a runtime index in the
	 * event path would pin every array to memory, and the hot loop would
	 * store all of them each iteration (measured: 3x slower). */
#if K5_ILV == 2
#define K5_EACH(X) X(0) X(1)
#elif K5_ILV == 3
#define K5_EACH(X) X(0) X(1) X(2)
#elif K5_ILV == 4
#define K5_EACH(X) X(0) X(1) X(2) X(3)
#else
#error "K5_EACH must list every interleaved vector: extend it for this K5_ILV"
#endif
#define K5_LOAD1(k) K5_LOAD(k);
#define K5_STORE1(k) K5_STORE(k);
	/* A vector's events: settle cycles (the save that matched is the one
	 * before this iteration's, as saves come after the compares), then
	 * write finished lanes and refill them. */
#define K5_EVENT(k)                                                                   \
	if (ev[k]) {                                                                  \
		__mmask8 fin = (__mmask8)(ev[k] & ~cyc[k]);                           \
		if (cyc[k]) {                                                         \
			uint32_t from = (it & (T - 1)) == 0 ? it - T : saved;         \
			fin |= k5_jump(&v, k, cyc[k], it - from);                     \
		}                                                                     \
		if (fin) {                                                            \
			k5_write(&v, k, fin);                                         \
			k5_take(&v, k, fin);                                          \
		}                                                                     \
	}                                                                             \
	live |= v.act[k];
	K5_EACH(K5_LOAD1)

	uint32_t it = 0, saved = 0;
	for (;;) {
		__mmask8 ev[K5_ILV], cyc[K5_ILV], any = 0;
		for (int k = 0; k < K5_ILV; k++) {
			__m512d t = _mm512_mul_pd(_mm512_mul_pd(two, zr[k]), zi[k]);
			__m512d d = _mm512_sub_pd(tr[k], ti[k]);
			zi[k] = _mm512_add_pd(t, ci);
			zr[k] = _mm512_add_pd(d, cr[k]);
			tr[k] = _mm512_mul_pd(zr[k], zr[k]);
			ti[k] = _mm512_mul_pd(zi[k], zi[k]);
			cnt[k] = _mm512_add_epi64(cnt[k], one);
			__mmask8 on = _mm512_mask_cmp_pd_mask(
				act[k], _mm512_add_pd(tr[k], ti[k]), bail, _CMP_LE_OQ);
			on = _mm512_mask_cmplt_epu64_mask(on, cnt[k], nmax);
			__mmask8 c = _mm512_mask_cmp_pd_mask((__mmask8)(on & ~jmp[k]),
							     zr[k], sr[k], _CMP_EQ_OQ);
			cyc[k] = _mm512_mask_cmp_pd_mask(c, zi[k], si[k], _CMP_EQ_OQ);
			/* Events: lanes that stopped, and lanes that found a cycle. */
			ev[k] = (__mmask8)((act[k] & ~on) | cyc[k]);
			act[k] = on;
			any |= ev[k];
		}
		it++;
		if ((it & (T - 1)) == 0) {
			saved = it;
			for (int k = 0; k < K5_ILV; k++) {
				sr[k] = zr[k];
				si[k] = zi[k];
			}
		}
		if (!any)
			continue;
		__mmask8 live = 0;
		v.it = it;
		K5_EACH(K5_STORE1)
		K5_EACH(K5_EVENT)
		K5_EACH(K5_LOAD1)
		if (!live)
			break;
	}
	out->executed = v.executed;
#undef K5_LOAD
#undef K5_STORE
#undef K5_LOAD1
#undef K5_STORE1
#undef K5_EACH
#undef K5_EVENT
}
