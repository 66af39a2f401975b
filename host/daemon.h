/*
 * daemon.h - perch daemon's internals, shared by its files (not an API).
 *
 *   daemon.c          start, the control thread's loop, signals, shutdown
 *   daemon_plugins.c  configuration generations, plugin versions, reload
 *   daemon_wf.c       workflow records, their persistence, runs, the queue
 *   daemon_adopt.c    adoption after a restart, hand-over, leftovers
 *   daemon_ctl.c      the control socket: connections and requests
 *   ctlproto.c        framing shared with the client (client.c)
 *
 * Threads.  The control thread (the one that called perch_cmd_daemon)
 * alone loads and unloads plugins, reloads, adopts and hands over, and
 * joins every other thread.  Each run has a runner thread (which calls
 * perch_runtime_run, which has step threads); each connection has a
 * thread.  d->lock guards everything in perch_daemon and every dwf/drun/
 * dversion field not marked otherwise; d->cond is broadcast on every
 * change a waiting connection may care about (a workflow ended, a log
 * batch was written, shutdown).  w->io_lock serialises the writes of one
 * workflow's records and logs, and decides which run may still write
 * (w->writer).  Lock order: w->io_lock, then d->lock.
 */
#ifndef PERCH_HOST_DAEMON_H
#define PERCH_HOST_DAEMON_H

#include "app.h"
#include "runtime.h"
#include "state.h"
#include "util.h"
#include "workflow.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>

#define PERCH_DAEMON_SOCKET "/run/perch/perch.sock"
#define PERCH_DAEMON_STATE_DIR "/var/lib/perch"
#define PERCH_DAEMON_MAX_WORKFLOWS 4
#define PERCH_DAEMON_MAX_QUEUE 100
#define PERCH_DAEMON_SHUTDOWN_MS (60 * 1000)
#define PERCH_DAEMON_RETENTION 1000
#define PERCH_DAEMON_ADOPT_GRACE_MS (5 * 60 * 1000)
/* Cleanup calls (destroy_step, destroy_workflow) each get this long. */
#define PERCH_DAEMON_CLEANUP_MS (60 * 1000)
/* Connections served at once; more are refused with a reply. */
#define PERCH_DAEMON_MAX_CONNS 256

typedef struct perch_daemon perch_daemon;

/* A configuration generation: the app (config file, flags, CLI context)
 * as of start or of one reload.  Plugin versions made under it keep it. */
typedef struct dgen {
	perch_app *app;
	bool owned;      /* false for the first: main owns it */
	unsigned number;
	unsigned refs;   /* versions using it, + 1 while current */
} dgen;

/* One loaded plugin version, opened from its own copy of the file. */
typedef struct dversion {
	struct dversion *next;
	unsigned number;      /* daemon-wide, increasing; "#3" in messages */
	char *name;
	char *origin;         /* the file it was copied from */
	struct stat origin_st; /* of that file when copied */
	char *copy;           /* <state>/plugins/<name>-<number>.so */
	char *flags_sig;      /* its flags' resolved values when loaded */
	perch_cli *scratch;   /* receives its flag declarations at open */
	perch_registry *reg;  /* holds p */
	perch_plugin *p;      /* loaded */
	dgen *gen;            /* flags and CLI context it was loaded with */
	bool available;
	char *unavailable_why;
	bool retired;         /* new workflows no longer go to it */
	char *retired_why;
	unsigned refs;        /* runs using it (abandoned ones included) */
	unsigned served;      /* runs it ever had */
	bool can_adopt;       /* offers discoverer and resumer */
} dversion;

typedef enum dwf_state {
	DWF_QUEUED = 0,
	DWF_RUNNING,
	DWF_FINISHED,
} dwf_state;

struct dwf;

/* One run of a workflow on one version; a hand-over makes a second. */
typedef struct drun {
	struct drun *next;        /* in d->runs */
	perch_daemon *d;
	struct dwf *w;
	dversion *v;
	perch_run_control *ctl;
	perch_ctx *wf_ctx;
	perch_ctx *cleanup;
	perch_run_plan plan;      /* resume mode when plan.steps != NULL */
	bool resume;
	perch_step_plan *plan_steps;
	perch_step_result *plan_prior;
	uint64_t *plan_lines;
	perch_run_result result;
	pthread_t thread;
	bool thread_started;
	bool returned;            /* the runtime returned */
	bool done;                /* the thread is about to exit: join it */
	bool finalizing;          /* it reports the workflow's result */
	bool superseded;          /* abandoned: a newer run or the next daemon owns it */
	bool left;                /* abandoned at shutdown for the next daemon */
	bool released_old;        /* its version was told to let go (hand-over) */
} drun;

/* What the daemon keeps of a step while its workflow runs. */
typedef struct dstep {
	const perch_step *step;   /* in w->wf */
	bool started, done;
} dstep;

