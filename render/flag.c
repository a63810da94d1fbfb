/* flag.c - see flag.h. */
#include <errno.h>
#include <string.h>

#include "render/flag.h"

int flag_split(const char *arg, struct flag *f)
{
	if (arg[0] != '-')
		return -EINVAL;
	const char *name = arg + 1 + (arg[1] == '-');
	if (*name == '\0' || *name == '-' || *name == '=')
		return -EINVAL;
	const char *eq = strchr(name, '=');
	*f = (struct flag){
		.name = name,
		.len = eq ? (size_t)(eq - name) : strlen(name),
		.value = eq ? eq + 1 : NULL,
	};
	return 0;
}

bool flag_is(const struct flag *f, const char *name)
{
	return strlen(name) == f->len && strncmp(f->name, name, f->len) == 0;
}

const char *flag_value(const struct flag *f, int argc, char **argv, int *i)
{
	if (f->value)
		return f->value;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int flag_bad(FILE *err, const char *prog, const char *why)
{
	fprintf(err, "%s: %s\n%s: see '%s --help'\n", prog, why, prog, prog);
	return 2;
}
