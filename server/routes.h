/*
 * routes.h - the service's routes: which one a request is, and its name
 * (its path: the route label of /metrics and of traces).
 *
 * Owns: enum route and the table of paths (routes.c, beside the routing
 * and the /debug/ gate, which need the server's internals: internal.h).
 * Thread-safety: pure; any thread.
 */
#ifndef MW_ROUTES_H
#define MW_ROUTES_H

enum route { ROUTE_VIEWER, ROUTE_HELP, ROUTE_MANDELBROT, ROUTE_HEALTHZ, ROUTE_READYZ, ROUTE_METRICS,
	     ROUTE_TRACE, ROUTE_PPROF, ROUTE_PPROF_BLOCK, ROUTE_PPROF_INDEX, ROUTE_OTHER,
	     ROUTE_COUNT };

/* The route of a decoded path (ROUTE_OTHER: none). */
enum route route_of(const char *path);
/* Its path, or "other". */
const char *route_name(enum route r);

#endif