typedef struct dwf {
	struct dwf *next;
	char id[32];
	uint64_t seq;             /* submission order */
	dwf_state state;
	char *status;             /* FINISHED: success|failure|killed|error|lost */
	char *error;              /* FINISHED: the reason, or NULL */
	char *backend_req;        /* requested backend, NULL: the default */
	char *plugin;             /* the version it runs (ran) on */
	char *plugin_version;
	unsigned version_number;
	int64_t submitted_ns, started_ns, finished_ns;
	int64_t deadline_ns;      /* CLOCK_REALTIME, 0: none */
	bool setup_done;
	perch_workflow *wf;       /* QUEUED/RUNNING: parsed (freed when no run holds it) */
	dstep *steps;             /* with wf */
	size_t n_steps;
	size_t steps_started, steps_done, steps_resumed; /* for ps */
	unsigned holders;         /* runs still using wf */
	drun *run;                /* the current run, NULL if none */
	bool cancelled;           /* cancel was asked */
	bool adopted;             /* taken up after a restart */
	unsigned handovers;
	unsigned readers;         /* connections looking at it: not pruned */
	char *fail_reason;        /* could not start: the control thread ends it */
	/* A plugin call of a run of it never returned (runtime.h, "stuck
	 * calls"): the call may still read wf and id, so w is never freed. */
	bool pinned;
	pthread_mutex_t io_lock;
	drun *writer;             /* under io_lock: the run whose hooks and logs count */
} dwf;

struct dconn;

typedef struct reload_req {
	struct reload_req *next;
	bool done;
	char *reply;              /* the JSON reply line, malloc'd */
} reload_req;

struct perch_daemon {
	perch_app *app;           /* the first generation's; owned by main */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int wake_fd;              /* eventfd: the control thread has work */
	perch_store *store;
	char *socket_path;
	int listen_fd;
	int log_level;
	int64_t started_ns;

	dgen *gen;                /* current */
	dgen **old_gens;          /* no longer current, still referenced */
	size_t n_old_gens;
	unsigned next_gen;
	dversion *versions;
	unsigned next_version;

	/* settings of the current generation */
	int64_t max_workflows, max_queue, shutdown_ms, adopt_grace_ms;
	int64_t retention_count, retention_ms;
	bool swap_adopt;

	dwf *wfs;                 /* every known workflow, newest first */
	size_t n_running, n_queued;
	uint64_t next_seq;
	drun *runs;               /* every run whose thread is not joined */
	struct dconn *conns;
	size_t n_conns;
	reload_req *reloads;      /* asked by connections, for the control thread */

	bool stopping;            /* SIGTERM: drain */
	int signals;              /* SIGTERM/SIGINT received */
	int64_t stop_deadline_ms; /* monotonic: leave or cancel what still runs */
	bool stop_acted;
	atomic_bool closing;      /* connections must end (read without the lock) */
	pthread_mutex_t submit_lock; /* one submission persists at a time */

	/* adoption after the restart, for status and the benchmark */
	size_t adopted, adopted_steps, lost;
	int64_t adopt_ms;
	/* leftovers a backend reported that the state directory does not know */
	char **orphans;
	char **orphan_plugins;
	size_t n_orphans;
	int64_t orphan_deadline_ms; /* monotonic; 0: none pending */
	int64_t next_prune_ms;
};

