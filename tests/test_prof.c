/* test_prof.c - CPU profiles: a spinning thread's profile names its
 * function first, with about rate x CPU time samples; the profile.proto is
 * read back by an independent decoder of our own (gzip through zlib, every
 * message and field walked, every string, location, function and mapping
 * index checked), and by `go tool pprof -raw` where Go is installed; the
 * refusal and one-at-a-time paths; and end to end, /debug/pprof/profile
 * under load (the kernel first), 409, 403, 400 and the refusal's 503.
 * Block (off-CPU) profiles: a thread that naps at a wait site, spins and
 * sleeps outside one, in known proportions; the pool's rendezvous; and
 * /debug/pprof/block and the /debug/pprof/ index end to end. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "prof/prof.h"
#include "tests/harness.h"

/* ---- the decoder ---- */

#define MAXN 65536

struct decoded {
	char *str[MAXN];
	size_t nstr;
	uint64_t fn_name[MAXN]; /* by function id */
	uint64_t loc_fn[MAXN];  /* by location id: its first line's function */
	uint64_t nfn, nloc, nmap;
	uint64_t flat[MAXN];    /* samples by the leaf's function id */
	uint64_t samples, cpu_ns, period;
	int types;
};

static int varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64 && *p < end; s += 7) {
		unsigned char c = *(*p)++;
		*v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return 0;
	}
	return -1;
}

/* One field: its number, wire type and value or bytes. -1 at a malformed one. */
static int field(const unsigned char **p, const unsigned char *end, unsigned *f, uint64_t *v,
		 const unsigned char **b)
{
	uint64_t key;
	if (varint(p, end, &key) < 0)
		return -1;
	*f = (unsigned)(key >> 3);
	if ((key & 7) == 0)
		return varint(p, end, v);
	if ((key & 7) != 2 || varint(p, end, v) < 0 || *v > (uint64_t)(end - *p))
		return -1;
	*b = *p;
	*p += *v;
	return 2;
}

/* The leaf location id of a Sample, and its values; ids must exist later,
 * so they are checked after the whole profile is read. */
struct sample {
	uint64_t leaf, count, ns;
	size_t nloc;
	uint64_t lkey[4], lval[4]; /* string labels: string indexes */
	int nl;
};

static struct sample samples[MAXN];
static size_t nsamples;
static uint64_t loc_refs[MAXN * 4];
static size_t nrefs;
static uint64_t str_refs[MAXN * 4];
static size_t nstrrefs;

static void ref_str(uint64_t i)
{
	if (nstrrefs < sizeof str_refs / sizeof *str_refs)
		str_refs[nstrrefs++] = i;
}

static void decode_sample(const unsigned char *p, const unsigned char *end)
{
	struct sample s = {0};
	unsigned f;
	uint64_t v;
	const unsigned char *b;
	int vi = 0;
	while (p < end) {
		int w = field(&p, end, &f, &v, &b);
		cr_assert(ge(int, w, 0), "a malformed Sample field");
		if (f == 1 && w == 2) { /* packed location ids, leaf first */
			const unsigned char *q = b;
			while (q < b + v) {
				uint64_t id;
				cr_assert(eq(int, varint(&q, b + v, &id), 0));
				if (s.nloc++ == 0)
					s.leaf = id;
				if (nrefs < sizeof loc_refs / sizeof *loc_refs)
					loc_refs[nrefs++] = id;
			}
		} else if (f == 2 && w == 2) {
			const unsigned char *q = b;
			while (q < b + v) {
				uint64_t x;
				cr_assert(eq(int, varint(&q, b + v, &x), 0));
				if (vi == 0)
					s.count = x;
				else if (vi == 1)
					s.ns = x;
				vi++;
			}
		} else if (f == 3 && w == 2) { /* Label{key, str, num} */
			const unsigned char *q = b;
			while (q < b + v) {
				unsigned lf;
				uint64_t lv;
				const unsigned char *lb;
				cr_assert(eq(int, field(&q, b + v, &lf, &lv, &lb), 0));
				if (lf == 1 || lf == 2)
					ref_str(lv);
				if (lf == 1 && s.nl < 4)
					s.lkey[s.nl] = lv;
				if (lf == 2 && s.nl < 4)
					s.lval[s.nl++] = lv;
			}
		}
	}
	cr_expect(eq(int, vi, 2), "a Sample with %d values, not 2", vi);
	cr_expect(lt(sz, 0, s.nloc), "a Sample with no location");
	if (nsamples < MAXN)
		samples[nsamples++] = s;
}

