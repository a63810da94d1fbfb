/*
 * roofline.h - the divergence-free loops of roofline.c, one build per
 * instruction set. Owns nothing at run time; for bench_roofline only.
 * Thread-safety: the functions are pure; call them from any thread.
 */
#ifndef MW_ROOFLINE_H
#define MW_ROOFLINE_H

#include <stdint.h>

enum rl_seq { RL_BLOCK, RL_MUL2, RL_ADD2, RL_ADD2_ZR, RL_MUL2_ZR, RL_PLAIN, RL_HALF, RL_NSEQ };
#define RL_ILV_MAX 8
#define RL_NILV 7 /* interleaves measured: 1 2 3 4 5 6 8 */
static const int rl_ilvs[RL_NILV] = {1, 2, 3, 4, 5, 6, 8};
static const char *const rl_seq_names[RL_NSEQ] = {"block", "mul2", "add2", "add2_zr",
						  "mul2_zr", "plain", "half"};

/* Runs 'iters' iterations of every lane of 'ilv' vectors; returns a value
 * that depends on the results, so the loop cannot be dropped. */
typedef uint64_t rl_fn(uint64_t iters);

struct rl_isa {
	int lanes; /* doubles a vector */
	rl_fn *const (*fn)[RL_NSEQ][RL_NILV];
};

extern const struct rl_isa rl_isa_scalar, rl_isa_sse2, rl_isa_avx2, rl_isa_avx512,
	rl_isa_neon, rl_isa_generic;

#endif
