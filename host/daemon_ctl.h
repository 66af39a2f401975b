/*
 * daemon_ctl.h - decoding one control request (daemon_ctl.c), apart from
 * the socket: what the daemon does with the line it read, and what the
 * fuzz harness (tests/fuzz/fuzz_ctl.c) feeds any bytes to.
 *
 * A request is a JSON object on one line (docs/daemon-protocol.md):
 * {"cmd":"submit","workflow":"...","source":"x","backend":"docker",
 *  "timeout_ms":60000,"follow":true}, {"cmd":"logs","id":"a1b2",
 * "follow":true}, {"cmd":"wait","id":"a1b2"}, {"cmd":"cancel","id":"a1b2"},
 * {"cmd":"ps"}, {"cmd":"status"}, {"cmd":"reload"}, {"cmd":"ping"}.
 *
 * Threads: reentrant; a request belongs to one thread.
 */
#ifndef PERCH_HOST_DAEMON_CTL_H
#define PERCH_HOST_DAEMON_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

typedef enum perch_ctl_cmd {
	PERCH_CTL_SUBMIT,
	PERCH_CTL_PS,
	PERCH_CTL_LOGS,
	PERCH_CTL_WAIT,
	PERCH_CTL_CANCEL,
	PERCH_CTL_STATUS,
	PERCH_CTL_RELOAD,
	PERCH_CTL_PING,
} perch_ctl_cmd;

/* A decoded request.  The strings point into obj and live as long as the
 * request. */
typedef struct perch_ctl_request {
	json_object *obj;     /* the whole request (owned) */
	perch_ctl_cmd cmd;
	const char *id;       /* logs, wait, cancel: the workflow id, never NULL */
	const char *workflow; /* submit: the workflow JSON text, never NULL */
	size_t workflow_len;  /* its length (it may hold NUL bytes) */
	const char *source;   /* submit: "source" or NULL */
	const char *backend;  /* submit: "backend" or NULL */
	int64_t timeout_ms;   /* submit: "timeout_ms" or 0 */
	bool follow;          /* submit, logs: "follow" */
} perch_ctl_request;

/* Why a request is refused: the error reply's code ("malformed") and
 * words, and whether the connection is drained before it closes (after a
 * line that is not a JSON object: the client may still be sending). */
typedef struct perch_ctl_refusal {
	const char *code; /* static */
	char *message;    /* malloc'd, the caller frees it */
	bool drain;
} perch_ctl_refusal;

/*
 * Decodes and checks the request line (len bytes, without its '\n'; it
 * need not be NUL-terminated).  Returns true with *req filled (release it
 * with perch_ctl_request_free), or false with *why filled and *req empty.
 * Never fails for want of memory (aborts, like perch_x*).
 */
bool perch_ctl_parse_request(const char *line, size_t len, perch_ctl_request *req,
			     perch_ctl_refusal *why);
/* Releases req (zeroed or filled by perch_ctl_parse_request); it is then
 * empty again. */
void perch_ctl_request_free(perch_ctl_request *req);

#endif