static void decode(const unsigned char *gz, size_t len, struct decoded *d)
{
	size_t cap = 64 << 20;
	unsigned char *raw = malloc(cap);
	z_stream z = {0};
	cr_assert(eq(int, inflateInit2(&z, 15 + 16), Z_OK));
	z.next_in = (unsigned char *)gz;
	z.avail_in = (uInt)len;
	z.next_out = raw;
	z.avail_out = (uInt)cap;
	cr_assert(eq(int, inflate(&z, Z_FINISH), Z_STREAM_END), "not gzip");
	const unsigned char *p = raw, *end = raw + z.total_out;
	inflateEnd(&z);
	memset(d, 0, sizeof *d);
	nsamples = nrefs = nstrrefs = 0;
	uint64_t loc_ids[MAXN], fn_ids[MAXN];
	while (p < end) {
		unsigned f;
		uint64_t v;
		const unsigned char *b;
		int w = field(&p, end, &f, &v, &b);
		cr_assert(ge(int, w, 0), "a malformed Profile field");
		if (f == 6 && w == 2) { /* string_table */
			cr_assert(lt(sz, d->nstr, (size_t)MAXN));
			d->str[d->nstr] = strndup((const char *)b, v);
			d->nstr++;
		} else if (f == 2 && w == 2) {
			decode_sample(b, b + v);
		} else if ((f == 1 || f == 11) && w == 2) { /* ValueType{type, unit} */
			const unsigned char *q = b;
			while (q < b + v) {
				unsigned vf;
				uint64_t vv;
				const unsigned char *vb;
				cr_assert(eq(int, field(&q, b + v, &vf, &vv, &vb), 0));
				ref_str(vv);
			}
			d->types += f == 1;
		} else if ((f == 3 || f == 4 || f == 5) && w == 2) { /* Mapping, Location, Function */
			const unsigned char *q = b;
			uint64_t id = 0, name = 0, line_fn = 0;
			while (q < b + v) {
				unsigned mf;
				uint64_t mv;
				const unsigned char *mb;
				int mw = field(&q, b + v, &mf, &mv, &mb);
				cr_assert(ge(int, mw, 0));
				if (mf == 1)
					id = mv;
				if (f == 5 && (mf == 2 || mf == 3 || mf == 4))
					ref_str(mv), name = mf == 2 ? mv : name;
				if (f == 3 && mf == 5)
					ref_str(mv);
				if (f == 4 && mf == 4 && mw == 2 && !line_fn) { /* Line{function_id, line} */
					const unsigned char *lq = mb;
					while (lq < mb + mv) {
						unsigned lf;
						uint64_t lv;
						const unsigned char *lb;
						cr_assert(eq(int, field(&lq, mb + mv, &lf, &lv, &lb), 0));
						if (lf == 1)
							line_fn = lv;
					}
				}
			}
			cr_assert(lt(u64, 0, id), "a message with no id");
			cr_assert(lt(u64, id, (uint64_t)MAXN));
			if (f == 3)
				d->nmap++;
			if (f == 4) {
				d->loc_fn[id] = line_fn;
				loc_ids[d->nloc++] = id;
			}
			if (f == 5) {
				d->fn_name[id] = name;
				fn_ids[d->nfn++] = id;
			}
		} else if (f == 12 && w == 0) {
			d->period = v;
		}
	}
	free(raw);
	/* Every index points at something that is there. */
	cr_expect(lt(sz, 0, d->nstr));
	cr_expect(eq(str, d->str[0], ""), "string_table[0] is the empty string");
	for (size_t i = 0; i < nstrrefs; i++)
		cr_assert(lt(u64, str_refs[i], (uint64_t)d->nstr), "string index %llu of %zu",
			  (unsigned long long)str_refs[i], d->nstr);
	for (size_t i = 0; i < nrefs; i++) {
		size_t k;
		for (k = 0; k < d->nloc && loc_ids[k] != loc_refs[i]; k++)
			;
		cr_assert(lt(sz, k, d->nloc), "location %llu is not in the profile",
			  (unsigned long long)loc_refs[i]);
	}
	for (size_t i = 0; i < d->nloc; i++) {
		uint64_t fn = d->loc_fn[loc_ids[i]];
		size_t k;
		for (k = 0; fn && k < d->nfn && fn_ids[k] != fn; k++)
			;
		bool known = !fn || k < d->nfn;
		cr_assert(known, "function %llu is not in the profile", (unsigned long long)fn);
	}
	cr_expect(eq(int, d->types, 2), "samples/count and cpu/nanoseconds");
	for (size_t i = 0; i < nsamples; i++) {
		d->samples += samples[i].count;
		d->cpu_ns += samples[i].ns;
		d->flat[d->loc_fn[samples[i].leaf]] += samples[i].count;
	}
}

