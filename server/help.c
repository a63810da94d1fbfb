/* help.c - see help.h. Keep in step with README.md's API section. */
#include "render/picture.h"
#include "render/render.h"
#include "server/help.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char help_text[] =
	"mandelweb: the Mandelbrot set as PNG\n"
	"\n"
	"GET /                  the viewer: an HTML page to explore the set in a browser\n"
	"GET /help              this text\n"
	"GET|HEAD /mandelbrot   image/png; with no parameters the 512x512 workshop picture\n"
	"  w, h      size in pixels, 1.." STR(PICTURE_MAX_SIDE) " each (w*h at most 16777216)\n"
	"  cx, cy    centre of the view, -4..4 (any of cx, cy, zoom: an explicit view)\n"
	"  zoom      0.001..1e13; the shorter side spans 2.048/zoom\n"
	"  iter      iteration limit, 1..1000000 (default 1000)\n"
	"  colour    " COLOUR_NAMES " (color is accepted too; default gray)\n"
	"  mode      " RENDER_MODE_NAMES " (the unit a job claims: seq one job,\n"
	"            px/workers a pixel, row a row, auto bands of rows; default auto)\n"
	"  workers   jobs at once for this picture, 1..the server's workers\n"
	"  Each parameter at most once; anything else, or w*h*iter above the\n"
	"  server's budget, is a 400 with the reason. ETag + If-None-Match: 304.\n"
	"  Busy: 503 with Retry-After.\n"
	"GET /healthz           200 while the process runs\n"
	"GET /readyz            200 when taking work, 503 while draining\n"
	"GET /metrics           Prometheus text exposition\n"
	"GET /debug/trace       what every thread did, as Chrome trace JSON (open it in\n"
	"                       https://ui.perfetto.dev); loopback peers only by default\n"
	"  seconds   the window, 0.001..--trace-max (default 1): the answer starts\n"
	"            when it ends; one window at a time (409 + Retry-After)\n"
	"  last      with --flight-recorder: the last N seconds, at once\n"
	"  format    json (default), or summary: per thread the share running,\n"
	"            runnable and blocked (and on what), per request the phases'\n"
	"            percentiles, as plain text\n"
	"\n"
	"example: curl -o m.png 'http://127.0.0.1:8080/mandelbrot?cx=-0.743&cy=0.131&zoom=200&colour=smooth'\n"
	"         curl -o trace.json 'http://127.0.0.1:8080/debug/trace?seconds=5'\n";
