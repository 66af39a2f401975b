/*
 * fuzz_ctl.c - the daemon's control-socket request parser: what a client
 * of the unix socket can make the daemon read.
 *
 * Parsers reached (host/):
 *   perch_lr_next            daemon_proto.c  request framing: '\n'-ended
 *                                            lines, the length limit, a
 *                                            line cut short at the end
 *   perch_ctl_parse_request  daemon_ctl.c    JSON decoding (one object, no
 *                                            trailing bytes but blanks),
 *                                            "cmd" and each command's
 *                                            fields (workflow, id, follow,
 *                                            timeout_ms, source, backend)
 *   perch_json_str           daemon_wf.c     the error reply's encoding
 *
 * Input: byte 0 picks the line limit (bit 7 set: the daemon's real
 * PERCH_CTL_MAX_REQUEST; else (byte & 0x3f) * 4 bytes, so that lines
 * meet the limit) and how the stream arrives (bit 6: through a socket, in
 * pieces of 1 to 16 bytes written by a thread, so that lines straddle
 * reads; else all at once from a memfd); the rest is the byte stream a
 * client sends.  It is read as the daemon reads its socket, line after
 * line (the daemon reads only the first; the others test the reader's
 * carry-over).
 *
 * Oracles: the reader returns exactly the lines of the stream, TOO_LONG
 * exactly for a line over the limit, EOF at a clean end and EPROTO for a
 * last line without its newline; every line either decodes into a
 * request whose fields obey daemon_ctl.h, or is refused with code
 * "malformed" and words whose reply (built as reply_error builds it) is
 * one line of valid JSON that says them.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_ctl.h"
#include "daemon_proto.h"
#include "fuzz.h"

/* Lines decoded per input, so that an input of many short lines stays
 * fast. */
#define MAX_LINES 64

static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07;
		else
			return false;
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

/* The refusal as the daemon sends it (daemon_ctl.c reply_error), checked. */
static void check_refusal(const perch_ctl_refusal *why)
{
	FUZZ_CHECK(why->code != NULL && strcmp(why->code, "malformed") == 0,
		   "refused with code %s", why->code ? why->code : "(null)");
	FUZZ_CHECK(why->message != NULL && why->message[0] != '\0', "refused without words");

	perch_buf b = {0};
	perch_buf_printf(&b, "{\"ok\":false,\"code\":\"%s\",\"error\":", why->code);
	perch_json_str(&b, why->message);
	perch_buf_putc(&b, '}');
	FUZZ_CHECK(memchr(b.data, '\n', b.len) == NULL, "the error reply is not one line: %s",
		   b.data);
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, b.data, (int)b.len);
	FUZZ_CHECK(o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
			   json_tokener_get_parse_end(tok) == b.len &&
			   json_object_is_type(o, json_type_object),
		   "the error reply is not a JSON object: %s", b.data);
	json_object *v;
	FUZZ_CHECK(json_object_object_get_ex(o, "ok", &v) && json_object_is_type(v, json_type_boolean) &&
			   !json_object_get_boolean(v),
		   "the error reply lacks \"ok\":false: %s", b.data);
	FUZZ_CHECK(json_object_object_get_ex(o, "error", &v) && json_object_is_type(v, json_type_string),
		   "the error reply has no \"error\" string: %s", b.data);
	/* Invalid UTF-8 is replaced (perch_json_strn); valid text arrives as
	 * it was. */
	if (utf8_valid((const unsigned char *)why->message, strlen(why->message)))
		FUZZ_CHECK(strcmp(json_object_get_string(v), why->message) == 0,
			   "the error reply changed the words: %s", b.data);
	json_object_put(o);
	json_tokener_free(tok);
	perch_buf_free(&b);
}

static void check_request(const perch_ctl_request *req)
{
	FUZZ_CHECK(req->obj != NULL && json_object_is_type(req->obj, json_type_object),
		   "accepted without an object");
	json_object *v;
	FUZZ_CHECK(json_object_object_get_ex(req->obj, "cmd", &v) &&
			   json_object_is_type(v, json_type_string),
		   "accepted without a cmd string");
	static const char *const names[] = {"submit", "ps",     "logs",   "wait",
					    "cancel", "status", "reload", "ping"};
	FUZZ_CHECK((unsigned)req->cmd < sizeof names / sizeof names[0], "cmd %d", (int)req->cmd);
	FUZZ_CHECK(strcmp(json_object_get_string(v), names[req->cmd]) == 0,
		   "cmd \"%s\" decoded as %s", json_object_get_string(v), names[req->cmd]);
	switch (req->cmd) {
	case PERCH_CTL_SUBMIT:
		FUZZ_CHECK(req->workflow != NULL, "submit without a workflow");
		FUZZ_CHECK(json_object_object_get_ex(req->obj, "workflow", &v) &&
				   json_object_get_string(v) == req->workflow &&
				   (size_t)json_object_get_string_len(v) == req->workflow_len,
			   "submit: workflow is not the request's string");
		FUZZ_CHECK(req->id == NULL, "submit with an id");
		break;
	case PERCH_CTL_LOGS:
	case PERCH_CTL_WAIT:
	case PERCH_CTL_CANCEL:
		FUZZ_CHECK(req->id != NULL, "%s without an id", names[req->cmd]);
		FUZZ_CHECK(req->workflow == NULL, "%s with a workflow", names[req->cmd]);
		FUZZ_CHECK(req->cmd == PERCH_CTL_LOGS || !req->follow, "%s follows",
			   names[req->cmd]);
		break;
	default:
		FUZZ_CHECK(req->id == NULL && req->workflow == NULL && !req->follow,
			   "%s with fields", names[req->cmd]);
	}
}