/* Frees d and the strings decode copied into it. */
static void decoded_free(struct decoded *d)
{
	for (size_t i = 0; i < d->nstr; i++)
		free(d->str[i]);
	free(d);
}

/* The function with the most flat samples, and its share. */
static const char *top(const struct decoded *d, double *share)
{
	uint64_t best = 0, id = 0;
	for (uint64_t i = 1; i < MAXN; i++)
		if (d->flat[i] > best)
			best = d->flat[i], id = i;
	*share = d->samples ? (double)best / (double)d->samples : 0;
	return id ? d->str[d->fn_name[id]] : "(none)";
}

/* Whether a function is the kernel's (render/kernel_*.c, kernel_vec.h). */
static bool is_kernel(const char *name)
{
	return strncmp(name, "kv_", 3) == 0 || strncmp(name, "kernel_", 7) == 0;
}

/* A sample's string label value for key, or NULL. */
static const char *label(const struct decoded *d, const struct sample *s, const char *key)
{
	for (int i = 0; i < s->nl; i++)
		if (strcmp(d->str[s->lkey[i]], key) == 0)
			return d->str[s->lval[i]];
	return NULL;
}

/* Where Go is installed: go tool pprof FLAGS on the profile r holds,
 * piped into check, succeeds. */
static void go_pprof_expect(const struct mw_resp *r, const char *flags, const char *check)
{
	if (system("command -v go >/dev/null 2>&1") != 0)
		return;
	char path[64], cmd[256];
	snprintf(path, sizeof path, "/tmp/mw-prof-%d.pprof", (int)getpid());
	FILE *f = fopen(path, "wb");
	cr_assert(not(eq(ptr, f, NULL)));
	fwrite(r->body, 1, r->len, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "go tool pprof %s %s 2>&1 | %s", flags, path, check);
	cr_expect(eq(int, system(cmd), 0), "go tool pprof %s: not as expected", flags);
	remove(path);
}

static void skip_unless_profiles(void)
{
	struct prof *p;
	char why[200];
	prof_sampler(1);
	int rc = prof_start(&p, 100, why, sizeof why);
	struct prof_facts f = {0};
	if (rc == 0)
		prof_facts(p, &f);
	if (rc == 0 && f.sigprof) {
		prof_free(p);
		cr_skip_test("perf_event_open is refused here (the timers stood in)");
	}
	if (rc < 0)
		cr_skip_test("CPU profiles are refused here: %s", why);
	prof_free(p);
}

/* ---- in process ---- */

static volatile unsigned long sink;

/* Static on purpose: the symbol table has it, dladdr would not. Spins
 * for seconds of this thread's CPU, not of the wall: beside another test
 * a 0.5 s wall spin got 238 ms of CPU, and its profile that many samples. */
static __attribute__((noinline)) void spin_here(double seconds)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do {
		for (int i = 0; i < 100000; i++)
			sink += (unsigned long)i * 7;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	} while ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < seconds);
}

static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6;
}

/* The spin test with a sampler: perf, perf refused (the SIGPROF
 * fallback), or the timers by default; said: what the comment names. */
