/*
 * config.c - see config.h. One table describes every option once: its
 * flag, environment variable, kind, range and help line; parsing, the
 * environment and --help all read it.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "render/flag.h"
#include "render/kernel.h"
#include "render/picture.h"
#include "render/pool.h"
#include "render/version.h"
#include "server/config.h"
#include "server/debug.h"
#include "prof/prof.h"
#include "trace/trace.h"

enum kind { K_U32, K_I32, K_U64, K_BOOL, K_STR, K_SEC };

struct option {
	const char *flag, *env;
	enum kind kind;
	size_t off, size; /* size: of a K_STR buffer */
	uint64_t min, max;
	const char *help;
};

#define U32(f, e, field, lo, hi, h) {f, e, K_U32, offsetof(struct config, field), 0, lo, hi, h}
#define STR(f, e, field, h) \
	{f, e, K_STR, offsetof(struct config, field), sizeof((struct config *)0)->field, 0, 0, h}

static const struct option options[] = {
	STR("addr", "MANDELWEB_ADDR", addr, "address to listen on (0.0.0.0 in a container)"),
	U32("port", "MANDELWEB_PORT", port, 0, 65535, "TCP port; 0 picks a free one"),
	U32("workers", "MANDELWEB_WORKERS", workers, 1, POOL_MAX_WORKERS,
	    "render worker threads (default: the number of CPUs)"),
	{"max-wait", "MANDELWEB_MAX_WAIT", K_SEC, offsetof(struct config, max_wait), 0, 1, 3600000,
	 "seconds a picture may be predicted to wait, its own render included; past it, 503"},
	U32("max-inflight", "MANDELWEB_MAX_INFLIGHT", max_inflight, 1, 65536,
	    "pictures admitted at once, at most; past it, 503 (default: 64 x workers)"),
	U32("max-render-mb", "MANDELWEB_MAX_RENDER_MB", max_render_mb, 1, 1 << 20,
	    "MiB of pixels that admitted pictures may hold; past it, 503"),
	U32("queue", "MANDELWEB_QUEUE", queue, 1, POOL_MAX_QUEUE,
	    "render job queue bound (default: max-inflight x workers)"),
	U32("cache-mb", "MANDELWEB_CACHE_MB", cache_mb, 0, 1 << 20,
	    "MiB of encoded pictures kept; 0 turns the cache off"),
	{"max-cost", "MANDELWEB_MAX_COST", K_U64, offsetof(struct config, max_cost), 0, 1,
	 UINT64_MAX, "largest w*h*iter of one picture, in pixel-iterations"},
	U32("http-threads", "MANDELWEB_HTTP_THREADS", http_threads, 1, 64,
	    "libmicrohttpd epoll threads"),
	{"http-nice", "MANDELWEB_HTTP_NICE", K_I32, offsetof(struct config, http_nice), 0, 19, 19,
	 "the HTTP threads' nice relative to the workers' (-19..19): below 0, the workers' is raised, so answers (probes, refusals) come before renders; above 0, renders first"},
	U32("max-conns", "MANDELWEB_MAX_CONNS", max_conns, 1, 1000000, "open connections"),
	U32("timeout", "MANDELWEB_TIMEOUT", timeout, 1, 86400,
	    "seconds before an idle or stalled connection is closed"),
	U32("header-timeout", "MANDELWEB_HEADER_TIMEOUT", header_timeout, 1, 3600,
	    "seconds a request's headers may take, from the connection or its request line; past it, closed (408)"),
	U32("send-timeout", "MANDELWEB_SEND_TIMEOUT", send_timeout, 1, 3600,
	    "seconds an answer may take beyond its length at --min-send-rate; past it, closed (408)"),
	U32("min-send-rate", "MANDELWEB_MIN_SEND_RATE", min_send_rate, 1, 1 << 20,
	    "KiB a second a client must read an answer at, on average"),
	U32("max-send-mb", "MANDELWEB_MAX_SEND_MB", max_send_mb, 1, 1 << 20,
	    "MiB of answers being sent to clients; past it, uncached pictures are 503"),
	U32("drain", "MANDELWEB_DRAIN", drain, 0, 3600,
	    "seconds shutdown waits for accepted requests to be sent"),
	{"access-log", "MANDELWEB_ACCESS_LOG", K_BOOL, offsetof(struct config, access_log), 0, 0, 1,
	 "one line per request on stderr: on|off"},
	STR("kernel", "MANDELWEB_KERNEL", kernel, "escape-time kernel: auto, a name, or list"),
	U32("trace-max", "MANDELWEB_TRACE_MAX", trace_max, 1, 3600,
	    "longest /debug/trace?seconds= window, in seconds"),
	U32("trace-ring", "MANDELWEB_TRACE_RING", trace_ring, 64, 16777216,
	    "trace events kept per thread (64 bytes each, allocated on first use)"),
	U32("trace-spill-mb", "MANDELWEB_TRACE_SPILL_MB", trace_spill_mb, 0, 1 << 20,
	    "MiB of a /debug/trace window's records copied out of the rings to a temporary file in $TMPDIR as they fill, so that none is lost; 0: none (a window is what the rings hold)"),
	STR("trace-kernel", "MANDELWEB_TRACE_KERNEL", trace_kernel,
	    "the kernel's view of threads in traces (perf_event_open): auto|off|refuse (refuse: as if refused, to test; CPU profiles too)"),
	U32("profile-hz", "MANDELWEB_PROFILE_HZ", profile_hz, 1, 10000,
	    "CPU samples a second a thread in /debug/pprof/profile"),
	U32("trace-hz", "MANDELWEB_TRACE_HZ", trace_hz, 0, 10000,
	    "CPU samples a second a thread, with their stacks, in traces (0: none)"),
	STR("profile-sampler", "MANDELWEB_PROFILE_SAMPLER", profile_sampler,
	    "timer (each thread's CPU-clock timer and SIGPROF) or perf (perf_event_open; timer where refused)"),
	{"trace-slow", "MANDELWEB_TRACE_SLOW", K_SEC, offsetof(struct config, trace_slow), 0, 0,
	 3600000, "with --flight-recorder: a request whose answer takes longer than this many seconds from its headers saves the last seconds of trace to --trace-dir; 0: off"},
	{"trace-slow-every", "MANDELWEB_TRACE_SLOW_EVERY", K_SEC,
	 offsetof(struct config, trace_slow_every), 0, 0, 86400000,
	 "seconds between two saved slow traces, at least"},
	U32("trace-keep", "MANDELWEB_TRACE_KEEP", trace_keep, 1, 100000,
	    "saved slow traces kept in --trace-dir (the oldest deleted first)"),
	STR("trace-dir", "MANDELWEB_TRACE_DIR", trace_dir, "where slow requests' traces are saved"),
	{"single-flight", "MANDELWEB_SINGLE_FLIGHT", K_BOOL, offsetof(struct config, single_flight), 0, 0,
	 1, "identical uncached pictures in flight at once rendered once: on|off"},
	{"workshop", "MANDELWEB_WORKSHOP", K_BOOL, offsetof(struct config, workshop), 0, 0, 1,
	 "the Go workshop's service: every picture rendered, none kept or shared (--cache-mb 0 and --single-flight off, unless given): on|off"},
	{"flight-recorder", "MANDELWEB_FLIGHT_RECORDER", K_BOOL,
	 offsetof(struct config, flight_recorder), 0, 0, 1,
	 "trace all the time, so /debug/trace?last=N answers at once: on|off"},
	STR("debug-allow", "MANDELWEB_DEBUG_ALLOW", debug_allow,
	    "peers (CIDRs, comma-separated, or 'none') that may use /debug/"),
	STR("debug-token", "MANDELWEB_DEBUG_TOKEN", debug_token,
	    "a bearer token that may use /debug/ from anywhere"),
	STR("trusted-proxy", "MANDELWEB_TRUSTED_PROXY", trusted_proxy,
	    "proxies (CIDRs, comma-separated, or 'none') whose X-Forwarded-For names the client: fair shares, /debug/ and the log go by it"),
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void usage(FILE *f, const struct config *d)
{
	fprintf(f, "usage: mandelweb [--flag value | --flag=value]... [--version] [--help]\n"
		   "  (-flag works as --flag; each flag falls back to its environment variable,\n"
		   "  then the default)\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		const char *p = (const char *)d + o->off;
		char def[80];
		switch (o->kind) {
		case K_U32:
			if (*(const uint32_t *)p == 0 && o->min > 0)
				snprintf(def, sizeof def, "derived");
			else
				snprintf(def, sizeof def, "%" PRIu32, *(const uint32_t *)p);
			break;
		case K_I32: snprintf(def, sizeof def, "%" PRId32, *(const int32_t *)p); break;
		case K_U64: snprintf(def, sizeof def, "%" PRIu64, *(const uint64_t *)p); break;
		case K_BOOL: snprintf(def, sizeof def, "%s", *(const int *)p ? "on" : "off"); break;
		case K_STR: snprintf(def, sizeof def, "%s", p); break;
		case K_SEC: snprintf(def, sizeof def, "%g", *(const double *)p); break;
		}
		fprintf(f, "  --%-15s %-25s %s [%s]\n", o->flag, o->env, o->help, def);
	}
	fprintf(f, "  --kernel: auto picks the first this CPU runs of:");
	char runs[128];
	fprintf(f, " %s ('list': every kernel of this build)\n",
		kernel_names(runs, sizeof runs, true));
}

/* Sets option o from text v: 0, or -EINVAL with a reason in why. */
static int set(struct config *c, const struct option *o, const char *v, char *why, size_t len)
{
	char *p = (char *)c + o->off;
	switch (o->kind) {
	case K_U32: {
		uint32_t x;
		if (picture_parse_u32(v, (uint32_t)o->min, (uint32_t)o->max, &x) == 0) {
			*(uint32_t *)p = x;
			return 0;
		}
		snprintf(why, len, "--%s must be an integer in %" PRIu64 "..%" PRIu64, o->flag, o->min,
			 o->max);
		return -EINVAL;
	}
	case K_I32: { /* min and max: magnitudes, -min..max */
		char *end;
		errno = 0;
		long x = strtol(v, &end, 10);
		if (((*v >= '0' && *v <= '9') || (*v == '-' && v[1] >= '0' && v[1] <= '9')) && !*end &&
		    !errno && x >= -(long)o->min && x <= (long)o->max) {
			*(int32_t *)p = (int32_t)x;
			return 0;
		}
		snprintf(why, len, "--%s must be an integer in -%" PRIu64 "..%" PRIu64, o->flag, o->min,
			 o->max);
		return -EINVAL;
	}
	case K_U64: {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (*v >= '0' && *v <= '9' && !*end && !errno && x >= o->min) {
			*(uint64_t *)p = x;
			return 0;
		}
		snprintf(why, len, "--%s must be an integer in %" PRIu64 "..%" PRIu64, o->flag, o->min,
			 o->max);
		return -EINVAL;
	}
	case K_BOOL:
		if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true")) {
			*(int *)p = 1;
			return 0;
		}
		if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) {
			*(int *)p = 0;
			return 0;
		}
		snprintf(why, len, "--%s must be on or off", o->flag);
		return -EINVAL;
	case K_SEC: { /* decimal seconds; min and max in milliseconds */
		double x;
		if (picture_parse_double(v, &x) == 0 && x * 1000 >= (double)o->min && x * 1000 <= (double)o->max) {
			*(double *)p = x;
			return 0;
		}
		snprintf(why, len, "--%s must be a number of seconds in %g..%g", o->flag, o->min / 1000.0,
			 o->max / 1000.0);
		return -EINVAL;
	}
	case K_STR:
		if (strlen(v) < o->size && *v) {
			strcpy(p, v);
			return 0;
		}
		snprintf(why, len, "--%s must be 1..%zu characters", o->flag, o->size - 1);
		return -EINVAL;
	}
	return -EINVAL;
}