static void parse_line(const char *line, size_t len)
{
	/* An exact-length copy: a read past the line is an ASan report. */
	char *copy = perch_xmalloc(len ? len : 1);
	memcpy(copy, line, len);
	perch_ctl_request req;
	perch_ctl_refusal why;
	memset(&why, 0x5a, sizeof why);
	if (perch_ctl_parse_request(copy, len, &req, &why)) {
		check_request(&req);
		FUZZ_CHECK(why.message == NULL, "accepted with words");
		perch_ctl_request_free(&req);
		FUZZ_CHECK(req.obj == NULL, "request_free left the object");
	} else {
		FUZZ_CHECK(req.obj == NULL && req.id == NULL && req.workflow == NULL,
			   "refused but *req filled");
		check_refusal(&why);
		free(why.message);
	}
	free(copy);
}

/* The client of the dribble mode: writes the stream in small pieces and
 * closes its end (early, when the reader has gone). */
typedef struct dribble {
	int fd;
	const char *data;
	size_t len;
	uint32_t seed;
} dribble;

static void *dribble_main(void *arg)
{
	dribble *d = arg;
	size_t off = 0;
	while (off < d->len) {
		d->seed ^= d->seed << 13;
		d->seed ^= d->seed >> 17;
		d->seed ^= d->seed << 5;
		size_t n = 1 + d->seed % 16;
		if (n > d->len - off)
			n = d->len - off;
		ssize_t w = send(d->fd, d->data + off, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* the reader stopped and closed its end */
		off += (size_t)w;
	}
	close(d->fd);
	return NULL;
}

/* One memfd for every input (a fuzzer runs millions), closed at exit so
 * that valgrind's descriptor check (.ci/valgrind.sh) finds nothing open. */
static int memfd = -1;

static void close_memfd(void)
{
	if (memfd >= 0)
		close(memfd);
	memfd = -1;
}

static int stream_fd(void)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz_ctl", MFD_CLOEXEC);
		FUZZ_CHECK(memfd >= 0, "memfd_create: %s", strerror(errno));
		atexit(close_memfd);
	}
	return memfd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t max = data[0] & 0x80 ? PERCH_CTL_MAX_REQUEST : (size_t)(data[0] & 0x3f) * 4;
	bool dribbling = (data[0] & 0xc0) == 0x40;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	dribble d = {.fd = -1, .data = in, .len = n, .seed = (uint32_t)n * 2654435761u + 7};
	pthread_t writer;
	int fd;

	if (dribbling) {
		int sv[2];
		FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
			   "socketpair: %s", strerror(errno));
		fd = sv[0];
		d.fd = sv[1];
		FUZZ_CHECK(pthread_create(&writer, NULL, dribble_main, &d) == 0, "pthread_create");
	} else {
		fd = stream_fd();
		FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 &&
				   perch_write_all(fd, in, n) == 0 && lseek(fd, 0, SEEK_SET) == 0,
			   "memfd: %s", strerror(errno));
	}

	perch_linereader lr = {.fd = fd};
	size_t pos = 0;
	for (int k = 0; k < MAX_LINES; k++) {
		char *line = NULL;
		size_t len = 0;
		errno = 0;
		int rc = perch_lr_next(&lr, max, -1, NULL, NULL, &line, &len);
		const char *nl = memchr(in + pos, '\n', n - pos);
		size_t want = nl ? (size_t)(nl - (in + pos)) : n - pos;
		if (nl == NULL && want == 0) {
			FUZZ_CHECK(rc == PERCH_CTL_EOF, "clean end read as %d", rc);
			break;
		}
		if (want > max) {
			FUZZ_CHECK(rc == PERCH_CTL_TOO_LONG, "a %zu-byte line over %zu read as %d", want,
				   max, rc);
			break;
		}
		if (nl == NULL) {
			FUZZ_CHECK(rc == PERCH_CTL_ERROR && errno == EPROTO,
				   "a last line without newline read as %d (%s)", rc, strerror(errno));
			break;
		}
		FUZZ_CHECK(rc == PERCH_CTL_LINE, "line %d read as %d", k, rc);
		FUZZ_CHECK(len == want && memcmp(line, in + pos, len) == 0 && line[len] == '\0',
			   "line %d: %zu bytes read, %zu sent", k, len, want);
		parse_line(line, len);
		pos += want + 1;
	}
	perch_lr_free(&lr);
	if (dribbling) {
		close(fd);
		pthread_join(writer, NULL);
	}
	return 0;
}
