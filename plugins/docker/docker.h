/*
 * docker.h - internals of the docker backend (not installed, not part of
 * the ABI).  The plugin exports only perch_backend_v1; every name below is
 * hidden by -fvisibility=hidden.
 *
 * The backend speaks the Docker Engine HTTP API itself: libcurl for the
 * transport (a unix socket, or tcp:// with TLS from a cert dir) and json-c
 * for the bodies.  The API version is negotiated through /version, so the
 * same code drives Docker 20.10 (API 1.41) and newer, and Podman's
 * Docker-compatible socket.
 *
 * Files, one concern each:
 *   backend.c   the entry object: is_available, load, unload, capabilities
 *   flags.c     the flags, reading them into a perch_docker_conf, host id
 *   url.c       URL escaping and engine paths
 *   http.c      the libcurl transport: requests, streaming, cancellation
 *   engine.c    API calls on top of http.c: versioning, JSON replies,
 *               negotiation, label filters
 *   errors.c    turning a failed call into one line and a perch_status
 *   script.c    Woodpecker's CI_SCRIPT convention (and base64)
 *   convert.c   a step as a container-create body: config, host config,
 *               labels, container names
 *   pull.c      image pulls with registry auth, progress as log lines
 *   demux.c     the 8-byte frame headers of a non-TTY log stream
 *   logs.c      tail_step: the follower thread and its pipe
 *   steps.c     the step table, start_step, wait_step, destroy_step
 *   worker.c    engine calls off the critical path: removing finished
 *               steps' containers, creating the next stage's
 *   workflow.c  setup_workflow, destroy_workflow
 *   discover.c  the discoverer and resumer capabilities
 * Buffers, shell quoting and threads come from plugins/common
 * (perchplugin.h).
 *
 * What the engine holds is the truth: every container, network and volume
 * the backend creates carries the labels below, so destroy, discovery and
 * resume find them by label even in a new process.  The step table in the
 * instance only caches container ids and runs the log followers.
 *
 * Locking: inst->lock guards the step table (the list and every record's
 * fields) and the worker's lists (worker.c).  It is never held across
 * an engine call, a join or a sleep (the worker's condition variable
 * waits on it).
 */
#ifndef PERCH_PLUGIN_DOCKER_H
#define PERCH_PLUGIN_DOCKER_H

#include <perch/perch.h>

#include "perchplugin.h"

#include <json-c/json.h>
#include <pthread.h>

/* Labels.  wp_uuid / wp_step are Woodpecker's; the io.perch.* ones are what
 * discovery and cleanup select on. */
#define PERCH_DOCKER_LABEL_WP_UUID "wp_uuid"
#define PERCH_DOCKER_LABEL_WP_STEP "wp_step"
#define PERCH_DOCKER_LABEL_HOST_ID "io.perch.host-id"
#define PERCH_DOCKER_LABEL_TASK "io.perch.task-uuid"
#define PERCH_DOCKER_LABEL_STEP_UUID "io.perch.step-uuid"
#define PERCH_DOCKER_LABEL_STEP_NAME "io.perch.step-name"
#define PERCH_DOCKER_LABEL_STEP_TYPE "io.perch.step-type"
/* The pull output that tail_step sends before the container's own, kept on
 * the container so that a resumed tail can replay it byte for byte. */
#define PERCH_DOCKER_LABEL_PRELUDE "io.perch.prelude"

/* API versions: negotiated down to the engine's, never above ours. */
#define PERCH_DOCKER_API_MIN "1.40"
#define PERCH_DOCKER_API_MAX "1.47"

#define PERCH_DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"
#define PERCH_DOCKER_DEFAULT_STOP_TIMEOUT 20
/* At most this much pull output is kept (and replayed) per step. */
#define PERCH_DOCKER_PRELUDE_MAX (32 * 1024)

/* ---- url.c ---- */

/* URL query escaping (RFC 3986 unreserved kept) appended to b. */
void perch_docker_urlencode(pp_buf *b, const char *s);