static const struct option *find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strlen(options[i].flag) == len && !strncmp(options[i].flag, name, len))
			return &options[i];
	return NULL;
}

static int bad(FILE *err, const char *why)
{
	return flag_bad(err, "mandelweb", why);
}

int config_given(const struct config *c, const char *flag)
{
	const struct option *o = find(flag, strlen(flag));
	return o && (c->given >> (o - options) & 1);
}

/* What follows from the workers, unless given. */
static void derive(struct config *c)
{
	if (!config_given(c, "max-inflight"))
		c->max_inflight = 64 * c->workers;
	if (!config_given(c, "queue"))
		c->queue = c->max_inflight * c->workers;
}

int config_parse(struct config *c, int argc, char **argv, FILE *out, FILE *err)
{
	long cpus = pool_usable_cpus();
	char why[160];
	*c = (struct config){
		.addr = "127.0.0.1",
		.port = 8080,
		.workers = cpus > 0 && cpus <= POOL_MAX_WORKERS ? (uint32_t)cpus : 1,
		.cache_mb = 64,
		.max_wait = 1.0,
		.max_render_mb = 256, /* the largest picture, 8192x8192 RGB, is 192 MiB */
		.max_cost = 4000000000u, /* ~1 s of one core at the default picture's rate */
		/* HTTP threads and their nice, chosen by wrk -t2 -d3s on the cached
		 * default picture, 2 cores, wrk on the same cores (this is the
		 * table in docs/service.md): 1 thread at nice 0 gave 13.6k/15.6k/15.6k/15.3k
		 * req/s at -c 16/64/256/1024 (p99 4.8/9.4/23.5/143 ms); 2 threads
		 * at nice 0 gave 15.1k/15.0k/15.7k/12.6k: a second thread only
		 * pays past 2 cores. Their nice relative to the workers': -5
		 * (the workers run at +5), so a probe or a refusal is not queued
		 * behind renders for a CPU. Measured under a wrk -c1024 flood of
		 * distinct pictures held to 25% of a CPU, /healthz every 100 ms,
		 * 2-vCPU AMD EPYC (Zen 3), three runs each: p99 24/37/30 ms at
		 * -5 against 33/52/30 ms at 0, pictures 57-62/s either way (the
		 * HTTP threads use ~7% of a CPU then: early refusals are held).
		 * Above 0 (HTTP threads nicer) made /healthz take seconds. */
		.http_threads = 1,
		.http_nice = -5,
		.max_conns = 4096,
		.timeout = 30,
		/* nginx's client_header_timeout is 60 s and send_timeout 60 s
		 * between two writes; here a request's headers are a few hundred
		 * bytes and an answer's pace is measured over all of it: 10 s, and
		 * 10 s beyond a 13 MB PNG's 820 s at 16 KiB/s (a slow phone
		 * reads 100 KiB/s and more). */
		.header_timeout = 10,
		.send_timeout = 10,
		.min_send_rate = 16,
		.max_send_mb = 256,
		.drain = 10,
		.access_log = 1,
		.single_flight = 1,
		.kernel = "auto",
		.trace_max = 60,
		.trace_ring = 262144,
		.trace_spill_mb = 1024,
		.trace_kernel = "auto",
		.profile_hz = PROF_HZ_DEFAULT,
		.trace_hz = PROF_HZ_DEFAULT,
		.profile_sampler = "timer",
		.trace_slow_every = 60,
		.trace_keep = 10,
		.trace_dir = ".",
		.debug_allow = "127.0.0.0/8,::1",
		.trusted_proxy = "none",
	};
	struct config defaults = *c;

	_Static_assert(NOPTIONS <= 64, "struct config's given has a bit per option");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *v = getenv(options[i].env);
		if (v && set(c, &options[i], v, why, sizeof why) < 0) {
			char msg[200];
			snprintf(msg, sizeof msg, "%s: %s", options[i].env, why);
			return bad(err, msg);
		}
		if (v)
			c->given |= 1ull << i;
	}
	int version = 0;
	for (int i = 1; i < argc; i++) {
		struct flag f;
		if (flag_split(argv[i], &f) < 0) {
			snprintf(why, sizeof why, "unexpected argument '%.40s': every argument is a flag", argv[i]);
			return bad(err, why);
		}
		if (flag_is(&f, "help") || flag_is(&f, "h") || flag_is(&f, "version")) {
			if (f.value) {
				snprintf(why, sizeof why, "--%.*s takes no value", (int)f.len, f.name);
				return bad(err, why);
			}
			if (!flag_is(&f, "version")) {
				usage(out, &defaults);
				return 1;
			}
			version = 1;
			continue;
		}
		const struct option *o = find(f.name, f.len);
		if (!o) {
			snprintf(why, sizeof why, "unknown flag '%.40s'", argv[i]);
			return bad(err, why);
		}
		const char *v = f.value;
		if (!v && o->kind == K_BOOL) {
			static const char *const words[] = {"on", "off", "1", "0", "true", "false"};
			v = "on"; /* a bare --access-log; a following on|off is its value */
			for (size_t w = 0; i + 1 < argc && w < 6; w++)
				if (!strcmp(argv[i + 1], words[w]))
					v = argv[++i];
		}
		if (!v && !(v = flag_value(&f, argc, argv, &i))) {
			snprintf(why, sizeof why, "--%s needs a value", o->flag);
			return bad(err, why);
		}
		if (set(c, o, v, why, sizeof why) < 0)
			return bad(err, why);
		c->given |= 1ull << (o - options);
	}
	if (strcmp(c->kernel, "list") == 0) {
		kernel_list(out);
		return 1;
	}
	const struct kernel *k = kernel_pick(c->kernel, why, sizeof why);
	if (!k)
		return bad(err, why);
	if (version) {
		char libs[80];
		snprintf(libs, sizeof libs, "libmicrohttpd %s, libdw %s", MHD_get_version(),
			 prof_libdw_version());
		version_print(out, "mandelweb", k, libs);
		return 1;
	}
	if (trace_kview_parse(c->trace_kernel) < 0) {
		snprintf(why, sizeof why, "--trace-kernel must be auto, off or refuse");
		return bad(err, why);
	}
	if (strcmp(c->profile_sampler, "timer") != 0 && strcmp(c->profile_sampler, "perf") != 0) {
		snprintf(why, sizeof why, "--profile-sampler must be timer or perf");
		return bad(err, why);
	}
	if (c->trace_slow > 0 && !c->flight_recorder) {
		snprintf(why, sizeof why, "--trace-slow needs --flight-recorder on: the trace it saves is the recorder's");
		return bad(err, why);
	}
	struct debug_acl acl;
	if (debug_acl_parse(&acl, c->debug_allow, c->debug_token, why, sizeof why) < 0)
		return bad(err, why);
	struct cidr_list trusted;
	if (cidr_list_parse(&trusted, c->trusted_proxy, "trusted-proxy", why, sizeof why) < 0)
		return bad(err, why);
	if (c->workshop) {
		if (!config_given(c, "cache-mb"))
			c->cache_mb = 0;
		if (!config_given(c, "single-flight"))
			c->single_flight = 0;
	}
	derive(c);
	return 0;
}

