/*
 * roofline.c - the roofline of the escape-time loop: the same operations as
 * a kernel's inner loop, with no divergence (no lane escapes, no state
 * repeats), so the only limits are the CPU's ports and latencies. Compiled
 * once per instruction set by the Makefile (-DRL_NAME=avx2 -DRL_BYTES=32
 * and that ISA's flags, as render/kernel_*.c are); bench_roofline.c calls
 * every build of it that this CPU runs, in the same run as the kernels.
 *
 * Each sequence gives the same bits (see render/kernel.h); they differ in
 * how many instructions of which kind an iteration takes:
 *   block     the block kernel's body (kernel_vec_block.h before lane
 *             refill): 2*Zr*Zi as two multiplies, Zr and Zi blended under
 *             the active mask, a 64-bit counter, escape and cycle compares
 *   mul2      what a refilling lane needs: 2*Zr*Zi as two multiplies, no
 *             blend, no counter, escape compare, Zr and Zi cycle compares
 *   add2      mul2 with 2*Zr as Zr + Zr (an add instead of a multiply)
 *   add2_zr   add2 comparing only Zr with the saved state (Zi is checked
 *             when Zr matches, off the hot loop)
 *   mul2_zr   mul2 comparing only Zr
 *   plain     the scalar kernel's: two multiplies, the escape compare only
 *   half      the SIMD kernels' (render/kernel_vec_loop.h): add2, with the
 *             compare with the saved state in 9 of each 16 iterations (the
 *             second half of each save window) and the escape compare alone
 *             in the other 7, each run as a loop of its own
 * Interleaving 1..RL_ILV_MAX independent vectors hides the ~10-cycle chain.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/roofline.h"

#ifndef RL_NAME
#define RL_NAME scalar
#define RL_BYTES 8
#endif

typedef double rl_d __attribute__((vector_size(RL_BYTES)));
typedef int64_t rl_l __attribute__((vector_size(RL_BYTES)));
#define RL_W (RL_BYTES / 8)

/* The kernels' own "any lane set" test and compares. */
#define KV_BYTES RL_BYTES
#define KV_W RL_W
typedef rl_l kv_l;
#include "render/kernel_any.h"

#define RL_CAT2(a, b) a##b
#define RL_CAT(a, b) RL_CAT2(a, b)