/* head + id (URL-escaped) + tail, malloc'd; NULL on OOM.  For engine
 * paths such as ("/containers/", id, "/start"). */
char *perch_docker_path(const char *head, const char *id, const char *tail);

/* ---- flags.c ---- */

/* The resolved configuration of one instance.  Owns its strings. */
typedef struct perch_docker_conf {
	char *host;        /* as given ("" or NULL: the default socket) */
	char *api_version; /* forced API version or NULL */
	char *cert_path;   /* folder with ca.pem, cert.pem, key.pem, or NULL */
	bool tls_verify;
	bool ipv6;
	char *network;  /* an existing network every step joins, or NULL */
	char **volumes; /* binds added to every step */
	size_t n_volumes;
	char *apparmor_profile;
	int64_t stop_timeout_s;
	int64_t limit_mem, limit_mem_swap, limit_shm_size;
	int64_t limit_cpu_quota, limit_cpu_shares;
	char *limit_cpu_set;
	char *host_id; /* labels everything; discovery returns only its own */
} perch_docker_conf;

extern const perch_flag *const perch_docker_flags[];

/* Fills conf from the CLI context (flags not set take the defaults above).
 * PERCH_ERR_INVALID_INPUT for a bad value (err names it).  The caller frees
 * conf with perch_docker_conf_free, also on failure. */
perch_status perch_docker_conf_read(const perch_host *host,
				    const perch_cli *cli,
				    perch_docker_conf *conf, perch_error *err);
void perch_docker_conf_free(perch_docker_conf *conf);

/* The default host id: /etc/machine-id, else the host name, else "perch";
 * malloc'd (NULL on OOM).  Stable across restarts of the same machine. */
char *perch_docker_default_host_id(void);

/* ---- http.c ---- */

/* The connections a client's requests share (http.c). */
typedef struct perch_docker_pool perch_docker_pool;

/* Where the engine is and how to talk to it.  Immutable after
 * perch_docker_client_init, so any number of threads may use one client
 * (each request has its own curl handles; the pool of idle connections
 * they draw from locks itself). */
typedef struct perch_docker_client {
	char *display;     /* "unix:///var/run/docker.sock", for messages */
	char *socket_path; /* unix socket, or NULL for tcp */
	char *base_url;    /* "http://localhost", "https://h:2376" */
	char *ca_file, *cert_file, *key_file; /* TLS, or NULL */
	bool tls_verify;
	char api[16]; /* "1.41" once negotiated; "" before */
	perch_docker_pool *pool; /* NULL: every request connects anew */
} perch_docker_client;

/* Parses host ("", NULL, "unix:///p", "/p", "tcp://h:p", "http://…",
 * "https://…") and the TLS settings.  PERCH_ERR_INVALID_INPUT for a host it
 * cannot use.  Free with perch_docker_client_free (also after failure),
 * before the curl_global_cleanup that balances the curl_global_init the
 * caller made before this call. */
perch_status perch_docker_client_init(perch_docker_client *c, const char *host,
				      const char *cert_path, bool tls_verify,
				      perch_error *err);
void perch_docker_client_free(perch_docker_client *c);

/* Called with each piece of a streamed body; returns false to stop. */
typedef bool (*perch_docker_data_fn)(void *user, const char *data, size_t n);
/* Called when what has arrived so far has been handed to on_data (after
 * each read from the connection, and at the end); returns false to stop. */
typedef bool (*perch_docker_flush_fn)(void *user);

typedef struct perch_docker_req {
	const char *method; /* "GET", "POST", "DELETE" */
	const char *path;   /* "/containers/json?all=1" (version added) */
	bool unversioned;   /* /_ping, /version: no /v1.xx prefix */
	const char *body;   /* JSON or NULL */
	const char *registry_auth; /* X-Registry-Auth or NULL */
	/* Readable descriptors that abort the request (the ctx cancel fd, a
	 * follower's stop fd); -1 for none. */
	int cancel_fd[2];
	long timeout_ms; /* whole request; 0: none (streams, waits) */
	perch_docker_data_fn on_data; /* NULL: collect into resp->body */
	perch_docker_flush_fn on_flush; /* NULL: none */
	void *user;
	/* A new connection, not a cached one: an engine that is shutting
	 * down still answers on the connections it has but accepts no new
	 * ones, so this is how a caller tells it from one that serves. */
	bool fresh;
} perch_docker_req;

