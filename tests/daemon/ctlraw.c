/*
 * ctlraw.c - a raw client for the daemon's control socket, for tests that
 * send what perch's own client never would.
 *
 *   ctlraw SOCKET line TEXT    sends TEXT and a newline
 *   ctlraw SOCKET raw TEXT     sends TEXT, no newline, then ends the stream
 *   ctlraw SOCKET big N        sends N bytes of 'x' without a newline
 *
 * and, for bench/reload.sh (no process start-up in the measured loop):
 *
 *   ctlraw SOCKET until TEXT LINE
 *       sends LINE (a request) again and again, retrying while nobody
 *       listens, until a reply contains TEXT; prints CLOCK_REALTIME ns then
 *   ctlraw SOCKET hup-probe PID OLD LINE
 *       sends SIGHUP to PID, then submits LINE until the reply's
 *       "version_number" differs from OLD; prints the microseconds taken
 *
 * It then prints every line the daemon answers on standard output and
 * exits 0 if there was at least one, 1 otherwise (2: usage or connect).
 * A write the daemon cut short (it refused early) is not an error: the
 * reply is what counts.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the daemon stopped reading: its reply follows */
		p += w;
		n -= (size_t)w;
	}
}

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One request, its whole reply (malloc'd, NUL-terminated), or NULL. */
static char *ask(const char *path, const char *line)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	send_all(fd, line, strlen(line));
	send_all(fd, "\n", 1);
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len + 4096 > cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

static int bench_mode(int argc, char **argv)
{
	if (strcmp(argv[2], "until") == 0 && argc == 5) {
		for (;;) {
			char *r = ask(argv[1], argv[4]);
			int hit = r && strstr(r, argv[3]) != NULL;
			free(r);
			if (hit)
				break;
			usleep(1000);
		}
		printf("%lld\n", (long long)now_ns(CLOCK_REALTIME));
		return 0;
	}
	if (strcmp(argv[2], "hup-probe") == 0 && argc == 6) {
		long old = strtol(argv[4], NULL, 10);
		int64_t t0 = now_ns(CLOCK_MONOTONIC);
		if (kill((pid_t)strtol(argv[3], NULL, 10), SIGHUP) != 0)
			return 2;
		for (;;) {
			char *r = ask(argv[1], argv[5]);
			const char *v = r ? strstr(r, "\"version_number\":") : NULL;
			long got = v ? strtol(v + 17, NULL, 10) : old;
			free(r);
			if (got != old && got != 0) /* 0: queued, no version yet */
				break;
		}
		printf("%lld\n", (long long)((now_ns(CLOCK_MONOTONIC) - t0) / 1000));
		return 0;
	}
	fprintf(stderr, "usage: ctlraw SOCKET until TEXT LINE | hup-probe PID OLD LINE\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && (strcmp(argv[2], "until") == 0 || strcmp(argv[2], "hup-probe") == 0))
		return bench_mode(argc, argv);
	if (argc != 4) {
		fprintf(stderr, "usage: ctlraw SOCKET line|raw|big ARG\n");
		return 2;
	}
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "ctlraw: connect %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (strcmp(argv[2], "line") == 0) {
		send_all(fd, argv[3], strlen(argv[3]));
		send_all(fd, "\n", 1);
	} else if (strcmp(argv[2], "raw") == 0) {
		send_all(fd, argv[3], strlen(argv[3]));
		shutdown(fd, SHUT_WR);
	} else if (strcmp(argv[2], "big") == 0) {
		size_t n = strtoul(argv[3], NULL, 10), chunk = 1 << 20;
		char *buf = malloc(chunk);
		if (buf == NULL)
			return 2;
		memset(buf, 'x', chunk);
		while (n > 0) {
			size_t k = n < chunk ? n : chunk;
			ssize_t w = send(fd, buf, k, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			n -= (size_t)w;
		}
		free(buf);
	} else {
		fprintf(stderr, "ctlraw: unknown mode %s\n", argv[2]);
		return 2;
	}
	char buf[65536];
	size_t lines = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, stdout);
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
	}
	close(fd);
	return lines > 0 ? 0 : 1;
}
