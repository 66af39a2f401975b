/*
 * dummy.h - internals of the dummy backend (not installed, not part of the
 * ABI).  The plugin exports only perch_backend_v1; every name below is hidden
 * by -fvisibility=hidden.
 *
 * The dummy is Woodpecker's test backend (pipeline/backend/dummy) in C: a
 * step's environment decides how it "runs" (SLEEP, EXPECT_TYPE,
 * STEP_START_FAIL, STEP_TAIL_FAIL, STEP_EXIT_CODE, STEP_OOM_KILLED), nothing
 * is executed.  On top of Woodpecker's behaviour it can persist its
 * workflows and steps in a state directory, so that a restarted or upgraded
 * host can discover and resume them: it is the test double for perch's swap
 * and adoption paths.
 *
 * Files, one concern each:
 *   backend.c  the entry object, load/unload, flags, capability lookup
 *   env.c      reading the step's environment knobs into a record
 *   steps.c    setup/start/tail/wait/destroy
 *   tail.c     the deterministic log and the pipe that carries it
 *   store.c    the state directory: records, atomic writes, removal
 *   resume.c   the discoverer and resumer capabilities
 *   hold.c     test gates: SETUP_, START_ and DESTROY_HOLD_FILE
 * Buffers, clocks, threads, atomic writes and recursive removal come from
 * plugins/common (perchplugin.h).
 *
 * Locking: inst->lock guards the workflow and step lists, every refs
 * counter, every step's state/removed/wake_fd/skip_lines, and the writer
 * list.  It is never held while sleeping, polling or touching the disk.
 * wf->io_lock serialises the disk writes of one workflow; lock order is
 * io_lock, then inst->lock.
 */
#ifndef PERCH_PLUGIN_DUMMY_H
#define PERCH_PLUGIN_DUMMY_H

#include <perch/perch.h>

#include "perchplugin.h"

#include <pthread.h>

/* Woodpecker's magic values. */
#define PERCH_DUMMY_SETUP_FAIL_UUID "WorkflowSetupShouldFail"
#define PERCH_DUMMY_EXIT_CANCELLED 130

/* How wait_step ends for a step. */
typedef enum perch_dummy_mode {
	PERCH_DUMMY_UNTIL_DEADLINE = 1, /* at deadline (SLEEP, or at once) */
	PERCH_DUMMY_UNTIL_DESTROYED = 2, /* a service without SLEEP */
	PERCH_DUMMY_BAD_SLEEP = 3,       /* SLEEP unparsable: wait fails */
} perch_dummy_mode;

/*
 * What start_step decides about a step, once: everything needed to replay
 * it, which is what the state directory keeps.  Owns its strings.
 */
typedef struct perch_dummy_record {
	char *name;
	char *type;
	int mode;                 /* perch_dummy_mode */
	int64_t deadline_real_ns; /* UNTIL_DEADLINE: CLOCK_REALTIME end */
	char *bad_sleep;          /* BAD_SLEEP: the raw SLEEP value */
	int32_t exit_code;
	bool oom_killed;
	char *log; /* the whole deterministic output, NUL-terminated */
	size_t log_len;
} perch_dummy_record;

typedef enum perch_dummy_step_state {
	PERCH_DUMMY_STARTED = 1, /* started or resumed: tail and wait allowed */
	PERCH_DUMMY_DONE = 2,    /* wait_step returned */
} perch_dummy_step_state;

/* A step the instance knows.  Freed when refs drops to 0. */
typedef struct perch_dummy_step {
	struct perch_dummy_step *next;
	unsigned refs; /* the list's (while linked) + callers' */
	char *uuid;
	perch_dummy_record rec;   /* immutable once linked, except on cancel */
	int64_t deadline_mono_ns; /* rec.deadline_real_ns on this host's clock */
	int state;                /* perch_dummy_step_state */
	bool removed;             /* destroyed: ends a wait at once */
	int wake_fd;              /* eventfd while a wait runs, else -1 */
	uint64_t skip_lines;      /* resumed: lines the host already has */
} perch_dummy_step;

/* A workflow the instance knows.  Freed when refs drops to 0. */
typedef struct perch_dummy_workflow {
	struct perch_dummy_workflow *next;
	unsigned refs;
	char *task_uuid;
	perch_dummy_step *steps;
	pthread_mutex_t io_lock;
} perch_dummy_workflow;

