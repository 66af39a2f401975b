/*
 * ctlwatch.c - timing probes for the daemon benchmarks (bench/swap_gap.sh,
 * bench/adopt_docker.sh), so that no client start-up or shell polling
 * lands in what they measure.  Every time printed is CLOCK_REALTIME in
 * nanoseconds (comparable with `date +%s%N`).
 *
 *   ctlwatch stamp SOCKET REQUEST
 *       sends REQUEST (one line) and copies every line of the reply to
 *       stdout, prefixed with the time the read that completed it
 *       returned: "<ns> <line>".  With {"cmd":"logs",...,"follow":true}
 *       this is what a `perch logs --follow` user sees, when they see it.
 *   ctlwatch count SOCKET TEXT K TIMEOUT_S REQUEST
 *       sends REQUEST again and again (a new connection each time, 1 ms
 *       apart, retrying while nobody listens) until the reply holds TEXT
 *       at least K times; prints the time it did.
 *   ctlwatch grow TIMEOUT_S FILE SIZE [FILE SIZE]...
 *       polls (every 2 ms) until every FILE is larger than its SIZE;
 *       prints "<first> <last>": when the first and the last one grew.
 *   ctlwatch boot-offset
 *       prints CLOCK_REALTIME - CLOCK_BOOTTIME in nanoseconds: what turns
 *       /proc/uptime, read inside a container, into wall time.
 *
 * Exits 0 on success, 1 on a timeout or a reply without a line, 2 on
 * misuse or when the socket cannot be reached (stamp).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pause_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A connected socket with the request sent, or -1. */
static int request(const char *path, const char *line)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path)
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	size_t len = strlen(line);
	char *msg = malloc(len + 2);
	if (msg == NULL) {
		close(fd);
		return -1;
	}
	memcpy(msg, line, len);
	msg[len++] = '\n';
	size_t off = 0;
	while (off < len) {
		ssize_t w = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* the daemon refused early: its reply says why */
		off += (size_t)w;
	}
	free(msg);
	return fd;
}

/* The whole reply to one request (malloc'd, NUL-terminated), or NULL. */
static char *ask(const char *path, const char *line)
{
	int fd = request(path, line);
	if (fd < 0)
		return NULL;
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	while (buf != NULL) {
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf[len] = '\0';
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	return buf;
}

static int stamp(const char *path, const char *line)
{
	int fd = request(path, line);
	if (fd < 0) {
		fprintf(stderr, "ctlwatch: %s: %s\n", path, strerror(errno));
		return 2;
	}
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	bool any = false;
	if (buf == NULL)
		return 2;
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL)
				break;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		int64_t t = now_ns();
		len += (size_t)n;
		size_t start = 0;
		char *nl;
		while ((nl = memchr(buf + start, '\n', len - start)) != NULL) {
			printf("%lld %.*s\n", (long long)t, (int)(nl - (buf + start)), buf + start);
			start = (size_t)(nl - buf) + 1;
			any = true;
		}
		memmove(buf, buf + start, len - start);
		len -= start;
	}
	free(buf);
	close(fd);
	return fflush(stdout) == 0 && any ? 0 : 1;
}

static size_t occurrences(const char *hay, const char *needle)
{
	size_t n = 0, l = strlen(needle);
	for (const char *p = hay; l && (p = strstr(p, needle)) != NULL; p += l)
		n++;
	return n;
}

static int count(const char *path, const char *text, long k, long timeout_s, const char *line)
{
	int64_t end = mono_ns() + (int64_t)timeout_s * 1000000000;
	for (;;) {
		char *r = ask(path, line);
		bool hit = r != NULL && occurrences(r, text) >= (size_t)k;
		free(r);
		if (hit)
			break;
		if (mono_ns() > end) {
			fprintf(stderr, "ctlwatch: no reply with %ld x %s within %ld s\n", k, text,
				timeout_s);
			return 1;
		}
		pause_ms(1);
	}
	printf("%lld\n", (long long)now_ns());
	return 0;
}

static int grow(long timeout_s, int n, char **args)
{
	int files = n / 2, left = files;
	int64_t end = mono_ns() + (int64_t)timeout_s * 1000000000, first = 0, last = 0;
	bool *done = calloc((size_t)files + 1, sizeof *done);
	if (done == NULL)
		return 2;
	while (left > 0) {
		for (int i = 0; i < files; i++) {
			struct stat sb;
			if (done[i] || stat(args[2 * i], &sb) != 0 ||
			    sb.st_size <= strtoll(args[2 * i + 1], NULL, 10))
				continue;
			done[i] = true;
			last = now_ns();
			if (first == 0)
				first = last;
			left--;
		}
		if (left == 0)
			break;
		if (mono_ns() > end) {
			fprintf(stderr, "ctlwatch: %d of %d files did not grow within %ld s\n", left,
				files, timeout_s);
			free(done);
			return 1;
		}
		pause_ms(2);
	}
	free(done);
	printf("%lld %lld\n", (long long)first, (long long)last);
	return 0;
}

static int boot_offset(void)
{
	struct timespec r1, b, r2;
	clock_gettime(CLOCK_REALTIME, &r1);
	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_REALTIME, &r2);
	int64_t r = ((int64_t)r1.tv_sec * 1000000000 + r1.tv_nsec) / 2 +
		    ((int64_t)r2.tv_sec * 1000000000 + r2.tv_nsec) / 2;
	printf("%lld\n", (long long)(r - ((int64_t)b.tv_sec * 1000000000 + b.tv_nsec)));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "boot-offset") == 0)
		return boot_offset();
	if (argc == 4 && strcmp(argv[1], "stamp") == 0)
		return stamp(argv[2], argv[3]);
	if (argc == 7 && strcmp(argv[1], "count") == 0)
		return count(argv[2], argv[3], strtol(argv[4], NULL, 10), strtol(argv[5], NULL, 10),
			     argv[6]);
	if (argc >= 5 && argc % 2 == 1 && strcmp(argv[1], "grow") == 0)
		return grow(strtol(argv[2], NULL, 10), argc - 3, argv + 3);
	fprintf(stderr, "usage: ctlwatch stamp SOCKET REQUEST\n"
			"       ctlwatch count SOCKET TEXT K TIMEOUT_S REQUEST\n"
			"       ctlwatch grow TIMEOUT_S FILE SIZE [FILE SIZE]...\n"
			"       ctlwatch boot-offset\n");
	return 2;
}
