/*
 * conformance.h - internals of perch-conformance, the tool that drives any
 * backend plugin through the v1 contract (perch/backend.h) and reports one
 * line per check.
 *
 * How a run works:
 *  - The parent opens the plugin with the host's own loader
 *    (perch_registry_open), so a refused file is refused with exactly the
 *    text `perch backends` prints, and resolves the plugin's flags with the
 *    host's flag code (--flag values go in as command-line values).
 *  - Every check then runs in a forked child, in its own process group, so
 *    that a crash or a hang in the plugin costs one check, not the run.  The
 *    child reports its verdict through a shared memory page.
 *  - Every plugin call the child makes is "watched": before the call the
 *    child arms a slot in the shared page with a description and a
 *    deadline, and disarms it after.  The parent polls the slots; when a
 *    deadline passes it kills the child's process group and reports the
 *    description as the failure ("wait_step did not return within 5 s of
 *    the cancellation").  So the tool never hangs, and no check needs
 *    timeouts of its own.
 *
 * Files, one concern each:
 *   main.c        options, the check table, forking, reporting
 *   harness.c     the child's side: verdicts, the watchdog, wrapped plugin
 *                 calls, workflows and steps, tail readers, step runners
 *   profile.c     how a step "behaviour" becomes a perch_step per backend
 *   elfsyms.c     the plugin file's exported dynamic symbols
 *   check_entry.c checks of the entry object, flags, availability, load
 *   check_steps.c checks of workflows and steps on one thread
 *   check_concurrency.c  parallel workflows, cancellation, detached steps
 *   check_resume.c       discover and resume in a fresh instance
 *
 * Threads: the parent is single-threaded.  In the child, a check may start
 * threads (step runners, tail readers, waits); they share perch_cf_run, whose
 * watch slots and seq are atomic and whose plugin record is changed (load,
 * unload) only by the check's own thread while no other thread runs.
 *
 * Names: perch_cf_ ("conformance") on everything here; nothing is installed.
 */
#ifndef PERCH_CONFORMANCE_H
#define PERCH_CONFORMANCE_H

#include <perch/perch.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"
#include "flags.h"
#include "loader.h"

/* ---- options -------------------------------------------------------- */

#define PERCH_CF_MAX_LIST 64

typedef struct perch_cf_skip {
	const char *check; /* a check name */
	const char *why;   /* the caller's reason, or NULL */
} perch_cf_skip;

typedef struct perch_cf_opts {
	const char *plugin_path;
	const char *profile;     /* "sh" or "dummy" */
	const char *image;       /* every step's image */
	/* --workflow-env K=V: an environment variable of every step */
	const char *env_key[PERCH_CF_MAX_LIST];   /* malloc'd by main */
	const char *env_value[PERCH_CF_MAX_LIST]; /* points into argv */
	size_t n_env;
	perch_cf_skip skips[PERCH_CF_MAX_LIST];
	size_t n_skips;
	const char *only[PERCH_CF_MAX_LIST];
	size_t n_only;
	int64_t call_timeout_ms;   /* bound of any single call */
	int64_t cancel_timeout_ms; /* bound of a cancelled wait_step */
	bool verbose;
} perch_cf_opts;

/* ---- verdicts ------------------------------------------------------- */

typedef enum perch_cf_result {
	PERCH_CF_PASS = 0,
	PERCH_CF_FAIL = 1,
	PERCH_CF_SKIP = 2,
} perch_cf_result;

#define PERCH_CF_REASON_MAX 512

/* What a check concluded.  The first failure recorded wins: later ones
 * are usually consequences. */
typedef struct perch_cf_verdict {
	int result; /* perch_cf_result */
	char reason[PERCH_CF_REASON_MAX];
} perch_cf_verdict;

/* Records a failure (unless one is recorded already) and returns false, so
 * that a check can write `return perch_cf_fail(v, "...")` or use it in a
 * condition.  Thread-safe for distinct verdicts only. */
