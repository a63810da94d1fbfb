/* harness.c - see harness.h. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>
#include <png.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "tests/harness.h"

int mw_start(struct mw *m, const char *const *args)
{
	return mw_start_via(m, NULL, args);
}

int mw_start_via(struct mw *m, const char *shell, const char *const *args)
{
	const char *all[52] = {"/bin/sh", "-c", shell, MW_BIN "/mandelweb", "--addr", "127.0.0.1",
			       "--port", "0"};
	const char **argv = shell ? all : all + 3;
	int n = 8, out[2];

	for (; args && *args && n < 50; args++)
		all[n++] = *args;
	all[n] = NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	strcpy(m->log, "/tmp/mandelweb-test-XXXXXX");
	int logfd = mkstemp(m->log);
	if (logfd < 0 || pipe(out) < 0)
		return -1;
	m->pid = fork();
	if (m->pid == 0) {
		dup2(out[1], 1);
		dup2(logfd, 2);
		close(out[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(logfd);
	FILE *f = fdopen(out[0], "r");
	char line[128];
	int rc = -1;
	if (f && fgets(line, sizeof line, f) &&
	    sscanf(line, "listening on http://127.0.0.1:%u/", &m->port) == 1)
		rc = 0;
	if (f)
		fclose(f);
	return rc;
}

int mw_stop(struct mw *m, int sig)
{
	int st;
	kill(m->pid, sig);
	if (waitpid(m->pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *mw_log(const struct mw *m)
{
	FILE *f = fopen(m->log, "r");
	char *buf = NULL;
	size_t len = 0;
	if (!f)
		return strdup("");
	FILE *o = open_memstream(&buf, &len);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, o);
	fclose(o);
	fclose(f);
	return buf;
}

static size_t on_body(char *p, size_t size, size_t n, void *cls)
{
	struct mw_resp *r = cls;
	char *b = realloc(r->body, r->len + size * n + 1);
	if (!b)
		return 0;
	memcpy(b + r->len, p, size * n);
	r->body = b;
	r->len += size * n;
	b[r->len] = '\0';
	return size * n;
}

static void keep(char *dst, size_t len, const char *v, size_t vlen)
{
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
		vlen--;
	if (vlen >= len)
		vlen = len - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *cls)
{
	struct mw_resp *r = cls;
	size_t len = size * n;
	static const struct {
		const char *name;
		size_t off, size;
	} want[] = {
		{"content-type: ", offsetof(struct mw_resp, type), sizeof r->type},
		{"etag: ", offsetof(struct mw_resp, etag), sizeof r->etag},
		{"retry-after: ", offsetof(struct mw_resp, retry_after), sizeof r->retry_after},
		{"allow: ", offsetof(struct mw_resp, allow), sizeof r->allow},
		{"x-cache: ", offsetof(struct mw_resp, xcache), sizeof r->xcache},
		{"cache-control: ", offsetof(struct mw_resp, cache_control), sizeof r->cache_control},
		{"connection: ", offsetof(struct mw_resp, connection), sizeof r->connection},
		{"content-encoding: ", offsetof(struct mw_resp, encoding), sizeof r->encoding},
		{"content-disposition: ", offsetof(struct mw_resp, disposition), sizeof r->disposition},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		size_t nl = strlen(want[i].name);
		if (len > nl && strncasecmp(p, want[i].name, nl) == 0)
			keep((char *)r + want[i].off, want[i].size, p + nl, len - nl);
	}
	return len;
}

int mw_request(const struct mw *m, const char *method, const char *path,
	       const char *const *headers, struct mw_resp *r)
{
	return mw_request_on(NULL, m, method, path, headers, r);
}

int mw_request_on(void *handle, const struct mw *m, const char *method, const char *path,
		  const char *const *headers, struct mw_resp *r)
{
	char url[2048];
	struct curl_slist *h = NULL;
	CURL *c = handle ? handle : curl_easy_init();

	memset(r, 0, sizeof *r);
	if (!c)
		return CURLE_FAILED_INIT;
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", m->port, path);
	for (; headers && *headers; headers++)
		h = curl_slist_append(h, *headers);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (method && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	int rc = (int)curl_easy_perform(c);
	if (rc == 0) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	}
	curl_slist_free_all(h);
	if (!handle)
		curl_easy_cleanup(c);
	else
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	return rc;
}

int mw_get(const struct mw *m, const char *path, struct mw_resp *r)
{
	return mw_request(m, NULL, path, NULL, r);
}

int mw_get_from(const struct mw *m, const char *source, const char *path,
		const char *const *headers, struct mw_resp *r)
{
	char iface[64];
	CURL *c = curl_easy_init();
	if (!c)
		return CURLE_FAILED_INIT;
	snprintf(iface, sizeof iface, "host!%s", source);
	curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
	int rc = mw_request_on(c, m, NULL, path, headers, r);
	curl_easy_cleanup(c);
	return rc;
}

void mw_resp_free(struct mw_resp *r)
{
	free(r->body);
	r->body = NULL;
}

uint8_t *mw_png_decode(const void *data, size_t len, unsigned channels, uint32_t *w,
		       uint32_t *h)
{
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	cr_assert(ne(int, png_image_begin_read_from_memory(&im, data, len), 0), "%s", im.message);
	cr_assert(eq(u32, PNG_IMAGE_SAMPLE_CHANNELS(im.format), channels));
	im.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
	cr_assert(ne(int, png_image_finish_read(&im, NULL, px, 0, NULL), 0), "%s", im.message);
	*w = im.width;
	*h = im.height;
	return px;
}

double mw_metric(const char *text, const char *sample)
{
	char line[256];
	snprintf(line, sizeof line, "\n%s ", sample);
	const char *p = strstr(text, line);
	return p ? atof(p + strlen(line)) : -1;
}

void *mw_fetch_main(void *fetch)
{
	struct mw_fetch *f = fetch;
	f->rc = mw_get(f->m, f->path, &f->r);
	return NULL;
}

long mw_raw(const struct mw *m, const char *req, size_t len, char *out, size_t out_len,
	    int *closed)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)m->port)};
	struct timeval tv = {.tv_sec = 2};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	long got = 0;

	*closed = 0;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (write(fd, req, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, out + got, out_len - 1 - (size_t)got);
		if (n == 0)
			*closed = 1;
		if (n <= 0 || (size_t)(got += n) >= out_len - 1)
			break;
	}
	out[got] = '\0';
	close(fd);
	return got;
}

int mw_connect(const struct mw *m, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)m->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

double mw_scrape(const struct mw *m, const char *sample)
{
	struct mw_resp r;
	double v = -1;
	if (mw_get(m, "/metrics", &r) == 0 && r.status == 200)
		v = mw_metric(r.body, sample);
	mw_resp_free(&r);
	return v;
}

double mw_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int mw_perf_fds(void)
{
	int n = 0;
	char path[64], link[64];
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t k = readlink(path, link, sizeof link - 1);
		if (k > 0) {
			link[k] = 0;
			n += strstr(link, "perf_event") != NULL;
		}
	}
	return n;
}

int mw_dir_entries(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

size_t mw_slurp(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, cap - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	remove(path);
	return n;
}
