/*
 * kernel_vec_loop.h - kernel_vec.h's hot loop on KVL_ILV vectors. Included
 * by kernel_vec.h only, once per width, with KVL_NAME and KVL_ILV defined.
 * The vectors are locals indexed by constants (the k loops unroll), so they
 * stay in registers; kv_events gets them through the state and hands them
 * back. Returns the lane-iterations computed.
 */
static uint64_t KVL_NAME(const struct kernel_args *a, double ci_s, uint32_t px0,
			 uint32_t count, struct kernel_out *out)
{
	const kv_d ci = (kv_d){0} + ci_s, bail = (kv_d){0} + a->bailout;
	const kv_d nan = (kv_d){0} + NAN;
	const int64_t T = kv_period_max(a->max_iter);
	double crs[KERNEL_SPAN_MAX];
	struct kv_state v = {.a = a, .out = out, .crs = crs, .count = count, .ilv = KVL_ILV,
			     .ci = ci_s};
	kv_d cr[KVL_ILV], zr[KVL_ILV], zi[KVL_ILV], tr[KVL_ILV], ti[KVL_ILV];
	kv_d sr[KVL_ILV], si[KVL_ILV];

	for (uint32_t i = 0; i < count; i++)
		crs[i] = kernel_cr(a, px0 + i);
	/* Every lane starts idle and takes its first pixel. */
	uint32_t zero_n[KV_W] = {0};
	for (unsigned k = 0; k < KVL_ILV; k++) {
		v.cr[k] = v.zr[k] = v.zi[k] = v.tr[k] = v.ti[k] = v.sr[k] = v.si[k] = nan;
		for (unsigned j = 0; j < KV_W; j++)
			v.idx[k * KV_W + j] = UINT32_MAX;
		kv_settle(&v, k, (1u << KV_W) - 1, zero_n);
	}
	v.next_end = (int64_t)a->max_iter;

#define KVL_LOAD()                                                              \
	for (int k = 0; k < KVL_ILV; k++) {                                     \
		cr[k] = v.cr[k], zr[k] = v.zr[k], zi[k] = v.zi[k];              \
		tr[k] = v.tr[k], ti[k] = v.ti[k], sr[k] = v.sr[k], si[k] = v.si[k]; \
	}
	KVL_LOAD()
	int64_t it = 0, next_end = v.next_end;
	/* A save copies every lane: an idle lane's state is NaN, so what it
	 * saves is too. */
	for (;;) {
		kv_l ev = {0};
		for (int k = 0; k < KVL_ILV; k++) {
			kv_d t = (zr[k] + zr[k]) * zi[k];
			zi[k] = t + ci;
			zr[k] = (tr[k] - ti[k]) + cr[k];
			tr[k] = zr[k] * zr[k];
			ti[k] = zi[k] * zi[k];
			ev |= (tr[k] + ti[k] > bail) | ((zr[k] == sr[k]) & (zi[k] == si[k]));
		}
		it++;
		if (KV_ANY(ev) | (it == next_end)) {
			for (int k = 0; k < KVL_ILV; k++) {
				v.zr[k] = zr[k], v.zi[k] = zi[k], v.tr[k] = tr[k];
				v.ti[k] = ti[k], v.sr[k] = sr[k], v.si[k] = si[k];
			}
			v.it = it;
			kv_events(&v);
			if (!v.live)
				break;
			next_end = v.next_end;
			KVL_LOAD()
		}
		if ((it & (T - 1)) == 0) {
			v.saved = it;
			for (int k = 0; k < KVL_ILV; k++) {
				sr[k] = zr[k];
				si[k] = zi[k];
			}
		}
	}
	return v.executed;
#undef KVL_LOAD
}

#undef KVL_NAME
#undef KVL_ILV