__attribute__((format(printf, 2, 3))) bool perch_cf_fail(perch_cf_verdict *v, const char *fmt, ...);
/* Marks the check skipped (unless it failed already). */
__attribute__((format(printf, 2, 3))) void perch_cf_skip_because(perch_cf_verdict *v,
								 const char *fmt, ...);

/* ---- the shared page: watch slots and the verdict ------------------- */

#define PERCH_CF_WATCH_SLOTS 32
#define PERCH_CF_WHAT_MAX 200

typedef struct perch_cf_watch_slot {
	int state;          /* 0 free, 1 being written, 2 armed (atomic) */
	int64_t deadline_ms; /* CLOCK_MONOTONIC */
	char what[PERCH_CF_WHAT_MAX];
} perch_cf_watch_slot;

typedef struct perch_cf_shared {
	perch_cf_watch_slot slots[PERCH_CF_WATCH_SLOTS];
	int has_verdict; /* atomic: set after verdict is written */
	perch_cf_verdict verdict;
} perch_cf_shared;

/* ---- profiles: what a step does, per backend ------------------------ */

/* A step's intended behaviour, independent of the backend. */
typedef struct perch_cf_behaviour {
	const char *say[4];  /* lines the step prints, in order (NULL ends) */
	int sleep_s;         /* then sleeps this long (0: not at all) */
	int exit_code;       /* then exits with this code */
	bool kill9;          /* ...or kills itself with SIGKILL instead */
} perch_cf_behaviour;

typedef struct perch_cf_step perch_cf_step;

typedef struct perch_cf_profile {
	const char *name;
	const char *description;
	/* Fills st's commands and environment so that the backend runs b. */
	void (*express)(perch_cf_step *st, const perch_cf_behaviour *b);
	/* A task uuid whose setup_workflow fails, or NULL when none is known. */
	const char *setup_fail_uuid;
	/* Makes st fail at start_step; NULL when the profile cannot. */
	void (*make_start_fail)(perch_cf_step *st);
} perch_cf_profile;

/* The profile of that name, or NULL. */
const perch_cf_profile *perch_cf_profile_find(const char *name);
/* "sh, dummy": for usage messages. */
const char *perch_cf_profile_names(void);

/* ---- the child's run ------------------------------------------------ */

typedef struct perch_cf_run {
	const perch_cf_opts *opts;
	const perch_cf_profile *profile;
	perch_registry *reg;
	perch_plugin *plugin;  /* valid (not refused) */
	perch_cli *cli;
	perch_ctx *root;       /* carries the CLI context */
	perch_cf_shared *shared;
	const char *check;     /* the check's name */
	unsigned seq;          /* for unique task uuids; atomic */
} perch_cf_run;

/* A check: a name, what it shows, what it needs, and its function. */
enum {
	PERCH_CF_NEEDS_AVAILABLE = 1 << 0, /* the available check passed */
	PERCH_CF_NEEDS_LOAD = 1 << 1,      /* the load check passed */
};

typedef struct perch_cf_check {
	const char *name;
	const char *summary;
	unsigned needs; /* PERCH_CF_NEEDS_* */
	void (*fn)(perch_cf_run *run, perch_cf_verdict *v);
	bool in_parent; /* runs in the parent: no plugin code is called */
} perch_cf_check;

/* The table, in run order (main.c), terminated by a NULL name. */
extern const perch_cf_check perch_cf_checks[];

/* ---- watchdog ------------------------------------------------------- */

/* Arms a slot: if the matching perch_cf_watch_end does not come within
 * bound_ms, the parent kills the child and reports `what` as the failure.
 * Returns the slot, or -1 when all are busy (then nothing is watched
 * except by the parent's overall bound).  Thread-safe. */
__attribute__((format(printf, 3, 4))) int perch_cf_watch_begin(perch_cf_run *run, int64_t bound_ms,
							       const char *fmt, ...);
void perch_cf_watch_end(perch_cf_run *run, int slot);

/* ---- contexts, errors ----------------------------------------------- */

perch_error perch_cf_error(void);
/* A child of the root context (carries the CLI context); caller frees with
 * perch_ctx_free. */