void config_fit(struct config *c, const struct cgroup_limits *l, FILE *log)
{
	const uint64_t mib = 1u << 20;
	if (l->cpus > 0 && !config_given(c, "workers")) {
		double w = ceil(l->cpus - 1e-9);
		uint32_t want = w < 1 ? 1 : w > POOL_MAX_WORKERS ? POOL_MAX_WORKERS : (uint32_t)w;
		if (want < c->workers) {
			fprintf(log, "mandelweb: CPU limit %.2f (%s): --workers %u, not %u\n", l->cpus,
				l->cpu_file, want, c->workers);
			c->workers = want;
			derive(c);
		}
	}
	if (!l->memory)
		return;
	uint64_t budget = (uint64_t)(l->memory * CONFIG_MEMORY_SHARE), was = config_memory_ceiling(c);
	if (was <= budget)
		return;
	/* Scaled together: each bound keeps its share of the ceiling. What is
	 * fixed (24 MiB, and bounds given by flags) is not scaled. */
	static const struct {
		const char *flag;
		size_t off;
		uint32_t floor;
	} b[] = {
		{"cache-mb", offsetof(struct config, cache_mb), 0},
		{"max-render-mb", offsetof(struct config, max_render_mb), 1},
		{"max-send-mb", offsetof(struct config, max_send_mb), 1},
		{"max-conns", offsetof(struct config, max_conns), 16},
		{"trace-ring", offsetof(struct config, trace_ring), 4096},
	};
#define BOUND(cfg, i) (*(uint32_t *)((char *)(cfg) + b[i].off))
	struct config fixed = *c;
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
		if (!config_given(c, b[i].flag))
			BOUND(&fixed, i) = 0;
	uint64_t rest = config_memory_ceiling(&fixed);
	double f = budget > rest ? (double)(budget - rest) / (double)(was - rest) : 0;
	char said[256] = "";
	size_t n = 0;
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
		if (config_given(c, b[i].flag))
			continue;
		uint32_t v = (uint32_t)floor(BOUND(c, i) * f);
		BOUND(c, i) = v > b[i].floor ? v : b[i].floor;
		int k = snprintf(said + n, sizeof said - n, " --%s %u", b[i].flag, BOUND(c, i));
		n += k > 0 && (size_t)k < sizeof said - n ? (size_t)k : 0;
	}
