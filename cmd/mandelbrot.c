/*
 * mandelbrot.c - the `mandelbrot` command: the Go workshop's experiments in C.
 *
 *   mandelbrot [-w 1024] [-h 1024] [-mode auto] [-workers N] [-queue N]
 *              [-cx X -cy Y -zoom Z] [-iter 1000] [-colour gray]
 *              [-kernel auto|list|NAME] [-png-level 1] [-png-strategy rle]
 *              [-png-filter up] [-o mandelbrot.png]
 *              [-trace trace.json [-trace-ring 1048576]]
 *              [-cpuprofile cpu.pprof [-profile-hz 1000]] [-version] [-help]
 *
 * Flags as render/flag.h takes them (-w 64, -w=64, --w=64). Writes the PNG
 * and prints one line on stdout: what it did and how long rendering and
 * encoding took; then, on stderr, what -cpuprofile and -trace wrote (the
 * trace's summary last). A bad flag or value: its reason, exit 2.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cmd/output.h"
#include "render/flag.h"
#include "render/pngenc.h"
#include "render/render.h"
#include "render/version.h"
#include "prof/prof.h"
#include "trace/capture.h"
#include "trace/trace.h"

#define DEFAULT_SIDE 1024 /* the CLI's default picture; the server's is 512 */
/* Records a thread's ring holds for -trace: 4 MiB. A window is copied out
 * of the rings as they fill (trace/spill.h), so the ring bounds only how
 * far the copying may lag, not how long the run may be: a px render of
 * 1024x1024 (5.3 M records) loses none. */
#define TRACE_RING_CLI (1u << 16)

static const struct trace_desc TD_ENCODE = {"encode png", "png", {"bytes"}, 0};

struct options {
	struct picture pic;
	enum render_mode mode;
	uint32_t workers, queue;
	int queue_set;
	const char *kernel, *out, *trace, *cpuprofile, *blockprofile;
	uint32_t trace_ring, trace_hz;
	int trace_kernel;
	uint32_t cpuprofile_hz;
	int cpuprofile_perf;
	int version;
	struct pngenc_opts png;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mandelbrot [-w 1024] [-h 1024] [-mode " RENDER_MODE_NAMES "]\n"
		"                  [-workers N] [-queue N] [-cx X -cy Y -zoom Z] [-iter 1000]\n"
		"                  [-colour " COLOUR_NAMES "] [-kernel auto|list|NAME]\n"
		"                  [-png-level 0..9] [-png-strategy default|filtered|huffman|rle|fixed]\n"
		"                  [-png-filter none|sub|up|avg|paeth|all] [-png-encoder libdeflate|zlib]\n"
		"                  [-o mandelbrot.png]\n"
		"                  [-trace trace.json [-trace-ring 1048576] [-trace-kernel auto|off|refuse]\n"
		"                   [-trace-hz " PROF_HZ_STR "]]\n"
		"                  [-cpuprofile cpu.pprof [-profile-hz N] [-profile-sampler timer|perf]]\n"
		"                  [-blockprofile block.pprof] [-version] [-help]\n"
		"  Flags: -name value, -name=value, --name value or --name=value.\n"
		"  -mode     seq: this thread alone; px: a job per pixel; row: a job per row;\n"
		"            workers: per-pixel jobs through a queue of -queue slots (default 0,\n"
		"            a rendezvous); auto: bands of rows claimed by each worker (default)\n"
		"  -workers  worker threads (default: the number of CPUs)\n"
		"  -queue    job queue capacity (default: 0 for workers, 1024 otherwise)\n"
		"  -trace    write what every thread did as Chrome trace JSON (open it in\n"
		"            https://ui.perfetto.dev), then print its summary on stderr;\n"
		"            -trace-ring: events kept per thread; -trace-kernel: the kernel's\n"
		"            view of each thread (perf_event_open; refuse: as if refused);\n"
		"            -trace-hz: CPU samples a second a thread, with their stacks, in\n"
		"            the trace (0: none; default " PROF_HZ_STR ")\n"
		"  -cpuprofile  sample every thread's CPU over the render and the encode, and\n"
		"            write the profile (gzipped profile.proto) for go tool pprof,\n"
		"            pprof -http or speedscope; -profile-hz: the rate, 1..10000\n"
		"            (default " PROF_HZ_STR "); -profile-sampler: timer (SIGPROF at the\n"
		"            kernel's tick, the default) or perf (perf_event_open, finer)\n"
		"  -blockprofile  where every thread was off a CPU over the render and the\n"
		"            encode, and why (reason: no work, queue full, rendezvous, render,\n"
		"            runnable, blocked), as go tool pprof's block profile\n"
		"  -version  the version, the kernel it renders with, the libraries\n"
		"  -kernel   escape-time kernel; 'auto' picks the first this CPU runs of:");
	char runs[128];
	fprintf(f, " %s ('list': every kernel of this build)\n",
		kernel_names(runs, sizeof runs, true));
}