perch_ctx *perch_cf_ctx(perch_cf_run *run);
/* A cleanup context: like the host's, a child of root with a deadline. */
perch_ctx *perch_cf_cleanup_ctx(perch_cf_run *run);
/* "not-found: workflow x not found" (static thread-local buffer). */
const char *perch_cf_why(perch_status st, const perch_error *err);

/* ---- workflows and steps (built like the host builds them) --------- */

#define PERCH_CF_MAX_STEPS 8
#define PERCH_CF_MAX_ENV (PERCH_CF_MAX_LIST + 8)
#define PERCH_CF_MAX_CMDS 12

struct perch_cf_step {
	perch_step step;
	char name[64];
	char uuid[128];
	char image[256];
	perch_kv env[PERCH_CF_MAX_ENV];
	char env_buf[PERCH_CF_MAX_ENV][128]; /* profile-owned values */
	const char *cmds[PERCH_CF_MAX_CMDS];
	char cmd_buf[PERCH_CF_MAX_CMDS][256];
	size_t n_env_fixed; /* entries from --workflow-env */
};

typedef struct perch_cf_wf {
	char task_uuid[96];
	char network[128]; /* named like Woodpecker's: wp_<task uuid>_default */
	char volume[128];
	perch_config config;
	perch_stage stage; /* one stage with every step */
	const perch_stage *stages[1];
	perch_cf_step *steps[PERCH_CF_MAX_STEPS];
	const perch_step *step_ptrs[PERCH_CF_MAX_STEPS];
	size_t n_steps;
} perch_cf_wf;

/* Names wf's network and volume after its task uuid (call again after
 * changing the task uuid). */
void perch_cf_wf_names(perch_cf_wf *wf);
/* A new empty workflow with a task uuid unique to this run.  Never NULL. */
perch_cf_wf *perch_cf_wf_new(perch_cf_run *run);
/* Adds a step named name with behaviour b (expressed by the profile).
 * Its uuid is unique: "<task uuid>-<n>".  Never NULL. */
perch_cf_step *perch_cf_wf_add(perch_cf_run *run, perch_cf_wf *wf, const char *name,
			       const perch_cf_behaviour *b);
void perch_cf_wf_free(perch_cf_wf *wf);

/* Profile helpers: append a command / an environment variable. */
void perch_cf_step_add_cmd(perch_cf_step *st, const char *fmt,
			   ...) __attribute__((format(printf, 2, 3)));
