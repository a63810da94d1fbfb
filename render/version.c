/* version.c - see version.h. */
#include <libdeflate.h>
#include <png.h>
#include <zlib.h>

#include "render/version.h"

/* The compiler: clang's __VERSION__ names itself, GCC's is the number. */
#if defined(__clang__)
#define COMPILER __VERSION__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "an unnamed compiler"
#endif

void version_print(FILE *f, const char *prog, const struct kernel *k, const char *more)
{
	char runs[128];
	fprintf(f, "%s %s\n", prog, MANDELWEB_VERSION);
	if (k) /* the sieve renders nothing */
		fprintf(f, "kernel: %s (this CPU runs: %s)\n", k->name, kernel_names(runs, sizeof runs, true));
	fprintf(f, "built by: %s, C%ld\n", COMPILER, (long)__STDC_VERSION__);
	fprintf(f, "libraries: libpng %s, zlib %s, libdeflate %s%s%s\n", png_get_libpng_ver(NULL),
		zlibVersion(), LIBDEFLATE_VERSION_STRING, more ? ", " : "", more ? more : "");
}
