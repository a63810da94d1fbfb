/* kernel_scalar.c - the reference kernel: the workshop's formula, one pixel
 * at a time, nothing skipped. Every other kernel is tested against it. */
#include "render/kernel.h"

const unsigned kernel_scalar_shape[2] = {1, 1};

void kernel_scalar(const struct kernel_args *a, uint32_t py, uint32_t px0,
		   uint32_t count, struct kernel_out *out)
{
	const double ci = kernel_ci(a, py);
	uint64_t executed = 0;

	for (uint32_t k = 0; k < count; k++) {
		const double cr = kernel_cr(a, px0 + k);
		double zr = 0, zi = 0, tr = 0, ti = 0;
		uint32_t i;

		for (i = 0; i < a->max_iter && tr + ti <= a->bailout; i++) {
			zi = 2 * zr * zi + ci;
			zr = tr - ti + cr;
			tr = zr * zr;
			ti = zi * zi;
		}
		out->n[k] = i;
		out->tr[k] = tr;
		out->ti[k] = ti;
		executed += i;
	}
	out->executed = executed;
}
