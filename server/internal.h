/*
 * internal.h - what the server's files share, and no one else.
 *
 * Owns: struct server (the daemon, pool, cache, metrics, counters) and
 * struct request (one HTTP request, from its URI to the completed
 * callback, which alone frees it), the trace event descriptions, and the
 * helpers the route files answer with (srv_ prefix). Files:
 *   server.c            the request callbacks and the life cycle
 *   conn.c              connections, their deadlines, held refusals, a
 *                       request's end
 *   suspend.c           a request's suspend, resume and hang-up
 *   answer.c            answers: text, page, PNG, refusals; queueing one
 *   routes.c            routing and the /debug/ gate; the viewer, /help,
 *                       /healthz, /readyz, /metrics
 *   route_mandelbrot.c  /mandelbrot: cache, single flight, admission, render,
 *                       encode
 *   route_trace.c       /debug/trace
 *   route_pprof.c       /debug/pprof/profile, /debug/pprof/block, the index
 *                       /debug/pprof/
 * The core files call a route only through the callbacks it sets on its
 * request (gone, respond, done); routes.c calls each route's entry.
 *
 * Thread-safety: a request is touched by one thread at a time: its HTTP
 * thread, or, between suspend and resume, the worker or timer that will
 * resume it (see server.c). struct server's atomics are the only state
 * shared across threads, besides the modules it holds (each thread-safe).
 */
#ifndef MW_SERVER_INTERNAL_H
#define MW_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "prof/prof.h"
#include "render/pngenc.h"
#include "render/render.h"
#include "server/admission.h"
#include "server/blob.h"
#include "server/cache.h"
#include "server/cidr.h"
#include "server/client.h"
#include "server/config.h"
#include "server/deadline.h"
#include "server/slowtrace.h"
#include "server/debug.h"
#include "server/flight.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/query.h"
#include "server/routes.h"
#include "server/tracing.h"
#include "server/viewer.h"
#include "trace/capture.h"
#include "trace/trace.h"

#define CACHE_CONTROL_PNG "public, max-age=86400"
#define WHY_MAX 256
#define EXTRA_MAX 5 /* the viewer page's headers */
/* Refusals with a Retry-After up to this many seconds are answered from a
 * response made once per server (answer.c); longer ones are made anew. */
#define SRV_RETRY_MAX 60

struct server {
	struct config cfg;
	struct http *http;     /* the HTTP threads and their daemons (http.h) */
	struct pool *pool;
	struct cache *cache;
	struct admission *admission; /* which pictures are rendered (admission.h) */
	struct flights *flights;     /* identical misses rendered once (flight.h) */
	struct metrics *metrics;
	const struct kernel *kernel;
	struct pngenc_opts png;
	double px_factor;      /* a pixel's cost, rendered alone (px, workers modes): calibrate */
	unsigned port;
	atomic_uint inflight;  /* admitted pictures not yet encoded (a gauge) */
	atomic_uint suspended; /* connections a worker has yet to resume (drain) */
	atomic_uint active;   /* requests between URI and completion */
	atomic_int draining;
	atomic_int abort;      /* drain's deadline passed: every render is cancelled */
	atomic_uint conns;
	atomic_uint_fast64_t next_id;
	struct debug_acl acl;
	struct cidr_list trusted;    /* --trusted-proxy: peers whose X-Forwarded-For is believed */
	/* Refusals, made once: the body of each verdict, and its responses
	 * by Retry-After (answer.c); freed in server_stop. */
	char refusal_body[ADMIT_VERDICTS][WHY_MAX + 48];
	size_t refusal_len[ADMIT_VERDICTS];
	_Atomic(struct MHD_Response *) refusal[ADMIT_VERDICTS][SRV_RETRY_MAX + 1];
	struct deadline *tracing;   /* the end of /debug/trace's window */
	struct deadline *profiling; /* the end of /debug/pprof/profile's window */
	struct deadline *blocking;  /* the end of /debug/pprof/block's */
	struct slowtrace *slow;    /* --trace-slow; NULL when off */
	struct viewer viewer;
	struct conn *conn_list[HTTP_THREADS_MAX]; /* each HTTP thread's connections */
	struct request *held[HTTP_THREADS_MAX];   /* each HTTP thread's held refusals (conn.c: rq->hold) */
	atomic_uint_fast64_t sending; /* body bytes queued to clients, not completed */
};

