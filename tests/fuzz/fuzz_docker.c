/*
 * fuzz_docker.c - every parser of the docker backend (plugins/docker) that
 * reads what the Docker engine answers, driven through the plugin's own
 * entry points against a scripted engine.
 *
 * The harness links every file of the plugin except http.c, whose
 * perch_docker_http it replaces with an engine that answers each request
 * from the input (http.c parses nothing itself: libcurl reads the status
 * line and headers, and http.c hands the body over as it comes).  So the
 * plugin's real code paths read the fuzzed answers, as they would over
 * the socket.
 *
 * Parsers reached:
 *   engine.c    perch_docker_call (a 2xx reply's JSON), perch_docker_negotiate
 *               (GET /version: ApiVersion, MinAPIVersion, Version, and the
 *               static version_key), the jstr/jint/jbool accessors
 *   backend.c   engine_info (GET /info: OSType, Architecture) via load
 *   errors.c    perch_docker_engine_message (error bodies, JSON or not),
 *               perch_docker_classify_message, perch_docker_fail and its
 *               transport_failure (status 0, curl codes, errno, cancel)
 *   pull.c      POST /images/create: the progress stream (on_data,
 *               on_message, changed, emit_line), in-stream {"error": ...}
 *               and error replies, through start_step
 *   steps.c     create (Id), wait (StatusCode, Error.Message), inspect
 *               (State.ExitCode/OOMKilled/Running, Config.Labels, Tty),
 *               never_started_leftover and free_name (a 409 on create),
 *               perch_docker_list (array replies, {"Volumes": [...]}),
 *               stop/kill/delete statuses (304, 404, 409 "in progress")
 *   discover.c  discovery from container, volume and network lists (Labels,
 *               Id, State) and resume from inspect (prelude label, Tty)
 *   workflow.c  destroy_workflow's lists (Id, Name) and 409/"in use" retries
 *   demux.c     perch_docker_demux_feed, directly and under logs.c
 *   logs.c      tail_step's follower: frames, prelude, skipped bytes/lines
 *
 * Input, dispatched on the first byte:
 *
 *   'D' demux:   flags(1) stop(1) stream...
 *       flags bit 0: a TTY stream; bits 1-7 seed the chunking.  stop: emit
 *       refuses once 16*stop bytes passed (0: never).  Oracle: what comes
 *       out is exactly a reference demultiplexer's output (a prefix of it
 *       when stopped), whatever the chunking.
 *
 *   'M' message: status(2, big-endian) how(1) [curl(1)] body...
 *       how bit 0: cancelled; bit 1: a transport failure with curl code
 *       curl; bit 2: errno EACCES, bit 3: ECONNREFUSED.  Oracle: the engine
 *       message fits any buffer, every status is a known one, every error
 *       is one line naming what failed.
 *
 *   anything else: a session with a scripted engine.  The first line
 *   lists operations, after load, before unload:
 *       s setup_workflow          D destroy_workflow
 *       a start_step A (pulls)    b start_step B (prepared image, readable name)
 *       t tail_step A             u tail_step B
 *       w wait_step A             x wait_step B
 *       d destroy_step A          e destroy_step B
 *       f discover                F discover, stop after the first workflow
 *       r resume A, 7 bytes seen  R resume A, 2 lines seen
 *       q resume B from the start p ping
 *       z resume A under an empty name (taken from the container's label)
 *     and options: V force API 1.41, N an instance network (connects),
 *     C the context is cancelled (wait_step returns at once).
 *   Then answers, each
 *       @@ <class> <status> [chunk=N] [x=N] [curl=N] [errno=N] [cancel]\n<body>
 *   up to the next "\n@@ " or the end: chunk, the size of the pieces a
 *   stream arrives in; x, the body N times over (big streams from small
 *   inputs; at most 1 MiB a session); curl and errno, a transfer that
 *   fails after the body; cancel, the request's cancel descriptor fired.  Classes: version info ping pull
 *   create start connect wait inspect logs list volumes networks stop kill
 *   delete volume-create network-create volume-delete network-delete.
 *   Answers of one class are used in order, the last one again and again;
 *   stop, kill and delete (which destroy_workflow sends from several
 *   threads at once) always give their first, so that a run does not
 *   depend on thread timing.  A class without answers gives a realistic
 *   default (below), so that a script needs only the answers it changes.
 *   Oracles: every request the plugin makes is well formed (a known
 *   endpoint, an escaped path, a JSON body, the negotiated version set);
 *   every failure has its status in err and one line of words; a wait
 *   that succeeds saw the container exit; discovery names each workflow
 *   once with all strings set; a tail delivers exactly the prelude plus
 *   the demultiplexed stream, less what a resume said the host has (a
 *   prefix of that when the stream broke off); the prelude stays bounded.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fuzz.h"

extern const perch_backend perch_backend_v1;

#define TASK "01HTASK0000000000000000000"
#define STEP_A "01HSTEPA000000000000000000"
#define STEP_B "01HSTEPB000000000000000000"
#define HOST_ID "fuzz-host"
#define MAX_OPS 24

/* ---- a reference demultiplexer ---------------------------------------------- */

/* Appends the payloads of a complete multiplexed stream to out; false when
 * a header's stream byte is bad (out then holds what came before it). */
static bool ref_demux(const unsigned char *s, size_t n, bool tty, pp_buf *out)
{
	size_t i = 0;
	if (tty) {
		pp_buf_add(out, s, n);
		return true;
	}
	while (n - i >= 8) {
		uint32_t len;
		if (s[i] > 2)
			return false;
		len = (uint32_t)s[i + 4] << 24 | (uint32_t)s[i + 5] << 16 |
		      (uint32_t)s[i + 6] << 8 | s[i + 7];
		i += 8;
		if (len > n - i)
			len = (uint32_t)(n - i);
		pp_buf_add(out, s + i, len);
		i += len;
	}
	return true;
}

