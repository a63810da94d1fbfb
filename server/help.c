/* help.c - see help.h. Keep in step with docs/service.md's endpoints and parameters. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/picture.h"
#include "render/render.h"
#include "server/help.h"

char *help_text(const struct help_facts *f)
{
	char *text = NULL;
	size_t len;
	FILE *o = open_memstream(&text, &len);
	if (!o)
		return NULL;
	fprintf(o,
		"mandelweb: the Mandelbrot set as PNG\n"
		"\n"
		"GET /                  the viewer: an HTML page to explore the set in a browser\n"
		"GET /help              this text\n"
		"GET|HEAD /mandelbrot   image/png; with no parameters the 512x512 workshop picture\n"
		"  w, h      size in pixels, 1..%u each (w*h at most %u)\n"
		"  cx, cy    centre of the view, -4..4 (any of cx, cy, zoom: an explicit view)\n"
		"  zoom      0.001..1e13; the shorter side spans 2.048/zoom\n"
		"  iter      iteration limit, 1..%u (default 1000)\n"
		"  colour    " COLOUR_NAMES " (color is accepted too; default gray)\n"
		"  mode      " RENDER_MODE_NAMES " (the unit a job claims: seq one job,\n"
		"            px/workers a pixel, row a row, auto bands of rows; default auto)\n"
		"  workers   jobs at once for this picture, 1..%u (this server's workers)\n"
		"  w*h*iter may be at most %" PRIu64 " pixel-iterations here (--max-cost\n"
		"  raises it). Each parameter at most once; anything else is a 400 with\n"
		"  the reason. ETag + If-None-Match: 304.\n"
		"%s"
		"  Busy: 503 (429 for a client past its share) with Retry-After.\n"
		"GET /healthz           200 while the process runs\n"
		"GET /readyz            200 when taking work, 503 while draining\n"
		"GET /metrics           Prometheus text exposition\n"
		"GET /debug/pprof/profile  a CPU profile of every thread (gzipped profile.proto\n"
		"                       for go tool pprof); loopback peers only by default\n"
		"  seconds   the window, 1..%u (--trace-max; default 30); one at a time (409)\n"
		"GET /debug/pprof/block    where every thread waited off a CPU, and why (a block\n"
		"                       profile: reason no work, rendezvous, network, runnable...)\n"
		"GET /debug/pprof/      the index of the profiles and the trace\n"
		"GET /debug/trace       what every thread did, as Chrome trace JSON (open it in\n"
		"                       https://ui.perfetto.dev); loopback peers only by default\n"
		"  seconds   the window, 0.001..%u (--trace-max; default 1): the answer starts\n"
		"            when it ends; one window at a time (409 + Retry-After)\n"
		"  last      with --flight-recorder: the last N seconds, at once\n"
		"  format    json (default), perfetto, or summary: per thread the share\n"
		"            running, runnable and blocked (and on what), per request the\n"
		"            phases' percentiles and the slowest taken apart, as plain text\n"
		"            (summary-json: the same for tools)\n"
		"\n"
		"examples:\n"
		"  curl -o m.png '%s/mandelbrot?cx=-0.743&cy=0.131&zoom=200&colour=smooth'\n"
		"  curl -o row.png '%s/mandelbrot?mode=row'\n"
		"  curl -o trace.json '%s/debug/trace?seconds=5'\n"
		"  go tool pprof -top '%s/debug/pprof/profile?seconds=5'\n",
		PICTURE_MAX_SIDE, PICTURE_MAX_PIXELS, PICTURE_MAX_ITER, f->workers, f->max_cost,
		f->cache
			? "  A picture asked before comes from the cache (X-Cache: hit); one with mode\n"
			  "  or workers (an experiment), or asked with Cache-Control: no-cache or\n"
			  "  no-store, is rendered anew (X-Cache: bypass).\n"
			: "  This server keeps no pictures (--cache-mb 0): each is rendered.\n",
		f->trace_max, f->trace_max, f->origin, f->origin, f->origin, f->origin);
	if (fclose(o) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

void help_origin(char *out, size_t len, const char *host, const char *addr, unsigned port)
{
	size_t n = host ? strlen(host) : 0;
	if (n >= 1 && n <= 100 &&
	    strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:[]-") == n) {
		snprintf(out, len, "http://%s", host);
		return;
	}
	if (strcmp(addr, "0.0.0.0") == 0)
		addr = "127.0.0.1";
	else if (strcmp(addr, "::") == 0)
		addr = "::1";
	snprintf(out, len, strchr(addr, ':') ? "http://[%s]:%u" : "http://%s:%u", addr, port);
}
