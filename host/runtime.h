/*
 * runtime.h - runs one workflow through one backend instance (DESIGN.md §4).
 *
 *   setup_workflow
 *   for each stage, in order:
 *       its steps in parallel; a step with depends_on starts when the steps
 *       it names (in its stage) have ended, and is skipped if one of them
 *       failed unless it runs on_failure
 *       per step: start_step -> tail_step -> wait_step (while the log is
 *       read) -> destroy_step
 *   destroy_workflow (exactly once, also after a failed setup)
 *   then the detached steps' waits return and they are destroyed
 *
 * Skipping follows Woodpecker: once a step has failed (in an earlier stage,
 * or a step this one depends on), a step runs only if on_failure; before any
 * failure, only if on_success.  failure: "ignore" keeps a failure out of the
 * result; failure: "cancel" cancels the rest of the workflow.  An OOM kill
 * is a failure of its own kind.  Detached steps (services) run until
 * destroy_workflow and never fail the workflow once started.
 *
 * Cancellation: cancelling opts->wf_ctx (a signal, --timeout) reaches every
 * blocked plugin call; steps not yet started are skipped; cleanup
 * (destroy_step, destroy_workflow) then runs on fresh contexts derived from
 * opts->cleanup_parent, each bounded by cleanup_timeout_ms, so that
 * cancelling cleanup_parent (a second signal) cuts cleanup short.
 *
 * Logs: each step's tail descriptor is read on a thread of its own while
 * the step thread waits.  The log of a step that has ended is read until
 * end of stream; if the stream stays silent for PERCH_LOG_LINGER_MS after
 * wait_step returned (a daemon that escaped the step still holds it), it is
 * closed and a warning says so.
 *
 * Resume mode (the daemon's adoption and hand-over, DESIGN.md section 5):
 * with opts->plan a run can take up a workflow that an earlier run (an
 * earlier perch process, or an earlier plugin version) began.  Per step the
 * plan says RUN (as usual), RESUME (it was started: resume_step with the
 * log lines the host already has, then tail and wait as usual) or DONE (its
 * result is known and copied; it is neither started nor destroyed).
 * Stages whose steps are all DONE pass at once; skip_setup leaves out
 * setup_workflow.  RESUME steps are taken up at once, whatever their
 * dependencies and the skip rules say: they run in the backend already.
 *
 * Hooks (opts->hooks) let the caller persist progress: a step started, a
 * step's result is final (before destroy_step, so that a crash between the
 * two still finds the step in the backend), setup done.
 *
 * Abandoning (opts->control): perch_run_abandon makes a run let go of its
 * workflow without touching it in the backend: it starts nothing more,
 * calls no destroy_step or destroy_workflow and no more hooks, and returns
 * once the calls it has in flight (waits, typically) return by themselves.
 * Its contexts are never cancelled for this: a cancelled wait would end
 * the step in some backends.
 *
 * Stuck calls: a plugin call that does not return PERCH_CALL_GRACE_MS after
 * its workflow was cancelled (or its cleanup context's deadline passed), or
 * PERCH_CALL_CUT_MS after cleanup_parent was cancelled (a second signal),
 * is given up on: one line names it, the step (setup, teardown) ends with
 * an error, and the run goes on without the thread that made it.  No
 * destroy_step follows a given-up start/tail/wait.  The call may still be
 * using what it was given, so the plugin is pinned (perch_plugin_pin) and
 * the caller must keep the workflow, task_uuid and both contexts alive for
 * good when out->abandoned_calls is not zero.
 */
#ifndef PERCH_HOST_RUNTIME_H
#define PERCH_HOST_RUNTIME_H

#include <perch/perch.h>

#include "loader.h"
#include "logsink.h"
#include "mask.h"
#include "workflow.h"

#define PERCH_LOG_LINGER_MS 2000
#define PERCH_CALL_GRACE_MS 10000
#define PERCH_CALL_CUT_MS 1000

typedef enum perch_run_status {
	PERCH_RUN_SUCCESS = 0,
	PERCH_RUN_FAILURE, /* a step failed */
	PERCH_RUN_KILLED,  /* cancelled */
	PERCH_RUN_ERROR,   /* setup, a backend call or infrastructure failed */
} perch_run_status;

const char *perch_run_status_name(perch_run_status s);

typedef struct perch_step_result {
	const perch_step *step; /* owned by the workflow */
	size_t stage;
	bool started;       /* start_step succeeded */
	bool skipped;
	bool exited;
	int32_t exit_code;
	bool oom_killed;
	bool cancelled;     /* ended (or never started) because of cancellation */
	bool failed;        /* counts as a failure (before failure: ignore) */
	bool infra_error;   /* failed through no fault of the step */
	char *error;        /* malloc'd one line, or NULL */
	char *skip_reason;  /* malloc'd, or NULL */
	int64_t started_ns; /* CLOCK_REALTIME, 0 if never started */
	int64_t finished_ns;
	uint64_t log_lines;
	bool resumed;       /* taken up with resume_step (plan RESUME) */
} perch_step_result;