/* ---- mode 'D': the demultiplexer alone --------------------------------------- */

typedef struct sink {
	pp_buf out;
	size_t limit; /* refuse once this much came (0: never) */
	bool refused;
} sink;

static bool sink_emit(void *user, const char *data, size_t n)
{
	sink *k = user;
	FUZZ_CHECK(!k->refused, "emit called after it refused");
	FUZZ_CHECK(n > 0, "an empty payload piece");
	pp_buf_add(&k->out, data, n);
	if (k->limit > 0 && k->out.len >= k->limit) {
		k->refused = true;
		return false;
	}
	return true;
}

static uint32_t next_rand(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void fuzz_demux(const uint8_t *data, size_t size)
{
	bool tty;
	uint32_t seed;
	size_t limit;
	perch_docker_demux d;
	sink k;
	pp_buf want = {0};
	size_t off = 0;
	bool ok = true, clean;

	if (size < 2)
		return;
	tty = data[0] & 1;
	seed = (uint32_t)(data[0] >> 1) * 2654435761u + 1;
	limit = (size_t)data[1] * 16;
	data += 2;
	size -= 2;
	memset(&d, 0, sizeof d);
	memset(&k, 0, sizeof k);
	k.limit = limit;
	d.tty = tty;
	while (off < size && ok) {
		size_t n = seed & 1 ? size - off : 1 + next_rand(&seed) % 64;
		if (n > size - off)
			n = size - off;
		ok = perch_docker_demux_feed(&d, (const char *)data + off, n, sink_emit, &k);
		off += n;
	}
	clean = ref_demux(data, size, tty, &want);
	FUZZ_CHECK(k.out.len <= want.len &&
			   (k.out.len == 0 || memcmp(k.out.data, want.data, k.out.len) == 0),
		   "demux gave %zu bytes that are not the stream's first", k.out.len);
	if (k.refused)
		FUZZ_CHECK(!ok, "feed went on after emit refused");
	else if (clean)
		FUZZ_CHECK(ok && k.out.len == want.len, "a clean stream: %zu of %zu bytes, ok %d",
			   k.out.len, want.len, ok);
	else
		FUZZ_CHECK(!ok && k.out.len == want.len, "a bad header: %zu of %zu bytes, ok %d",
			   k.out.len, want.len, ok);
	pp_buf_free(&k.out);
	pp_buf_free(&want);
}

/* ---- shared checks -------------------------------------------------------------- */

static bool known_status(perch_status st)
{
	return st >= PERCH_OK && st <= PERCH_ERR_IO;
}

/* FUZZ_DOCKER_TRACE=1 in the environment: every request and result on
 * stderr, for writing seeds. */
static bool tracing(void)
{
	static int on = -1;
	if (on < 0)
		on = getenv("FUZZ_DOCKER_TRACE") != NULL;
	return on;
}

static void check_result(perch_status st, const perch_error *err, const char *what)
{
	if (tracing())
		fprintf(stderr, "  %s: %s%s%s\n", what, perch_status_name(st),
			st != PERCH_OK ? ": " : "", st != PERCH_OK ? err->message : "");
	FUZZ_CHECK(known_status(st), "%s: status %d", what, (int)st);
	if (st == PERCH_OK)
		return;
	FUZZ_CHECK(err->code == st, "%s: returned %d, err says %d (%s)", what, (int)st,
		   (int)err->code, err->message);
	FUZZ_CHECK(err->message[0] != '\0', "%s failed (%d) without words", what, (int)st);
	FUZZ_CHECK(strchr(err->message, '\n') == NULL && strchr(err->message, '\r') == NULL,
		   "%s: the error is not one line: %s", what, err->message);
}

static perch_error new_error(void)
{
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	return e;
}

/* ---- mode 'M': error bodies and the classifier --------------------------------- */

static void fuzz_message(const uint8_t *data, size_t size)
{
	static const size_t sizes[] = {1, 2, 9, 768};
	perch_docker_client c;
	perch_docker_resp resp;
	perch_error err = new_error();
	perch_status st;
	unsigned how;
	char out[768];

	if (size < 3)
		return;
	memset(&resp, 0, sizeof resp);
	resp.status = (long)((data[0] << 8 | data[1]) % 1000);
	how = data[2];
	data += 3;
	size -= 3;
	if (how & 2) {
		if (size < 1)
			return;
		resp.curl_code = data[0] == 0 ? CURLE_COULDNT_CONNECT : data[0];
		snprintf(resp.curl_error, sizeof resp.curl_error, "fuzzed failure %d",
			 resp.curl_code);
		data++;
		size--;
	}
	resp.cancelled = how & 1;
	resp.os_errno = how & 4 ? EACCES : how & 8 ? ECONNREFUSED : 0;
	pp_buf_add(&resp.body, data, size);

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memset(out, 'x', sizeof out);
		perch_docker_engine_message(&resp, out, sizes[i]);
		FUZZ_CHECK(memchr(out, '\0', sizes[i]) != NULL,
			   "engine message not terminated within %zu bytes", sizes[i]);
	}
	FUZZ_CHECK(known_status(perch_docker_classify_message(resp.status, out)),
		   "classify gave an unknown status");
	FUZZ_CHECK(known_status(perch_docker_classify_message(0, resp.body.data)),
		   "classify gave an unknown status");

	memset(&c, 0, sizeof c);
	c.display = (char *)"unix:///fuzz/docker.sock";
	c.socket_path = (char *)"/fuzz/docker.sock";
	st = perch_docker_fail(&c, &resp, &err, "fuzz call");
	FUZZ_CHECK(st != PERCH_OK, "a failure that is not one");
	check_result(st, &err, "perch_docker_fail");
	FUZZ_CHECK(strncmp(err.message, "fuzz call: ", 11) == 0,
		   "the error does not say what failed: %s", err.message);
	pp_buf_free(&resp.body);
}

