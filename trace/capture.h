/*
 * capture.h - a window of the rings, read out as Chrome Trace Event JSON.
 *
 * Owns: the one capture session (a second open is -EBUSY until the first
 * is freed) and the reader's small staging buffer. The JSON is produced as
 * it is read, straight from the rings: memory does not grow with the
 * trace.
 *
 * Output: the Chrome Trace Event JSON that chrome.h describes. An event is
 * in the window when it starts and ends inside it. otherData holds the
 * tracer's facts: window, events written, lost, clipped, per-thread ring
 * use, ring sizes and memory.
 *
 * Thread-safety: one capture is used by one thread at a time (it may move
 * between threads); recording threads go on while it reads.
 */
#ifndef MW_TRACE_CAPTURE_H
#define MW_TRACE_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

struct trace_capture;

/* Arms the tracer and starts a window now: 0, -EBUSY (a capture exists) or
 * -ENOMEM. */
int trace_capture_open(struct trace_capture **out);

/* A window of the last ns nanoseconds, from the flight recorder: 0,
 * -EBUSY, -ENOMEM, or -ENODATA when the flight recorder is off. */
int trace_capture_last(struct trace_capture **out, uint64_t ns);

/* Ends the window now and disarms (unless the flight recorder runs).
 * Reading closes it if this was not called; calling it twice is harmless. */
void trace_capture_close(struct trace_capture *c);

/* What reading gives: Chrome JSON (the default), the plain-text summary
 * of summary.h (or the same as JSON for tools), or Perfetto's
 * TracePacket stream (perfetto.h). Set before the first read. */
enum trace_format { TRACE_FORMAT_JSON, TRACE_FORMAT_SUMMARY, TRACE_FORMAT_PERFETTO,
		    TRACE_FORMAT_SUMMARY_JSON };
void trace_capture_format(struct trace_capture *c, enum trace_format f);

/* Whether the document holds the window's CPU samples (the default: yes,
 * where a sampler is attached). Off, speedscope shows the slices. Set
 * before the first read. */
void trace_capture_samples(struct trace_capture *c, int on);

/* A word the document carries in its facts ("cut short by SIGINT"); the
 * last one set. Set before the first read. */
void trace_capture_note(struct trace_capture *c, const char *note);

/* Closes the window, if open, and reads it again from the start (in
 * another format, say); the flight recorder's rings may have moved on. */
void trace_capture_rewind(struct trace_capture *c);

/* Copies up to max bytes of the document into buf; returns how many, 0 only
 * at the end of the document. */
size_t trace_capture_read(struct trace_capture *c, char *buf, size_t max);

/* 1 while a capture exists (open, or being read), else 0. */
int trace_capture_active(void);

/* Frees the capture and ends the session (a new one may open). NULL is a
 * no-op. */
void trace_capture_free(struct trace_capture *c);

struct trace_facts {
	uint64_t start_ns, end_ns; /* the window, on the trace clock */
	uint64_t written;          /* records written in the window's threads since it opened */
	uint64_t events;           /* records in the window, emitted */
	uint64_t lost;             /* records overwritten before they were read */
	uint64_t clipped;          /* records that began before the window or ended after it */
	unsigned threads;
	int complete;
	uint64_t samples;          /* CPU samples in the window, emitted */
	uint64_t samples_lost;     /* CPU samples overwritten before they were read */
	uint64_t track_events;     /* TRACE_FORMAT_PERFETTO: the TrackEvents written */              /* 0 when a flight-recorder ring did not reach back to the start */
};

/* The capture's facts: final once trace_capture_read has returned 0. */
void trace_capture_facts(const struct trace_capture *c, struct trace_facts *f);

#endif