typedef struct perch_docker_resp {
	long status;           /* HTTP status; 0 when none arrived */
	int curl_code;         /* CURLcode; 0 on a completed transfer */
	int os_errno;          /* errno of a failed connect, or 0 */
	bool cancelled;        /* a cancel fd fired */
	bool stopped;          /* on_data returned false */
	char curl_error[256];  /* curl's sentence, or "" */
	pp_buf body;           /* when on_data is NULL */
} perch_docker_resp;

/* Runs one request.  Returns true when an HTTP response completed (any
 * status); false when the transfer failed, was cancelled or stopped (resp
 * says which).  resp must be zeroed; free it with perch_docker_resp_free.
 * Thread-safe. */
bool perch_docker_http(const perch_docker_client *c, const perch_docker_req *r,
		       perch_docker_resp *resp);
void perch_docker_resp_free(perch_docker_resp *resp);

/* ---- errors.c ---- */

/* The engine's "message" from an error body, or the raw body, or "" (into
 * out, NUL-terminated). */
void perch_docker_engine_message(const perch_docker_resp *resp, char *out,
				 size_t outsz);

/* Fills err with "<what>: <why>" and returns the status that fits: the
 * engine down or the socket refused is PERCH_ERR_UNAVAILABLE, cancellation
 * PERCH_ERR_CANCELLED, 404 PERCH_ERR_NOT_FOUND, 400/409 and bad registry
 * credentials PERCH_ERR_INVALID_INPUT, an exhausted address pool
 * PERCH_ERR_UNAVAILABLE, other engine errors PERCH_ERR.  what is a short
 * phrase ("create container wp_x"). */
perch_status perch_docker_fail(const perch_docker_client *c,
			       const perch_docker_resp *resp,
			       perch_error *err, const char *what);

/* The status and a sentence for an engine error message alone (used for
 * errors reported inside a 200 stream, such as a failed pull). */
perch_status perch_docker_classify_message(long http_status, const char *msg);

/* ---- engine.c ---- */

/* Runs a request and parses a JSON reply.  On HTTP 2xx returns PERCH_OK
 * with *out the reply (caller puts it; NULL when the body is empty or out
 * is NULL).  Otherwise fills err via perch_docker_fail with what, and
 * returns its status; *http_status (if not NULL) gets the status (0 for no
 * reply) so that callers can accept a 404 or 304. */
perch_status perch_docker_call(const perch_docker_client *c,
			       const perch_docker_req *r, json_object **out,
			       long *http_status, perch_error *err,
			       const char *what);

/* GET /_ping with a short timeout: true when the engine answers OK. */
bool perch_docker_ping(const perch_docker_client *c, int cancel_fd);

/* GET /version and settle c->api (forced when api_version is set).
 * Fills server_version ("20.10.24") and returns PERCH_OK, or fails with
 * the reason (engine down, API too old). */
perch_status perch_docker_negotiate(perch_docker_client *c,
				    const char *api_version, int cancel_fd,
				    char *server_version, size_t sv_size,
				    perch_error *err);

/* A ?filters= value selecting on labels: {"label":["k=v",…]} URL-encoded
 * and appended to b. */
void perch_docker_label_filter(pp_buf *b, const char *const *kv,
			       size_t n);

/* json-c helpers: the string at key (NULL when absent or not a string), an
 * int (def when absent), a bool. */
const char *perch_docker_jstr(json_object *o, const char *key);
int64_t perch_docker_jint(json_object *o, const char *key, int64_t def);
bool perch_docker_jbool(json_object *o, const char *key);

/* ---- script.c ---- */