/* ---- the scripted engine ------------------------------------------------------- */

enum {
	K_VERSION, K_INFO, K_PING, K_PULL, K_CREATE, K_START, K_CONNECT, K_WAIT,
	K_INSPECT, K_LOGS, K_LIST, K_VOLUMES, K_NETWORKS, K_STOP, K_KILL, K_DELETE,
	K_VOLUME_CREATE, K_NETWORK_CREATE, K_VOLUME_DELETE, K_NETWORK_DELETE,
	K_COUNT
};

static const char *const class_names[K_COUNT] = {
	"version", "info", "ping", "pull", "create", "start", "connect", "wait",
	"inspect", "logs", "list", "volumes", "networks", "stop", "kill", "delete",
	"volume-create", "network-create", "volume-delete", "network-delete",
};

#define LABELS(step_uuid, step_name)                                                   \
	"{\"io.perch.host-id\":\"" HOST_ID "\",\"io.perch.task-uuid\":\"" TASK "\","     \
	"\"io.perch.step-uuid\":\"" step_uuid "\",\"io.perch.step-name\":\"" step_name \
	"\",\"io.perch.step-type\":\"commands\",\"wp_uuid\":\"" step_uuid              \
	"\",\"wp_step\":\"" step_name "\"}"

#define CID_A "e90e34656806a3b0a6ab4f1a2e9c0ff24f1e1b7fe1df33e0c5ad0a6e12e0b3a1"

/* What an engine answers when the script says nothing (Docker 24, API
 * 1.43, shapes from the Engine API reference). */
static const struct {
	long status;
	const char *body;
} defaults[K_COUNT] = {
	[K_VERSION] = {200, "{\"Platform\":{\"Name\":\"Docker Engine - Community\"},"
			    "\"Version\":\"24.0.7\",\"ApiVersion\":\"1.43\","
			    "\"MinAPIVersion\":\"1.12\",\"GitCommit\":\"311b9ff\","
			    "\"GoVersion\":\"go1.20.10\",\"Os\":\"linux\",\"Arch\":\"amd64\","
			    "\"KernelVersion\":\"6.1.0-13-amd64\"}"},
	[K_INFO] = {200, "{\"ID\":\"7TRN:IPZB:QYBB:VPBQ\",\"Containers\":2,"
			 "\"OSType\":\"linux\",\"Architecture\":\"x86_64\","
			 "\"ServerVersion\":\"24.0.7\",\"Driver\":\"overlay2\"}"},
	[K_PING] = {200, "OK"},
	[K_PULL] = {200, "{\"status\":\"Pulling from library/alpine\",\"id\":\"3.19\"}\r\n"
			 "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"c6a83fedfae6\"}\r\n"
			 "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":32768,"
			 "\"total\":3401613},\"progress\":\"[>   ]  32.77kB/3.402MB\","
			 "\"id\":\"c6a83fedfae6\"}\r\n"
			 "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"c6a83fedfae6\"}\r\n"
			 "{\"status\":\"Digest: sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b\"}\r\n"
			 "{\"status\":\"Status: Downloaded newer image for alpine:3.19\"}\r\n"},
	[K_CREATE] = {201, "{\"Id\":\"" CID_A "\",\"Warnings\":[]}"},
	[K_START] = {204, ""},
	[K_CONNECT] = {200, ""},
	[K_WAIT] = {200, "{\"Error\":null,\"StatusCode\":0}"},
	[K_INSPECT] = {200, "{\"Id\":\"" CID_A "\",\"Created\":\"2024-01-05T10:00:00.0Z\","
			    "\"State\":{\"Status\":\"exited\",\"Running\":false,\"Paused\":false,"
			    "\"OOMKilled\":false,\"Dead\":false,\"Pid\":0,\"ExitCode\":0,"
			    "\"Error\":\"\"},\"Name\":\"/wp_" STEP_A "\",\"Config\":{\"Tty\":false,"
			    "\"Image\":\"alpine:3.19\",\"Labels\":" LABELS(STEP_A, "build") "}}"},
	[K_LOGS] = {200, "\001\000\000\000\000\000\000\006hello\n"
			 "\002\000\000\000\000\000\000\013warn: done\n"},
	[K_LIST] = {200, "[{\"Id\":\"" CID_A "\",\"Names\":[\"/wp_" STEP_A "\"],"
			 "\"Image\":\"alpine:3.19\",\"State\":\"exited\","
			 "\"Status\":\"Exited (0) 2 seconds ago\",\"Labels\":"
			 LABELS(STEP_A, "build") "}]"},
	[K_VOLUMES] = {200, "{\"Volumes\":[{\"Name\":\"wp_" TASK "_default\",\"Driver\":\"local\","
			    "\"Mountpoint\":\"/var/lib/docker/volumes/x/_data\",\"Scope\":\"local\","
			    "\"Labels\":{\"io.perch.host-id\":\"" HOST_ID "\","
			    "\"io.perch.task-uuid\":\"" TASK "\"}}],\"Warnings\":null}"},
	[K_NETWORKS] = {200, "[{\"Name\":\"wp_" TASK "_default\",\"Id\":\"7d86d31b1478\","
			     "\"Driver\":\"bridge\",\"Scope\":\"local\",\"Labels\":"
			     "{\"io.perch.host-id\":\"" HOST_ID "\",\"io.perch.task-uuid\":\"" TASK
			     "\"}}]"},
	[K_STOP] = {204, ""},
	[K_KILL] = {204, ""},
	[K_DELETE] = {204, ""},
	[K_VOLUME_CREATE] = {201, "{\"Name\":\"wp_" TASK "_default\",\"Driver\":\"local\"}"},
	[K_NETWORK_CREATE] = {201, "{\"Id\":\"7d86d31b1478\",\"Warning\":\"\"}"},
	[K_VOLUME_DELETE] = {204, ""},
	[K_NETWORK_DELETE] = {204, ""},
};