void perch_cf_step_set_env(perch_cf_step *st, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- watched plugin calls ------------------------------------------ */

/* Each arms the watchdog (call_timeout) around the call.  err may be NULL
 * (a local one is used). */
bool perch_cf_call_available(perch_cf_run *run, const perch_ctx *ctx, perch_error *why);
int perch_cf_call_load(perch_cf_run *run, const perch_ctx *ctx, char **err);
void perch_cf_call_unload(perch_cf_run *run);
perch_status perch_cf_call_setup(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				 perch_error *err);
perch_status perch_cf_call_start(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				 perch_cf_step *st, perch_error *err);
perch_status perch_cf_call_tail(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				perch_cf_step *st, int *fd, perch_error *err);
perch_status perch_cf_call_wait(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				perch_cf_step *st, perch_state *state, perch_error *err);
perch_status perch_cf_call_destroy_step(perch_cf_run *run, perch_cf_wf *wf, perch_cf_step *st,
					perch_error *err);
perch_status perch_cf_call_destroy_workflow(perch_cf_run *run, perch_cf_wf *wf, perch_error *err);
perch_status perch_cf_call_destroy_task(perch_cf_run *run, const char *task_uuid, perch_error *err);

/* Loads the plugin (CLI context) or records why not. */
bool perch_cf_load(perch_cf_run *run, perch_cf_verdict *v);

/* ---- tail readers ---------------------------------------------------- */

#define PERCH_CF_TAIL_KEEP (1u << 20) /* bytes of output kept for checks */

/* Reads a tail descriptor to end of stream on a thread of its own, like
 * the host does while it waits for the step. */
typedef struct perch_cf_tail {
	int fd;
	pthread_t thread;
	bool started;
	bool joined;
	char *buf; /* NUL-terminated; at most PERCH_CF_TAIL_KEEP bytes */
	size_t len;
	int read_errno; /* 0, or why reading failed */
} perch_cf_tail;

/* Takes ownership of fd and starts reading.  False (fd closed) if no
 * thread could be started. */
bool perch_cf_tail_start(perch_cf_tail *t, int fd);
/* Waits for end of stream (watched: `what` is the failure if it does not
 * come within bound_ms), joins, closes the fd.  Idempotent. */
void perch_cf_tail_finish(perch_cf_run *run, perch_cf_tail *t, int64_t bound_ms, const char *what);
void perch_cf_tail_free(perch_cf_tail *t);

/* ---- step runners ---------------------------------------------------- */

/* Runs one step the way the host's runtime does: start -> tail (read on a
 * thread) -> wait -> end of stream -> destroy_step.  Records the first
 * contract violation in v (which must not be shared between threads). */
typedef struct perch_cf_step_run {
	perch_cf_run *run;
	perch_cf_wf *wf;
	perch_cf_step *st;
	perch_state state;
	perch_status wait_status;
	perch_cf_tail tail;
	perch_cf_verdict v;
	pthread_t thread;
} perch_cf_step_run;

void perch_cf_step_run_init(perch_cf_step_run *sr, perch_cf_run *run, perch_cf_wf *wf,
			    perch_cf_step *st);
/* Runs it on this thread. */
void perch_cf_step_run_sync(perch_cf_step_run *sr);
/* Runs it on a new thread / joins it. */
bool perch_cf_step_run_async(perch_cf_step_run *sr);
void perch_cf_step_run_join(perch_cf_step_run *sr);
void perch_cf_step_run_free(perch_cf_step_run *sr);

/* A wait_step on its own thread, for cancellation and detached steps. */
typedef struct perch_cf_async_wait {
	perch_cf_run *run;
	perch_cf_wf *wf;
	perch_cf_step *st;
	const perch_ctx *ctx;
	perch_state state;
	perch_error err;
	perch_status status;
	pthread_t thread;
	bool started;
} perch_cf_async_wait;

bool perch_cf_async_wait_start(perch_cf_async_wait *aw, perch_cf_run *run, const perch_ctx *ctx,
			       perch_cf_wf *wf, perch_cf_step *st);
/* Joins the wait (watched: `what` if it does not return within bound_ms). */
void perch_cf_async_wait_join(perch_cf_async_wait *aw, int64_t bound_ms, const char *what);

/* Checks a finished step's state: exited, the exit code, no OOM. */
bool perch_cf_expect_exit(perch_cf_verdict *v, const perch_cf_step *st, perch_status wait_status,
			  const perch_state *state, int code);

/* A short sleep that is not a timing assertion: it only makes it likely
 * that another thread is blocked in a call by now. */
void perch_cf_pause_ms(int ms);

/* ---- elfsyms.c -------------------------------------------------------- */

/* The names of the defined, globally visible dynamic symbols of the ELF
 * file at path (malloc'd array of malloc'd strings in *names).  Returns 0,
 * or -1 with a malloc'd reason in *err. */
int perch_cf_elf_exports(const char *path, char ***names, size_t *n, char **err);

/* ---- the checks (check_*.c) ------------------------------------------ */

void perch_cf_check_entry(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_exports(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_flags(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_available(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_load(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_load_without_cli(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_capabilities(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_workflow_empty(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_step_lifecycle(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_exit_codes(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_tail_after_destroy(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_destroy_twice(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_destroy_before_start(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_destroy_unknown_workflow(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_missing_image(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_parallel_workflows(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_cancel_wait(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_detached_step(perch_cf_run *run, perch_cf_verdict *v);
void perch_cf_check_discover_resume(perch_cf_run *run, perch_cf_verdict *v);

#endif
