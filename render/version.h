/*
 * version.h - Mandelweb's version, as --version, /metrics
 * (mandelweb_build_info) and the start-up log report it (bumped by hand at
 * a release), and the text of both programs' --version.
 * Pure; any thread.
 */
#ifndef MW_VERSION_H
#define MW_VERSION_H

#include <stdio.h>

#include "render/kernel.h"

#define MANDELWEB_VERSION "0.1.0"

/* --version: "PROG VERSION", the kernel k (none when NULL) and those this
 * CPU runs, the compiler, and the libraries' versions: libpng and zlib as
 * loaded, libdeflate as built, then more (the program's others, e.g.
 * "libdw 0.188"; NULL: none). */
void version_print(FILE *f, const char *prog, const struct kernel *k, const char *more);

#endif