#define MAX_ANSWERS 8

typedef struct answer {
	long status;
	int curl_code, os_errno;
	bool cancel;
	size_t chunk; /* streamed bodies: piece size; 0: all at once */
	size_t repeat;
	const char *body;
	size_t len;
} answer;

typedef struct engine {
	pthread_mutex_t lock;
	answer answers[K_COUNT][MAX_ANSWERS];
	size_t n[K_COUNT];
	size_t served[K_COUNT];
	const answer *last_logs; /* the answer of the latest logs request */
	bool negotiated;         /* GET /version answered; c->api settled */
	char ops[MAX_OPS + 1];   /* the session's operations */
	bool forced_api;
	/* The host's side. */
	bool ctx_cancelled;
	bool network_flag;
	int cancel_fd; /* always readable: workflow.c's retry waits end at once */
	/* Bodies repeated by x=N, freed after the session. */
	char *expanded[K_COUNT * MAX_ANSWERS];
	size_t n_expanded, expanded_bytes;
} engine;

static engine E = {.lock = PTHREAD_MUTEX_INITIALIZER, .cancel_fd = -1};

static const answer *pick(int k, bool stateless)
{
	static answer def[K_COUNT];
	const answer *a;

	pthread_mutex_lock(&E.lock);
	if (E.n[k] == 0) {
		def[k].status = defaults[k].status;
		def[k].body = defaults[k].body;
		/* The log stream holds NUL bytes: its length is not strlen. */
		def[k].len = k == K_LOGS ? 2 * 8 + 6 + 11 : strlen(defaults[k].body);
		a = &def[k];
	} else if (stateless) {
		a = &E.answers[k][0];
	} else {
		size_t i = E.served[k] < E.n[k] ? E.served[k] : E.n[k] - 1;
		a = &E.answers[k][i];
	}
	E.served[k]++;
	if (k == K_LOGS)
		E.last_logs = a;
	pthread_mutex_unlock(&E.lock);
	return a;
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* The path between head and the next '/' or '?' ("/containers/<id>/..."). */
static const char *after_id(const char *path, const char *head)
{
	const char *p = path + strlen(head);
	while (*p != '\0' && *p != '/' && *p != '?')
		p++;
	return p;
}

/* Which endpoint a request is for; a request to none is a bug. */
static int classify_request(const char *m, const char *path)
{
	bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0,
	     del = strcmp(m, "DELETE") == 0;

	FUZZ_CHECK(get || post || del, "method %s", m);
	if (get && strcmp(path, "/version") == 0)
		return K_VERSION;
	if (get && strcmp(path, "/info") == 0)
		return K_INFO;
	if (get && strcmp(path, "/_ping") == 0)
		return K_PING;
	if (post && has_prefix(path, "/images/create?"))
		return K_PULL;
	if (post && has_prefix(path, "/containers/create?"))
		return K_CREATE;
	if (get && has_prefix(path, "/containers/json?"))
		return K_LIST;
	if (get && has_prefix(path, "/volumes?"))
		return K_VOLUMES;
	if (get && has_prefix(path, "/networks?"))
		return K_NETWORKS;
	if (post && strcmp(path, "/volumes/create") == 0)
		return K_VOLUME_CREATE;
	if (post && strcmp(path, "/networks/create") == 0)
		return K_NETWORK_CREATE;
	if (post && has_prefix(path, "/networks/") &&
	    strcmp(after_id(path, "/networks/"), "/connect") == 0)
		return K_CONNECT;
	if (del && has_prefix(path, "/volumes/"))
		return *after_id(path, "/volumes/") == '?' ||
				       *after_id(path, "/volumes/") == '\0'
			       ? K_VOLUME_DELETE
			       : -1;
	if (del && has_prefix(path, "/networks/"))
		return *after_id(path, "/networks/") == '\0' ? K_NETWORK_DELETE : -1;
	if (has_prefix(path, "/containers/")) {
		const char *t = after_id(path, "/containers/");
		if (post && strcmp(t, "/start") == 0)
			return K_START;
		if (post && strcmp(t, "/wait") == 0)
			return K_WAIT;
		if (post && has_prefix(t, "/stop?t="))
			return K_STOP;
		if (post && strcmp(t, "/kill?signal=KILL") == 0)
			return K_KILL;
		if (get && strcmp(t, "/json") == 0)
			return K_INSPECT;
		if (get && has_prefix(t, "/logs?"))
			return K_LOGS;
		if (del && strcmp(t, "?v=1&force=1") == 0)
			return K_DELETE;
	}
	return -1;
}

static bool api_ok(const char *api)
{
	const char *p = api;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != '.' || *p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == '\0';
}

static void check_request(const perch_docker_client *c, const perch_docker_req *r)
{
	FUZZ_CHECK(r->method != NULL && r->path != NULL && r->path[0] == '/', "a request without a path");
	/* Ids and names from the engine are escaped (url.c). */
	for (const char *p = r->path; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		FUZZ_CHECK((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				   (ch >= '0' && ch <= '9') || strchr("-._~/?&=%", ch) != NULL,
			   "unescaped byte 0x%02x in the path %s", ch, r->path);
	}
	if (!r->unversioned) {
		FUZZ_CHECK(E.negotiated, "%s %s before the API version was settled", r->method,
			   r->path);
		FUZZ_CHECK(api_ok(c->api), "API version \"%s\" is not one", c->api);
	}
	if (r->body != NULL) {
		json_tokener *tok = json_tokener_new();
		json_object *o = json_tokener_parse_ex(tok, r->body, (int)strlen(r->body));
		FUZZ_CHECK(o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
				   json_object_is_type(o, json_type_object),
			   "the body of %s %s is not a JSON object: %s", r->method, r->path, r->body);
		json_object_put(o);
		json_tokener_free(tok);
	}
	if (r->registry_auth != NULL)
		for (const char *p = r->registry_auth; *p; p++)
			FUZZ_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
					   (*p >= '0' && *p <= '9') || strchr("-_=", *p) != NULL,
				   "X-Registry-Auth is not base64url: %s", r->registry_auth);
	FUZZ_CHECK(r->timeout_ms >= 0, "timeout %ld", r->timeout_ms);
}

/* ---- http.c, replaced ---------------------------------------------------------- */

perch_status perch_docker_client_init(perch_docker_client *c, const char *host,
				      const char *cert_path, bool tls_verify,
				      perch_error *err)
{
	(void)host;
	(void)cert_path;
	(void)err;
	memset(c, 0, sizeof *c);
	c->display = strdup("unix:///fuzz/docker.sock");
	c->socket_path = strdup("/fuzz/docker.sock");
	c->base_url = strdup("http://localhost");
	c->tls_verify = tls_verify;
	FUZZ_CHECK(c->display && c->socket_path && c->base_url, "out of memory");
	return PERCH_OK;
}

void perch_docker_client_free(perch_docker_client *c)
{
	free(c->display);
	free(c->socket_path);
	free(c->base_url);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	memset(c, 0, sizeof *c);
}

void perch_docker_resp_free(perch_docker_resp *resp)
{
	pp_buf_free(&resp->body);
}

bool perch_docker_http(const perch_docker_client *c, const perch_docker_req *r,
		       perch_docker_resp *resp)
{
	const answer *a;
	int k;

	check_request(c, r);
	k = classify_request(r->method, r->path);
	FUZZ_CHECK(k >= 0, "a request to no endpoint: %s %s", r->method, r->path);
	a = pick(k, k == K_STOP || k == K_KILL || k == K_DELETE);
	if (tracing())
		fprintf(stderr, "    engine: %s %s -> %s %ld%s (%zu bytes)\n", r->method, r->path,
			class_names[k], a->status, a->cancel ? " cancel" : "", a->len);
	if (a->cancel) {
		resp->cancelled = true;
		resp->curl_code = CURLE_ABORTED_BY_CALLBACK;
		return false;
	}
	resp->status = a->status;
	if (r->on_data != NULL) {
		size_t off = 0;
		while (off < a->len) {
			size_t n = a->chunk == 0 || a->chunk > a->len - off ? a->len - off
									 : a->chunk;
			if (!r->on_data(r->user, a->body + off, n)) {
				resp->stopped = true;
				resp->curl_code = CURLE_WRITE_ERROR;
				return false;
			}
			off += n;
			if (r->on_flush != NULL && !r->on_flush(r->user)) {
				resp->stopped = true;
				resp->curl_code = CURLE_WRITE_ERROR;
				return false;
			}
		}
	} else {
		pp_buf_add(&resp->body, a->body, a->len);
		if (resp->body.oom) {
			resp->curl_code = CURLE_OUT_OF_MEMORY;
			return false;
		}
	}
	if (a->curl_code != 0) {
		resp->curl_code = a->curl_code;
		resp->os_errno = a->os_errno;
		snprintf(resp->curl_error, sizeof resp->curl_error,
			 "fuzzed transfer failure %d", a->curl_code);
		return false;
	}
	if (k == K_VERSION)
		E.negotiated = true; /* perch_docker_negotiate settles c->api next */
	return true;
}

/* ---- the host's side ------------------------------------------------------------ */

static int cli_token, ctx_token;
#define CTX ((const perch_ctx *)&ctx_token)

static void host_log(const perch_host *h, int32_t level, const char *msg)
{
	(void)h;
	FUZZ_CHECK(level >= PERCH_LOG_ERROR && level <= PERCH_LOG_DEBUG, "log level %d",
		   (int)level);
	FUZZ_CHECK(msg != NULL, "a NULL log line");
}

static bool host_cancelled(const perch_ctx *ctx)
{
	(void)ctx;
	return E.ctx_cancelled;
}

static int host_cancel_fd(const perch_ctx *ctx)
{
	(void)ctx;
	return E.cancel_fd;
}

static int64_t host_deadline(const perch_ctx *ctx)
{
	(void)ctx;
	return INT64_MAX;
}

static const void *host_value(const perch_ctx *ctx, const char *key)
{
	(void)ctx;
	return strcmp(key, PERCH_CTX_CLI_COMMAND) == 0 ? &cli_token : NULL;
}

static const char *cli_string(const perch_cli *cli, const char *name)
{
	(void)cli;
	if (strcmp(name, "backend-docker-host-id") == 0)
		return HOST_ID;
	if (strcmp(name, "backend-docker-api-version") == 0)
		return E.forced_api ? "1.41" : NULL;
	if (strcmp(name, "backend-docker-network") == 0)
		return E.network_flag ? "ci-shared" : NULL;
	return NULL;
}

static bool cli_bool(const perch_cli *cli, const char *name)
{
	(void)cli;
	(void)name;
	return false;
}

static int64_t cli_int(const perch_cli *cli, const char *name)
{
	(void)cli;
	(void)name;
	return 0;
}

static size_t cli_list(const perch_cli *cli, const char *name, const char *const **items)
{
	(void)cli;
	(void)name;
	*items = NULL;
	return 0;
}

static const void *host_capability(const perch_host *h, const char *id)
{
	(void)h;
	(void)id;
	return NULL;
}

static const perch_host fake_host = {
	.struct_size = sizeof(perch_host),
	.abi_major = PERCH_ABI_MAJOR,
	.abi_minor = PERCH_ABI_MINOR,
	.host_version = "fuzz",
	.log = host_log,
	.ctx_cancelled = host_cancelled,
	.ctx_cancel_fd = host_cancel_fd,
	.ctx_deadline_ms = host_deadline,
	.ctx_value = host_value,
	.cli_string = cli_string,
	.cli_bool = cli_bool,
	.cli_int = cli_int,
	.cli_duration_ms = cli_int,
	.cli_list = cli_list,
	.cli_is_set = cli_bool,
	.get_capability = host_capability,
};

/* ---- the workflow ---------------------------------------------------------------- */

static const char *const cmds[] = {"echo hello", "ls -la"};
static const char *const aliases[] = {"build"};
static const perch_kv env[] = {{"CI", "woodpecker"}, {"CI_REPO", "perch/perch"}};
static const perch_conn nets_a[] = {
	{"wp_" TASK "_default", {aliases, 1}},
	{"extra-net", {NULL, 0}},
};

static const perch_step step_a = {
	.struct_size = sizeof(perch_step),
	.name = "build",
	.uuid = STEP_A,
	.type = PERCH_STEP_COMMANDS,
	.image = "alpine:3.19",
	.pull = true,
	.working_dir = "/woodpecker/src",
	.workspace_base = "/woodpecker",
	.environment = {env, 2},
	.commands = {cmds, 2},
	.networks = nets_a,
	.n_networks = 2,
	.on_success = true,
	.failure = PERCH_FAILURE_FAIL,
	.auth_config = {"ci", "s3cret"},
	.network_mode = "",
	.backend_options = "",
	.container_name_scheme = "",
};

static const perch_step step_b = {
	.struct_size = sizeof(perch_step),
	.name = "svc db",
	.uuid = STEP_B,
	.type = PERCH_STEP_SERVICE,
	.image = "registry.example:5000/team/tool@sha256:"
		 "c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b",
	.detach = true,
	.working_dir = "",
	.workspace_base = "",
	.on_success = true,
	.failure = PERCH_FAILURE_IGNORE,
	.auth_config = {"", ""},
	.network_mode = "",
	.backend_options = "{\"docker\":{\"user\":\"1000:1000\"}}",
	.container_name_scheme = "readable",
};

static const perch_step *const stage_steps[] = {&step_a, &step_b};
static const perch_stage stage = {
	.struct_size = sizeof(perch_stage),
	.steps = stage_steps,
	.n_steps = 2,
};
static const perch_stage *const stages[] = {&stage};
/* One stage: the worker then prepares nothing ahead, whose creates would
 * race the main thread's for the scripted answers. */
static const perch_config config = {
	.struct_size = sizeof(perch_config),
	.stages = stages,
	.n_stages = 1,
	.network = "wp_" TASK "_default",
	.volume = "wp_" TASK "_default",
};

/* ---- operations ------------------------------------------------------------------ */

static void check_prelude(perch_instance *inst, const perch_step *step)
{
	perch_docker_step *s;
	size_t n = 0;

	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, TASK, step->uuid);
	if (s != NULL)
		n = strlen(s->prelude);
	pthread_mutex_unlock(&inst->lock);
	FUZZ_CHECK(s != NULL, "step %s started but not recorded", step->name);
	/* Two pulls' "Pulling <image>" lines and a truncation note over. */
	FUZZ_CHECK(n <= PERCH_DOCKER_PRELUDE_MAX + 256, "a prelude of %zu bytes", n);
}