/* Standard base64 of data (malloc'd, NUL-terminated; NULL on OOM). */
char *perch_docker_base64(const void *data, size_t n);
/* base64url with padding (Go's URLEncoding), as X-Registry-Auth wants. */
char *perch_docker_base64url(const void *data, size_t n);

/* Woodpecker's POSIX step script for commands run in work_dir (malloc'd;
 * NULL on OOM). */
char *perch_docker_script(const char *const *cmds, size_t n,
			  const char *work_dir);

/* The entrypoint that decodes and runs CI_SCRIPT. */
extern const char *const perch_docker_script_entrypoint[3];

/* ---- convert.c ---- */

/* Options from backend_options.docker that this backend reads. */
typedef struct perch_docker_step_opts {
	char *user; /* "1000:1000", or NULL */
} perch_docker_step_opts;

/* Parses step->backend_options (the whole JSON object).  Unknown keys are
 * ignored; a value of the wrong type is PERCH_ERR_INVALID_INPUT. */
perch_status perch_docker_step_opts_parse(const char *backend_options,
					  perch_docker_step_opts *o,
					  perch_error *err);
void perch_docker_step_opts_free(perch_docker_step_opts *o);

/* The container name for step under its container_name_scheme (malloc'd
 * into *out): "" and "default" -> wp_<uuid>; "readable" ->
 * wp_<task>_<step name>, cleaned to Docker's name alphabet.  An unknown
 * scheme is PERCH_ERR_INVALID_INPUT. */
perch_status perch_docker_container_name(const perch_step *step,
					 const char *task_uuid, char **out,
					 perch_error *err);

/* Splits a volume "src:dst[:mode]" (or "dst" alone) into its parts; false
 * when it is not one (empty parts, more than three, relative dst). */
bool perch_docker_split_volume(const char *spec, char **src, char **dst,
			       char **mode);

/* Everything that goes into a create body besides the step. */
typedef struct perch_docker_create_in {
	const perch_docker_conf *conf;
	const char *task_uuid;
	const char *host_id;
	const char *prelude; /* pull output to keep on the container, or "" */
	bool windows; /* engine OSType; unused: Windows steps are not supported */
} perch_docker_create_in;

/* The body of POST /containers/create for step (caller puts it).  Only the
 * step's first network is joined here (API < 1.44 refuses more at
 * create); the others are connected by steps.c.  Fails with
 * PERCH_ERR_INVALID_INPUT for a step field Docker cannot take (a DNS
 * server that is not an IP, a bad volume or device). */
perch_status perch_docker_create_body(const perch_docker_create_in *in,
				      const perch_step *step,
				      json_object **out, perch_error *err);

/* ---- demux.c ---- */

/* Splits Docker's multiplexed stream (8-byte header: stream, 0, 0, 0,
 * big-endian length; then the payload) back into payloads.  Feed it any
 * chunking; emit gets payload bytes in order.  With tty set the stream is
 * raw and passed through. */
typedef struct perch_docker_demux {
	bool tty;
	unsigned char hdr[8];
	size_t hdr_len;
	uint32_t left; /* payload bytes left in the current frame */
} perch_docker_demux;

/* Returns false when emit did (stop) or the stream is malformed (a header
 * whose stream byte is not 0, 1 or 2). */
bool perch_docker_demux_feed(perch_docker_demux *d, const char *data,
			     size_t n, perch_docker_data_fn emit, void *user);

/* ---- pull.c ---- */

/* Pulls image (tag "latest" when none) with the step's credentials.
 * Progress goes into prelude as lines ("<id>: <status>"), one per change.
 * Errors reported in the stream fail the pull with their own words. */
perch_status perch_docker_pull(const perch_docker_client *c, const char *image,
			       const perch_auth *auth, int cancel_fd,
			       pp_buf *prelude, perch_error *err);

/* ---- the instance ---- */

typedef struct perch_docker_follower perch_docker_follower;

/* A step the instance knows: started or resumed here.  Guarded by
 * inst->lock. */
