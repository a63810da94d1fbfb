/*
 * metrics.c - see metrics.h. Histograms keep cumulative-free bucket counts
 * (one atomic add per observation) and are summed into Prometheus's
 * cumulative form when written. Sums are kept in nanoseconds as integers so
 * they can be atomic without a CAS loop on a double.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "prof/prof.h"
#include "render/kernel.h"
#include "server/metrics.h"
#include "render/version.h"
#include "trace/trace.h"

static const unsigned statuses[] = {200, 304, 400, 403, 404, 405, 408, 409, 413, 414,
				    429, 431, 444, 499, 500, 503, 505};
#define NSTATUS (sizeof statuses / sizeof statuses[0])
#define STATUS_OTHER NSTATUS

/* Seconds; a 512x512 render is ~10 ms, so the buckets are dense there. */
static const double bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
				0.1,    0.2,   0.5,   1,     2,    5,    10};
#define NBUCKET (sizeof bounds / sizeof bounds[0] + 1) /* + the +Inf bucket */

struct hist {
	atomic_uint_fast64_t bucket[NBUCKET];
	atomic_uint_fast64_t sum_ns;
};

struct metrics {
	atomic_uint_fast64_t requests[ROUTE_COUNT][NSTATUS + 1];
	atomic_uint_fast64_t bytes[ROUTE_COUNT];
	struct hist request[ROUTE_COUNT];
	struct hist other[HIST_COUNT]; /* HIST_RENDER, HIST_ENCODE */
	atomic_uint_fast64_t counts[COUNT_N], conns_opened, conns_closed;
	atomic_uint_fast64_t refused[REFUSED_N];
};

static const char *const refusal_names[REFUSED_N] = {
	[REFUSED_OVER_SHARE] = "over_share", [REFUSED_WAIT] = "wait", [REFUSED_TOO_BIG] = "too_big",
	[REFUSED_MEMORY] = "memory", [REFUSED_COUNT] = "count", [REFUSED_SENDING] = "sending",
	[REFUSED_DRAINING] = "draining", [REFUSED_QUEUE] = "queue",
};

const char *refusal_name(enum refusal r)
{
	return r < REFUSED_N ? refusal_names[r] : "other";
}

static const char *const count_names[COUNT_N][2] = {
	[COUNT_REJECTED] = {"mandelweb_rejected_total", "Requests refused (429 or 503) by admission control, every reason."},
	[COUNT_CANCELLED] = {"mandelweb_renders_cancelled_total",
			     "Renders stopped before the end: every client waiting for them had gone, or shutdown's drain ended."},
	[COUNT_HEADER_DEADLINE] = {"mandelweb_header_deadline_total",
				   "Connections closed because a request's headers took longer than --header-timeout (408 in the log)."},
	[COUNT_SEND_DEADLINE] = {"mandelweb_send_deadline_total",
				 "Connections closed because an answer was read slower than --min-send-rate allows (408 in the log)."},
	[COUNT_EVICTED] = {"mandelweb_connections_evicted_total",
			   "Idle connections (kept alive, or not yet sending a request) closed at --max-conns to let a new client in."},
	[COUNT_CONN_REFUSED] = {"mandelweb_connections_refused_total",
				"New connections answered 503 and closed at --max-conns (none idle to close)."},
	[COUNT_HELD] = {"mandelweb_admission_held_total",
			"Refusals held before they were answered: the client asked again before the Retry-After it was given."},
	[COUNT_LIBRARY_REPLY] = {"mandelweb_library_replies_total",
				 "Error answers libmicrohttpd gave itself (malformed or oversized requests)."},
};

int metrics_create(struct metrics **out)
{
	/* calloc: all-zero bytes are valid zero atomics on every target we build for. */
	*out = calloc(1, sizeof **out);
	return *out ? 0 : -ENOMEM;
}

void metrics_destroy(struct metrics *m)
{
	free(m);
}

static void hist_observe(struct hist *h, double seconds)
{
	size_t b = 0;
	while (b < NBUCKET - 1 && seconds > bounds[b])
		b++;
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
}

void metrics_request(struct metrics *m, enum route r, unsigned status, uint64_t bytes,
		     double seconds)
{
	size_t s = 0;
	while (s < NSTATUS && statuses[s] != status)
		s++;
	atomic_fetch_add_explicit(&m->requests[r][s], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->bytes[r], bytes, memory_order_relaxed);
	hist_observe(&m->request[r], seconds);
}

void metrics_observe(struct metrics *m, enum histogram h, double seconds)
{
	hist_observe(&m->other[h], seconds);
}

void metrics_count(struct metrics *m, enum count c)
{
	atomic_fetch_add_explicit(&m->counts[c], 1, memory_order_relaxed);
}