/* Drops what a resumed tail skips (logs.c out()). */
static void skip(pp_buf *b, uint64_t bytes, uint64_t lines)
{
	size_t off = bytes < b->len ? (size_t)bytes : b->len;
	while (lines > 0 && off < b->len) {
		const char *nl = memchr(b->data + off, '\n', b->len - off);
		if (nl == NULL) {
			off = b->len;
			break;
		}
		off = (size_t)(nl - b->data) + 1;
		lines--;
	}
	memmove(b->data, b->data + off, b->len - off);
	b->len -= off;
}

static void op_tail(perch_instance *inst, const perch_step *step)
{
	const perch_backend *be = &perch_backend_v1;
	perch_error err = new_error();
	uint64_t skip_bytes = 0, skip_lines = 0;
	perch_docker_step *s;
	pp_buf got = {0}, want = {0};
	const answer *logs;
	bool clean = true, tty = false;
	perch_status st;
	int fd = -1;

	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, TASK, step->uuid);
	if (s != NULL) {
		skip_bytes = s->skip_bytes;
		skip_lines = s->skip_lines;
	}
	pthread_mutex_unlock(&inst->lock);
	pthread_mutex_lock(&E.lock);
	E.last_logs = NULL;
	pthread_mutex_unlock(&E.lock);

	st = be->tail_step(inst, CTX, step, TASK, &fd, &err);
	check_result(st, &err, "tail_step");
	if (st != PERCH_OK) {
		FUZZ_CHECK(fd == -1, "tail_step failed but gave fd %d", fd);
		return;
	}
	FUZZ_CHECK(fd >= 0, "tail_step gave no descriptor");
	/* The follower copied the record; only this thread changes it. */
	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, TASK, step->uuid);
	FUZZ_CHECK(s != NULL, "tailed step %s not recorded", step->name);
	pp_buf_puts(&want, s->prelude);
	tty = s->tty;
	pthread_mutex_unlock(&inst->lock);

	for (;;) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		FUZZ_CHECK(n >= 0, "reading the tail: %s", strerror(errno));
		if (n == 0)
			break;
		pp_buf_add(&got, buf, (size_t)n);
	}
	close(fd);

	pthread_mutex_lock(&E.lock);
	logs = E.last_logs;
	pthread_mutex_unlock(&E.lock);
	if (logs == NULL || logs->cancel)
		clean = logs == NULL;
	else
		clean = ref_demux((const unsigned char *)logs->body, logs->len, tty, &want) &&
			logs->curl_code == 0;
	skip(&want, skip_bytes, skip_lines);
	FUZZ_CHECK(got.len <= want.len && (got.len == 0 || memcmp(got.data, want.data, got.len) == 0),
		   "tail of %s: %zu bytes that are not the first of the %zu expected", step->name,
		   got.len, want.len);
	if (clean)
		FUZZ_CHECK(got.len == want.len, "tail of %s: %zu of %zu bytes", step->name, got.len,
			   want.len);
	pp_buf_free(&got);
	pp_buf_free(&want);
}

