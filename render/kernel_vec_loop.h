/*
 * kernel_vec_loop.h - kernel_vec.h's hot loop on KVL_ILV vectors. Included
 * by kernel_vec.h only, once per width from KV_ILV down to 1, with KVL_NAME
 * and KVL_ILV defined.
 * KVL_NAME runs the span in v from iteration v->it, lanes 0 .. KVL_ILV *
 * KV_W - 1, until no lane holds a pixel; or, with KV_NARROW and more than
 * one vector, until the span has no pixel left to take and its live lanes
 * fit in one vector fewer (the caller moves them there and goes on with the
 * narrower loop, so that a span's tail does not run idle vectors).
 * The vectors are locals indexed by constants (the k loops unroll), so they
 * stay in registers; kv_events gets them through the state and hands them
 * back.
 * Two loops run the iterations, each until an event or the end of its half
 * of the save window: in the first half (T/2 - 1 iterations after a save)
 * the escape test alone, in the second (the T/2 + 1 iterations up to and
 * with the next save's) the escape test and the compare with the saved
 * state (kernel_vec.h: Cycle detection). Each loop on its own keeps every
 * vector of the chain in a register; one loop that alternated the two
 * tests, an iteration each, spilled a Ti and read it back on the chain.
 */
static void KVL_NAME(struct kv_state *v)
{
	const kv_d ci = (kv_d){0} + v->ci, bail = (kv_d){0} + v->a->bailout;
	const int64_t T = kv_period_max(v->a->max_iter);
	kv_d cr[KVL_ILV], zr[KVL_ILV], zi[KVL_ILV], tr[KVL_ILV], ti[KVL_ILV];
	kv_d sr[KVL_ILV], si[KVL_ILV];

#define KVL_LOAD()                                                              \
	for (int k = 0; k < KVL_ILV; k++) {                                     \
		cr[k] = kv_get(v->cr, k), zr[k] = kv_get(v->zr, k);             \
		zi[k] = kv_get(v->zi, k), tr[k] = kv_get(v->tr, k);             \
		ti[k] = kv_get(v->ti, k), sr[k] = kv_get(v->sr, k);             \
		si[k] = kv_get(v->si, k);                                       \
	}
	KVL_LOAD()
	int64_t it = v->it, next_end = v->next_end;
	/* The iterations from it + 1 until one has an event or it reaches
	 * stop; CYC: whether each state is compared with the saved one. */
#define KVL_RUN(CYC)                                                            \
	for (;;) {                                                              \
		ev = (kv_l){0};                                                 \
		for (int k = 0; k < KVL_ILV; k++) {                             \
			KV_STEP(zr[k], zi[k], tr[k], ti[k], cr[k], ci);         \
			ev |= KV_GT(tr[k] + ti[k], bail);                       \
			if (CYC)                                                \
				ev |= KV_EQ(zr[k], sr[k]) & KV_EQ(zi[k], si[k]); \
		}                                                               \
		it++;                                                           \
		if (KV_ANY(ev) | (it == stop))                                  \
			break;                                                  \
	}
	for (;;) {
		/* The save window the next iteration is in: the save at its
		 * end (win), the compares from half on. */
		const int64_t win = (it | (T - 1)) + 1, half = win - T / 2;
		const bool cyc = it + 1 >= half;
		int64_t stop = cyc ? win : half - 1;
		stop = stop < next_end ? stop : next_end;
		kv_l ev;
		if (cyc) {
			KVL_RUN(1)
		} else {
			KVL_RUN(0)
		}
		if (KV_ANY(ev) | (it == next_end)) {
			for (int k = 0; k < KVL_ILV; k++) {
				kv_put(v->zr, k, zr[k]), kv_put(v->zi, k, zi[k]);
				kv_put(v->tr, k, tr[k]), kv_put(v->ti, k, ti[k]);
				kv_put(v->sr, k, sr[k]), kv_put(v->si, k, si[k]);
			}
			v->it = it;
			kv_events(v);
			if (!v->live)
				return;
			if (KV_NARROW && KVL_ILV > 1 && v->next == v->count &&
			    v->live <= KV_W * (KVL_ILV - 1)) {
				/* This iteration's save, if one is due, before
				 * the narrower loop's first step. */
				if ((it & (T - 1)) == 0) {
					v->saved = it;
					memcpy(v->sr, v->zr, sizeof v->sr);
					memcpy(v->si, v->zi, sizeof v->si);
				}
				return;
			}
			next_end = v->next_end;
			KVL_LOAD()
		}
		/* A save copies every lane: an idle lane's state is NaN, so
		 * what it saves is too. */
		if ((it & (T - 1)) == 0) {
			v->saved = it;
			for (int k = 0; k < KVL_ILV; k++) {
				sr[k] = zr[k];
				si[k] = zi[k];
			}
		}
	}
#undef KVL_RUN
#undef KVL_LOAD
}

#undef KVL_NAME
#undef KVL_ILV