/* ---- daemon.c ---- */
/* Wakes the control thread.  Any thread. */
void perch_daemon_wake(perch_daemon *d);
/* Message on stderr at level, prefixed "perch: " (one write). */
void perch_daemon_log(const perch_daemon *d, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- daemon_plugins.c (control thread unless said otherwise) ---- */
/* Applies the settings of gen's config (with defaults). */
void perch_daemon_settings(perch_daemon *d, const perch_conf *conf);
/* Loads a version for every plugin of the current generation that has
 * none (or whose file or flags changed); retires versions whose plugin
 * is gone or replaced.  report (may be NULL) receives JSON fragments. */
void perch_daemon_sync_plugins(perch_daemon *d, perch_buf *loaded, perch_buf *retired,
			       perch_buf *warnings);
/* Re-reads the config and the plugin folders.  Returns the reply line
 * (malloc'd JSON, no newline). */
char *perch_daemon_reload(perch_daemon *d);
/* The current version of a plugin name, or NULL.  Under d->lock. */
dversion *perch_daemon_current(perch_daemon *d, const char *name);
/* Chooses the version for a requested backend (NULL: the configured
 * default).  NULL with *err (malloc'd) when none fits.  Under d->lock. */
dversion *perch_daemon_select(perch_daemon *d, const char *req, char **err);
/* Unloads retired versions nobody uses, frees unused generations. */
void perch_daemon_collect(perch_daemon *d);
/* Unloads everything that is idle (shutdown). */
void perch_daemon_free_plugins(perch_daemon *d, bool force);
/* Capability names of a version as a JSON array text (malloc'd). */
char *perch_daemon_caps_json(const dversion *v);

/* ---- daemon_wf.c ---- */
/* Reads every workflow record at start; running ones are returned in
 * *adopt (an array the caller frees) for daemon_adopt.c. */
void perch_daemon_load_records(perch_daemon *d, dwf ***adopt, size_t *n_adopt);
/* A new workflow from a submit request: persisted, then queued.  Returns
 * it (under d->lock the caller may look at it), or NULL with *err and
 * *code ("invalid", "queue_full", "shutting_down", "internal"). */
dwf *perch_daemon_submit(perch_daemon *d, const char *text, size_t len, const char *source,
			 const char *backend, int64_t timeout_ms, char **err, const char **code);
/* Starts queued workflows while there is room.  Under d->lock. */
void perch_daemon_schedule(perch_daemon *d);
/* Starts a run of w on v (plan may be NULL: a fresh run).  Takes the plan
 * arrays.  Under d->lock.  false if the thread could not start. */
bool perch_daemon_start_run(perch_daemon *d, dwf *w, dversion *v, drun *proto);
/* Finds a workflow by id (or unique prefix).  Under d->lock. */
dwf *perch_daemon_find(perch_daemon *d, const char *id, bool *ambiguous);
/* Cancels a queued or running workflow.  Under d->lock.  0, or -1 when it
 * had ended (*was says how). */
int perch_daemon_cancel(perch_daemon *d, dwf *w, const char **was);
/* Ends a workflow that did not run (cancelled while queued, lost, no
 * backend): persists its result and meta.  Not under d->lock. */
void perch_daemon_finish_unrun(perch_daemon *d, dwf *w, const char *status, const char *error);
/* Joins runs that are done; frees finished workflows' parsed documents. */
void perch_daemon_reap_runs(perch_daemon *d);
/* Applies retention.  Control thread. */
void perch_daemon_prune(perch_daemon *d);
/* Persists meta.json of w.  Not under d->lock. */
void perch_daemon_put_meta(perch_daemon *d, dwf *w);
/* The exit code perch run would have had for a status. */
int perch_daemon_exit_code(const char *status);
/* A workflow as a JSON object for ps (malloc'd text).  Under d->lock. */
char *perch_daemon_wf_json(perch_daemon *d, const dwf *w);
/* Frees a workflow record (not linked, no run). */
void perch_daemon_wf_free(dwf *w);
/* Parses w's workflow.json from the store (for finished ones). */
perch_workflow *perch_daemon_load_document(perch_daemon *d, const char *id, char **err);
/* The persisted record of step i of w, parsed into res (res->step is not
 * set); returns false when there is none.  *started / *done from it.
 * procs (may be NULL) receives the recorded processes as "pid:pgid:start"
 * entries, malloc'd, *n_procs of them. */
bool perch_daemon_get_step(perch_daemon *d, const char *id, size_t i, perch_step_result *res,
			   bool *started, bool *done, char ***procs, size_t *n_procs);

/* ---- daemon_adopt.c (control thread) ---- */
/* Adopts the workflows the state directory says were running. */
void perch_daemon_adopt_all(perch_daemon *d, dwf **ws, size_t n);
/* Hands running workflows of retired versions over to the current
 * version of their plugin where it can resume (swap = "adopt"). */
void perch_daemon_handover(perch_daemon *d, perch_buf *report);
/* Leaves (abandons) or cancels every running workflow at the shutdown
 * deadline. */
void perch_daemon_leave_or_cancel(perch_daemon *d);
/* Destroys leftovers still unknown after adopt_grace. */
void perch_daemon_sweep_orphans(perch_daemon *d);
/* Destroys what an abandoned version still tracks of a finished
 * workflow (after a hand-over).  Not under d->lock. */
void perch_daemon_release_old(perch_daemon *d, dwf *w, dversion *v);

/* ---- daemon_ctl.c ---- */
/* Accepts one connection from the listening socket.  Control thread. */
void perch_daemon_accept(perch_daemon *d);
/* Joins finished connection threads (all with wait_all). */
void perch_daemon_reap_conns(perch_daemon *d, bool wait_all);
/* Serves the reload requests connections queued.  Control thread. */
void perch_daemon_serve_reloads(perch_daemon *d);

/* ---- small shared helpers (daemon_wf.c) ---- */
/* Appends s as a JSON string (quoted) to b; NULL appends null. */
void perch_json_str(perch_buf *b, const char *s);
/* Appends n bytes as a JSON string (invalid UTF-8 becomes U+FFFD). */
void perch_json_strn(perch_buf *b, const char *s, size_t n);

#endif