static void spin_profile(int perf, int refuse, const char *said_str)
{
	struct prof *p;
	char why[200];
	struct decoded *d = malloc(sizeof *d);
	prof_refuse(refuse);
	prof_sampler(perf);
	cr_assert(eq(int, prof_start(&p, 1000, why, sizeof why), 0), "%s", why);
	double c0 = cpu_s();
	spin_here(0.5);
	double cpu = cpu_s() - c0;
	unsigned char *gz;
	size_t len;
	cr_assert(eq(int, prof_pprof(p, &gz, &len), 0));
	struct prof_facts f;
	prof_facts(p, &f);
	prof_free(p);
	decode(gz, len, d);
	free(gz);
	double share;
	const char *name = top(d, &share);
	/* GCC may name its clone spin_here.constprop.0: the symbol table says so. */
	cr_expect(eq(int, strncmp(name, "spin_here", 9), 0), "top function %s", name);
	cr_expect(lt(dbl, 0.5, share), "spin_here has %.0f%% of the samples", share * 100);
	/* Within 20% of rate x CPU time (user time: the events are user-only). */
	double want = cpu * 1000;
	cr_expect(lt(dbl, 0.8 * want, (double)d->samples), "%llu samples for %.3f s of CPU",
		  (unsigned long long)d->samples, cpu);
	cr_expect(lt(dbl, (double)d->samples, 1.2 * want), "%llu samples for %.3f s of CPU",
		  (unsigned long long)d->samples, cpu);
	cr_expect(eq(u64, d->samples, f.samples));
	cr_expect(eq(u64, d->period, 1000000), "period: 1 ms of CPU at 1 kHz");
	cr_expect(eq(u64, d->cpu_ns, d->samples * d->period));
	cr_expect(lt(u64, 0, d->nmap), "mappings");
	cr_expect(eq(int, f.sigprof, !perf || refuse), "sampled by %s", f.sigprof ? "SIGPROF" : "perf");
	int said = 0;
	for (size_t i = 0; i < d->nstr; i++)
		said |= strstr(d->str[i], said_str) != NULL;
	cr_expect(said, "the comment says how it was sampled: %s", said_str);
	free(d);
	prof_refuse(0);
	prof_sampler(0);
}

Test(prof, a_spinning_function_is_on_top_with_rate_times_cpu_time_samples, .timeout = 30)
{
	spin_profile(0, 0, "SIGPROF timers on each thread's CPU clock (chosen");
}

Test(prof, the_perf_sampler_gives_the_same, .timeout = 30)
{
	skip_unless_profiles();
	spin_profile(1, 0, "perf_event_open CPU-clock events");
}

Test(prof, where_perf_is_refused_the_timers_stand_in_and_say_why, .timeout = 30)
{
	spin_profile(1, 1, "(perf_event_open (refused on purpose, to test): Permission denied");
}

static void *spin_main(void *arg)
{
	(void)arg;
	spin_here(0.5);
	return NULL;
}

Test(prof, a_thread_started_after_the_profile_is_sampled_too, .timeout = 30)
{
	struct prof *p;
	char why[200];
	struct decoded *d = malloc(sizeof *d);
	prof_sampler(0);
	cr_assert(eq(int, prof_start(&p, 1000, why, sizeof why), 0), "%s", why);
	pthread_t t;
	cr_assert(eq(int, pthread_create(&t, NULL, spin_main, NULL), 0));
	pthread_join(t, NULL);
	unsigned char *gz;
	size_t len;
	cr_assert(eq(int, prof_pprof(p, &gz, &len), 0));
	prof_free(p);
	decode(gz, len, d);
	free(gz);
	double share;
	const char *name = top(d, &share);
	cr_expect(eq(int, strncmp(name, "spin_here", 9), 0), "top function %s", name);
	/* Picked up within the collector's 100 ms round: 0.4 s of 0.5 at least. */
	cr_expect(lt(dbl, 0.8 * 400, (double)d->samples),
		  "%llu samples of a 0.5 s spin", (unsigned long long)d->samples);
	free(d);
}

Test(prof, one_at_a_time)
{
	skip_unless_profiles();
	struct prof *p, *q;
	char why[200];
	cr_assert(eq(int, prof_start(&p, 100, why, sizeof why), 0));
	cr_expect(eq(int, prof_start(&q, 100, why, sizeof why), -EBUSY));
	cr_expect(eq(int, prof_active(), 1));
	prof_free(p);
	cr_expect(eq(int, prof_active(), 0));
	cr_expect(eq(int, prof_start(&q, 0, why, sizeof why), -EINVAL));
	cr_expect(eq(int, prof_active(), 0), "a refused start holds nothing");
}

