/*
 * bench_roofline.h - the roofline of each kernel's inner loop, for
 * bench_render. Single-threaded; benchmarks only.
 */
#ifndef MW_BENCH_ROOFLINE_H
#define MW_BENCH_ROOFLINE_H

/* G lane-iterations/s of roofline.c's sequence 'seq' (enum rl_seq) at
 * interleave rl_ilvs[ilv_index], built for kernel 'kernel' ("avx2"),
 * best of reps; 0 when this build lacks it or the CPU cannot run it. */
double bench_roofline_rate(const char *kernel, int seq, int ilv_index, int reps);

#endif