static int bad(const char *why)
{
	return flag_bad(stderr, "mandelbrot", why);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	char why[160], name[32];

	for (int i = 1; i < argc; i++) {
		struct flag f;
		if (flag_split(argv[i], &f) < 0) {
			snprintf(why, sizeof why, "unexpected argument '%.40s': every argument is a flag", argv[i]);
			return bad(why);
		}
		if (f.len >= sizeof name) {
			snprintf(why, sizeof why, "unknown flag %.40s", argv[i]);
			return bad(why);
		}
		memcpy(name, f.name, f.len);
		name[f.len] = '\0';
		if (strcmp(name, "help") == 0 || strcmp(name, "version") == 0) {
			if (f.value) {
				snprintf(why, sizeof why, "-%s takes no value", name);
				return bad(why);
			}
			if (name[0] == 'h') {
				usage(stdout);
				exit(0);
			}
			o->version = 1;
			continue;
		}
		const char *v = flag_value(&f, argc, argv, &i);
		if (!v) {
			snprintf(why, sizeof why, "flag -%s needs a value", name);
			return bad(why);
		}
		int rc = picture_set(&o->pic, name, v, why, sizeof why);
		if (rc == 0)
			continue;
		if (rc == -EINVAL)
			return bad(why);
		if (strcmp(name, "mode") == 0) {
			if (render_mode_parse(v, &o->mode) < 0)
				return bad("mode must be one of " RENDER_MODE_NAMES);
		} else if (strcmp(name, "workers") == 0) {
			if (picture_parse_u32(v, 1, POOL_MAX_WORKERS, &o->workers) < 0)
				return bad("workers must be an integer in 1..1024");
		} else if (strcmp(name, "queue") == 0) {
			if (picture_parse_u32(v, 0, POOL_MAX_QUEUE, &o->queue) < 0)
				return bad("queue must be an integer in 0..16777216");
			o->queue_set = 1;
		} else if (strcmp(name, "kernel") == 0) {
			if (strcmp(v, "list") == 0) {
				kernel_list(stdout);
				exit(0);
			}
			if (!kernel_pick(v, why, sizeof why))
				return bad(why);
			o->kernel = v;
		} else if (strcmp(name, "o") == 0) {
			o->out = v;
		} else if (strcmp(name, "trace") == 0) {
			o->trace = v;
		} else if (strcmp(name, "trace-ring") == 0) {
			if (picture_parse_u32(v, TRACE_RING_EVENTS_MIN, TRACE_RING_EVENTS_MAX, &o->trace_ring) < 0)
				return bad("trace-ring must be an integer in 64..16777216");
		} else if (strcmp(name, "trace-hz") == 0) {
			if (picture_parse_u32(v, 0, PROF_HZ_MAX, &o->trace_hz) < 0)
				return bad("trace-hz must be an integer in 0..10000");
		} else if (strcmp(name, "cpuprofile") == 0) {
			o->cpuprofile = v;
		} else if (strcmp(name, "blockprofile") == 0) {
			o->blockprofile = v;
		} else if (strcmp(name, "profile-sampler") == 0 || strcmp(name, "cpuprofile-sampler") == 0) {
			/* cpuprofile-*: the names before the service's were shared */
			if (strcmp(v, "timer") && strcmp(v, "perf"))
				return bad("profile-sampler must be timer or perf");
			o->cpuprofile_perf = strcmp(v, "perf") == 0;
		} else if (strcmp(name, "profile-hz") == 0 || strcmp(name, "cpuprofile-hz") == 0) {
			if (picture_parse_u32(v, 1, PROF_HZ_MAX, &o->cpuprofile_hz) < 0)
				return bad("profile-hz must be an integer in 1..10000");
		} else if (strcmp(name, "trace-kernel") == 0) {
			if ((o->trace_kernel = trace_kview_parse(v)) < 0)
				return bad("trace-kernel must be auto, off or refuse");
		} else if (strcmp(name, "png-level") == 0) {
			uint32_t l;
			if (picture_parse_u32(v, 0, 9, &l) < 0)
				return bad("png-level must be an integer in 0..9");
			o->png.level = (int)l;
		} else if (strcmp(name, "png-strategy") == 0) {
			if (pngenc_parse_strategy(v, &o->png.strategy) < 0)
				return bad("png-strategy must be one of default|filtered|huffman|rle|fixed");
			o->png.zlib = 1; /* a strategy is zlib's */
		} else if (strcmp(name, "png-encoder") == 0) {
			if (pngenc_parse_encoder(v, &o->png.zlib) < 0)
				return bad("png-encoder must be libdeflate or zlib");
		} else if (strcmp(name, "png-filter") == 0) {
			if (pngenc_parse_filter(v, &o->png.filters) < 0)
				return bad("png-filter must be one of none|sub|up|avg|paeth|all");
		} else {
			snprintf(why, sizeof why, "unknown flag -%s", name);
			return bad(why);
		}
	}
	return 0;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The CPU time of the whole process so far, in nanoseconds. */
static uint64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Writes the profile to path and reports it on stderr; cpu: the process's
 * CPU time over the profile's window. */
static int write_profile(const char *path, struct prof *p, uint64_t cpu)
{
	unsigned char *gz;
	size_t len;
	struct prof_facts f;
	if (prof_pprof(p, &gz, &len) < 0) {
		fprintf(stderr, "mandelbrot: profile: out of memory\n");
		return -1;
	}
	struct pngenc_buf b = {.data = gz, .len = len};
	int rc = output_file(path, b.data, b.len);
	free(gz);
	if (rc < 0) {
		fprintf(stderr, "mandelbrot: %s: %s\n", path, strerror(-rc));
		return -1;
	}
	prof_facts(p, &f);
	fprintf(stderr, "mandelbrot: profile %s: %llu samples of %u thread%s over %.1f ms (%.1f ms of CPU) at %u Hz, %llu lost\n",
		path, (unsigned long long)f.samples, f.threads, f.threads == 1 ? "" : "s",
		(f.end_ns - f.start_ns) / 1e6, cpu / 1e6, f.hz, (unsigned long long)f.lost);
	/* A CPU-clock timer expires only at the scheduler's tick (4 ms at
	 * CONFIG_HZ=250): a run of a few ticks gets few samples or none. */
	double want = (double)cpu * f.hz / 1e9;
	if (f.sigprof && want >= 2 && (double)f.samples < want / 2)
		fprintf(stderr, "mandelbrot: profile: %.0f samples expected, but the timer sampler fires only "
				"at the kernel's scheduler tick (1-10 ms): make the run longer (larger -w, -h "
				"or -iter) or use -profile-sampler perf\n",
			want);
	return 0;
}

/* The signal that interrupted the run (SIGINT, SIGTERM), or 0: the
 * render's cancel flag. The first asks for a clean end; the handler is
 * then reset, so a second one ends the process at once. */
static atomic_int interrupted;

static void on_signal(int sig)
{
	atomic_store(&interrupted, sig);
}

static void catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct options o = {
		.pic = picture_default(DEFAULT_SIDE, DEFAULT_SIDE),
		.mode = MODE_AUTO,
		.workers = cpus > 0 && cpus <= POOL_MAX_WORKERS ? (uint32_t)cpus : 1,
		.kernel = "auto",
		.out = "mandelbrot.png",
		.png = pngenc_defaults(),
		.trace_ring = TRACE_RING_CLI,
		.cpuprofile_hz = PROF_HZ_DEFAULT,
		.trace_hz = PROF_HZ_DEFAULT,
	};
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	if (o.version) {
		char dw[32];
		snprintf(dw, sizeof dw, "libdw %s", prof_libdw_version());
		version_print(stdout, "mandelbrot", kernel_find(o.kernel), dw);
		return 0;
	}
	struct trace_capture *tc = NULL;
	catch_signals();
	if (o.trace) {
		trace_init(&(struct trace_config){
			.ring_events = o.trace_ring,
			.process = "mandelbrot",
			.gettime = getenv("MANDELWEB_TRACE_GETTIME") != NULL,
			.kview = (enum trace_kview)o.trace_kernel});
		if (o.trace_hz && prof_trace_samples(o.trace_hz) < 0)
			fprintf(stderr, "mandelbrot: no CPU samples in the trace: out of memory\n");
		trace_thread_name("main");
	}
	if (!o.queue_set)
		o.queue = o.mode == MODE_WORKERS ? 0 : 1024;

	/* Everything the exits below free, set before the first of them
	 * (-Wjump-misses-init holds the rest of this function to it). */
	const struct kernel *k = kernel_find(o.kernel);
	struct image img = {0};
	struct pool *pool = NULL;
	struct prof *prof = NULL;
	struct prof_block *block = NULL;
	struct pngenc_buf png = {0};
	struct render_stats st;
	char err[160], note[128] = "";
	double t0, t1, t2 = 0;
	uint64_t e0, cpu0;

	if (o.mode != MODE_SEQ) {
		rc = pool_create(&pool, o.workers, o.queue, "worker", NULL);
		if (rc < 0) {
			fprintf(stderr, "mandelbrot: cannot start workers: %s\n", strerror(-rc));
			return 1;
		}
	}
	if (image_alloc(&img, o.pic.w, o.pic.h, picture_channels(&o.pic)) < 0) {
		fprintf(stderr, "mandelbrot: out of memory\n");
		rc = 1;
		goto out_pool;
	}
	if (o.trace && (rc = trace_capture_open(&tc)) < 0) {
		fprintf(stderr, "mandelbrot: cannot trace: %s\n", strerror(-rc));
		rc = 1;
		goto out_img;
	}
	/* After the pool: its workers are sampled from their start. */
	prof_refuse(o.trace_kernel == TRACE_KVIEW_REFUSE);
	prof_sampler(o.cpuprofile_perf);
	cpu0 = cpu_ns();
	if (o.cpuprofile && (rc = prof_start(&prof, o.cpuprofile_hz, err, sizeof err)) < 0) {
		fprintf(stderr, "mandelbrot: cannot profile: %s\n", err);
		rc = 1;
		goto out_img;
	}
	if (o.blockprofile && (rc = prof_block_start(&block)) < 0) {
		fprintf(stderr, "mandelbrot: cannot take a block profile: %s\n", strerror(-rc));
		rc = 1;
		goto out_img;
	}
	t0 = now_ms();
	rc = render_image_until(pool, &o.pic, k, o.mode, &img, &st, &interrupted);
	t1 = now_ms();
	if (rc < 0) {
		fprintf(stderr, "mandelbrot: rendering failed: %s\n", strerror(-rc));
		rc = 1;
		goto out_img;
	}
	if (st.cancelled) {
		/* Ctrl-C: what was asked for is written whole, and says so; the
		 * picture is not the picture, so it is not. */
		const char *sig = sigabbrev_np(atomic_load(&interrupted));
		snprintf(note, sizeof note, "cut short by SIG%s: the render stopped after %.1f ms",
			 sig ? sig : "?", t1 - t0);
		fprintf(stderr, "mandelbrot: %s; no PNG written\n", note);
	} else {
		e0 = trace_begin();
		rc = pngenc_encode(&img, &o.png, &png, err, sizeof err);
		trace_span(&TD_ENCODE, e0, rc == 0 ? (int64_t)png.len : 0, 0);
		t2 = now_ms();
		if (rc < 0) {
			fprintf(stderr, "mandelbrot: PNG encoding failed: %s\n", err);
			rc = 1;
			goto out_img;
		}
		rc = output_file(o.out, png.data, png.len);
		if (rc < 0) {
			fprintf(stderr, "mandelbrot: %s: %s\n", o.out, strerror(-rc));
			rc = 1;
			goto out_png;
		}
		printf("mandelbrot: %ux%u %s iter=%u mode=%s workers=%u queue=%u kernel=%s: "
		       "render %.2f ms (%.2f G iterations/s, %llu jobs), encode %.2f ms, %zu bytes -> %s\n",
		       o.pic.w, o.pic.h, colour_name(o.pic.colour), o.pic.max_iter,
		       render_mode_name(o.mode), o.mode == MODE_SEQ ? 1 : o.workers,
		       o.mode == MODE_SEQ ? 0 : o.queue, k->name, t1 - t0,
		       st.iterations / ((t1 - t0) * 1e6), (unsigned long long)st.jobs, t2 - t1,
		       png.len, o.out);
	}
	rc = 0;
	/* The windows are the render and the encode, not the writing of files. */
	if (prof) {
		prof_stop(prof);
		cpu0 = cpu_ns() - cpu0; /* now the window's CPU time */
	}
	if (block)
		prof_block_stop(block);
	if (tc)
		trace_capture_close(tc);
	if (note[0]) {
		if (prof)
			prof_note(prof, note);
		if (block)
			prof_block_note(block, note);
		if (tc)
			trace_capture_note(tc, note);
	}
	/* Each file that could not be written fails the run; one written
	 * after it does not undo that. */
	fflush(stdout); /* the render's line before the files', where both go to one place */
	if (prof && write_profile(o.cpuprofile, prof, cpu0) < 0)
		rc = 1;
	if (block && output_block_profile("mandelbrot", o.blockprofile, block) < 0)
		rc = 1;
	if (tc && output_trace("mandelbrot", o.trace, tc) < 0)
		rc = 1;
	/* Interrupted, at any point: the shell's convention, 128 + the signal. */
	if (rc == 0 && atomic_load(&interrupted))
		rc = 128 + atomic_load(&interrupted);
out_png:
	pngenc_buf_free(&png);
out_img:
	prof_free(prof);
	prof_block_free(block);
	trace_capture_free(tc);
	image_free(&img);
out_pool:
	pool_destroy(pool);
	return rc;
}