Test(prof, nothing_is_open_but_while_a_profile_runs)
{
	skip_unless_profiles();
	prof_sampler(1);
	struct prof *p;
	char why[200];
	cr_expect(eq(int, mw_perf_fds(), 0), "before: disarmed costs nothing");
	cr_assert(eq(int, prof_start(&p, 100, why, sizeof why), 0));
	cr_expect(le(int, 1, mw_perf_fds()), "an event per thread while it runs");
	prof_stop(p);
	cr_expect(eq(int, mw_perf_fds(), 0), "stopped: every event closed");
	prof_free(p);
}

/* ---- end to end ---- */

static struct mw srv;

static void start(const char *const *args)
{
	cr_assert(eq(int, mw_start(&srv, args), 0), "mandelweb did not start");
}

Test(prof_e2e, the_service_under_load_profiles_the_kernel_first, .timeout = 120)
{
	skip_unless_profiles();
	const char *const args[] = {"--workers", "2", "--cache-mb", "0", "--access-log", "off", NULL};
	struct mw_fetch pr = {.m = &srv, .path = "/debug/pprof/profile?seconds=1.5"};
	struct mw_fetch load[4];
	pthread_t th, lth[4];

	start(args);
	pthread_create(&th, NULL, mw_fetch_main, &pr);
	struct timespec nap = {0, 200000000};
	nanosleep(&nap, NULL);
	struct mw_resp r;
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/profile?seconds=1", &r), 0));
	cr_expect(eq(long, r.status, 409), "a second profile at once");
	cr_expect(lt(int, 0, atoi(r.retry_after)), "409 without Retry-After");
	mw_resp_free(&r);
	for (int i = 0; i < 4; i++) { /* distinct slow pictures: every request renders */
		load[i] = (struct mw_fetch){.m = &srv};
		snprintf(load[i].path, sizeof load[i].path,
			 "/mandelbrot?w=512&h=512&iter=5000&cx=-0.7435&cy=0.131%d&zoom=200", i);
		pthread_create(&lth[i], NULL, mw_fetch_main, &load[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(lth[i], NULL);
		mw_resp_free(&load[i].r);
	}
	pthread_join(th, NULL);
	cr_assert(eq(long, pr.r.status, 200), "%s", pr.r.body);
	cr_expect(eq(str, pr.r.type, "application/octet-stream"));
	struct decoded *d = malloc(sizeof *d);
	decode((const unsigned char *)pr.r.body, pr.r.len, d);
	double share;
	const char *name = top(d, &share);
	cr_expect(eq(int, is_kernel(name), 1), "top function %s (%.0f%%)", name, share * 100);
	/* The kernel's functions together (how it splits into functions,
	 * and what the compiler inlines, is its own business). */
	uint64_t kernel = 0;
	for (uint64_t i = 1; i < MAXN; i++)
		if (d->flat[i] && is_kernel(d->str[d->fn_name[i]]))
			kernel += d->flat[i];
	cr_expect(lt(dbl, 0.5, (double)kernel / (double)d->samples),
		  "the kernel's functions have %llu of %llu samples", (unsigned long long)kernel,
		  (unsigned long long)d->samples);
	/* The render's samples carry their request's route and mode (pprof.Do's labels). */
	uint64_t labelled = 0;
	for (size_t i = 0; i < nsamples; i++) {
		const char *route = label(d, &samples[i], "route"), *mode = label(d, &samples[i], "mode");
		if (route && mode && strcmp(route, "/mandelbrot") == 0 && strcmp(mode, "auto") == 0)
			labelled += samples[i].count;
	}
	cr_expect(lt(dbl, 0.5, (double)labelled / (double)d->samples),
		  "%llu of %llu samples labelled route=/mandelbrot mode=auto",
		  (unsigned long long)labelled, (unsigned long long)d->samples);
	free(d);
	/* go tool pprof reads it too, where Go is installed. */
	go_pprof_expect(&pr.r, "-raw", "grep -q kernel_");
	mw_resp_free(&pr.r);
	/* The client that hangs up: the window ends, the next one may start. */
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/profile?seconds=0.5", &r), 0));
	cr_expect(eq(long, r.status, 400), "under 1 s");
	mw_resp_free(&r);
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/profile?seconds=1&hz=5", &r), 0));
	cr_expect(eq(long, r.status, 400), "an unknown parameter");
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(prof_e2e, forbidden_peers_and_the_sigprof_fallback, .timeout = 60)
{
	const char *const none[] = {"--debug-allow", "none", NULL};
	struct mw_resp r;
	start(none);
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/profile?seconds=1", &r), 0));
	cr_expect(eq(long, r.status, 403));
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));

	/* Refused: the SIGPROF fallback answers, and says so in the profile. */
	const char *const refuse[] = {"--trace-kernel", "refuse", "--profile-sampler", "perf",
				      "--cache-mb", "0", NULL};
	struct mw_fetch pr = {.m = &srv, .path = "/debug/pprof/profile?seconds=1"};
	pthread_t th;
	start(refuse);
	pthread_create(&th, NULL, mw_fetch_main, &pr);
	struct timespec nap = {0, 100000000};
	nanosleep(&nap, NULL);
	cr_assert(eq(int, mw_get(&srv, "/mandelbrot?w=1024&h=1024&iter=2000&cx=-0.74&cy=0.12&zoom=40", &r), 0));
	mw_resp_free(&r);
	pthread_join(th, NULL);
	cr_assert(eq(long, pr.r.status, 200), "%s", pr.r.body);
	struct decoded *d = malloc(sizeof *d);
	decode((const unsigned char *)pr.r.body, pr.r.len, d);
	int said = 0;
	for (size_t i = 0; i < d->nstr; i++)
		said |= strstr(d->str[i], "SIGPROF timers") != NULL &&
			strstr(d->str[i], "perf_event_open") != NULL;
	cr_expect(said, "the comment says SIGPROF, and why");
	double share;
	const char *name = top(d, &share);
	cr_expect(eq(int, is_kernel(name), 1), "top function %s", name);
	free(d);
	mw_resp_free(&pr.r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

/* ---- block (off-CPU) profiles ---- */

#include "render/pool.h"
#include "trace/trace.h"


/* Delay and contentions of the samples with this reason (and thread, unless NULL). */
static double block_ms(const struct decoded *d, const char *reason, const char *thread,
		       uint64_t *count)
{
	uint64_t ns = 0, n = 0;
	for (size_t i = 0; i < nsamples; i++) {
		const char *r = label(d, &samples[i], "reason"), *t = label(d, &samples[i], "thread");
		if ((!reason || (r && strcmp(r, reason) == 0)) && (!thread || (t && strcmp(t, thread) == 0))) {
			ns += samples[i].ns;
			n += samples[i].count;
		}
	}
	if (count)
		*count = n;
	return ns / 1e6;
}

static const struct trace_desc TD_NAP = {"wait: nap", "test", {0}, 0};

static void nap_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&t, &t) < 0)
		;
}