typedef struct perch_docker_step {
	struct perch_docker_step *next;
	char *task_uuid;
	char *step_uuid;
	char *name;
	char *container_id;
	char *prelude; /* the pull output, replayed first by tail_step */
	bool tty;
	/* Resumed: output the host already has (bytes, else lines). */
	uint64_t skip_bytes, skip_lines;
	perch_docker_follower *follower; /* tail_step's, or NULL */
	bool exited; /* wait_step saw the container stop: nothing to stop */
} perch_docker_step;

/* The work done off the critical path (worker.c).  Every field is guarded
 * by inst->lock. */
typedef struct perch_docker_wf perch_docker_wf;
typedef struct perch_docker_prep perch_docker_prep;
typedef struct perch_docker_removal perch_docker_removal;
typedef struct perch_docker_worker {
	pthread_cond_t cond; /* work queued, a job done, or told to stop */
	perch_docker_wf *wfs;        /* workflows whose config is known */
	perch_docker_prep *preps;    /* containers made ahead, any state */
	perch_docker_removal *removals, **removals_tail;
	perch_docker_removal *removing; /* in flight, unlinked */
	bool started;                /* thread is joinable */
	bool stopping;               /* unload: finish removals and end */
	pthread_t thread;
} perch_docker_worker;

struct perch_instance {
	const perch_host *host;
	perch_docker_conf conf;
	perch_docker_client client;
	bool windows; /* engine OSType */
	pthread_mutex_t lock;
	perch_docker_step *steps;
	perch_docker_worker worker;
};

/* ---- steps.c ---- */

/* The record of (task, step) or NULL.  Caller holds inst->lock. */
perch_docker_step *perch_docker_step_find(perch_instance *inst,
					  const char *task_uuid,
					  const char *step_uuid);
/* Links a new record (copies the strings) and returns it, or NULL on OOM.
 * An existing record of the same step is replaced (its follower is then
 * handed back through *old for the caller to stop outside the lock).
 * Caller holds inst->lock. */
perch_docker_step *perch_docker_step_add(perch_instance *inst,
					 const char *task_uuid,
					 const char *step_uuid,
					 const char *name,
					 const char *container_id,
					 const char *prelude,
					 perch_docker_follower **old);
/* Unlinks every record of task (step_uuid NULL) or one step, and stops and
 * joins their followers.  Takes inst->lock itself. */
void perch_docker_steps_forget(perch_instance *inst, const char *task_uuid,
			       const char *step_uuid);

/* Lists the containers (all of them, running or not), volumes or networks
 * (kind "containers", "volumes", "networks") that carry our host id and
 * these extra labels ("k=v", at most 7); calls fn with each summary object
 * of the engine's reply until it returns false. */
typedef bool (*perch_docker_object_fn)(void *user, json_object *o);
perch_status perch_docker_list(perch_instance *inst, int cancel_fd,
			       const char *kind, const char *const *labels,
			       size_t n_labels, perch_docker_object_fn fn,
			       void *user, perch_error *err);

/* The body of POST /containers/create for step as JSON text (malloc'd into
 * *out), the pull output prelude kept on it.  Fails as
 * perch_docker_create_body does. */
perch_status perch_docker_create_text(perch_instance *inst,
				      const perch_step *step,
				      const char *task_uuid,
				      const char *prelude, char **out,
				      perch_error *err);

/* POST /containers/create?name=name with body; the new container's id
 * malloc'd into *id.  *code gets the HTTP status (0 without a reply), so
 * that callers can tell a missing image (404) or a name in use (409).
 * step_name is for messages. */
perch_status perch_docker_create_container(perch_instance *inst, int cancel_fd,
					   const char *name, const char *body,
					   const char *step_name, char **id,
					   long *code, perch_error *err);

/* Stop (stop timeout), kill, remove a container by id or name; quiet about
 * what is already gone.  Cancel fd: the cleanup context's. */
perch_status perch_docker_remove_container(perch_instance *inst,
					   const char *id, int cancel_fd,
					   perch_error *err);
/* The last part of that alone: DELETE with its anonymous volumes (force:
 * a running container is killed), for a container known to have exited. */
