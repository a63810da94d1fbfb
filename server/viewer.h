/*
 * viewer.h - the page of GET /: server/viewer.html, embedded at build time
 * (scripts/embed -> viewer_html[]), filled in for one server.
 *
 * The page is static but for two things it cannot ask cheaply: this
 * server's w*h*iter budget (so that a full-window picture fits it) and
 * whether the peer may use /debug/trace (then it offers the trace button).
 * viewer_init makes both variants of the page once, at start-up; serving
 * one costs no copy (MHD_RESPMEM_PERSISTENT).
 *
 * Owns: the variants (viewer_free frees them). Thread-safety: after
 * viewer_init, read-only, from any thread.
 */
#ifndef MW_VIEWER_H
#define MW_VIEWER_H

#include <stddef.h>
#include <stdint.h>

struct viewer {
	char *page[2]; /* [0] without the trace button, [1] with it */
	size_t len;
};

/* 0, -ENOMEM, or -EINVAL when the embedded page lacks a placeholder. */
int viewer_init(struct viewer *v, uint64_t budget);
const char *viewer_page(const struct viewer *v, int trace_allowed, size_t *len);
void viewer_free(struct viewer *v);

#endif