#undef BOUND
	uint64_t now = config_memory_ceiling(c);
	fprintf(log, "mandelweb: memory limit %llu MiB (%s): a ceiling of %llu MiB, not %llu:%s\n",
		(unsigned long long)(l->memory / mib), l->memory_file, (unsigned long long)(now / mib),
		(unsigned long long)(was / mib), said);
	if (now > budget)
		fprintf(log, "mandelweb: the flags given alone need more than %.0f%% of the memory limit: "
			     "the container may be killed for memory under load\n", CONFIG_MEMORY_SHARE * 100);
}

uint64_t config_memory_ceiling(const struct config *c)
{
	const uint64_t mib = 1u << 20;
	uint64_t render = (uint64_t)c->max_render_mb * mib;
	return 24 * mib                                   /* code, libraries, stacks, calibration */
	       + (uint64_t)c->cache_mb * mib              /* the cache, as it counts itself */
	       + render                                   /* pixels of admitted pictures */
	       + render + render / 64                     /* their PNGs (at most zlib's bound of them) */
	       + (uint64_t)c->max_send_mb * mib           /* answers being sent, admitted past */
	       + (uint64_t)c->max_conns * 34 * 1024       /* a connection: libmicrohttpd's 32 KiB pool, ours */
	       /* rings, once traced: the events lane, counters (a half) and the
	        * kernel's states (a quarter), and the kernel's own 132 KiB ring */
	       + (uint64_t)(c->workers + c->http_threads + 2) * (c->trace_ring * 64 * 7 / 4 + 132 * 1024);
}