perch_status perch_docker_delete_container(perch_instance *inst,
					   const char *id, int cancel_fd,
					   perch_error *err);

pp_start_step_fn perch_docker_start_step;
pp_wait_step_fn perch_docker_wait_step;
pp_destroy_step_fn perch_docker_destroy_step;

/* Makes sure the table has a record for the step, built from its
 * container (found by labels; prelude and TTY from inspect) when this
 * instance did not start it.  skip (may be NULL) sets where a resumed tail
 * starts.  PERCH_ERR_NOT_FOUND when no container exists. */
perch_status perch_docker_step_attach(perch_instance *inst, int cancel_fd,
				      const char *task_uuid,
				      const char *step_uuid,
				      const char *step_name,
				      const perch_resume_point *skip,
				      perch_error *err);

/* The container id of a step: the cached one, else found by its labels.
 * *out malloc'd.  PERCH_ERR_NOT_FOUND when there is none. */
perch_status perch_docker_step_container(perch_instance *inst, int cancel_fd,
					 const char *task_uuid,
					 const char *step_uuid, char **out,
					 perch_error *err);

/* ---- worker.c ---- */

/* Sets up an idle worker (no thread until the first job). */
void perch_docker_worker_init(perch_instance *inst);

/* Queues the removal of an exited container of task (copies the strings)
 * and returns at once.  False when it could not be queued (out of memory,
 * no thread): the caller removes it itself.  Caller does NOT hold
 * inst->lock (true of every call below). */
bool perch_docker_worker_remove(perch_instance *inst, const char *task_uuid,
				const char *container_id);

/* Blocks until no removal of task (NULL: of any task) is queued or
 * running.  True when it had any to wait for. */
bool perch_docker_worker_drain(perch_instance *inst, const char *task_uuid);

/* setup_workflow: remembers config (host-owned, valid until
 * destroy_workflow returns) so that stages can be prepared.  Silently
 * does nothing when it cannot (a workflow of one stage, no memory). */
void perch_docker_worker_workflow(perch_instance *inst, const char *task_uuid,
				  const perch_config *config);

/* start_step of step succeeded: builds the create bodies of the stage
 * after step's (once per stage), for the steps that will run if all goes
 * well, and queues their creation.  Reads the config on the caller's
 * thread only. */
void perch_docker_worker_prepare_after(perch_instance *inst,
				       const char *task_uuid,
				       const perch_step *step);

/* The container prepared for the step, if it was created with exactly
 * name and body (malloc'd id, the caller's); NULL otherwise: none, failed,
 * not begun (then dropped), or made from another body (then queued for
 * removal, so that the name frees).  Waits for one being created.  Either
 * way the step has no preparation any more. */
char *perch_docker_worker_take(perch_instance *inst, const char *task_uuid,
			       const char *step_uuid, const char *name,
			       const char *body);

/* destroy_workflow: drops task's config and preparations (their
 * containers stay for the caller's sweep by label) and waits for what is
 * in flight, removals included. */
void perch_docker_worker_forget(perch_instance *inst, const char *task_uuid);

/* Unload: finishes the removals, drops the preparations not begun, joins
 * the thread, frees it all.  No other call may run.  Also fine on a
 * worker that never started. */
void perch_docker_worker_stop(perch_instance *inst);

/* ---- logs.c ---- */

pp_tail_step_fn perch_docker_tail_step;
/* Tells a follower to stop, joins it and frees it.  NULL is fine.  Caller
 * does NOT hold inst->lock. */
void perch_docker_follower_stop(perch_docker_follower *f);

/* ---- workflow.c ---- */

pp_setup_workflow_fn perch_docker_setup_workflow;
pp_destroy_workflow_fn perch_docker_destroy_workflow;

/* ---- discover.c ---- */

extern const perch_workflow_discoverer_v1 perch_docker_discoverer;
extern const perch_workflow_resumer_v1 perch_docker_resumer;

#endif /* PERCH_PLUGIN_DOCKER_H */