/* 4 naps of 50 ms at a wait site, 100 ms of spinning, 100 ms asleep
 * outside any wait site; then it ends (inside the window). */
static void *known_main(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "known");
	for (int i = 0; i < 4; i++) {
		uint64_t t0 = trace_wait_begin(&TD_NAP);
		trace_wait_sleep(&TD_NAP);
		nap_ms(50);
		trace_wait_end(&TD_NAP, t0, trace_now());
	}
	spin_here(0.1);
	nap_ms(100);
	return NULL;
}

static struct decoded *block_profile(struct prof_block *b, struct prof_block_facts *f)
{
	unsigned char *gz;
	size_t len;
	cr_assert(eq(int, prof_block_pprof(b, &gz, &len, f), 0));
	struct decoded *d = malloc(sizeof *d);
	decode(gz, len, d);
	free(gz);
	return d;
}

Test(block, a_threads_naps_spins_and_sleeps_add_up_by_reason, .timeout = 30)
{
	struct prof_block *b;
	struct prof_block_facts f;
	pthread_t th;
	cr_assert(eq(int, prof_block_start(&b), 0));
	cr_expect(eq(int, trace_waits_on(), 1));
	pthread_create(&th, NULL, known_main, NULL);
	pthread_join(th, NULL);
	struct decoded *d = block_profile(b, &f);
	uint64_t n;
	double nap = block_ms(d, "nap", "known", &n);
	cr_expect(eq(u64, n, 4), "4 naps, not %llu", (unsigned long long)n);
	cr_expect(all(ge(dbl, nap, 195), le(dbl, nap, 260)), "napped %.1f ms, not about 200", nap);
	double blocked = block_ms(d, "blocked", "known", NULL);
	cr_expect(all(ge(dbl, blocked, 90), le(dbl, blocked, 160)), "blocked %.1f ms outside, not about 100",
		  blocked);
	double runnable = block_ms(d, "runnable", "known", NULL);
	double whole = block_ms(d, NULL, "known", NULL);
	cr_expect(all(ge(dbl, whole, nap + blocked - 0.001), le(dbl, whole, nap + blocked + runnable + 0.001)),
		  "the thread's samples: %.1f ms", whole);
	/* The main thread waited in pthread_join: blocked, outside a wait site. */
	cr_expect(lt(dbl, 300, block_ms(d, "blocked", NULL, NULL)));
	/* The nap's stack names the function that napped, under its wait. */
	bool found = false;
	for (size_t i = 0; i < nsamples; i++) {
		const char *r = label(d, &samples[i], "reason");
		if (r && strcmp(r, "nap") == 0)
			found = strcmp(d->str[d->fn_name[d->loc_fn[samples[i].leaf]]], "wait: nap") == 0;
	}
	cr_expect(found, "the nap's leaf frame is its wait");
	cr_expect(all(le(u64, (uint64_t)(f.off_cpu_ns * 0.99), f.delay_ns),
		      le(u64, f.delay_ns, (uint64_t)(f.off_cpu_ns * 1.01) + 1000000)),
		  "delay %llu ns against off-CPU %llu ns", (unsigned long long)f.delay_ns,
		  (unsigned long long)f.off_cpu_ns);
	decoded_free(d);
	prof_block_free(b);
	cr_expect(eq(int, trace_waits_on(), 0), "disarmed once freed");
}

