/*
 * kernel_vec_loop.h - kernel_vec.h's hot loop on KVL_ILV vectors. Included
 * by kernel_vec.h only, once per width, with KVL_NAME, KVL_ILV and KVL_HEAD
 * (the head's iterations, or 0) defined.
 * The vectors are locals indexed by constants (the k loops unroll), so they
 * stay in registers; kv_events gets them through the state and hands them
 * back. Returns the lane-iterations computed.
 */
static uint64_t KVL_NAME(const struct kernel_args *a, double ci_s, uint32_t px0,
			 uint32_t count, struct kernel_out *out)
{
	const kv_d ci = (kv_d){0} + ci_s, bail = (kv_d){0} + a->bailout;
	const int64_t T = kv_period_max(a->max_iter);
	double crs[KERNEL_SPAN_MAX + KV_LANES];
	/* Field by field: zeroing the whole state (its vectors and lane
	 * arrays, 0.8 KB with AVX2) measured 4% of a pixel-per-call render. */
	struct kv_state v;
	v.a = a, v.out = out, v.crs = crs, v.ci = ci_s, v.ilv = KVL_ILV;
	v.todo = NULL, v.hzr = v.hzi = v.htr = v.hti = NULL, v.h = 0;
	v.count = count, v.next = 0, v.live = 0;
	v.it = 0, v.saved = 0, v.next_end = INT64_MAX, v.executed = 0;
	kv_d cr[KVL_ILV], zr[KVL_ILV], zi[KVL_ILV], tr[KVL_ILV], ti[KVL_ILV];
	kv_d sr[KVL_ILV], si[KVL_ILV];

	for (uint32_t i = 0; i < count; i++)
		crs[i] = kernel_cr(a, px0 + i);
#if KVL_HEAD > 0
	double hzr[KERNEL_SPAN_MAX], hzi[KERNEL_SPAN_MAX], htr[KERNEL_SPAN_MAX], hti[KERNEL_SPAN_MAX];
	uint32_t todo[KERNEL_SPAN_MAX];
	for (uint32_t i = count; i < count + KV_LANES; i++)
		crs[i] = 0;
	v.h = a->max_iter < KVL_HEAD ? a->max_iter : KVL_HEAD;
	v.count = kv_head(&v, todo, hzr, hzi, htr, hti, count);
	if (v.count == 0)
		return v.executed;
	v.todo = todo;
	v.hzr = hzr, v.hzi = hzi, v.htr = htr, v.hti = hti;
#endif
	/* Every lane starts idle and takes its first pixel. */
	for (unsigned L = 0; L < KVL_ILV * KV_W; L++) {
		v.cr[L] = 0, v.idx[L] = UINT32_MAX;
		kv_settle(&v, L, 0);
	}

#define KVL_LOAD()                                                              \
	for (int k = 0; k < KVL_ILV; k++) {                                     \
		cr[k] = kv_get(v.cr, k), zr[k] = kv_get(v.zr, k);               \
		zi[k] = kv_get(v.zi, k), tr[k] = kv_get(v.tr, k);               \
		ti[k] = kv_get(v.ti, k), sr[k] = kv_get(v.sr, k);               \
		si[k] = kv_get(v.si, k);                                        \
	}
	KVL_LOAD()
	int64_t it = 0, next_end = v.next_end;
	/* A save copies every lane: an idle lane's state is NaN, so what it
	 * saves is too. */
	for (;;) {
		kv_l ev = {0};
		for (int k = 0; k < KVL_ILV; k++) {
			KV_STEP(zr[k], zi[k], tr[k], ti[k], cr[k], ci);
			ev |= KV_GT(tr[k] + ti[k], bail) | (KV_EQ(zr[k], sr[k]) & KV_EQ(zi[k], si[k]));
		}
		it++;
		if (KV_ANY(ev) | (it == next_end)) {
			for (int k = 0; k < KVL_ILV; k++) {
				kv_put(v.zr, k, zr[k]), kv_put(v.zi, k, zi[k]);
				kv_put(v.tr, k, tr[k]), kv_put(v.ti, k, ti[k]);
				kv_put(v.sr, k, sr[k]), kv_put(v.si, k, si[k]);
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
#undef KVL_HEAD
