/*
 * help.h - the text of GET /help: what the service answers and how to ask,
 * with this server's own limits (--max-cost, its workers, --trace-max) and
 * examples addressed to where the client reached it.
 * Pure; any thread.
 */
#ifndef MW_HELP_H
#define MW_HELP_H

#include <stdint.h>

struct help_facts {
	const char *origin; /* "http://127.0.0.1:8080", as the examples use it */
	uint64_t max_cost;  /* --max-cost */
	unsigned workers;   /* the pool's */
	unsigned trace_max; /* --trace-max */
	int cache;          /* pictures are kept (--cache-mb above 0) */
};

/* The text, malloc'd (the caller frees it), or NULL when out of memory. */
char *help_text(const struct help_facts *f);

/* The origin of the examples: the request's Host where it is a plain
 * host[:port] ([A-Za-z0-9.:[]-], 1..100 bytes), else addr:port (a wildcard
 * address as loopback). */
void help_origin(char *out, size_t len, const char *host, const char *addr, unsigned port);

#endif
