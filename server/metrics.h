/*
 * metrics.h - the service's counters and histograms, and their Prometheus
 * text exposition (format 0.0.4).
 *
 * Owns: request counts by route and status, latency histograms (request,
 * render, encode), admission and connection counters. Gauges that live
 * elsewhere (the pool, the cache, requests in flight) are passed in at
 * scrape time in struct metrics_gauges.
 *
 * Thread-safety: the record functions are lock-free (relaxed atomic adds:
 * a scrape may see one counter updated before another, which Prometheus
 * tolerates); metrics_write may run concurrently with them.
 */
#ifndef MW_METRICS_H
#define MW_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "server/cache.h"
#include "server/routes.h"
#include "server/slowtrace.h"
#include "trace/trace.h"

enum histogram { HIST_REQUEST, HIST_RENDER, HIST_ENCODE, HIST_COUNT };

/* Events counted, each a mandelweb_<name>_total counter (metrics.c). */
enum count {
	COUNT_REJECTED,         /* a 429 or 503 from admission control, every reason */
	COUNT_CANCELLED,        /* a render stopped: nobody waited for it, or shutdown */
	COUNT_HEADER_DEADLINE,  /* a connection closed: its headers came too slowly */
	COUNT_SEND_DEADLINE,    /* a connection closed: it read its answer too slowly */
	COUNT_LIBRARY_REPLY,    /* libmicrohttpd answered an error itself (400, 413, 414, 431, 505) */
	COUNT_EVICTED,          /* an idle connection closed at --max-conns to let a new one in */
	COUNT_CONN_REFUSED,     /* a new connection refused at --max-conns (503, closed) */
	COUNT_HELD,             /* a refusal held: its client asked again before its Retry-After */
	COUNT_N
};

/* Why a request was refused (429 or 503), each a
 * mandelweb_admission_refused_total{reason} sample (metrics.c names them). */
enum refusal {
	REFUSED_OVER_SHARE, /* its client held more than its fair share (429) */
	REFUSED_WAIT,       /* the predicted wait was past --max-wait */
	REFUSED_TOO_BIG,    /* alone past --max-wait or --max-render-mb */
	REFUSED_MEMORY,     /* --max-render-mb of pixels admitted */
	REFUSED_COUNT,      /* --max-inflight pictures admitted */
	REFUSED_SENDING,    /* --max-send-mb of answers being sent */
	REFUSED_DRAINING,   /* shutting down */
	REFUSED_QUEUE,      /* the pool's job queue was full */
	REFUSED_N
};
const char *refusal_name(enum refusal r); /* "over_share", "wait", ... */

struct metrics;

struct metrics_gauges {
	unsigned queue_depth, queue_capacity, workers, workers_busy;
	unsigned inflight, inflight_max;
	int draining;
	struct cache_stats cache;
	int trace_capture;        /* a /debug/trace capture is armed or streaming */
	unsigned trace_threads;   /* threads with a trace ring */
	uint64_t trace_bytes;     /* memory in trace rings */
	struct trace_kview_usage kview; /* the kernel's view of threads in traces */
	struct slowtrace_stats slow;    /* --trace-slow's saves */
	const char *kernel;       /* the escape-time kernel serving (build_info) */
	double admission_wait;    /* seconds a new picture would wait (admission.h) */
	double admission_rate;    /* pixel-iterations a second, as measured */
	double admission_backlog; /* pixel-iterations admitted, not done */
	uint64_t admission_bytes; /* pixel memory of admitted pictures */
	uint64_t render_bytes_max;
	uint64_t shared;          /* requests answered from another's render */
	unsigned memfds;          /* sealed bodies held (blob.h) */
	uint64_t memory_ceiling;  /* config_memory_ceiling */
	uint64_t sending, sending_max; /* body bytes queued to clients, and the bound */
	unsigned admission_waiting;   /* admitted pictures not yet handed to the pool */
	unsigned clients, clients_holding; /* client records (admission.h), and those holding pictures */
	double fair_share;            /* seconds of the wait budget each contending client may hold */
};

int metrics_create(struct metrics **out); /* 0 or -ENOMEM */
void metrics_destroy(struct metrics *m);

/* A finished request: its route, status, body bytes and duration. */
void metrics_request(struct metrics *m, enum route r, unsigned status, uint64_t bytes,
		     double seconds);
/* A render (admission to pixels, queue wait included) or an encode. */
void metrics_observe(struct metrics *m, enum histogram h, double seconds);
void metrics_count(struct metrics *m, enum count c);
void metrics_refused(struct metrics *m, enum refusal r);
void metrics_connection(struct metrics *m, int opened); /* 1: opened, 0: closed */

/* Writes the exposition to f. */
void metrics_write(struct metrics *m, const struct metrics_gauges *g, FILE *f);

#endif
