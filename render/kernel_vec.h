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

/* kv_block: KV_ILV vectors at a time, for spans; kv_block1: one vector,
 * for a span that one vector holds (the px and workers modes render a
 * pixel a job, and a full block would compute KV_ILV - 1 idle vectors). */
#define KVB_NAME kv_block
#define KVB_ILV KV_ILV
#include "render/kernel_vec_block.h"
#if KV_ILV > 1
#define KVB_NAME kv_block1
#define KVB_ILV 1
#include "render/kernel_vec_block.h"
#else
#define kv_block1 kv_block
#endif

void KV_FN(const struct kernel_args *a, uint32_t py, uint32_t px0,
	   uint32_t count, struct kernel_out *out)
{
	const double ci = kernel_ci(a, py);

	if (count <= KV_W) {
		kv_block1(a, ci, px0, count, out->n, out->tr, out->ti);
		return;
	}
	for (uint32_t k = 0; k < count; k += KV_BLOCK) {
		uint32_t m = count - k < KV_BLOCK ? count - k : KV_BLOCK;
		kv_block(a, ci, px0 + k, m, out->n + k, out->tr + k, out->ti + k);
	}
}
