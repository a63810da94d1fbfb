/*
 * names.h - tables of names for enumerations that users type (colours,
 * modes, PNG options): the one lookup in both directions.
 * Pure functions over constant tables; callable from any thread.
 */
#ifndef MW_NAMES_H
#define MW_NAMES_H

#include <stddef.h>

struct name_value {
	const char *name;
	int value;
};

#define NAMES_COUNT(t) (sizeof(t) / sizeof((t)[0]))

/* The value called s: 0 and *out set, or -EINVAL. */
int names_parse(const struct name_value *t, size_t n, const char *s, int *out);

/* The first name of value v, or "?". */
const char *names_name(const struct name_value *t, size_t n, int v);

#endif