typedef struct seen {
	char *tasks[64];
	size_t n;
	bool stop_after_first;
	size_t calls;
} seen;

static bool on_discovered(void *user, const perch_discovered_workflow *wf)
{
	seen *s = user;

	s->calls++;
	FUZZ_CHECK(!(s->stop_after_first && s->calls > 1), "emit called after it said stop");
	FUZZ_CHECK(wf->struct_size == sizeof *wf, "workflow struct_size %u", wf->struct_size);
	FUZZ_CHECK(wf->task_uuid != NULL, "a workflow without task uuid");
	for (size_t i = 0; i < s->n; i++)
		FUZZ_CHECK(strcmp(s->tasks[i], wf->task_uuid) != 0, "workflow %s reported twice",
			   wf->task_uuid);
	if (s->n < 64)
		s->tasks[s->n++] = strdup(wf->task_uuid);
	FUZZ_CHECK(wf->n_steps == 0 || wf->steps != NULL, "steps NULL");
	for (size_t i = 0; i < wf->n_steps; i++) {
		const perch_discovered_step *st = wf->steps[i];
		FUZZ_CHECK(st != NULL && st->struct_size == sizeof *st, "a bad step record");
		FUZZ_CHECK(st->uuid != NULL && st->name != NULL && st->container_id != NULL,
			   "a discovered step with a NULL string");
	}
	return !s->stop_after_first;
}

