/*
 * hash.h - FNV-1a, 64 bits, of a NUL-terminated string: the cache's bucket
 * hash and the ETag of a canonical picture key. Pure; any thread.
 */
#ifndef MW_HASH_H
#define MW_HASH_H

#include <stdint.h>

static inline uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3u;
	return h;
}

#endif