typedef struct perch_dummy_writer perch_dummy_writer;

struct perch_instance {
	const perch_host *host;
	char *state_dir; /* absolute; NULL: in memory only */
	pthread_mutex_t lock;
	perch_dummy_workflow *workflows;
	perch_dummy_writer *writers;
};

/* ---- env.c ---- */

/* Go's strconv.ParseBool: true only for 1, t, T, TRUE, true, True. */
bool perch_dummy_parse_bool(const char *s);

/*
 * Fills rec (zeroed first) from step's environment, as of now.  Returns
 * PERCH_OK or PERCH_ERR_NO_MEMORY (err filled).  Does not judge
 * STEP_START_FAIL / EXPECT_TYPE: start_step does.  The caller frees rec
 * with perch_dummy_record_free.  Thread-safe.
 */
perch_status perch_dummy_record_from_step(perch_instance *inst,
					  const perch_step *step,
					  perch_dummy_record *rec,
					  perch_error *err);
void perch_dummy_record_free(perch_dummy_record *rec);

/* ---- tail.c ---- */

/* Woodpecker's dummy output for step, malloc'd (caller frees), or NULL on
 * OOM.  *len gets its length. */
char *perch_dummy_log_text(const perch_step *step, size_t *len);

/*
 * Hands data[0..len) to the host through a new pipe: writes what fits at
 * once and, if anything is left, starts a writer thread for the rest.  Takes
 * ownership of data (malloc'd) in every case.  task_uuid/step_uuid label the
 * writer so that destroying the step stops it.  On success *fd is the read
 * end (O_CLOEXEC), which the host owns.  Any thread; takes inst->lock.
 */
perch_status perch_dummy_pipe_out(perch_instance *inst, char *data, size_t len,
				  const char *task_uuid, const char *step_uuid,
				  int *fd, perch_error *err);

/* Stops the writers of one step (step_uuid != NULL) or of a whole workflow
 * (step_uuid == NULL): their pipes reach end of stream.  Caller holds
 * inst->lock. */
void perch_dummy_writers_stop(perch_instance *inst, const char *task_uuid,
			      const char *step_uuid);

/* Joins the writers that have finished.  Caller does NOT hold inst->lock. */
void perch_dummy_writers_reap(perch_instance *inst);

/* Stops and joins every writer.  Unload only. */
void perch_dummy_writers_shutdown(perch_instance *inst);

/* ---- store.c ---- */

/* True if name can be a single path component: not empty, no '/', does
 * not start with '.' (which also rules out "." and ".."), at most 200
 * bytes.  Applied to task and step uuids with or without a state dir, so
 * the two modes accept the same input. */
bool perch_dummy_valid_name(const char *name);

/* Creates dir (and missing parents, mode 0700) and returns its absolute,
 * malloc'd path, or NULL with err filled (PERCH_ERR_IO). */
char *perch_dummy_store_open(const char *dir, perch_error *err);

/* Setting up a workflow on disk takes two calls, so that a test can hold
 * a setup half done (SETUP_HOLD_FILE).  begin creates <state>/<task>/ and
 * its "steps/" folder; an existing folder is PERCH_ERR_INVALID_INPUT (a
 * leftover the host has not destroyed).  commit writes the "workflow"
 * file, whose presence means the setup is complete (discovery lists
 * nothing else).  Either removes what it made when it fails.  Caller
 * holds wf->io_lock. */
perch_status perch_dummy_store_begin_workflow(perch_instance *inst,
					      const char *task_uuid,
					      perch_error *err);
perch_status perch_dummy_store_commit_workflow(perch_instance *inst,
					       const char *task_uuid,
					       perch_error *err);

/* Removes <state>/<task>/ and all it holds; missing is fine. */
perch_status perch_dummy_store_remove_workflow(perch_instance *inst,
					       const char *task_uuid,
					       perch_error *err);

/* True when <state>/<task>/workflow exists. */
bool perch_dummy_store_has_workflow(perch_instance *inst,
				    const char *task_uuid);

/* Writes the step's record atomically (tmp file, fsync, rename, fsync of
 * the folder).  Caller holds the workflow's io_lock. */
