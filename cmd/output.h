/*
 * output.h - what the command-line programs (cmd/mandelbrot.c,
 * cmd/sieve.c) write at their end: a file, a trace capture (JSON or
 * Perfetto's protobuf, gzipped by name) followed by its summary on
 * stderr, a block profile. Each says what it wrote, or why not, on stderr,
 * in the program's name.
 *
 * Owns: nothing. Thread-safety: one caller at a time (write_trace's
 * buffer is static).
 */
#ifndef MW_CMD_OUTPUT_H
#define MW_CMD_OUTPUT_H

#include <stddef.h>

#include "prof/prof.h"
#include "trace/capture.h"

/* 0, or -errno. */
int output_file(const char *path, const void *data, size_t len);
/* The capture's document to path (Perfetto's protobuf when the name ends
 * in .pftrace, else Chrome JSON; gzipped when it ends in .gz), a line on
 * stderr, then the window's summary: 0 or -1. */
int output_trace(const char *prog, const char *path, struct trace_capture *c);
/* The block profile (stopped first) to path, and a line: 0 or -1. */
int output_block_profile(const char *prog, const char *path, struct prof_block *b);

#endif