static inline __attribute__((always_inline)) uint64_t rl_body(int seq, int ilv, uint64_t iters)
{
	rl_d cr[RL_ILV_MAX], zr[RL_ILV_MAX], zi[RL_ILV_MAX], tr[RL_ILV_MAX], ti[RL_ILV_MAX];
	rl_d sr[RL_ILV_MAX], si[RL_ILV_MAX];
	rl_l act[RL_ILV_MAX], cnt[RL_ILV_MAX];
	/* -0.1 + 0.1i and neighbours: inside the main cardioid, never escape;
	 * the saved state is NaN, so no compare is ever true. */
	const rl_d ci = (rl_d){0} + 0.1, bail = (rl_d){0} + 4.0;
	for (int k = 0; k < ilv; k++) {
		for (int j = 0; j < RL_W; j++)
			cr[k][j] = -0.1 - 0.001 * (k * RL_W + j);
		zr[k] = zi[k] = tr[k] = ti[k] = (rl_d){0};
		sr[k] = si[k] = (rl_d){0} + NAN;
		act[k] = (rl_l){0} - 1;
		cnt[k] = (rl_l){0};
	}
	uint64_t events = 0;
	for (uint64_t it = 0; it < iters;) {
		/* A run of iterations with the same tests: all of them but in
		 * RL_HALF, where 7 of each 16 skip the compare with the saved
		 * state (cyc false). */
		const uint64_t w = it & 15;
		const bool cyc = seq != RL_HALF || w >= 7;
		uint64_t end = seq != RL_HALF ? iters : it + (w < 7 ? 7 : 16) - w;
		end = end < iters ? end : iters;
		for (; it < end; it++) {
			rl_l any = {0};
			for (int k = 0; k < ilv; k++) {
				rl_d t = seq == RL_ADD2 || seq == RL_ADD2_ZR || seq == RL_HALF
						 ? (zr[k] + zr[k]) * zi[k]
						 : 2.0 * zr[k] * zi[k];
				rl_d nzi = t + ci, nzr = tr[k] - ti[k] + cr[k];
				if (seq == RL_BLOCK) {
					zi[k] = (rl_d)(((rl_l)nzi & act[k]) | ((rl_l)zi[k] & ~act[k]));
					zr[k] = (rl_d)(((rl_l)nzr & act[k]) | ((rl_l)zr[k] & ~act[k]));
				} else {
					zi[k] = nzi;
					zr[k] = nzr;
				}
				tr[k] = zr[k] * zr[k];
				ti[k] = zi[k] * zi[k];
				if (seq == RL_BLOCK) {
					cnt[k] -= act[k];
					act[k] &= (tr[k] + ti[k] <= bail);
					rl_l same = act[k] & KV_EQ(zr[k], sr[k]) & KV_EQ(zi[k], si[k]);
					act[k] &= ~same;
					any |= act[k];
				} else {
					/* The kernels' tests, as kernel_vec_loop.h writes them. */
					rl_l ev = KV_GT(tr[k] + ti[k], bail) | KV_EQ(zr[k], sr[k]);
					if (seq == RL_PLAIN || !cyc)
						ev = KV_GT(tr[k] + ti[k], bail);
					else if (seq == RL_MUL2 || seq == RL_ADD2 || seq == RL_HALF)
						ev = KV_GT(tr[k] + ti[k], bail) |
						     (KV_EQ(zr[k], sr[k]) & KV_EQ(zi[k], si[k]));
					any |= ev;
				}
			}
			/* The kernels branch here; in the block loop it is "any lane
			 * still active" (always true), in the others "any event". */
			if (seq == RL_BLOCK ? !KV_ANY(any) : KV_ANY(any))
				events++;
		}
	}
	/* Keep the results live. */
	double sum = 0;
	for (int k = 0; k < ilv; k++)
		for (int j = 0; j < RL_W; j++)
			sum += zr[k][j] + zi[k][j] + (double)cnt[k][j];
	return events + (sum != sum);
}

/* One specialised function per (sequence, interleave): -O3 unrolls the
 * inner loop and keeps every vector in a register where they fit. */
#define RL_ROW(seq)                                                       \
	{                                                                 \
		rl_##seq##_1, rl_##seq##_2, rl_##seq##_3, rl_##seq##_4,   \
			rl_##seq##_5, rl_##seq##_6, rl_##seq##_8          \
	}
#define RL_SEQ(seq, SEQ)                                                                   \
	static uint64_t rl_##seq##_1(uint64_t n) { return rl_body(SEQ, 1, n); }            \
	static uint64_t rl_##seq##_2(uint64_t n) { return rl_body(SEQ, 2, n); }            \
	static uint64_t rl_##seq##_3(uint64_t n) { return rl_body(SEQ, 3, n); }            \
	static uint64_t rl_##seq##_4(uint64_t n) { return rl_body(SEQ, 4, n); }            \
	static uint64_t rl_##seq##_5(uint64_t n) { return rl_body(SEQ, 5, n); }            \
	static uint64_t rl_##seq##_6(uint64_t n) { return rl_body(SEQ, 6, n); }            \
	static uint64_t rl_##seq##_8(uint64_t n) { return rl_body(SEQ, 8, n); }
RL_SEQ(block, RL_BLOCK)
RL_SEQ(mul2, RL_MUL2)
RL_SEQ(add2, RL_ADD2)
RL_SEQ(add2_zr, RL_ADD2_ZR)
RL_SEQ(mul2_zr, RL_MUL2_ZR)
RL_SEQ(plain, RL_PLAIN)
RL_SEQ(half, RL_HALF)

static rl_fn *const rl_table[RL_NSEQ][RL_NILV] = {
	[RL_BLOCK] = RL_ROW(block), [RL_MUL2] = RL_ROW(mul2), [RL_ADD2] = RL_ROW(add2),
	[RL_ADD2_ZR] = RL_ROW(add2_zr), [RL_MUL2_ZR] = RL_ROW(mul2_zr), [RL_PLAIN] = RL_ROW(plain),
	[RL_HALF] = RL_ROW(half),
};

const struct rl_isa RL_CAT(rl_isa_, RL_NAME) = {
	.lanes = RL_W,
	.fn = &rl_table,
};
