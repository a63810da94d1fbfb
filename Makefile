# Mandelweb: build, test, bench, run, deps.  `make help` lists the targets.
#
#   make                 bin/mandelbrot and bin/mandelweb; installs nothing (a missing
#                        library is named, with the command that installs it)
#   make test            installs what testing needs (make deps), then every test
#                        (unit + end-to-end); TEST_ARGS="--filter 'fair/*'" picks suites
#   make test-run        the same without the install
#   make test SAN=address,undefined   the same under ASan + UBSan
#   make test SAN=thread the concurrency tests under ThreadSanitizer
#   make test-cpus       the kernel, picture and CLI tests and byte-for-byte
#                        pictures under emulated CPUs (qemu-user: Haswell,
#                        Nehalem, qemu64) and an arm64 cross build (qemu-aarch64)
#   make CROSS=aarch64-linux-gnu bin   a cross build, in build/aarch64-linux-gnu/
#   make bench           benchmarks, one `name value unit` line each
#   make fuzz            libFuzzer harnesses of every parser, FUZZ_SECONDS each (clang)
#   make loadtest        hey and wrk on loopback: capacity, admission, cached vs nginx, fairness
#                        under floods (the generator held to a CPU share in a cgroup)
#   make docker-test     build the Dockerfile's image and serve from it (docker, or
#                        podman + a debootstrap base where no engine runs)
#   make run             install what building needs, build, and start the server on
#                        127.0.0.1:8080 (RUN_ARGS=...)
#   make workshop        the same as the Go workshop's service (--workshop: every request
#                        rendered, no cache, no single flight), with hey installed
#   make deps            install missing Debian packages (apt-get): building's and testing's
#   make deps-build      only building's (the Dockerfile's)
#   make install         bin/mandelbrot and bin/mandelweb into $(DESTDIR)$(PREFIX)/bin

CC ?= cc
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
DESTDIR ?=
SAN ?=
# A cross build: the triplet's gcc and pkg-config (Debian's gcc-TRIPLET and
# multiarch -dev packages); its programs go to build/TRIPLET/bin.
CROSS ?=
ifneq ($(CROSS),)
CC := $(CROSS)-gcc
PKG_CONFIG := $(CROSS)-pkg-config
endif
CFLAGS ?= -O2 -g
# Kernels: -O3 measured faster (GCC 12 at -O2 does not unroll the interleave loop).
KERNEL_OPT ?= -O3

comma := ,
variant := $(or $(CROSS),$(if $(SAN),$(subst $(comma),-,$(SAN)),release))
B := build/$(variant)
# The release build's programs live in bin/; sanitizer and cross builds keep
# theirs apart.
BIN := $(if $(SAN)$(CROSS),$(B)/bin,bin)

# A warning flag where the compiler has it (GCC's -Wjump-misses-init: a
# goto past an initialised declaration, whose cleanup then reads garbage;
# clang has no such flag, and a portable structure keeps it away there).
cc-option = $(shell $(CC) -Werror $(1) -E -x c /dev/null >/dev/null 2>&1 && echo $(1))
WARN := -std=c17 -Wall -Wextra -Wpedantic -Werror $(call cc-option,-Wjump-misses-init)
SANFLAGS := $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all)
override CPPFLAGS += -D_GNU_SOURCE -I.
# Frame pointers everywhere, leaf functions too: the kernel walks them for
# the CPU profiler's call chains (prof/prof.h); their cost is in docs/profiling.md.
FRAMES := -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer
ALL_CFLAGS = $(WARN) $(CFLAGS) $(FRAMES) -ffp-contract=off -pthread -MMD -MP $(SANFLAGS)
ALL_LDFLAGS = $(LDFLAGS) -pthread $(SANFLAGS)

# pkg-config runs once, when first needed (after the libraries are in).
once = $(eval $1 := $$(shell $(PKG_CONFIG) $2))$($1)
PNG_CFLAGS = $(call once,PNG_CFLAGS,--cflags libpng zlib libdeflate)
PNG_LIBS = $(call once,PNG_LIBS,--libs libpng zlib libdeflate)
MHD_CFLAGS = $(call once,MHD_CFLAGS,--cflags libmicrohttpd)
MHD_LIBS = $(call once,MHD_LIBS,--libs libmicrohttpd)
DW_CFLAGS = $(call once,DW_CFLAGS,--cflags libdw zlib)
DW_LIBS = $(call once,DW_LIBS,--libs libdw zlib)
TEST_CFLAGS = $(call once,TEST_CFLAGS,--cflags criterion libcurl jansson)
TEST_LIBS = $(call once,TEST_LIBS,--libs criterion libcurl jansson)

