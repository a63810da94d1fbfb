/*
 * anatomy.h - the slowest requests of a window, each taken apart: its time
 * from the request line to its last byte split into its phases (queued:
 * admitted, waiting for a worker; render; encode; send; held; the rest
 * "other": reading it, deciding, handing the answer back), and its render
 * into what its jobs' threads did meanwhile (running, runnable: wanting a
 * CPU, blocked), with the job that finished last (the render's critical
 * path ends there). For the summary (summary.c), which feeds it.
 *
 * What it needs of the trace: the async slices of each request
 * ('request' with {method, route, status, bytes}, 'queued', 'render',
 * 'encode', 'send', 'held refusal') and each worker's 'job' spans that
 * name their request (argument 'request'), with the kernel's view of
 * their thread for the split.
 *
 * Owns: a table of the window's requests: after a first pass over the
 * window (anatomy_pick, anatomy_picked), of its ANATOMY_PICK slowest only,
 * so that its memory does not grow with the window's requests (a server's
 * 12 s summary window of a cached flood, 112-136 k requests, peaked at
 * 136 MB when every request had an entry, and at 33 MB so). Thread-safety:
 * one user.
 */
#ifndef MW_TRACE_ANATOMY_H
#define MW_TRACE_ANATOMY_H

#include <stdint.h>
#include <stdio.h>

#include "trace/chrome.h"

struct anatomy;

#define ANATOMY_PICK 20 /* the requests a picked anatomy takes apart, at most */

struct anatomy *anatomy_new(void); /* NULL: out of memory */
/* The first pass: one record of the window (any order; only the requests'
 * whole slices count); then anatomy_picked, before the records again. */
void anatomy_pick(struct anatomy *a, const struct chrome_rec *e);
void anatomy_picked(struct anatomy *a);
/* An async slice of the window (others are ignored). */
void anatomy_async(struct anatomy *a, const struct chrome_rec *e);
/* A job of request id on thread: [t0, t1), of which runnable and blocked
 * ns by the kernel's view (known: whether the thread has one). */
void anatomy_job(struct anatomy *a, uint64_t id, const char *thread, uint64_t t0, uint64_t t1,
		 uint64_t runnable, uint64_t blocked, int known);
/* Request id followed another's render (single flight: 'resume follower'),
 * and thread resumed it. */
void anatomy_follower(struct anatomy *a, uint64_t id, const char *thread);
/* Request id was resumed by thread (the worker that encoded its PNG). */
void anatomy_resumer(struct anatomy *a, uint64_t id, const char *thread);
/* The n slowest requests, as text on f (NULL: none); then frees a. */
void anatomy_text(struct anatomy *a, FILE *f, unsigned n);
/* The same as a JSON array of objects, one a request, slowest first
 * (durations in ns): {"id", "method", "route", "status", "total_ns",
 * "queued_ns", "render_ns", "encode_ns", "send_ns", "held_ns", "other_ns",
 * "followed", "resumed_by", "jobs", "job_ns", "threads": [..], "running_ns",
 * "runnable_ns", "blocked_ns" (absent without a kernel view),
 * "critical_thread", "critical_ns"}; then frees a. */
void anatomy_json(struct anatomy *a, FILE *f, unsigned n);

#endif
