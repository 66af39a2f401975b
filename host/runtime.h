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
 */
#ifndef PERCH_HOST_RUNTIME_H
#define PERCH_HOST_RUNTIME_H

#include <perch/perch.h>

#include "loader.h"
#include "logsink.h"
#include "mask.h"
#include "workflow.h"

#define PERCH_LOG_LINGER_MS 2000

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
} perch_step_result;

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
} perch_run_opts;

typedef struct perch_run_result {
	perch_run_status status;
	char *error;                   /* workflow-level reason, malloc'd or NULL */
	perch_step_result *steps;      /* every step, in workflow order */
	size_t n_steps;
	int64_t started_ns, finished_ns;
} perch_run_result;

/* Runs the workflow to its end.  Fills *out (free with
 * perch_run_result_free).  Blocks; call from one thread. */
void perch_runtime_run(const perch_run_opts *opts, perch_run_result *out);
void perch_run_result_free(perch_run_result *r);

/* The result as JSON (malloc'd): status, task_uuid, times, steps. */
char *perch_run_result_json(const perch_run_result *r, const char *task_uuid);

#endif