# Kernels per architecture; render/kernel_dispatch.c lists the same. generic
# is in every build, so it is tested everywhere, not only where it is the best.
ARCH := $(shell $(CC) -dumpmachine | cut -d- -f1)
KERNELS_x86_64 := sse2 avx2 avx512
KERNELS_aarch64 := neon
KERNELS := $(KERNELS_$(ARCH)) generic
KERNEL_SRC := render/kernel_scalar.c $(KERNELS:%=render/kernel_%.c)
ISA_avx2 := -mavx2
ISA_avx512 := -mavx512f -mavx512dq
# generic's 32-byte vectors are wider than SSE2's registers: GCC warns that
# passing them by value would change the ABI; its helpers are static, so no
# ABI is crossed.
ISA_generic := -Wno-psabi

TRACE_SRC := trace/trace.c trace/spill.c trace/pb.c trace/json.c trace/chrome.c trace/perfetto.c trace/capture.c trace/window.c trace/samples.c trace/perf.c trace/kview.c trace/summary.c trace/anatomy.c
PROF_SRC := prof/sample.c prof/sigprof.c prof/symbols.c prof/pprof.c prof/tsample.c prof/schedstat.c prof/block.c
RENDER_SRC := $(KERNEL_SRC) render/kernel_dispatch.c render/names.c render/picture.c render/colour.c \
	render/pool.c render/pool_meet.c render/chan.c render/render.c render/pngenc.c render/flag.c render/version.c
SERVER_SRC := server/cidr.c server/client.c server/cgroup.c server/blob.c server/cache.c server/query.c server/metrics.c server/config.c \
	server/accesslog.c server/help.c server/debug.c server/deadline.c server/sleeper.c server/tracing.c server/viewer.c \
	server/admission.c server/flight.c server/http.c server/suspend.c server/answer.c server/routes.c server/route_mandelbrot.c server/route_trace.c server/route_pprof.c server/slowtrace.c server/conn.c \
	server/sock.c server/server.c
TEST_SRC := $(wildcard tests/test_*.c) tests/harness.c
# The tests that make test-cpus runs on emulated CPUs: no server, no curl.
CPU_TEST_SRC := tests/test_kernel.c tests/test_picture.c tests/test_cli.c tests/emulate.c

TRACE_OBJ := $(TRACE_SRC:%.c=$(B)/%.o)
PROF_OBJ := $(PROF_SRC:%.c=$(B)/%.o)
RENDER_OBJ := $(RENDER_SRC:%.c=$(B)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/%.o) $(B)/server/viewer_html.o
TEST_OBJ := $(TEST_SRC:%.c=$(B)/%.o)
CPU_TEST_OBJ := $(CPU_TEST_SRC:%.c=$(B)/%.o)

PROGRAMS := $(BIN)/mandelbrot $(BIN)/mandelweb $(BIN)/sieve
.PHONY: all bin test test-run test-cpus test-cpus-run bench bench-run loadtest loadtest-run run workshop deps \
	deps-build libs clean install help docker-test fuzz fuzz-run no-criterion-gt
all: $(PROGRAMS)

# The build's libraries, checked before the first compile and never
# installed here: plain make, make bin and make install install nothing.
LIBS := libpng zlib libdeflate libdw $(if $(CROSS),,libmicrohttpd)
libs:
	@$(PKG_CONFIG) --exists $(LIBS) 2>/dev/null || { \
		echo "make: the build needs $(PKG_CONFIG) and the libraries $(LIBS) (their -dev" \
		     "packages): 'make deps-build' installs them on Debian" >&2; exit 1; }

# What a cross build can make: the CLI (the server's libraries are not
# cross-installed).
bin: $(BIN)/mandelbrot

$(B)/%.o: %.c | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(PNG_CFLAGS) -c $< -o $@

$(B)/server/%.o: server/%.c | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(PNG_CFLAGS) $(MHD_CFLAGS) -c $< -o $@

$(B)/render/kernel_%.o: render/kernel_%.c | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(KERNEL_OPT) $(ISA_$*) -c $< -o $@

# The programs' mains: every layer's headers.
$(B)/cmd/%.o: cmd/%.c | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(PNG_CFLAGS) $(MHD_CFLAGS) $(DW_CFLAGS) -c $< -o $@

$(B)/prof/%.o: prof/%.c | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(DW_CFLAGS) -c $< -o $@

$(B)/tests/%.o: tests/%.c | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(TEST_CFLAGS) $(PNG_CFLAGS) -DMW_BIN='"$(BIN)"' -DMW_BUILD='"$(B)"' -c $< -o $@