static void nap_job(void *arg, uintptr_t i)
{
	(void)arg;
	(void)i;
	nap_ms(1);
}

Test(block, the_pools_rendezvous_is_the_producers_reason, .timeout = 30)
{
	struct pool *p;
	struct prof_block *b;
	cr_assert(eq(int, pool_create(&p, 2, 0, "blk", NULL), 0));
	cr_assert(eq(int, prof_block_start(&b), 0));
	/* Jobs of a millisecond: the producer outlasts its spin and sleeps
	 * until a worker takes each; then the workers wait for work. */
	for (int i = 0; i < 200; i++)
		cr_assert(eq(int, pool_submit(p, nap_job, NULL, 0), 0));
	nap_ms(50);
	prof_block_stop(b);
	struct decoded *d = block_profile(b, NULL);
	uint64_t n;
	block_ms(d, "rendezvous", NULL, &n);
	cr_expect(lt(u64, 0, n), "no rendezvous");
	block_ms(d, "no work", NULL, &n);
	cr_expect(lt(u64, 0, n), "no worker waited for work");
	decoded_free(d);
	prof_block_free(b);
	pool_destroy(p);
}

Test(block, one_at_a_time_and_nothing_armed_between)
{
	struct prof_block *a, *b;
	cr_expect(eq(int, trace_waits_on(), 0));
	cr_assert(eq(int, prof_block_start(&a), 0));
	cr_expect(eq(int, prof_block_start(&b), -EBUSY));
	cr_expect(eq(int, prof_block_active(), 1));
	prof_block_free(a);
	cr_expect(eq(int, prof_block_active(), 0));
	cr_expect(eq(int, trace_waits_on(), 0));
	cr_assert(eq(int, prof_block_start(&b), 0));
	prof_block_free(b);
}

