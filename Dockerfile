# Mandelweb's image: the build stage runs make on Debian bookworm with the
# -dev packages; the runtime stage is bookworm-slim with the server and its
# four runtime libraries only.
#
#   docker build -t mandelweb . && docker run --rm -p 127.0.0.1:8080:8080 mandelweb
#
# The base images are build arguments, defaulting to the official ones, so a
# machine without a registry can build from local images: `make docker-test`
# does that with podman and a base made by debootstrap (scripts/debian-image).
ARG BUILD_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# MW_DEPS=build: the compiler and the -dev packages, none of the test tools.
ENV MW_DEPS=build
COPY scripts/install-deps scripts/
RUN scripts/install-deps
COPY Makefile ./
COPY scripts/embed scripts/
COPY trace trace
COPY prof prof
COPY render render
COPY server server
COPY cmd cmd
# Kernels for every SIMD level are built and picked at run time, so the image
# runs on any x86-64 (or arm64) host, not only on the one that built it.
# --strip-debug keeps the symbol table: CPU profiles name the functions.
RUN make -j"$(nproc)" bin/mandelweb && strip --strip-debug bin/mandelweb

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libpng16-16 zlib1g libdeflate0 libdw1 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin mandelweb
COPY --from=build /src/bin/mandelweb /usr/local/bin/mandelweb
# Numeric, so that Kubernetes' runAsNonRoot can check it (deploy/kubernetes.yaml).
USER 10001:10001
ENV MANDELWEB_ADDR=0.0.0.0 MANDELWEB_PORT=8080
EXPOSE 8080
# mandelweb takes SIGTERM with sigwait (blocked, so the kernel delivers it
# to PID 1 too), drains and exits 0; it starts no children, so it needs no
# init to reap them. bash's /dev/tcp asks /healthz: no curl in the image.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${MANDELWEB_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/mandelweb"]
