/*
 * kernel_vec.h - the SIMD kernel, written once with GCC/Clang vector
 * extensions and instantiated per instruction set by a two-line file
 * (kernel_sse2.c, kernel_avx2.c, ...). Include it after defining:
 *   KV_BYTES  vector size in bytes (16, 32 or 64)
 *   KV_ILV    independent vectors interleaved per block, to hide the
 *             ~9-cycle dependency chain of one iteration (see README)
 *   KV_FN     name of the kernel_fn to define
 *   KV_ANY(m) optional: nonzero when any 64-bit lane of mask m is set
 *
 * How it stays bit-identical to kernel_scalar:
 *  - Same operations in the same order, no contraction (-ffp-contract=off).
 *  - A lane that escapes is frozen: its Zr, Zi keep their values (blend under
 *    the active mask), so Tr, Ti and the count stop where the scalar loop
 *    stops. A block leaves its loop as soon as no lane is active.
 *  - Cycle detection (Brent's teleporting tortoise, on the schedule of
 *    kernel_next_save): the state (Zr, Zi) after iteration j is saved at
 *    each save point, and each later state is compared with it. Tr and Ti
 *    are functions of Zr and Zi, so equal states have equal futures: if
 *    s_k == s_j (j < k) and every state up to s_k passed the bailout test,
 *    the orbit cycles with period p = k - j (or a divisor) and never
 *    escapes, and the state after max_iter iterations is s_{k + r},
 *    r = (max_iter - k) mod p. The lane leaves the main loop at k and runs
 *    r more iterations in a second, short loop. Equality is '==': two
 *    states that differ only in the sign of a zero produce identical states
 *    one iteration later (the sign is lost in "+ Ci" and in squaring), and
 *    the outputs Tr, Ti are squares, so this cannot change a bit of the
 *    result. j is the last save point before k, a function of k alone
 *    (kernel_saved_before), so nothing per lane is stored for it.
 */
#include <math.h>
#include <stdint.h>

#include "render/kernel.h"

typedef double kv_d __attribute__((vector_size(KV_BYTES)));
typedef int64_t kv_l __attribute__((vector_size(KV_BYTES)));

#define KV_W (KV_BYTES / 8)
#define KV_BLOCK (KV_W * KV_ILV)

#ifndef KV_ANY
static inline int kv_any_generic(kv_l m)
{
	int64_t acc = 0;
	for (int j = 0; j < KV_W; j++)
		acc |= m[j];
	return acc != 0;
}
#define KV_ANY(m) kv_any_generic(m)
#endif

/* m ? a : b, lane by lane (m is 0 or all ones). */
static inline kv_d kv_sel(kv_l m, kv_d a, kv_d b)
{
	return (kv_d)(((kv_l)a & m) | ((kv_l)b & ~m));
}

static void kv_block(const struct kernel_args *a, double ci_s, uint32_t px0,
		     uint32_t count, uint32_t *n_out, double *tr_out,
		     double *ti_out)
{
	const uint32_t max_iter = a->max_iter;
	const kv_d ci = (kv_d){0} + ci_s;
	const kv_d bail = (kv_d){0} + a->bailout;
	kv_d cr[KV_ILV], zr[KV_ILV], zi[KV_ILV], tr[KV_ILV], ti[KV_ILV];
	kv_d sr[KV_ILV], si[KV_ILV];
	kv_l act[KV_ILV], cnt[KV_ILV], cyc[KV_ILV];

	for (int k = 0; k < KV_ILV; k++) {
		cr[k] = (kv_d){0};
		act[k] = (kv_l){0};
		for (int j = 0; j < KV_W; j++) {
			uint32_t lane = (uint32_t)(k * KV_W + j);
			int live = lane < count && max_iter > 0;
			cr[k][j] = live ? (a->s * (double)(px0 + lane)) / 1000 + a->x0 : 0.0;
			act[k][j] = live ? -1 : 0;
		}
		zr[k] = zi[k] = tr[k] = ti[k] = (kv_d){0};
		sr[k] = si[k] = (kv_d){0} + NAN;
		cnt[k] = cyc[k] = (kv_l){0};
	}

	/* Main loop: every active lane has run exactly 'it' iterations. */
	uint32_t next_save = KERNEL_FIRST_SAVE;
	for (uint32_t it = 0; it < max_iter;) {
		kv_l any = {0};
		for (int k = 0; k < KV_ILV; k++) {
			kv_d nzi = 2.0 * zr[k] * zi[k] + ci;
			kv_d nzr = tr[k] - ti[k] + cr[k];
			zi[k] = kv_sel(act[k], nzi, zi[k]);
			zr[k] = kv_sel(act[k], nzr, zr[k]);
			tr[k] = zr[k] * zr[k];
			ti[k] = zi[k] * zi[k];
			cnt[k] -= act[k];
			act[k] &= (tr[k] + ti[k] <= bail);
			kv_l same = act[k] & (zr[k] == sr[k]) & (zi[k] == si[k]);
			cyc[k] |= same;
			act[k] &= ~same;
			any |= act[k];
		}
		it++;
		if (it == next_save) {
			next_save = kernel_next_save(it);
			for (int k = 0; k < KV_ILV; k++) {
				sr[k] = zr[k];
				si[k] = zi[k];
			}
		}
		if (!KV_ANY(any))
			break;
	}

	/* Lanes that found a cycle: r more iterations, then they hold s_max_iter. */
	kv_l rem[KV_ILV];
	int64_t rmax = 0;
	for (int k = 0; k < KV_ILV; k++) {
		for (int j = 0; j < KV_W; j++) {
			rem[k][j] = 0;
			if (!cyc[k][j])
				continue;
			uint32_t at = (uint32_t)cnt[k][j];
			uint32_t p = at - kernel_saved_before(at);
			rem[k][j] = (max_iter - at) % p;
			cnt[k][j] = max_iter;
			if (rem[k][j] > rmax)
				rmax = rem[k][j];
		}
	}
	for (int64_t it = 0; it < rmax; it++) {
		for (int k = 0; k < KV_ILV; k++) {
			kv_l on = rem[k] > it;
			kv_d nzi = 2.0 * zr[k] * zi[k] + ci;
			kv_d nzr = tr[k] - ti[k] + cr[k];
			zi[k] = kv_sel(on, nzi, zi[k]);
			zr[k] = kv_sel(on, nzr, zr[k]);
			tr[k] = zr[k] * zr[k];
			ti[k] = zi[k] * zi[k];
		}
	}

	for (uint32_t lane = 0; lane < count; lane++) {
		n_out[lane] = (uint32_t)cnt[lane / KV_W][lane % KV_W];
		tr_out[lane] = tr[lane / KV_W][lane % KV_W];
		ti_out[lane] = ti[lane / KV_W][lane % KV_W];
	}
}

void KV_FN(const struct kernel_args *a, uint32_t py, uint32_t px0,
	   uint32_t count, struct kernel_out *out)
{
	const double ci = kernel_ci(a, py);

	for (uint32_t k = 0; k < count; k += KV_BLOCK) {
		uint32_t m = count - k < KV_BLOCK ? count - k : KV_BLOCK;
		kv_block(a, ci, px0 + k, m, out->n + k, out->tr + k, out->ti + k);
	}
}