enum state { ST_NEW, ST_RENDERING, ST_READY };

/* A connection's own state (libmicrohttpd's socket context), touched only
 * by its HTTP thread: the request it has started and not completed, if
 * any, and the deadline it is held to (conn.c). */
struct conn {
	struct conn *prev, *next; /* its HTTP thread's list (struct server.conns) */
	struct request *pending;
	int fd;
	double deadline;          /* srv_now() seconds; 0: none */
	double since;             /* opened, or its last request completed */
	enum count why;           /* COUNT_HEADER_DEADLINE or COUNT_SEND_DEADLINE */
	int expired;              /* closed by its deadline */
	const uint64_t *sent;     /* a streamed body's bytes so far (srv_deadline_stream), or NULL */
	double t_send;            /* when that body was queued */
	unsigned lib_status;      /* libmicrohttpd answered it with this error itself */
};

/* /mandelbrot's own (route_mandelbrot.c). */
struct mandelbrot_state {
	struct query q;                /* the picture, kept until its render starts */
	char key[QUERY_KEY_MAX];       /* its canonical key (cache, single flight) */
	struct admission_ticket ticket; /* what admission charged it */
	struct flight_waiter follow;   /* in its leader's list, while it follows one */
	int leads;                     /* leads a flight: answers its followers */
	int follows;                   /* follows one (in follow) */
	int fresh;                     /* rendered anew: no cache, no flight (query_cache_wish, an experiment) */
	int no_store;                  /* and not kept (Cache-Control: no-store) */
	atomic_int cancel;             /* its render's: set when nobody waits for it any more */
	double t_admit;                /* admitted: srv_now(), and the trace clock (0: not traced) */
	uint64_t tr_admit;
};

/* /debug/trace's own (route_trace.c). */
struct trace_state {
	struct trace_capture *capture; /* until the response owns it */
	enum trace_format format;      /* format= */
	bool gzip;                     /* sent gzipped (Accept-Encoding) */
};

/* /debug/pprof/profile's and /debug/pprof/block's own (route_pprof.c). */
enum pprof_kind { PPROF_CPU, PPROF_BLOCK };
struct pprof_state {
	enum pprof_kind kind;
	struct prof *prof;             /* until its window ends */
	struct prof_block *block;
};

/* A refusal held before it is answered (conn.c's srv_hold). */
struct hold {
	int on;
	double until;
	uint64_t tr;                   /* held since, trace clock (0: not traced) */
	struct request *prev, *next;   /* in its HTTP thread's list */
};

/* One HTTP request. The core (server.c, conn.c, suspend.c, answer.c) knows
 * the fields up to the route states, and reaches a route only through the
 * callbacks it set; each route knows its own state. */
