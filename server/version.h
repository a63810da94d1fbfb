/*
 * version.h - mandelweb's version, as /metrics (mandelweb_build_info) and
 * the start-up log report it. Bumped by hand at a release; a constant.
 */
#ifndef MW_VERSION_H
#define MW_VERSION_H

#define MANDELWEB_VERSION "0.1.0"

#endif
