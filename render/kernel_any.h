/*
 * kernel_any.h - KV_ANY(m): nonzero when any 64-bit lane of the vector
 * mask m (0 or all ones per lane, KV_BYTES wide) is set; KV_BITS(m): the
 * lanes set, lane j as bit j. One instruction each where the target has
 * one. KV_GT(a, b), KV_EQ(a, b): a > b and a == b lane by lane, as such a
 * mask (false where either is NaN, as the operators are). Included by
 * kernel_vec.h and by the roofline loops (bench/roofline.c), so both test
 * the same way. Define KV_BYTES and KV_W and the mask type kv_l (KV_BYTES
 * of int64_t) first; a target without a match gets the portable OR.
 */
#if defined(__AVX512F__) && KV_BYTES == 64
#include <immintrin.h>
#define KV_ANY(m) (_mm512_test_epi64_mask((__m512i)(m), (__m512i)(m)) != 0)
#define KV_BITS(m) ((unsigned)_mm512_test_epi64_mask((__m512i)(m), (__m512i)(m)))
#elif defined(__AVX__) && KV_BYTES == 32
#include <immintrin.h>
#define KV_ANY(m) (_mm256_movemask_pd((__m256d)(m)) != 0)
#define KV_BITS(m) ((unsigned)_mm256_movemask_pd((__m256d)(m)))
#elif defined(__SSE2__) && KV_BYTES == 16
#include <emmintrin.h>
#define KV_ANY(m) (_mm_movemask_pd((__m128d)(m)) != 0)
#define KV_BITS(m) ((unsigned)_mm_movemask_pd((__m128d)(m)))
#elif defined(__aarch64__) && KV_BYTES == 16
#include <arm_neon.h>
#define KV_ANY(m) (vmaxvq_u32(vreinterpretq_u32_s64((int64x2_t)(m))) != 0)
#define KV_BITS(m) ((unsigned)((m)[0] & 1) | (unsigned)((m)[1] & 2))
#else
/* Portable: the OR of the lanes, and each lane's low bit. */
#define KV_ANY(m) kv_any_generic(m)
#define KV_BITS(m) kv_bits_generic(m)

static inline int kv_any_generic(kv_l m)
{
	int64_t acc = 0;
	for (int j = 0; j < KV_W; j++)
		acc |= m[j];
	return acc != 0;
}

static inline unsigned kv_bits_generic(kv_l m)
{
	unsigned b = 0;
	for (int j = 0; j < KV_W; j++)
		b |= (unsigned)(m[j] & 1) << j;
	return b;
}
#endif

/* With SSE2 alone, GCC 12 turns a compare of the vector extension into a
 * boolean vector, and rebuilds each 64-bit lane from it with scalar code
 * before a movmskpd (10 instructions more a trip of the hot loop); the
 * intrinsics give the compare instruction's mask as it is. */
#if defined(__SSE2__) && !defined(__AVX__) && KV_BYTES == 16
#include <emmintrin.h>
#define KV_GT(a, b) ((kv_l)_mm_cmpgt_pd((__m128d)(a), (__m128d)(b)))
#define KV_EQ(a, b) ((kv_l)_mm_cmpeq_pd((__m128d)(a), (__m128d)(b)))
#else
#define KV_GT(a, b) ((a) > (b))
#define KV_EQ(a, b) ((a) == (b))
#endif