void metrics_refused(struct metrics *m, enum refusal r)
{
	if (r < REFUSED_N)
		atomic_fetch_add_explicit(&m->refused[r], 1, memory_order_relaxed);
}

void metrics_connection(struct metrics *m, int opened)
{
	atomic_fetch_add_explicit(opened ? &m->conns_opened : &m->conns_closed, 1,
				  memory_order_relaxed);
}

static uint64_t load(atomic_uint_fast64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static void hist_write(FILE *f, const char *name, const char *labels, struct hist *h)
{
	uint64_t cum = 0;
	const char *sep = *labels ? "," : "";
	for (size_t b = 0; b < NBUCKET; b++) {
		cum += load(&h->bucket[b]);
		if (b < NBUCKET - 1)
			fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[b],
				(unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
				(unsigned long long)cum);
	}
	const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
	fprintf(f, "%s_sum%s%s%s %.9f\n", name, open, labels, close, load(&h->sum_ns) / 1e9);
	fprintf(f, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cum);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		(unsigned long long)v);
}

/* Scheduler latency, always on: what the kernel counts for each thread
 * (/proc/self/task/N/schedstat), read now and summed by class. */
static void sched_write(FILE *f)
{
	static const char *const prefix[] = {"worker-", "http-"};
	static const char *const cls[] = {"workers", "http", "other"};
	struct prof_sched sum[3];
	prof_sched_classes(prefix, 2, sum);
	fputs("# HELP mandelweb_sched_runnable_seconds_total Time threads were runnable but not running "
	      "(waiting for a CPU: the kernel's run_delay), by class of thread.\n"
	      "# TYPE mandelweb_sched_runnable_seconds_total counter\n", f);
	for (int c = 0; c < 3; c++)
		fprintf(f, "mandelweb_sched_runnable_seconds_total{class=\"%s\"} %.9f\n", cls[c],
			sum[c].runnable / 1e9);
	fputs("# HELP mandelweb_sched_running_seconds_total Time threads ran on a CPU, by class of thread.\n"
	      "# TYPE mandelweb_sched_running_seconds_total counter\n", f);
	for (int c = 0; c < 3; c++)
		fprintf(f, "mandelweb_sched_running_seconds_total{class=\"%s\"} %.9f\n", cls[c],
			sum[c].oncpu / 1e9);
	fputs("# HELP mandelweb_sched_threads Threads of each class now.\n"
	      "# TYPE mandelweb_sched_threads gauge\n", f);
	for (int c = 0; c < 3; c++)
		fprintf(f, "mandelweb_sched_threads{class=\"%s\"} %u\n", cls[c], sum[c].threads);
	/* While the tracer was armed: each preempted thread's wait for a CPU,
	 * from the kernel's view of the traced threads. */
	uint64_t h[3][TRACE_DELAY_BUCKETS] = {{0}}, hs[3] = {0};
	for (unsigned i = 0; i < trace_ring_count(); i++) {
		uint64_t b[TRACE_DELAY_BUCKETS], s;
		char name[16];
		int tid = trace_ring_tid(i);
		if (!tid || trace_kview_delays(i, b, &s) < 0)
			continue;
		prof_thread_name(tid, name, sizeof name);
		int c = strncmp(name, prefix[0], strlen(prefix[0])) == 0   ? 0
			: strncmp(name, prefix[1], strlen(prefix[1])) == 0 ? 1
									    : 2;
		for (int k = 0; k < TRACE_DELAY_BUCKETS; k++)
			h[c][k] += b[k];
		hs[c] += s;
	}
	fputs("# HELP mandelweb_sched_runnable_delay_seconds While the tracer was armed: how long a "
	      "preempted thread waited for a CPU, from the kernel's view, by class of thread.\n"
	      "# TYPE mandelweb_sched_runnable_delay_seconds histogram\n", f);
	for (int c = 0; c < 3; c++) {
		uint64_t cum = 0;
		double bound = 1e-6;
		for (int k = 0; k < TRACE_DELAY_BUCKETS; k++, bound *= 4) {
			cum += h[c][k];
			if (k < TRACE_DELAY_BUCKETS - 1)
				fprintf(f, "mandelweb_sched_runnable_delay_seconds_bucket{class=\"%s\",le=\"%g\"} %llu\n",
					cls[c], bound, (unsigned long long)cum);
			else
				fprintf(f, "mandelweb_sched_runnable_delay_seconds_bucket{class=\"%s\",le=\"+Inf\"} %llu\n",
					cls[c], (unsigned long long)cum);
		}
		fprintf(f, "mandelweb_sched_runnable_delay_seconds_sum{class=\"%s\"} %.9f\n", cls[c],
			hs[c] / 1e9);
		fprintf(f, "mandelweb_sched_runnable_delay_seconds_count{class=\"%s\"} %llu\n", cls[c],
			(unsigned long long)cum);
	}
}

