/*
 * config.h - mandelweb's settings: flags, their environment fallbacks,
 * defaults, ranges, --help and --version.
 *
 * Owns: struct config and the table of options. A flag wins over its
 * environment variable, which wins over the default. Called from main at
 * start-up only (not thread-safe; nothing else runs yet).
 */
#ifndef MW_CONFIG_H
#define MW_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "server/cgroup.h"

struct config {
	char addr[64];          /* IPv4 or IPv6 literal */
	uint32_t port;          /* 0: any free port */
	uint32_t workers;       /* render threads */
	uint32_t queue;         /* render job queue bound */
	double max_wait;        /* seconds a picture may wait (admission.h) */
	uint32_t max_inflight;  /* pictures being rendered at once, at most */
	uint32_t max_render_mb; /* pixel memory of admitted pictures */
	uint32_t cache_mb;      /* 0: no cache */
	uint64_t max_cost;      /* w * h * iter of one picture */
	uint32_t http_threads;  /* libmicrohttpd's epoll threads */
	int32_t http_nice;      /* their nice value relative to the workers' (below 0: the workers' is raised) */
	uint32_t max_conns;     /* open connections */
	uint32_t timeout;       /* seconds an idle connection may stay */
	uint32_t header_timeout; /* seconds a request's headers may take */
	uint32_t send_timeout;  /* seconds an answer may take, beyond its bytes at min_send_rate */
	uint32_t min_send_rate; /* KiB a second a client must read an answer at */
	uint32_t max_send_mb;   /* body bytes queued to clients; past it, renders are 503 */
	uint32_t drain;         /* seconds shutdown waits for responses */
	int access_log;         /* one line per request on stderr */
	int single_flight;      /* identical misses in flight share a render */
	int workshop;           /* the Go workshop's service: no cache, no single flight (unless given) */
	char kernel[16];        /* "auto" or a kernel name */
	uint32_t trace_max;     /* longest /debug/trace window, seconds */
	uint32_t trace_ring;    /* trace records kept per thread */
	uint32_t trace_spill_mb; /* a window's spill file, at most (0: none: the rings are the window) */
	char trace_kernel[8];   /* the kernel's view in traces: auto|off|refuse */
	uint32_t profile_hz;    /* CPU profile samples a second a thread */
	uint32_t trace_hz;      /* CPU samples a second a thread in traces; 0: none */
	char profile_sampler[8]; /* timer (SIGPROF, the default) or perf */
	double trace_slow;      /* seconds: a slower request saves the last seconds of trace; 0 off */
	double trace_slow_every; /* seconds between two such saves, at least */
	uint32_t trace_keep;    /* saved traces kept in trace_dir */
	char trace_dir[256];    /* where they go */
	int flight_recorder;    /* rings always recording: /debug/trace?last=N */
	char debug_allow[256];  /* CIDRs that may use /debug/ (comma-separated) */
	char debug_token[128];  /* or a bearer token that may; "" for none */
	char trusted_proxy[256]; /* CIDRs whose X-Forwarded-For names the client; "none" */
	uint64_t given;         /* a bit per option that a flag or the environment set */
};

/* The most memory the process may hold with these settings, in bytes: the
 * formula of docs/service.md (Memory ceiling), which the tests hold it to under floods.
 * workers: the number resolved at start. */
uint64_t config_memory_ceiling(const struct config *c);

/* Fills c from defaults, then the environment, then argv (render/flag.h's
 * syntax: --flag value, --flag=value, -flag as --flag). Returns 0; 1 after
 * printing --help, --version or --kernel list to out; or 2 after printing
 * the reason and "see --help" to err. */
int config_parse(struct config *c, int argc, char **argv, FILE *out, FILE *err);

/* Whether a flag (its name, "cache-mb") was given, by flag or environment. */
int config_given(const struct config *c, const char *flag);

/* Fits what no flag set to a container's limits (cgroup.h): --workers to
 * the CPU limit (rounded up); and, when the memory ceiling is past
 * CONFIG_MEMORY_SHARE of the memory limit, the bounds it is made of
 * (--cache-mb, --max-render-mb, --max-send-mb, --max-conns, --trace-ring)
 * scaled down together until it fits. What it changed is said on log, one
 * line each; a limit the given flags alone pass is said too. */
#define CONFIG_MEMORY_SHARE 0.9 /* the rest: kernel socket buffers, allocator slack */
void config_fit(struct config *c, const struct cgroup_limits *l, FILE *log);

#endif
