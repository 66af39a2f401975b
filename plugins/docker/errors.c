/*
 * errors.c - one line and one status for every way an engine call fails.
 *
 * The line names what was being done and why it failed, in the engine's
 * own words where it gave some.  The status says whose fault it is, which
 * is what the host reports: the engine out of reach (down, socket
 * permission, connection lost, no address pool left) is
 * PERCH_ERR_UNAVAILABLE, an infrastructure failure; a missing image or
 * container is PERCH_ERR_NOT_FOUND and a step Docker refuses (bad
 * parameters, a name in use, registry credentials refused) is
 * PERCH_ERR_INVALID_INPUT, the step's own fault.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

void perch_docker_engine_message(const perch_docker_resp *resp, char *out,
				 size_t outsz)
{
	json_object *o = NULL;
	const char *msg = NULL;

	out[0] = '\0';
	if (resp->body.data == NULL || resp->body.len == 0)
		return;
	o = json_tokener_parse(resp->body.data);
	if (o != NULL)
		msg = perch_docker_jstr(o, "message");
	if (msg != NULL) {
		snprintf(out, outsz, "%s", msg);
	} else {
		/* Not JSON (a proxy's page, plain text): the first line. */
		size_t n = strcspn(resp->body.data, "\r\n");
		if (n >= outsz)
			n = outsz - 1;
		memcpy(out, resp->body.data, n);
		out[n] = '\0';
	}
	json_object_put(o);
}

static bool has(const char *s, const char *needle)
{
	return s != NULL && strcasestr(s, needle) != NULL;
}

perch_status perch_docker_classify_message(long http_status, const char *msg)
{
	/* Some failures come with a generic status; their words decide. */
	if (has(msg, "non-overlapping") || has(msg, "address pool"))
		return PERCH_ERR_UNAVAILABLE;
	/* A registry out of reach. */
	if (has(msg, "connection refused") || has(msg, "no such host") ||
	    has(msg, "i/o timeout") || has(msg, "handshake timeout") ||
	    has(msg, "network is unreachable"))
		return PERCH_ERR_UNAVAILABLE;
	if (has(msg, "unauthorized") || has(msg, "authentication required") ||
	    has(msg, "denied") || has(msg, "no basic auth credentials"))
		return PERCH_ERR_INVALID_INPUT;
	if (has(msg, "executable file not found") ||
	    has(msg, "invalid reference format") ||
	    has(msg, "is already in use"))
		return PERCH_ERR_INVALID_INPUT;
	if (has(msg, "manifest unknown") || has(msg, "not found") ||
	    has(msg, "no such image") ||
	    has(msg, "repository does not exist"))
		return PERCH_ERR_NOT_FOUND;
	switch (http_status) {
	case 400:
	case 409:
	case 422:
		return PERCH_ERR_INVALID_INPUT;
	case 401:
	case 403:
		return PERCH_ERR_INVALID_INPUT;
	case 404:
		return PERCH_ERR_NOT_FOUND;
	case 503:
		return PERCH_ERR_UNAVAILABLE;
	default:
		return PERCH_ERR;
	}
}

/* Words for a transfer that got no (complete) reply. */
static perch_status transport_failure(const perch_docker_client *c,
				      const perch_docker_resp *resp,
				      perch_error *err, const char *what)
{
	const char *where = c->socket_path != NULL ? c->socket_path : c->display;

	if (resp->os_errno == EACCES || resp->os_errno == EPERM)
		return perch_error_set(
			err, PERCH_ERR_UNAVAILABLE,
			"%s: permission denied on the docker socket %s (is "
			"this user in the docker group?)",
			what, where);
	if (resp->status == 0 &&
	    (resp->curl_code == CURLE_COULDNT_CONNECT ||
	     resp->curl_code == CURLE_COULDNT_RESOLVE_HOST ||
	     resp->curl_code == CURLE_OPERATION_TIMEDOUT))
		return perch_error_set(
			err, PERCH_ERR_UNAVAILABLE,
			"%s: docker engine not reachable at %s: %s", what,
			c->display,
			resp->os_errno ? strerror(resp->os_errno)
				       : resp->curl_error);
	if (resp->curl_code == CURLE_OPERATION_TIMEDOUT)
		return perch_error_set(err, PERCH_ERR_TIMEOUT,
				       "%s: the docker engine at %s did not "
				       "answer in time",
				       what, c->display);
	if (resp->curl_code == CURLE_OUT_OF_MEMORY)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY,
				       "%s: out of memory", what);
	if (resp->curl_code == CURLE_SSL_CONNECT_ERROR ||
	    resp->curl_code == CURLE_PEER_FAILED_VERIFICATION ||
	    resp->curl_code == CURLE_SSL_CERTPROBLEM ||
	    resp->curl_code == CURLE_SSL_CACERT_BADFILE)
		return perch_error_set(err, PERCH_ERR_UNAVAILABLE,
				       "%s: TLS with the docker engine at %s "
				       "failed: %s",
				       what, c->display, resp->curl_error);
	/* The connection broke mid-reply: the engine went away (restarted,
	 * crashed) while we were talking to it. */
	return perch_error_set(err, PERCH_ERR_UNAVAILABLE,
			       "%s: lost the connection to the docker engine "
			       "at %s (did it restart?): %s",
			       what, c->display, resp->curl_error);
}

perch_status perch_docker_fail(const perch_docker_client *c,
			       const perch_docker_resp *resp,
			       perch_error *err, const char *what)
{
	char msg[768];
	perch_status st;

	if (resp->cancelled)
		return perch_error_set(err, PERCH_ERR_CANCELLED,
				       "%s: cancelled", what);
	if (resp->curl_code != 0 || resp->status == 0)
		return transport_failure(c, resp, err, what);
	perch_docker_engine_message(resp, msg, sizeof msg);
	st = perch_docker_classify_message(resp->status, msg);
	if (st == PERCH_ERR_UNAVAILABLE && has(msg, "address pool"))
		return perch_error_set(
			err, st,
			"%s: the docker engine has no free address pool left "
			"for a new network (leaked networks? see `docker "
			"network ls`): %s",
			what, msg);
	return perch_error_set(err, st, "%s: %s", what,
			       msg[0] ? msg : "the engine gave no reason");
}