static void op_discover(perch_instance *inst, bool stop_after_first)
{
	const perch_workflow_discoverer_v1 *d =
		perch_backend_v1.get_capability(inst, PERCH_CAP_WORKFLOW_DISCOVERER);
	perch_error err = new_error();
	seen s = {.stop_after_first = stop_after_first};

	FUZZ_CHECK(d != NULL, "no discoverer");
	check_result(d->discover_workflows(inst, CTX, on_discovered, &s, &err), &err, "discover");
	for (size_t i = 0; i < s.n; i++)
		free(s.tasks[i]);
}

static void op_resume(perch_instance *inst, const perch_step *step, uint64_t bytes,
		      uint64_t lines, bool from_start)
{
	const perch_workflow_resumer_v1 *r =
		perch_backend_v1.get_capability(inst, PERCH_CAP_WORKFLOW_RESUMER);
	perch_resume_point from;
	perch_error err = new_error();

	FUZZ_CHECK(r != NULL, "no resumer");
	memset(&from, 0, sizeof from);
	from.struct_size = sizeof from;
	from.bytes_seen = bytes;
	from.lines_seen = lines;
	check_result(r->resume_step(inst, CTX, step, TASK, from_start ? NULL : &from, &err), &err,
		     "resume_step");
}

static void run_op(perch_instance *inst, char op)
{
	const perch_backend *be = &perch_backend_v1;
	perch_error err = new_error();
	perch_state state;
	perch_status st;

	switch (op) {
	case 's':
		check_result(be->setup_workflow(inst, CTX, &config, TASK, &err), &err,
			     "setup_workflow");
		break;
	case 'D':
		check_result(be->destroy_workflow(inst, CTX, &config, TASK, &err), &err,
			     "destroy_workflow");
		break;
	case 'a':
	case 'b': {
		const perch_step *step = op == 'a' ? &step_a : &step_b;
		st = be->start_step(inst, CTX, step, TASK, &err);
		check_result(st, &err, "start_step");
		if (st == PERCH_OK)
			check_prelude(inst, step);
		break;
	}
	case 't':
		op_tail(inst, &step_a);
		break;
	case 'u':
		op_tail(inst, &step_b);
		break;
	case 'w':
	case 'x':
		memset(&state, 0, sizeof state);
		state.struct_size = sizeof state;
		st = be->wait_step(inst, CTX, op == 'w' ? &step_a : &step_b, TASK, &state, &err);
		check_result(st, &err, "wait_step");
		if (st == PERCH_OK)
			FUZZ_CHECK(state.exited, "wait_step returned before the step exited");
		break;
	case 'd':
	case 'e':
		check_result(be->destroy_step(inst, CTX, op == 'd' ? &step_a : &step_b, TASK, &err),
			     &err, "destroy_step");
		break;
	case 'f':
	case 'F':
		op_discover(inst, op == 'F');
		break;
	case 'r':
		op_resume(inst, &step_a, 7, 0, false);
		break;
	case 'R':
		op_resume(inst, &step_a, 0, 2, false);
		break;
	case 'q':
		op_resume(inst, &step_b, 0, 0, true);
		break;
	case 'p':
		(void)perch_docker_ping(&inst->client, -1);
		break;
	case 'z': {
		perch_step nameless = step_a;
		nameless.name = "";
		op_resume(inst, &nameless, 0, 0, false);
		break;
	}
	default:
		break;
	}
}

/* ---- the script ------------------------------------------------------------------ */

static const char *find_sep(const char *p, const char *end)
{
	for (; p + 4 <= end; p++)
		if (p[0] == '\n' && p[1] == '@' && p[2] == '@' && p[3] == ' ')
			return p;
	return end;
}

