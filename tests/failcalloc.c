/*
 * failcalloc.c - an LD_PRELOAD shim that makes calloc fail (NULL, ENOMEM)
 * for one request size, so a program's allocation-failure paths run in
 * the real binary (as failmalloc and libfiu do). FAILCALLOC_SIZE=N: every
 * calloc whose n * size is N fails; unset: none does.
 *
 * Under ASan: ASAN_OPTIONS=verify_asan_link_order=0 lets the shim come
 * first; its calloc then hands the others to the sanitizer's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *(*next_calloc)(size_t, size_t);
/* dlsym may calloc while next_calloc is looked up: from here, zeroed. */
static _Alignas(16) unsigned char boot[4096];
static size_t boot_used;

void *calloc(size_t n, size_t size)
{
	static size_t fail = SIZE_MAX;
	static int looking, read_env;
	if (!next_calloc) {
		if (looking) {
			size_t want = (n * size + 15) & ~(size_t)15;
			if (boot_used + want > sizeof boot)
				return NULL;
			void *p = boot + boot_used;
			boot_used += want;
			return p;
		}
		looking = 1;
		void *sym = dlsym(RTLD_NEXT, "calloc");
		memcpy(&next_calloc, &sym, sizeof sym); /* POSIX's object-to-function pointer */
		looking = 0;
		if (!next_calloc)
			return NULL;
	}
	if (!read_env) {
		const char *v = getenv("FAILCALLOC_SIZE");
		if (v)
			fail = (size_t)strtoull(v, NULL, 10);
		read_env = 1;
	}
	if (size && n == fail / size && n * size == fail) {
		errno = ENOMEM;
		return NULL;
	}
	return next_calloc(n, size);
}
