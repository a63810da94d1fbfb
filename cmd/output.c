/* output.c - see output.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cmd/output.h"

int output_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	size_t n = fwrite(data, 1, len, f);
	int rc = n == len ? 0 : -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Whether path ends with suffix. */
static int ends_with(const char *path, const char *suffix)
{
	size_t n = strlen(path), k = strlen(suffix);
	return n >= k && strcmp(path + n - k, suffix) == 0;
}

int output_trace(const char *prog, const char *path, struct trace_capture *c)
{
	static char buf[1 << 16];
	struct trace_facts f;
	size_t n;
	int gz = ends_with(path, ".gz");
	if (ends_with(path, ".pftrace") || ends_with(path, ".pftrace.gz"))
		trace_capture_format(c, TRACE_FORMAT_PERFETTO);
	FILE *out = gz ? NULL : fopen(path, "w");
	/* Level 1: a trace is repetitive, and big; its speed matters most. */
	gzFile zout = gz ? gzopen(path, "wb1") : NULL;

	if (!out && !zout) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno ? errno : ENOMEM));
		return -1;
	}
	uint64_t bytes = 0; /* the document's, before any gzip */
	while ((n = trace_capture_read(c, buf, sizeof buf)) > 0) {
		if (gz ? gzwrite(zout, buf, (unsigned)n) != (int)n : fwrite(buf, 1, n, out) != n)
			break;
		bytes += n;
	}
	if ((gz ? gzclose(zout) != Z_OK : fclose(out) != 0) || n > 0) {
		fprintf(stderr, "%s: %s: write failed\n", prog, path);
		return -1;
	}
	trace_capture_facts(c, &f);
	fprintf(stderr, "%s: trace %s: %llu events over %.3f ms, %llu lost%s; %llu bytes", prog, path,
		(unsigned long long)f.events, (f.end_ns - f.start_ns) / 1e6,
		(unsigned long long)f.lost,
		f.lost ? " (the oldest; raise -trace-ring to keep them)" : "", (unsigned long long)bytes);
	if (f.track_events)
		fprintf(stderr, " (%llu TrackEvents, %.1f bytes each)", (unsigned long long)f.track_events,
			(double)bytes / (double)f.track_events);
	fprintf(stderr, "\n");
	/* The same window again, as the summary, after the document. */
	trace_capture_rewind(c);
	trace_capture_format(c, TRACE_FORMAT_SUMMARY);
	while ((n = trace_capture_read(c, buf, sizeof buf)) > 0)
		fwrite(buf, 1, n, stderr);
	return 0;
}

int output_block_profile(const char *prog, const char *path, struct prof_block *b)
{
	unsigned char *gz;
	size_t len;
	struct prof_block_facts f;
	if (prof_block_pprof(b, &gz, &len, &f) < 0) {
		fprintf(stderr, "%s: block profile: out of memory\n", prog);
		return -1;
	}
	int rc = output_file(path, gz, len);
	free(gz);
	if (rc < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-rc));
		return -1;
	}
	fprintf(stderr, "%s: block profile %s: %u threads off a CPU %.1f ms (runnable %.1f ms); "
			"%llu samples, delay %.1f ms\n",
		prog, path, f.threads, f.off_cpu_ns / 1e6, f.runnable_ns / 1e6,
		(unsigned long long)f.samples, f.delay_ns / 1e6);
	return 0;
}