perch_status perch_dummy_store_put_step(perch_instance *inst,
					const char *task_uuid,
					const char *step_uuid,
					const perch_dummy_record *rec,
					perch_error *err);

/* Reads a step's record into rec (caller frees).  PERCH_ERR_NOT_FOUND when
 * there is none, PERCH_ERR_IO when unreadable or corrupt. */
perch_status perch_dummy_store_get_step(perch_instance *inst,
					const char *task_uuid,
					const char *step_uuid,
					perch_dummy_record *rec,
					perch_error *err);

/* Removes a step's record; missing is fine. */
perch_status perch_dummy_store_remove_step(perch_instance *inst,
					   const char *task_uuid,
					   const char *step_uuid,
					   perch_error *err);

/* Calls fn for every workflow folder, then for every step record in it.
 * step_uuid is NULL for the workflow itself.  Stops when fn returns false
 * (and returns PERCH_OK).  Records that cannot be read are skipped with a
 * warning. */
typedef bool (*perch_dummy_store_visit_fn)(void *user, const char *task_uuid,
					   const char *step_uuid,
					   const char *step_name);
perch_status perch_dummy_store_list(perch_instance *inst,
				    perch_dummy_store_visit_fn fn, void *user,
				    perch_error *err);

/* ---- steps.c (shared with resume.c) ---- */

/* The linked workflow/step of that uuid, or NULL.  Caller holds inst->lock. */
perch_dummy_workflow *perch_dummy_find_workflow(perch_instance *inst,
						const char *task_uuid);
perch_dummy_step *perch_dummy_find_step(perch_dummy_workflow *wf,
					const char *step_uuid);

/* A new workflow (refs 1: the caller's), not linked; NULL on OOM. */
perch_dummy_workflow *perch_dummy_workflow_new(const char *task_uuid);
/* A new step (refs 1) taking over rec; NULL on OOM (rec then still the
 * caller's). */
perch_dummy_step *perch_dummy_step_new(const char *step_uuid,
				       perch_dummy_record *rec);

/* Drop one reference; frees at 0.  Caller holds inst->lock. */
void perch_dummy_workflow_unref(perch_dummy_workflow *wf);
void perch_dummy_step_unref(perch_dummy_step *st);

/* The step calls of the entry object.  Contracts (threads, ownership,
 * errors) as documented in perch/backend.h; the dummy's behaviour in the
 * head comment of steps.c. */
pp_setup_workflow_fn perch_dummy_setup_workflow;
pp_start_step_fn perch_dummy_start_step;
pp_tail_step_fn perch_dummy_tail_step;
pp_wait_step_fn perch_dummy_wait_step;
pp_destroy_step_fn perch_dummy_destroy_step;
pp_destroy_workflow_fn perch_dummy_destroy_workflow;

/* ---- hold.c ---- */

/* The knobs that hold a call while the file they name exists (see
 * hold.c).  START_HOLD_FILE is read from the step being started; the
 * workflow knobs from the environment of the workflow's steps (the first
 * step, in stage order, that sets one). */
#define PERCH_DUMMY_SETUP_HOLD "SETUP_HOLD_FILE"
#define PERCH_DUMMY_START_HOLD "START_HOLD_FILE"
#define PERCH_DUMMY_DESTROY_HOLD "DESTROY_HOLD_FILE"

/* The value of key in the first step of config (stage order) whose
 * environment has it, or NULL.  Borrowed from config. */
const char *perch_dummy_workflow_knob(const perch_config *config,
				      const char *key);

/* Returns once path (NULL or "": at once) does not exist, polling every
 * 20 ms; says so at info level when it had to wait.  PERCH_ERR_CANCELLED
 * (err filled, naming what) when ctx is cancelled first.  Takes no lock;
 * any thread. */
perch_status perch_dummy_hold(perch_instance *inst, const perch_ctx *ctx,
			      const char *path, const char *what,
			      perch_error *err);

/* ---- resume.c ---- */

extern const perch_workflow_discoverer_v1 perch_dummy_discoverer;
extern const perch_workflow_resumer_v1 perch_dummy_resumer;

#endif /* PERCH_PLUGIN_DUMMY_H */
