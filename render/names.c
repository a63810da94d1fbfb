/* names.c - name <-> value lookups (linear: every table has a few rows). */
#include <errno.h>
#include <string.h>

#include "render/names.h"

int names_parse(const struct name_value *t, size_t n, const char *s, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].name, s) == 0) {
			*out = t[i].value;
			return 0;
		}
	}
	return -EINVAL;
}

const char *names_name(const struct name_value *t, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].value == v)
			return t[i].name;
	return "?";
}
