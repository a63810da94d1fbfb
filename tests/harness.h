/*
 * harness.h - end-to-end test helpers: start the real bin/mandelweb on a
 * free loopback port, talk to it with libcurl, stop it with a signal.
 *
 * Owns: the child process (mw_stop reaps it) and each response's body
 * (mw_resp_free). Thread-safety: mw_get may be called from many threads at
 * once (one curl handle per call; curl_global_init runs in mw_start).
 */
#ifndef MW_HARNESS_H
#define MW_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mw {
	pid_t pid;
	unsigned port;
	char log[64]; /* the server's stderr, a temporary file */
};

struct mw_resp {
	long status;
	char *body;
	size_t len;
	char type[64], etag[64], retry_after[16], allow[32], xcache[8], cache_control[64],
		connection[16], encoding[16], disposition[96];
	double seconds;
};

/* Starts mandelweb with --port 0 and args (NULL-terminated); 0 once it
 * prints its port, else -1. */
int mw_start(struct mw *m, const char *const *args);

/* The same through /bin/sh -c shell, with the server's path as $0 and its
 * arguments as $@ (shell ends in exec "$0" "$@"): to start it somewhere
 * first, a cgroup say. shell NULL: as mw_start. */
int mw_start_via(struct mw *m, const char *shell, const char *const *args);

/* Sends sig and waits; returns the exit status, or 128 + signal. */
int mw_stop(struct mw *m, int sig);

/* method NULL: GET. headers: NULL-terminated "Name: value" list or NULL.
 * Returns 0, or a CURLcode on a transport error (r->status is then 0). */
int mw_request(const struct mw *m, const char *method, const char *path,
	       const char *const *headers, struct mw_resp *r);
/* The same on a caller's CURL handle (keep-alive across calls). */
int mw_request_on(void *curl, const struct mw *m, const char *method, const char *path,
		  const char *const *headers, struct mw_resp *r);
int mw_get(const struct mw *m, const char *path, struct mw_resp *r);
/* A GET from another loopback address (source: "127.0.0.2"; Linux routes
 * all of 127.0.0.0/8 to lo): to the server, another client. */
int mw_get_from(const struct mw *m, const char *source, const char *path,
		const char *const *headers, struct mw_resp *r);
void mw_resp_free(struct mw_resp *r);

/* Decodes a PNG with libpng's simplified API, asserting it has 'channels'
 * channels (1 gray, 3 RGB); the pixels, malloc'd. */
uint8_t *mw_png_decode(const void *data, size_t len, unsigned channels, uint32_t *w,
		       uint32_t *h);

/* A GET on a thread of its own: pthread_create(&t, NULL, mw_fetch_main, f)
 * with f->m and f->path set; after the join, f->rc and f->r as mw_get's. */
struct mw_fetch {
	const struct mw *m;
	char path[256];
	struct mw_resp r;
	int rc;
};
void *mw_fetch_main(void *fetch);

/* Sends len bytes of raw HTTP on a new connection and reads until the
 * server closes it or 2 s pass; the answer NUL-terminated in out. Returns
 * the bytes read, or -1 if it could not connect; *closed says whether the
 * server closed the connection (else the 2 s ran out). */
long mw_raw(const struct mw *m, const char *req, size_t len, char *out, size_t out_len,
	    int *closed);

/* A new loopback connection to m (rcvbuf > 0: SO_RCVBUF set before the
 * connect, to read slowly); the socket, or -1. */
int mw_connect(const struct mw *m, int rcvbuf);

/* One sample of m's /metrics now ("name" or "name{labels}"), or -1. */
double mw_scrape(const struct mw *m, const char *sample);

/* Seconds on CLOCK_MONOTONIC. */
double mw_now(void);

/* perf_event file descriptors this process holds (the tracer's kernel view
 * and the profiler open them only while armed). */
int mw_perf_fds(void);

/* Entries of directory path but . and .. (a process's fds in /proc/PID/fd,
 * its threads in /proc/PID/task), or -1 when it cannot be read. */
int mw_dir_entries(const char *path);

/* The value of one sample ("name" or "name{labels}") in a /metrics text,
 * or -1 when it is not there. */
double mw_metric(const char *text, const char *sample);

/* The server's stderr so far, NUL-terminated (free it). */
char *mw_log(const struct mw *m);

/* Up to cap - 1 bytes of the file at path into out, NUL-ended (empty when
 * it cannot be read), then removes the file: how many. A program's stderr
 * kept in a temporary file, say. */
size_t mw_slurp(const char *path, char *out, size_t cap);

#endif