/* "<class> <status> [opts]" (line, len bytes) into a, or -1. */
static int parse_answer_line(const char *line, size_t len, answer *a)
{
	char buf[128], *tok, *save = NULL;
	int k = -1;

	if (len >= sizeof buf)
		len = sizeof buf - 1;
	memcpy(buf, line, len);
	buf[len] = '\0';
	memset(a, 0, sizeof *a);
	tok = strtok_r(buf, " \r", &save);
	for (int i = 0; tok != NULL && i < K_COUNT; i++)
		if (strcmp(tok, class_names[i]) == 0)
			k = i;
	if (k < 0)
		return -1;
	tok = strtok_r(NULL, " \r", &save);
	a->status = tok != NULL ? strtol(tok, NULL, 10) % 1000 : 200;
	if (a->status < 0)
		a->status = -a->status;
	while ((tok = strtok_r(NULL, " \r", &save)) != NULL) {
		if (has_prefix(tok, "chunk="))
			a->chunk = (size_t)strtoul(tok + 6, NULL, 10) % 65536;
		else if (has_prefix(tok, "x="))
			a->repeat = (size_t)strtoul(tok + 2, NULL, 10) % 65536;
		else if (has_prefix(tok, "curl="))
			a->curl_code = (int)(strtoul(tok + 5, NULL, 10) % 100);
		else if (has_prefix(tok, "errno="))
			a->os_errno = (int)(strtoul(tok + 6, NULL, 10) % 200);
		else if (strcmp(tok, "cancel") == 0)
			a->cancel = true;
	}
	return k;
}

#define EXPANDED_MAX (1024 * 1024)

/* The body repeat times over, within the session's budget. */
static void expand(answer *a)
{
	size_t times = a->repeat, room = EXPANDED_MAX - E.expanded_bytes;
	char *b;

	if (times <= 1 || a->len == 0)
		return;
	if (times > room / a->len)
		times = room / a->len;
	if (times <= 1)
		return;
	b = malloc(a->len * times);
	FUZZ_CHECK(b != NULL, "out of memory");
	for (size_t i = 0; i < times; i++)
		memcpy(b + i * a->len, a->body, a->len);
	E.expanded[E.n_expanded++] = b;
	E.expanded_bytes += a->len * times;
	a->body = b;
	a->len *= times;
}

static void load_script(const char *p, const char *end)
{
	p = find_sep(p, end);
	while (p < end) {
		const char *line = p + 4, *eol, *next;
		answer a;
		int k;

		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		next = eol < end ? find_sep(eol, end) : end;
		k = parse_answer_line(line, (size_t)(eol - line), &a);
		if (k >= 0 && E.n[k] < MAX_ANSWERS) {
			a.body = eol < end ? eol + 1 : end;
			if (a.body > next)
				a.body = next;
			a.len = (size_t)(next - a.body);
			expand(&a);
			E.answers[k][E.n[k]++] = a;
		}
		p = next;
	}
}

static void run_session(void)
{
	const perch_backend *be = &perch_backend_v1;
	perch_backend_info info;
	perch_instance *inst = NULL;
	perch_error err = new_error();
	perch_status st;

	memset(&info, 0, sizeof info);
	info.struct_size = sizeof info;
	st = be->load(&fake_host, CTX, &inst, &info, &err);
	check_result(st, &err, "load");
	if (st != PERCH_OK) {
		FUZZ_CHECK(inst == NULL, "load failed but gave an instance");
		return;
	}
	FUZZ_CHECK(inst != NULL, "load gave no instance");
	FUZZ_CHECK(strchr(info.platform, '/') != NULL, "platform \"%s\"", info.platform);
	FUZZ_CHECK(api_ok(inst->client.api), "negotiated API \"%s\"", inst->client.api);
	if (E.forced_api)
		FUZZ_CHECK(strcmp(inst->client.api, "1.41") == 0, "forced 1.41, got %s",
			   inst->client.api);
	for (const char *op = E.ops; *op; op++)
		run_op(inst, *op);
	be->unload(inst);
}

static void close_cancel_fd(void)
{
	if (E.cancel_fd >= 0)
		close(E.cancel_fd);
	E.cancel_fd = -1;
}

static void fuzz_session(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *end = in + size;
	const char *eol = memchr(in, '\n', size);
	size_t n_ops = 0;

	if (E.cancel_fd < 0) {
		uint64_t one = 1;
		/* Held by libcurl's reference count: load and unload then only
		 * count (as in a host that loaded the plugin once). */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		E.cancel_fd = eventfd(0, EFD_CLOEXEC);
		FUZZ_CHECK(E.cancel_fd >= 0 && write(E.cancel_fd, &one, sizeof one) == sizeof one,
			   "eventfd: %s", strerror(errno));
		/* Closed at exit, so that valgrind's descriptor check
		 * (.ci/valgrind.sh) finds nothing open. */
		atexit(close_cancel_fd);
	}
	memset(E.n, 0, sizeof E.n);
	memset(E.served, 0, sizeof E.served);
	E.n_expanded = E.expanded_bytes = 0;
	E.last_logs = NULL;
	E.negotiated = E.forced_api = E.ctx_cancelled = E.network_flag = false;
	if (eol == NULL)
		eol = end;
	for (const char *p = in; p < eol; p++) {
		if (*p == 'V')
			E.forced_api = true;
		else if (*p == 'N')
			E.network_flag = true;
		else if (*p == 'C')
			E.ctx_cancelled = true;
		else if (strchr("sDabtuwxdefFrRqpz", *p) != NULL && *p != '\0' && n_ops < MAX_OPS)
			E.ops[n_ops++] = *p;
	}
	E.ops[n_ops] = '\0';
	load_script(eol, end);
	run_session();
	for (size_t i = 0; i < E.n_expanded; i++)
		free(E.expanded[i]);
	E.n_expanded = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0]) {
	case 'D':
		fuzz_demux(data + 1, size - 1);
		break;
	case 'M':
		fuzz_message(data + 1, size - 1);
		break;
	default:
		fuzz_session(data, size);
		break;
	}
	return 0;
}
