/*
 * kernel.h - the escape-time kernel contract.
 *
 * Owns: the signature every kernel implements, the table of kernels this
 * build contains, and the run-time choice among them (kernel_dispatch.c).
 * One file per backend (kernel_scalar.c is the reference; kernel_sse2.c,
 * kernel_avx2.c, kernel_avx512.c, kernel_neon.c, kernel_generic.c are SIMD
 * instantiations of kernel_vec.h); a new kernel is one new file and one line
 * in the table.
 *
 * The picture, for pixel (px, py), in IEEE double and in exactly this order
 * (the Go workshop's formula; -ffp-contract=off keeps it un-fused):
 *     Cr = (s * px) / 1000 + x0        Ci = (s * py) / 1000 + y0
 *     Zr = Zi = Tr = Ti = 0
 *     for i in 0 .. max_iter-1, while Tr + Ti <= bailout:
 *         Zi = (2 * Zr) * Zi + Ci;  Zr = (Tr - Ti) + Cr;  Tr = Zr * Zr;  Ti = Zi * Zi
 * Every kernel returns, per pixel, the final i, Tr and Ti of that loop, bit
 * for bit the same as kernel_scalar does. SIMD kernels may skip iterations
 * only where the result provably does not change (Brent cycle detection,
 * see kernel_vec.h).
 *
 * Thread-safety: kernels are pure functions of their arguments; call them
 * from any thread. kernel_find/kernel_best read a table that is constant
 * after the first call (initialisation is idempotent and race-free).
 */
#ifndef MW_KERNEL_H
#define MW_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most pixels one kernel call computes; callers split longer spans. */
#define KERNEL_SPAN_MAX 512

struct kernel_args {
	double x0, y0;     /* the complex point of pixel (0, 0) */
	double s;          /* pixel step, in thousandths: Cr = (s * px) / 1000 + x0 */
	double bailout;    /* the loop runs while Tr + Ti <= bailout (4.0: the workshop's) */
	uint32_t max_iter; /* the loop runs at most this many times */
};

/* Result of one span: pixel k of the span is px0 + k. */
struct kernel_out {
	uint32_t n[KERNEL_SPAN_MAX];  /* iterations run (max_iter: did not escape) */
	double tr[KERNEL_SPAN_MAX];   /* final Tr = Zr * Zr */
	double ti[KERNEL_SPAN_MAX];   /* final Ti = Zi * Zi */
	/* Lane-iterations the kernel computed for these pixels: the sum of n
	 * less what cycle detection skipped (for the roofline benchmark). */
	uint64_t executed;
};

/* Ci of row py, exactly as every kernel computes it (render.c's mirrored
 * rows depend on computing the same bits). */
static inline double kernel_ci(const struct kernel_args *a, uint32_t py)
{
	return (a->s * (double)py) / 1000 + a->y0;
}

/* Cr of column px, likewise. */
static inline double kernel_cr(const struct kernel_args *a, uint32_t px)
{
	return (a->s * (double)px) / 1000 + a->x0;
}

/* Computes pixels px0 .. px0 + count - 1 of row py, count <= KERNEL_SPAN_MAX. */
typedef void kernel_fn(const struct kernel_args *a, uint32_t py, uint32_t px0,
		       uint32_t count, struct kernel_out *out);

/*
 * supported() is bool, not int, on purpose: the x86 probes come from
 * __builtin_cpu_supports, which returns the raw feature bit (1024 for AVX2
 * with GCC 12), and a caller that compared an int with 1 (Criterion's
 * cr_assert(x) does: it tests x == 1) saw "unsupported" on every CPU whose
 * best kernel was avx2. Returning bool converts any nonzero bit to true at
 * the one place it is produced.
 */
struct kernel {
	const char *name;        /* "scalar", "sse2", "avx2", "avx512", "neon", "generic" */
	kernel_fn *fn;
	bool (*supported)(void); /* true when this CPU can run it */
	const char *needs;       /* what the CPU must have, for people: "AVX2" */
	/* Its inner loop's shape, for the roofline benchmark: doubles a
	 * vector and vectors interleaved (1 and 1 for scalar). */
	const unsigned *shape;
};

/* The shortest interval at which the SIMD kernels save the state for
 * cycle detection (kernel_vec.h). */
#define KERNEL_FIRST_SAVE 16

/* The one reference kernel: the formula above, nothing skipped. */
kernel_fn kernel_scalar;

/* The kernel called "name", or "auto" (or NULL) for the best this CPU runs;
 * NULL when this build lacks it or the CPU cannot run it. */
const struct kernel *kernel_find(const char *name);
const struct kernel *kernel_best(void);

/* As kernel_find; on NULL, why (len bytes) says which of the two it was and
 * names the kernels this CPU runs, for a message to the user:
 *   "kernel avx512 needs AVX-512F and AVX-512DQ, which this CPU lacks (it runs: avx2 sse2 generic scalar)"
 *   "no kernel 'x' in this build (it has: avx512 avx2 sse2 generic scalar)" */
const struct kernel *kernel_pick(const char *name, char *why, size_t len);

/* Every kernel of this build, best first, whether or not the CPU runs it;
 * *count receives the number of entries. */
const struct kernel *kernel_all(unsigned *count);

/* The names of the kernels (runnable: only those this CPU runs), best
 * first, separated by spaces, into buf; returns buf. */
char *kernel_names(char *buf, size_t len, bool runnable);

/* "-kernel list": a line per kernel of this build (its name, whether this
 * CPU runs it, what it needs), the one auto picks marked, then the
 * architecture. */
void kernel_list(FILE *f);

/* The architecture this build is for: "x86_64", "aarch64", or "other". */
extern const char kernel_arch[];

#endif