void metrics_write(struct metrics *m, const struct metrics_gauges *g, FILE *f)
{
	char labels[64];

	fprintf(f, "# HELP mandelweb_build_info The version, the architecture and the kernel serving.\n"
		   "# TYPE mandelweb_build_info gauge\n"
		   "mandelweb_build_info{version=\"%s\",arch=\"%s\",kernel=\"%s\"} 1\n",
		MANDELWEB_VERSION, kernel_arch, g->kernel ? g->kernel : "none");
	fputs("# HELP mandelweb_http_requests_total Requests answered, by route and status.\n"
	      "# TYPE mandelweb_http_requests_total counter\n", f);
	for (int r = 0; r < ROUTE_COUNT; r++) {
		for (size_t s = 0; s <= NSTATUS; s++) {
			uint64_t n = load(&m->requests[r][s]);
			if (n == 0)
				continue;
			if (s < NSTATUS)
				fprintf(f, "mandelweb_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
					route_name((enum route)r), statuses[s], (unsigned long long)n);
			else
				fprintf(f, "mandelweb_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
					route_name((enum route)r), (unsigned long long)n);
		}
	}
	fputs("# HELP mandelweb_http_response_bytes_total Body bytes sent, by route.\n"
	      "# TYPE mandelweb_http_response_bytes_total counter\n", f);
	for (int r = 0; r < ROUTE_COUNT; r++)
		fprintf(f, "mandelweb_http_response_bytes_total{route=\"%s\"} %llu\n", route_name((enum route)r),
			(unsigned long long)load(&m->bytes[r]));
	fputs("# HELP mandelweb_http_request_duration_seconds From the request line to the last byte queued.\n"
	      "# TYPE mandelweb_http_request_duration_seconds histogram\n", f);
	for (int r = 0; r < ROUTE_COUNT; r++) {
		snprintf(labels, sizeof labels, "route=\"%s\"", route_name((enum route)r));
		hist_write(f, "mandelweb_http_request_duration_seconds", labels, &m->request[r]);
	}
	fputs("# HELP mandelweb_render_duration_seconds From admission to pixels ready (queue wait included).\n"
	      "# TYPE mandelweb_render_duration_seconds histogram\n", f);
	hist_write(f, "mandelweb_render_duration_seconds", "", &m->other[HIST_RENDER]);
	fputs("# HELP mandelweb_encode_duration_seconds PNG encoding of one picture.\n"
	      "# TYPE mandelweb_encode_duration_seconds histogram\n", f);
	hist_write(f, "mandelweb_encode_duration_seconds", "", &m->other[HIST_ENCODE]);

	for (int c = 0; c < COUNT_N; c++)
		counter(f, count_names[c][0], count_names[c][1], load(&m->counts[c]));
	fputs("# HELP mandelweb_admission_refused_total Requests refused, by reason: over_share (429), wait, too_big, memory, count, sending, draining, queue (503).\n"
	      "# TYPE mandelweb_admission_refused_total counter\n", f);
	for (int r = 0; r < REFUSED_N; r++)
		fprintf(f, "mandelweb_admission_refused_total{reason=\"%s\"} %llu\n", refusal_names[r],
			(unsigned long long)load(&m->refused[r]));
	counter(f, "mandelweb_connections_opened_total", "TCP connections accepted.",
		load(&m->conns_opened));
	gauge(f, "mandelweb_connections", "TCP connections open now.",
	      (double)(load(&m->conns_opened) - load(&m->conns_closed)));
	gauge(f, "mandelweb_queue_depth", "Render jobs queued, not yet taken by a worker.",
	      g->queue_depth);
	gauge(f, "mandelweb_queue_capacity", "Bound of the render job queue.", g->queue_capacity);
	gauge(f, "mandelweb_workers", "Render worker threads.", g->workers);
	gauge(f, "mandelweb_workers_busy", "Workers running a job now.", g->workers_busy);
	gauge(f, "mandelweb_requests_in_flight", "Pictures admitted and not yet encoded.",
	      g->inflight);
	gauge(f, "mandelweb_requests_in_flight_max", "Bound of requests in flight.",
	      g->inflight_max);
	gauge(f, "mandelweb_draining", "1 while shutting down.", g->draining);
	gauge(f, "mandelweb_admission_wait_seconds",
	      "Predicted wait of a picture admitted now, before its own render.", g->admission_wait);
	gauge(f, "mandelweb_admission_rate", "Pixel-iterations a second the workers are measured to drain.",
	      g->admission_rate);
	gauge(f, "mandelweb_admission_backlog", "Pixel-iterations admitted and not yet rendered.",
	      g->admission_backlog);
	gauge(f, "mandelweb_admission_waiting", "Admitted pictures waiting in their clients' queues for the pool.",
	      g->admission_waiting);
	gauge(f, "mandelweb_admission_clients", "Clients admission keeps a record of: holding pictures, or recently served.",
	      g->clients);
	gauge(f, "mandelweb_admission_clients_holding", "Clients with admitted pictures.",
	      g->clients_holding);
	gauge(f, "mandelweb_admission_fair_share_seconds",
	      "Seconds of the wait budget each client may hold now (its max-min fair share; --max-wait when none contends).",
	      g->fair_share);
	gauge(f, "mandelweb_render_bytes", "Pixel memory of admitted pictures.",
	      (double)g->admission_bytes);
	gauge(f, "mandelweb_render_bytes_max", "Bound of mandelweb_render_bytes (--max-render-mb).",
	      (double)g->render_bytes_max);
	counter(f, "mandelweb_singleflight_shared_total",
		"Requests answered from an identical request's render (single flight).", g->shared);
	gauge(f, "mandelweb_trace_capture", "1 while a /debug/trace window is open or streaming.",
	      g->trace_capture);
	gauge(f, "mandelweb_trace_threads", "Threads with a trace ring.", g->trace_threads);
	gauge(f, "mandelweb_trace_ring_bytes", "Memory held by trace rings (allocated on first use).",
	      (double)g->trace_bytes);
	/* The label holds only what the kernel's strerror and our own text
	 * say: no quote or backslash to escape. */
	fprintf(f, "# HELP mandelweb_trace_kernel_view The kernel's view of threads in traces "
		   "(perf_event_open): on, off or refused, and why.\n"
		   "# TYPE mandelweb_trace_kernel_view gauge\n"
		   "mandelweb_trace_kernel_view{state=\"%s\",why=\"%s\"} 1\n",
		g->kview.state, g->kview.why);
	gauge(f, "mandelweb_trace_kernel_view_threads", "Traced threads with a context-switch event open.",
	      g->kview.threads);
	gauge(f, "mandelweb_trace_kernel_view_refused", "Traced threads whose event the kernel refused.",
	      g->kview.refused);
	counter(f, "mandelweb_trace_kernel_switches_total",
		"Context switches of traced threads read from the kernel.", g->kview.switches);
	counter(f, "mandelweb_trace_kernel_switches_lost_total",
		"Context switches the kernel's rings lost (full before they were drained).",
		g->kview.lost);
	counter(f, "mandelweb_trace_slow_saved_total",
		"Traces saved to --trace-dir for a request slower than --trace-slow.", g->slow.saved);
	counter(f, "mandelweb_trace_slow_skipped_total",
		"Slow requests whose trace was not saved: one pending, too soon (--trace-slow-every), or a trace being taken.",
		g->slow.skipped);
	counter(f, "mandelweb_trace_slow_failed_total", "Slow traces that could not be written.",
		g->slow.failed);
	counter(f, "mandelweb_cache_hits_total", "Pictures served from the cache.", g->cache.hits);
	counter(f, "mandelweb_cache_misses_total", "Pictures not in the cache.", g->cache.misses);
	counter(f, "mandelweb_cache_bypassed_total",
		"Of the misses, pictures rendered anew at the request's word (Cache-Control: no-cache or no-store, mode or workers given).",
		g->cache.bypassed);
	counter(f, "mandelweb_cache_evictions_total", "Entries evicted to stay in bounds.",
		g->cache.evictions);
	gauge(f, "mandelweb_cache_bytes", "Bytes held by the cache.", (double)g->cache.bytes);
	gauge(f, "mandelweb_cache_capacity_bytes", "Bound of the cache.", (double)g->cache.capacity);
	gauge(f, "mandelweb_cache_entries", "Pictures in the cache.", (double)g->cache.entries);
	gauge(f, "mandelweb_memory_ceiling_bytes", "The most memory these settings let the process hold (docs/service.md, Memory ceiling).",
	      (double)g->memory_ceiling);
	gauge(f, "mandelweb_memfds", "Sealed bodies held (each one file descriptor), cached or being sent.",
	      g->memfds);
	gauge(f, "mandelweb_sending_bytes", "Body bytes of answers queued to clients, not yet sent.",
	      (double)g->sending);
	gauge(f, "mandelweb_sending_bytes_max", "Bound of mandelweb_sending_bytes (--max-send-mb): past it, new renders are 503.",
	      (double)g->sending_max);
	sched_write(f);
}