/* Progress callbacks, all optional (NULL members are skipped).  index is
 * the step's position in workflow order (as in perch_run_result.steps).
 * They run on the step's (or the run's) thread, never under a lock of the
 * runtime, and may block briefly (disk writes); they must not call back
 * into the run.  A run that was abandoned calls none of them afterwards. */
typedef struct perch_run_hooks {
	void *arg;
	/* setup_workflow succeeded (not called with plan->skip_setup). */
	void (*setup_done)(void *arg);
	/* start_step (or resume_step) succeeded; res->started_ns is set.
	 * Called before tail_step, on the thread that made the call, so
	 * that the thread's child processes are the step's. */
	void (*step_started)(void *arg, size_t index, const perch_step_result *res);
	/* The step's result is final (also after a failed start); called
	 * before destroy_step.  Not called for skipped or DONE steps. */
	void (*step_finished)(void *arg, size_t index, const perch_step_result *res);
} perch_run_hooks;

typedef enum perch_step_plan {
	PERCH_PLAN_RUN = 0, /* start it if its rules say so */
	PERCH_PLAN_RESUME,  /* started earlier and not known to have ended */
	PERCH_PLAN_DONE,    /* ended earlier: prior[i] is its result */
} perch_step_plan;

/* What an earlier run did; everything is read-only and must outlive the
 * run.  Arrays have one entry per step, in workflow order. */
typedef struct perch_run_plan {
	bool skip_setup;                /* setup_workflow already happened */
	const perch_step_plan *steps;
	/* DONE: the result (copied; .step is ignored).  RESUME: started_ns
	 * (when the step first started: log times continue from it). */
	const perch_step_result *prior;
	/* RESUME: the complete log lines the host already has; they are
	 * passed to resume_step and counted in log_lines. */
	const uint64_t *lines_seen;
} perch_run_plan;

/* Lets another thread abandon a run (see the top of this file).  One
 * control serves one run.  Thread-safe. */
typedef struct perch_run_control perch_run_control;
perch_run_control *perch_run_control_new(void);
/* After the run returned (or if it never started). */
void perch_run_control_free(perch_run_control *c);
/* Abandons the run (before or while it runs).  Blocks until no
 * setup_workflow/start_step/resume_step call and no hook of the run is in
 * flight: afterwards every step it started has had its step_started hook,
 * and it starts nothing more.  Idempotent; not from the run's threads. */
void perch_run_abandon(perch_run_control *c);
bool perch_run_abandoned(const perch_run_control *c);

typedef struct perch_run_opts {
	perch_plugin *plugin;          /* loaded */
	const perch_workflow *wf;
	const char *task_uuid;
	perch_ctx *wf_ctx;             /* cancel to cancel the workflow */
	perch_ctx *cleanup_parent;     /* parent of the cleanup contexts */
	int64_t cleanup_timeout_ms;
	perch_logsink *const *sinks;   /* every step's lines go to each */
	size_t n_sinks;
	const perch_masker *masker;    /* may be NULL */
	int log_level;                 /* perch's own messages on stderr */
	size_t thread_stack;           /* bytes per step thread; 0: default */
	size_t max_parallel;           /* steps running at once; 0: unbounded */
	/* Appended for the daemon; zero (NULL) keeps perch run's behaviour. */
	const perch_run_hooks *hooks;
	const perch_run_plan *plan;    /* resume mode */
	perch_run_control *control;    /* lets the caller abandon the run */
	const char *log_tag;           /* prefixes perch's messages ("workflow X") */
} perch_run_opts;

typedef struct perch_run_result {
	perch_run_status status;
	char *error;                   /* workflow-level reason, malloc'd or NULL */
	perch_step_result *steps;      /* every step, in workflow order */
	size_t n_steps;
	int64_t started_ns, finished_ns;
	bool abandoned;                /* perch_run_abandon let it go */
	/* Plugin calls given up on (see "stuck calls" above); not zero: keep
	 * the workflow, task_uuid and contexts, never unload the plugin. */
	size_t abandoned_calls;
} perch_run_result;

/* Runs the workflow to its end.  Fills *out (free with
 * perch_run_result_free).  Blocks; call from one thread. */
void perch_runtime_run(const perch_run_opts *opts, perch_run_result *out);
void perch_run_result_free(perch_run_result *r);

/* The result as JSON (malloc'd): status, task_uuid, times, steps. */
char *perch_run_result_json(const perch_run_result *r, const char *task_uuid);

#endif
