/*
 * kernel_vec_block.h - one block of kernel_vec.h's loop: KVB_ILV vectors
 * interleaved. Included by kernel_vec.h only, once per block width, with
 * KVB_NAME and KVB_ILV defined (see there); the lanes' arithmetic does not
 * depend on the width, so every width gives the same bits.
 */
static void KVB_NAME(const struct kernel_args *a, double ci_s, uint32_t px0,
		     uint32_t count, uint32_t *n_out, double *tr_out,
		     double *ti_out)
{
	const uint32_t max_iter = a->max_iter;
	const kv_d ci = (kv_d){0} + ci_s;
	const kv_d bail = (kv_d){0} + a->bailout;
	kv_d cr[KVB_ILV], zr[KVB_ILV], zi[KVB_ILV], tr[KVB_ILV], ti[KVB_ILV];
	kv_d sr[KVB_ILV], si[KVB_ILV];
	kv_l act[KVB_ILV], cnt[KVB_ILV], cyc[KVB_ILV];

	for (int k = 0; k < KVB_ILV; k++) {
		cr[k] = (kv_d){0};
		act[k] = (kv_l){0};
		for (int j = 0; j < KV_W; j++) {
			uint32_t lane = (uint32_t)(k * KV_W + j);
			int live = lane < count && max_iter > 0;
			cr[k][j] = live ? (a->s * (double)(px0 + lane)) / 1000 + a->x0 : 0.0;
			act[k][j] = live ? -1 : 0;
		}
		zr[k] = zi[k] = tr[k] = ti[k] = (kv_d){0};
		sr[k] = si[k] = (kv_d){0} + NAN;
		cnt[k] = cyc[k] = (kv_l){0};
	}

	/* Main loop: every active lane has run exactly 'it' iterations. */
	uint32_t next_save = KERNEL_FIRST_SAVE;
	for (uint32_t it = 0; it < max_iter;) {
		kv_l any = {0};
		for (int k = 0; k < KVB_ILV; k++) {
			kv_d nzi = 2.0 * zr[k] * zi[k] + ci;
			kv_d nzr = tr[k] - ti[k] + cr[k];
			zi[k] = kv_sel(act[k], nzi, zi[k]);
			zr[k] = kv_sel(act[k], nzr, zr[k]);
			tr[k] = zr[k] * zr[k];
			ti[k] = zi[k] * zi[k];
			cnt[k] -= act[k];
			act[k] &= (tr[k] + ti[k] <= bail);
			kv_l same = act[k] & (zr[k] == sr[k]) & (zi[k] == si[k]);
			cyc[k] |= same;
			act[k] &= ~same;
			any |= act[k];
		}
		it++;
		if (it == next_save) {
			next_save = kernel_next_save(it);
			for (int k = 0; k < KVB_ILV; k++) {
				sr[k] = zr[k];
				si[k] = zi[k];
			}
		}
		if (!KV_ANY(any))
			break;
	}

	/* Lanes that found a cycle: r more iterations, then they hold s_max_iter. */
	kv_l rem[KVB_ILV];
	int64_t rmax = 0;
	for (int k = 0; k < KVB_ILV; k++) {
		for (int j = 0; j < KV_W; j++) {
			rem[k][j] = 0;
			if (!cyc[k][j])
				continue;
			uint32_t at = (uint32_t)cnt[k][j];
			uint32_t p = at - kernel_saved_before(at);
			rem[k][j] = (max_iter - at) % p;
			cnt[k][j] = max_iter;
			if (rem[k][j] > rmax)
				rmax = rem[k][j];
		}
	}
	for (int64_t it = 0; it < rmax; it++) {
		for (int k = 0; k < KVB_ILV; k++) {
			kv_l on = rem[k] > it;
			kv_d nzi = 2.0 * zr[k] * zi[k] + ci;
			kv_d nzr = tr[k] - ti[k] + cr[k];
			zi[k] = kv_sel(on, nzi, zi[k]);
			zr[k] = kv_sel(on, nzr, zr[k]);
			tr[k] = zr[k] * zr[k];
			ti[k] = zi[k] * zi[k];
		}
	}

	for (uint32_t lane = 0; lane < count; lane++) {
		n_out[lane] = (uint32_t)cnt[lane / KV_W][lane % KV_W];
		tr_out[lane] = tr[lane / KV_W][lane % KV_W];
		ti_out[lane] = ti[lane / KV_W][lane % KV_W];
	}
}

#undef KVB_NAME
#undef KVB_ILV