struct request {
	struct server *srv;
	struct MHD_Connection *conn;
	struct http_thread *thread;    /* the HTTP thread it arrived on (http_resume) */
	struct conn *cn;               /* its connection, which knows it until it completes */
	double t0;                     /* srv_now(): its request line */
	double t_in, t_out;            /* its headers in, its answer queued: the server's part (0: not yet) */
	uint64_t id;                   /* for the tracer: async track and flow */
	uint64_t tr0, tr_respond;      /* trace clock (0: not traced) */
	const struct trace_desc *span; /* what the deciding handler call did */
	const char *reason;            /* a refusal's, for its span (refusal_name) */
	struct MHD_Response *kept;     /* the answer: a response that outlives it (a refusal's) */
	struct client client;          /* who asks (client.h), from dispatch on */
	int watch_fd;                  /* its socket while suspended and watched (http_watch), or -1 */
	struct hold hold;
	atomic_int hung_up;            /* its client hung up while it was suspended */
	int flow;                      /* admitted: its trace flow ends when it responds */
	int window;                    /* a /debug/ window: slow by design (no --trace-slow) */
	int hit;                       /* answered from the cache: a kept response (answer.c) */
	int close;                     /* Connection: close after this answer */
	int raw;                       /* answered on the socket (srv_answer_raw) */
	int http11;                    /* HTTP/1.1 (not 1.0) */
	char retry[12];
	enum route route;
	enum state state;
	unsigned status;
	const char *type;     /* Content-Type */
	const char *extra[EXTRA_MAX][2]; /* headers beside the usual ones */
	struct blob *png;     /* a PNG body */
	const char *page;     /* or a constant body (the viewer, the help): no copy */
	char *text;           /* or a malloc'd text body */
	size_t text_len;
	uint64_t bytes;
	uint64_t acked0;      /* the socket's acknowledged bytes when the answer was queued */
	uint64_t sending;     /* what it added to struct server.sending */
	char method[12];
	char etag[QUERY_ETAG_MAX];
	/* The route's, called by the core: */
	void (*gone)(struct request *rq);  /* its client hung up while suspended (srv_suspend) */
	/* Makes its answer's response (NULL: made from the fields above),
	 * setting bytes and the send deadline; headers are added after. */
	struct MHD_Response *(*respond)(struct request *rq);
	void (*done)(struct request *rq);  /* frees the route's state, at completion */
	struct mandelbrot_state mb;
	struct trace_state tr;
	struct pprof_state pp;
	char uri[]; /* as the client sent it */
};

/* Trace event descriptions (server.c); what each records is there. */
extern const struct trace_desc TD_ANSWER, TD_HIT, TD_ADMIT, TD_FOLLOW, TD_REJECT, TD_HOLD, TD_HELD, TD_ARM, TD_RESPOND, TD_ENCODE, TD_REQUEST, TD_QUEUED, TD_RENDERING, TD_ENCODING, TD_SENDING, TD_INFLIGHT, TD_CONNS, TD_CANCELLED, TD_RESUME_FOLLOWER;

double srv_now(void); /* CLOCK_MONOTONIC, seconds */

/* answer.c: each sets the status, type and body of rq and marks it ready. */
void srv_add_header(struct request *rq, const char *name, const char *value);
void srv_answer_text(struct request *rq, unsigned status, const char *body); /* body copied */
void srv_answer_page(struct request *rq, const char *type, const char *body, size_t len);
void srv_answer_png(struct request *rq, struct blob *png, const char *cache);
/* 503, counted with its reason; with Retry-After: retry seconds (0: none, when retrying
 * cannot help) */
void srv_busy(struct request *rq, enum refusal r, const char *why, unsigned retry);
/* Admission's refusal v: 429 over share, else 503, with Retry-After retry
 * (none for too big), counted by reason; answered from a response made
 * once (no copy, no allocation) while retry <= SRV_RETRY_MAX. */
void srv_refuse(struct request *rq, enum admission_verdict v, unsigned retry);
/* f gets the answer rq has (a follower, its leader's). */
void srv_answer_same(struct request *f, const struct request *rq);
/* Makes the refusals' bodies; frees their responses (server_stop). */
void srv_refusals_init(struct server *s);
void srv_refusals_free(struct server *s);
/* suspend.c: */
/* Suspends rq's connection (on its HTTP thread) and watches it for a
 * hang-up: the one way a request is suspended. gone(rq) is the route's own,
 * run on that thread if the client hangs up before the resume (rq->hung_up
 * is set first); NULL: nothing to stop. */
void srv_suspend(struct request *rq, void (*gone)(struct request *rq));
/* Ends a suspended request's wait (its answer is set): resumes it on its
 * HTTP thread, then drops 'suspended', so drain never stops the daemon with
 * a connection suspended. rq may be gone once this returns. From any thread. */
void srv_resume(struct request *rq);
/* A suspended request's client hung up (http.h's gone), on its thread. */
void srv_gone(void *cls, void *token);
/* A 400 for a bad query: why, one line, and no-store. */
void srv_bad_query(struct request *rq, const char *why);
enum MHD_Result srv_queue_answer(struct request *rq);

