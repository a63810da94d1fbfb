/*
 * flag.h - the command-line syntax both programs share (bin/mandelbrot and
 * bin/mandelweb): a flag is -name or --name, and its value is the next
 * argument or follows an '=' (-w 64, -w=64, --w 64, --w=64), as Go's flag
 * package takes them. A bad flag or value is its one-line reason and a
 * pointer to --help, exit status 2; the usage itself goes to stdout only
 * when asked for.
 *
 * Owns the splitting of one argument and the shape of the error; each
 * program keeps its own table of names. Pure functions; any thread.
 */
#ifndef MW_FLAG_H
#define MW_FLAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct flag {
	const char *name;  /* after the dashes; not NUL-terminated when an '=' follows */
	size_t len;        /* of the name */
	const char *value; /* after the '=', or NULL: the next argument, if it takes one */
};

/* arg as a flag: 0, or -EINVAL when it is not one (no leading '-', one or
 * two dashes alone, three dashes, or an empty name before an '='). */
int flag_split(const char *arg, struct flag *f);

/* Whether f is called name. */
bool flag_is(const struct flag *f, const char *name);

/* f's value: its '=' part, else argv[*i + 1] (and *i moves past it); NULL
 * when it has neither. */
const char *flag_value(const struct flag *f, int argc, char **argv, int *i);

/* "prog: why" and "prog: see 'prog --help'" on err; returns 2, the exit
 * status of a bad command line. */
int flag_bad(FILE *err, const char *prog, const char *why);

#endif