Test(prof_e2e, block_profile_and_the_index, .timeout = 60)
{
	const char *const args[] = {"--workers", "2", "--cache-mb", "0", "--access-log", "off", NULL};
	struct mw_fetch pr = {.m = &srv, .path = "/debug/pprof/block?seconds=1"};
	pthread_t th;
	struct mw_resp r;

	start(args);
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/", &r), 0));
	cr_expect(eq(long, r.status, 200));
	cr_expect(eq(str, r.type, "text/html; charset=utf-8"));
	cr_expect(not(eq(ptr, strstr(r.body, "href=\"block?seconds=30\""), NULL)));
	cr_expect(not(eq(ptr, strstr(r.body, "href=\"profile?seconds=30\""), NULL)));
	mw_resp_free(&r);
	pthread_create(&th, NULL, mw_fetch_main, &pr);
	nap_ms(200);
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/block?seconds=1", &r), 0));
	cr_expect(eq(long, r.status, 409), "a second block profile at once");
	cr_expect(lt(int, 0, atoi(r.retry_after)), "409 without Retry-After");
	mw_resp_free(&r);
	for (int i = 0; i < 3; i++) {
		char url[96];
		snprintf(url, sizeof url, "/mandelbrot?w=256&h=256&cy=0.1%d", i);
		cr_assert(eq(int, mw_get(&srv, url, &r), 0));
		mw_resp_free(&r);
	}
	pthread_join(th, NULL);
	cr_assert(eq(long, pr.r.status, 200), "%s", pr.r.body);
	cr_expect(not(eq(ptr, strstr(pr.r.disposition, "mandelweb-block.pprof"), NULL)));
	struct decoded *d = malloc(sizeof *d);
	decode((const unsigned char *)pr.r.body, pr.r.len, d);
	uint64_t n;
	block_ms(d, "network", "http-0", &n);
	cr_expect(lt(u64, 0, n), "the HTTP thread's poll is its wait");
	block_ms(d, "no work", NULL, &n);
	cr_expect(lt(u64, 0, n), "the workers waited for work");
	decoded_free(d);
	go_pprof_expect(&pr.r, "-top -tagfocus reason=network", "grep -q 'wait: network'");
	mw_resp_free(&pr.r);
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/block?seconds=x", &r), 0));
	cr_expect(eq(long, r.status, 400));
	mw_resp_free(&r);
	cr_assert(eq(int, mw_get(&srv, "/debug/pprof/block?hz=1", &r), 0));
	cr_expect(eq(long, r.status, 400));
	cr_expect(not(eq(ptr, strstr(r.body, "/debug/pprof/block takes seconds="), NULL)), "%s", r.body);
	mw_resp_free(&r);
	cr_expect(eq(int, mw_stop(&srv, SIGTERM), 0));
}

Test(block, the_sieves_filters_wait_on_their_neighbours, .timeout = 60)
{
	char path[64], cmd[200];
	snprintf(path, sizeof path, "/tmp/mw-sieve-%d.pprof", (int)getpid());
	snprintf(cmd, sizeof cmd, "%s/sieve -n 50 -blockprofile %s >/dev/null 2>&1", MW_BIN, path);
	cr_assert(eq(int, system(cmd), 0));
	FILE *f = fopen(path, "rb");
	cr_assert(not(eq(ptr, f, NULL)));
	static unsigned char gz[1 << 20];
	size_t len = fread(gz, 1, sizeof gz, f);
	fclose(f);
	struct decoded *d = malloc(sizeof *d);
	decode(gz, len, d);
	/* Every filter thread waited on a neighbour: to receive from the one
	 * before it or to send to the one after (a filter whose values came
	 * while it spun sleeps only at the chain's end, on either; one still
	 * spinning when the window closes has not slept: a few may not). */
	unsigned filters = 0;
	for (int p = 2; p < 230; p++) {
		char name[16];
		int prime = 1;
		for (int q = 2; q * q <= p; q++)
			prime &= p % q != 0;
		if (!prime)
			continue;
		snprintf(name, sizeof name, "filter-%d", p);
		uint64_t n, m;
		block_ms(d, "receive", name, &n);
		block_ms(d, "send", name, &m);
		filters += n + m > 0;
	}
	cr_expect(le(u32, 45, filters), "%u of 49 filters waited on a neighbour", filters);
	uint64_t sends;
	block_ms(d, "send", NULL, &sends);
	cr_expect(lt(u64, 0, sends), "no filter waited to send");
	decoded_free(d);
	remove(path);
}