/* conn.c: connections, their deadlines, a request's end. The
 * libmicrohttpd callbacks (NOTIFY_CONNECTION, NOTIFY_COMPLETED,
 * EXTERNAL_LOGGER) and http.h's tick. */
void srv_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
		    enum MHD_ConnectionNotificationCode code);
void srv_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		   enum MHD_RequestTerminationCode why);
void srv_library_log(void *cls, const char *fmt, va_list ap);
int srv_tick(void *cls, struct http_thread *t);
void srv_idle(void *cls, struct http_thread *t, int last); /* the access log's lines go out */
int srv_full(void *cls, struct http_thread *t);
/* Answers rq on its socket directly, before libmicrohttpd has written or
 * parsed anything of it (uri_logged), and closes the connection after it
 * (rq->raw: the handler then refuses to answer again). For what the
 * library cannot be trusted to answer: a query of too many parameters. */
void srv_answer_raw(struct request *rq, unsigned status, const char *reason, const char *body);
/* Holds rq's answer (a refusal, set) for seconds: suspends it, and its
 * thread's tick resumes it when the time is up, at once when draining
 * (a hang-up meanwhile closes it with no answer). On rq's HTTP thread;
 * returns the trace description of the wait. A held request is in
 * struct server's held list of its thread (rq->hold). */
const struct trace_desc *srv_hold(struct request *rq, double seconds);
/* Takes rq out of its thread's held list (it is resumed by the caller). */
void srv_unhold(struct request *rq);

/* The deadline of rq's connection: its headers' (from now) or, once an
 * answer of bytes is queued, its send's. */
void srv_deadline_headers(struct request *rq);
void srv_deadline_none(struct request *rq);
void srv_deadline_send(struct request *rq, uint64_t bytes);
/* For a streamed body of unknown length: the deadline moves with *sent,
 * the bytes handed out so far. */
void srv_deadline_stream(struct request *rq, const uint64_t *sent);

/* What a picture costs in the mode asked, in pixel-iterations: *work, the
 * CPU it takes (--max-cost bounds it): w*h*iter, and in px and workers
 * modes w*h*(iter*px_factor + SRV_JOB_COST), a job a pixel; returned, what
 * admission charges for the wall time, work times workers over the threads
 * it may use (seq: one; jobs=N: N). Measured, one worker, avx2, 64x62 at
 * 10^6 iterations near the cusp: auto 3.75 s, px 22.9 s (6.1x), which
 * auto's charge let through as 0.68 s on two AVX-512 cores. */
#define SRV_JOB_COST 2000 /* about a microsecond of a worker's hand-off, in pixel-iterations */
double srv_charge(const struct server *s, const struct query *q, double *work);

/* Whether rq announces a body (Content-Length past 0, or
 * Transfer-Encoding). No route takes one: such a request is answered (404,
 * 405, else 413) on the handler's first call, before libmicrohttpd reads
 * any of the body or says 100 Continue, and its connection closed. */
int srv_has_body(const struct request *rq);

/* The route entries (routes.c's dispatch calls them): NULL when rq is
 * answered, or the trace description of what it was suspended for (it
 * then belongs to whoever resumes it). */
const struct trace_desc *srv_dispatch(struct request *rq, const char *url, const char *method);
const struct trace_desc *srv_mandelbrot(struct request *rq);
const struct trace_desc *srv_trace_page(struct request *rq);
const struct trace_desc *srv_pprof_page(struct request *rq, enum pprof_kind kind);
void srv_pprof_index(struct request *rq);
/* The windows' ends (deadline.h's fire), set up by server.c. */
void srv_trace_fired(void *ctx);
void srv_pprof_fired(void *ctx);
void srv_block_fired(void *ctx);
int srv_debug_ok(const struct request *rq); /* may this client use /debug/? */
/* Who rq comes from (rq->client): its peer, or behind a trusted proxy the
 * address the proxy forwarded (client.h). */
void srv_identify(struct request *rq);

#endif
