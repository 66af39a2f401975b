/*
 * holdproxy.c - a unix-socket proxy in front of the Docker engine that
 * holds chosen requests forever, so that a test can stop the daemon while
 * the docker backend is inside exactly that engine call (setup_workflow
 * creating a network, start_step pulling an image, destroy_workflow
 * removing a network) - deterministically, without sleeps.
 *
 *   holdproxy LISTEN UPSTREAM HELD-LOG REGEX...
 *
 * listens on the unix socket LISTEN (made anew), and relays every
 * connection to the unix socket UPSTREAM, byte for byte, both ways (one
 * child process per connection).  The client's bytes are looked at line
 * by line (a line still incomplete at the end of a read is looked at as
 * it is: a JSON body has no newline) against each extended REGEX; the
 * first line that matches is written to HELD-LOG ("held <line>\n",
 * appended) and from there on nothing more of that connection reaches the
 * engine, so the engine never sees the complete request and never acts on
 * it.  The connection stays open until the client closes it (it dies).
 * Everything else passes.  SIGTERM ends the proxy; its children end with
 * it (PR_SET_PDEATHSIG), which closes the held connections.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CARRY_MAX 65536

static regex_t *res;
static int n_res;
static const char *held_log;

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path)
		return -1;
	strcpy(sa->sun_path, path);
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* True when s[0..n) matches a pattern; logs it. */
static bool matches(const char *s, size_t n)
{
	char *line = strndup(s, n);
	bool hit = false;

	if (line == NULL)
		return false;
	for (int i = 0; i < n_res && !hit; i++)
		hit = regexec(&res[i], line, 0, NULL, 0) == 0;
	if (hit) {
		int fd = open(held_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			char *msg = NULL;
			int len = asprintf(&msg, "held %s\n", line);
			if (len > 0 && write(fd, msg, (size_t)len) != len)
				perror("holdproxy: writing the held log");
			free(msg);
			close(fd);
		}
	}
	free(line);
	return hit;
}

/* Relays one connection until either side closes. */
static void relay(int cfd, const char *upstream)
{
	struct sockaddr_un sa;
	char buf[65536];
	char *carry = malloc(CARRY_MAX);
	size_t n_carry = 0;
	bool held = false;
	int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (carry == NULL || ufd < 0 || unix_addr(upstream, &sa) != 0 ||
	    connect(ufd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("holdproxy: connecting upstream");
		return;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = cfd, .events = POLLIN},
				      {.fd = ufd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			ssize_t n = read(ufd, buf, sizeof buf);
			if (n <= 0 || write_all(cfd, buf, (size_t)n) != 0)
				break;
		}
		if (p[0].revents) {
			ssize_t n = read(cfd, buf, sizeof buf);
			size_t fwd = 0, start = 0;
			if (n <= 0)
				break;
			if (held)
				continue; /* swallowed until the client goes */
			/* Line by line; the first segment continues the
			 * carried (already forwarded) part of a line. */
			while (start < (size_t)n && !held) {
				char *nl = memchr(buf + start, '\n', (size_t)n - start);
				size_t end = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
				size_t len = end - start;
				if (n_carry + len <= CARRY_MAX) {
					memcpy(carry + n_carry, buf + start, len);
					n_carry += len;
				} else {
					n_carry = 0; /* too long to be a request line */
				}
				if (n_carry > 0 && matches(carry, n_carry))
					held = true;
				else
					fwd = end;
				if (nl)
					n_carry = 0;
				start = end;
			}
			if (fwd > 0 && write_all(ufd, buf, fwd) != 0)
				break;
		}
	}
	close(ufd);
	free(carry);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	int lfd;

	if (argc < 5) {
		fprintf(stderr, "usage: holdproxy LISTEN UPSTREAM HELD-LOG REGEX...\n");
		return 2;
	}
	held_log = argv[3];
	n_res = argc - 4;
	res = calloc((size_t)n_res, sizeof *res);
	for (int i = 0; res && i < n_res; i++)
		if (regcomp(&res[i], argv[4 + i], REG_EXTENDED | REG_NOSUB) != 0) {
			fprintf(stderr, "holdproxy: bad pattern: %s\n", argv[4 + i]);
			return 2;
		}
	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(argv[1]);
	if (res == NULL || lfd < 0 || unix_addr(argv[1], &sa) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 64) != 0) {
		perror("holdproxy: listening");
		return 2;
	}
	pid_t me = getpid();
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("holdproxy: accept");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != me)
				_exit(0); /* the proxy died meanwhile */
			close(lfd);
			relay(cfd, argv[2]);
			_exit(0);
		}
		close(cfd);
	}
}