# The LD_PRELOAD shim of tests/test_cli_faults.c: not instrumented (it
# comes before the sanitizer's runtime and hands it the calls it keeps).
$(B)/tests/failcalloc.so: tests/failcalloc.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(WARN) -O2 -fPIC -shared $< -o $@ -ldl

# The viewer page, embedded: GET / serves it from the binary.
$(B)/server/viewer_html.c: server/viewer.html scripts/embed
	@mkdir -p $(@D)
	scripts/embed viewer_html $< >$@.tmp && mv $@.tmp $@

$(B)/server/viewer_html.o: $(B)/server/viewer_html.c
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/render.a: $(RENDER_OBJ)
	$(AR) rcs $@ $^

$(B)/trace.a: $(TRACE_OBJ)
	$(AR) rcs $@ $^

$(B)/prof.a: $(PROF_OBJ)
	$(AR) rcs $@ $^

$(B)/server.a: $(SERVER_OBJ)
	$(AR) rcs $@ $^

$(BIN)/mandelweb: $(B)/cmd/mandelweb.o $(B)/server.a $(B)/render.a $(B)/prof.a $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(MHD_LIBS) $(PNG_LIBS) $(DW_LIBS) -lm -o $@

$(BIN)/mandelbrot: $(B)/cmd/mandelbrot.o $(B)/cmd/output.o $(B)/render.a $(B)/prof.a $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(PNG_LIBS) $(DW_LIBS) -lm -o $@

$(BIN)/sieve: $(B)/cmd/sieve.o $(B)/cmd/output.o $(B)/render.a $(B)/prof.a $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(PNG_LIBS) $(DW_LIBS) -lm -o $@

# Criterion 2.4.1's gt(T, a, b) tests a >= b (it is written !lt, so
# gt(int, 0, 0) passes): a > b is written lt(T, b, a), and gt may not be used.
$(B)/tests/unit: $(TEST_OBJ) $(B)/server.a $(B)/render.a $(B)/prof.a $(B)/trace.a | no-criterion-gt $(B)/tests/failcalloc.so
	$(CC) $(ALL_LDFLAGS) $^ $(TEST_LIBS) $(MHD_LIBS) $(PNG_LIBS) $(DW_LIBS) -lm -o $@

$(B)/tests/cpu: $(CPU_TEST_OBJ) $(B)/render.a $(B)/trace.a
	$(CC) $(ALL_LDFLAGS) $^ $(TEST_LIBS) $(PNG_LIBS) -lm -o $@

$(B)/tests/stress: $(B)/tests/stress.o $(B)/server/flight.o $(B)/render.a $(B)/prof.a $(B)/trace.a
	$(CC) $(ALL_LDFLAGS) $^ $(PNG_LIBS) $(DW_LIBS) -lm -o $@

# The roofline loops, once per kernel of this build (scalar included), with
# that kernel's flags: bench/roofline.c.
RL_BYTES_scalar := 8
RL_BYTES_sse2 := 16
RL_BYTES_avx2 := 32
RL_BYTES_avx512 := 64
RL_BYTES_neon := 16
RL_BYTES_generic := 32
ROOFLINE_OBJ := $(patsubst %,$(B)/bench/roofline_%.o,scalar $(KERNELS))
# A static pattern: as an implicit rule (its prerequisites do not depend on
# the stem) make would use it, through the built-in '%: %.o', to "remake"
# each included roofline_X.d from roofline_X.d.o.
$(ROOFLINE_OBJ): $(B)/bench/roofline_%.o: bench/roofline.c bench/roofline.h | libs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(KERNEL_OPT) $(ISA_$*) -DRL_NAME=$* -DRL_BYTES=$(RL_BYTES_$*) -c $< -o $@

$(BIN)/bench_render: $(B)/bench/bench_render.o $(B)/bench/bench_roofline.o $(ROOFLINE_OBJ) $(B)/render.a $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(PNG_LIBS) -lm -o $@

# The browser tests (the viewer; our traces in the speedscope web app):
# playwright-core and speedscope from npm (package-lock.json
# pins them), driving Debian's /usr/bin/chromium; no browser is downloaded.
PLAYWRIGHT := tests/browser/node_modules/playwright-core/package.json
$(PLAYWRIGHT): tests/browser/package.json tests/browser/package-lock.json | deps
	cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

# Criterion cannot start under ThreadSanitizer (Snaipe/Criterion#274), so
# SAN=thread runs the concurrency stress program alone; every other build
# runs it after the Criterion suites.
TEST_JOBS ?= 2
# The targets that need more than the build install it first, then make
# the rest in a second make, so that nothing compiles before the packages
# are in (under -j too).
test: deps
	$(MAKE) test-run
ifeq ($(SAN),thread)
test-run: $(B)/tests/stress
	$(B)/tests/stress
else
test-run: $(B)/tests/unit $(B)/tests/stress $(PROGRAMS) $(PLAYWRIGHT)
	$(B)/tests/stress
	tests/docs_trace_names.sh
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(B)/tests/unit --jobs $(TEST_JOBS) $(TEST_ARGS)
	tests/cluster_failover.sh $(BIN)
	tests/cluster_proxy.sh $(BIN)
	MW_BIN=$(BIN) MW_ARTIFACTS=build/artifacts node --test tests/browser/viewer.test.mjs tests/browser/speedscope.test.mjs tests/browser/flows.test.mjs
endif


$(BIN)/bench_trace: $(B)/bench/bench_trace.o $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ -o $@

$(BIN)/bench_pool: $(B)/bench/bench_pool.o $(B)/render.a $(B)/prof.a $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) $^ $(DW_LIBS) -o $@

bench: deps
	@scripts/install-deps time hey wrk
	$(MAKE) bench-run
bench-run: $(BIN)/bench_render $(BIN)/bench_trace $(BIN)/bench_pool $(PROGRAMS)
	$(BIN)/bench_render $(BENCH_REPS)
	$(BIN)/bench_trace $(BENCH_REPS)
	$(BIN)/bench_pool
	bench/bench-cli $(BIN)
	bench/tracebench -b $(BIN)

# Every CPU the kernels can meet: tests/test-cpus installs qemu-user and
# the arm64 cross compiler and libraries, and cross-builds with CROSS=.
test-cpus: deps
	$(MAKE) test-cpus-run
test-cpus-run: $(B)/tests/cpu $(BIN)/mandelbrot
	tests/test-cpus $(B)/tests/cpu $(BIN)

no-criterion-gt:
	@! grep -nE '(^|[^A-Za-z0-9_])gt\(' tests/*.c || \
		{ echo "Criterion 2.4.1's gt() is >=: write a > b as lt(T, b, a)" >&2; exit 1; }

# libFuzzer harnesses (tests/fuzz), built with Debian's clang under ASan and
# UBSan in build/fuzzer-no-link-address-undefined, each run for FUZZ_SECONDS
# from its committed seed corpus (tests/fuzz/corpus/NAME; what it finds new
# stays in build/). A crash is a failure, with its input saved beside it.
FUZZ_TARGETS := query picture config acl xff trace_query json png
FUZZ_SECONDS ?= 30
fuzz: deps
	@scripts/install-deps clang libclang-rt-dev
	$(MAKE) CC=clang SAN=fuzzer-no-link,address,undefined \
		CFLAGS="-O1 -g -Wno-unknown-warning-option" fuzz-run

.SECONDARY: $(FUZZ_TARGETS:%=$(B)/tests/fuzz/fuzz_%.o)
fuzz-run: $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
	tests/fuzz/run $(B)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(B)/fuzz/fuzz_%: $(B)/tests/fuzz/fuzz_%.o $(B)/server.a $(B)/render.a $(B)/prof.a $(B)/trace.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer $^ $(MHD_LIBS) $(PNG_LIBS) $(DW_LIBS) -lm -o $@

# Load tests on loopback (hey, wrk, nginx as the yardstick); LOADTEST_ARGS=-d 10.
loadtest: deps
	@scripts/install-deps hey wrk nginx-light time
	$(MAKE) loadtest-run
loadtest-run: $(PROGRAMS)
	bench/loadtest -b $(BIN) $(LOADTEST_ARGS)

# The image, built and served; the host's build is there to compare PNGs.
docker-test: deps-build
	$(MAKE) $(BIN)/mandelweb
	tests/docker-test $(BIN)

run: deps-build
	$(MAKE) $(BIN)/mandelweb
	$(BIN)/mandelweb $(RUN_ARGS)

# The Go workshop's service: every request rendered (--workshop: no cache,
# no single flight), and hey, the workshop's load generator.
workshop: deps-build
	@scripts/install-deps hey
	$(MAKE) $(BIN)/mandelweb
	$(BIN)/mandelweb --workshop $(RUN_ARGS)

deps:
	@scripts/install-deps

deps-build:
	@MW_DEPS=build scripts/install-deps

install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build bin

help:
	@sed -n '1,/^$$/p' Makefile

-include $(shell find build -name '*.d' 2>/dev/null)
