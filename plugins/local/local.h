/*
 * local.h - internals of the local backend (not installed, not part of the
 * ABI).  The plugin exports only perch_backend_v1; every name below is hidden
 * by -fvisibility=hidden.
 *
 * The local backend runs each step as a process on the host, like
 * Woodpecker's pipeline/backend/local, with these differences (all chosen so
 * that nothing is left behind and nothing hangs):
 *  - every step runs in its own process group; stopping a step means SIGTERM
 *    to the group, then SIGKILL after backend-local-stop-timeout;
 *  - the grandchild rule: when a step's leader exits, the step is over, and
 *    whatever is left in its process group is stopped the same way, so that
 *    the log pipe reaches end of stream and no process outlives its step;
 *  - exit codes of signalled steps are 128+signal (Woodpecker reports -1);
 *  - services and detached steps are supported (Woodpecker refuses them);
 *  - working_dir is honoured when it lies inside the workspace.
 *
 * Files, one concern each:
 *   backend.c  the entry object: flags, is_available, load, unload
 *   steps.c    setup/start/tail/wait/destroy (the ABI calls)
 *   registry.c workflow and step records, references, lookup
 *   plan.c     what to execute for a step: shells, scripts, plugins, clone
 *   script.c   shell quoting and the echoing script of a commands step
 *   env.c      the step's environment and the .netrc file
 *   spawn.c    fork/exec into a new process group
 *   proc.c     waiting for, stopping and sweeping process groups
 *   fs.c       PATH lookup, paths that stay inside the workspace
 *   leftover.c owner records, and folders an earlier process left
 *   util.c     string vectors that report OOM
 * Buffers, clocks, shell quoting, mkdir -p, atomic writes and recursive
 * removal come from plugins/common (perchplugin.h).
 *
 * Locking: inst->lock guards the workflow list, every workflow's step list,
 * every refs counter, every step's log_fd/finished/
 * exit_code/netrc, every perch_local_proc's reaped/wstatus/lost/group_done
 * fields, and the shell cache.  It is never held while blocking (poll,
 * sleeping, reading a pipe, fork, touching the disk beyond a single
 * non-blocking waitpid).  wf->netrc_lock serialises the .netrc file of one
 * workflow and its users; it is never taken with inst->lock held.
 */
#ifndef PERCH_PLUGIN_LOCAL_H
#define PERCH_PLUGIN_LOCAL_H

#include <perch/perch.h>

#include "perchplugin.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#define PERCH_LOCAL_NAME "local"

/* Flag names (see backend.c for their declarations). */
#define PERCH_LOCAL_FLAG_TEMP_DIR "backend-local-temp-dir"
#define PERCH_LOCAL_FLAG_ISOLATED_HOME "backend-local-isolated-home"
#define PERCH_LOCAL_FLAG_STOP_TIMEOUT "backend-local-stop-timeout"
#define PERCH_LOCAL_DEFAULT_STOP_TIMEOUT_MS 10000

/* ---- util.c ---------------------------------------------------------- */

/* A growable, always NULL-terminated vector of malloc'd strings (argv,
 * envp).  Zero-initialise to use; same oom convention as pp_buf. */
typedef struct perch_local_strv {
	char **v;
	size_t n;
	size_t cap;
	bool oom;
} perch_local_strv;

/* Appends a copy of s. */
void perch_local_strv_push(perch_local_strv *sv, const char *s);
/* Appends s and takes ownership of it; s == NULL records an OOM. */
void perch_local_strv_take(perch_local_strv *sv, char *s);
void perch_local_strv_free(perch_local_strv *sv);

/* ---- fs.c ------------------------------------------------------------ */

/* True when path is dir itself or lies below it (textually: both absolute,
 * no "." or ".." components in path). */
bool perch_local_path_within(const char *path, const char *dir);

/* True when the relative path has a ".." component. */
bool perch_local_path_climbs(const char *rel);

/*
 * Finds an executable like exec.LookPath: a name with a slash is taken as
 * is (relative to base_dir when relative); otherwise each absolute entry of
 * path_env is tried (relative entries are skipped: they would depend on the
 * host's current directory).  Returns a malloc'd absolute path, or NULL
 * with errno (ENOENT: not found, ENOMEM).  Thread-safe.
 */
char *perch_local_which(const char *name, const char *path_env,
			const char *base_dir);

/* ---- leftover.c ------------------------------------------------------ */

/* Writes <base_dir>/.perch-owner: this process (pid and start time) made
 * the folder for task_uuid.  0, or -1 with errno.  Thread-safe. */
int perch_local_owner_write(const char *base_dir, const char *task_uuid);

/* Removes every <temp>/perch-local-* folder of this user whose owner
 * record names task_uuid and whose maker no longer runs: what a killed
 * host left of a workflow that this instance never set up.  PERCH_OK
 * when there was nothing, or all of it went; else the first failure, the
 * rest still tried.  Blocks on the disk; takes no lock. */
perch_status perch_local_remove_leftovers(perch_instance *inst,
					  const char *task_uuid,
					  perch_error *err);

/* ---- records (registry.c) ------------------------------------------- */

/* One process group leader the plugin started.  The fields after pidfd are
 * guarded by inst->lock. */
typedef struct perch_local_proc {
	pid_t pid;      /* the leader; also the process group id */
	int pidfd;      /* pidfd_open(pid), -1 when the kernel has none */
	bool reaped;    /* waitpid() returned the leader's status */
	bool lost;      /* someone else reaped it: status unknown */
	bool group_done; /* the group was seen empty: never signal it again */
	int wstatus;    /* valid when reaped && !lost */
} perch_local_proc;

typedef struct perch_local_workflow perch_local_workflow;
typedef struct perch_local_step perch_local_step;

/* A started step.  Freed when refs drops to 0 (inst->lock held). */
struct perch_local_step {
	perch_local_step *next;
	unsigned refs;             /* the workflow list's (while linked) + callers' */
	perch_local_workflow *wf;  /* counted reference */
	char *key;                 /* uuid, or name when the uuid is empty */
	char *name;                /* for messages */
	perch_local_proc proc;
	int log_fd;                /* read end until tail_step hands it over */
	bool finished;             /* wait_step filled exit_code */
	int32_t exit_code;
	bool netrc;                /* holds one of wf->netrc_users (netrc_lock) */
};

/* A set-up workflow.  Freed when refs drops to 0 (inst->lock held). */
struct perch_local_workflow {
	perch_local_workflow *next;
	unsigned refs;             /* the instance list's (while linked) + others */
	char *task_uuid;
	char *base_dir;            /* <temp>/perch-local-XXXXXX */
	char *home_dir;            /* <base>/home */
	char *workspace_dir;       /* <base>/workspace */
	perch_local_step *steps;
	pthread_mutex_t netrc_lock; /* guards netrc_users, steps' netrc, .netrc */
	unsigned netrc_users;      /* running steps that need <home>/.netrc */
	unsigned scripts;          /* counter for script files */
	bool destroyed;            /* destroy_workflow began: start nothing */
};

/* A shell that was probed for POSIX behaviour. */
typedef struct perch_local_shell {
	struct perch_local_shell *next;
	char *path;
	bool posix;
} perch_local_shell;

struct perch_instance {
	const perch_host *host;
	char *temp_dir;            /* absolute, resolved at load */
	bool isolated_home;
	int64_t stop_timeout_ms;   /* SIGTERM -> SIGKILL */
	atomic_bool no_pidfd;      /* pidfd_open said ENOSYS once */
	pthread_mutex_t lock;
	perch_local_workflow *workflows;
	perch_local_shell *shells;
};

/* The key a step is known by: its uuid, or its name when the uuid is "". */
const char *perch_local_step_key(const perch_step *step);

/* Both take inst->lock.  Return a counted reference (release with the
 * matching unref) or NULL. */
perch_local_workflow *perch_local_workflow_get(perch_instance *inst,
					       const char *task_uuid);
perch_local_step *perch_local_step_get(perch_instance *inst,
				       perch_local_workflow *wf,
				       const char *key);

/* Drop a reference; the _locked variants need inst->lock held. */
void perch_local_workflow_unref(perch_instance *inst, perch_local_workflow *wf);
void perch_local_workflow_unref_locked(perch_local_workflow *wf);
void perch_local_step_unref(perch_instance *inst, perch_local_step *st);
void perch_local_step_unref_locked(perch_local_step *st);

/* A new step record (refs 1, pid -1, fds -1) holding a reference on wf, or
 * NULL on OOM.  Takes inst->lock for the workflow reference. */
perch_local_step *perch_local_step_new(perch_instance *inst,
				       perch_local_workflow *wf,
				       const perch_step *step);

/* Frees every workflow, step and shell record (unload: no call in flight). */
void perch_local_registry_clear(perch_instance *inst);

/* ---- env.c ----------------------------------------------------------- */

/*
 * Builds the environment of step: the host's environ, then the step's
 * environment except the variables the local backend owns (HOME, SHELL,
 * CI_WORKSPACE, CI_SCRIPT, CI_NETRC_*: dropped; HOME, SHELL and CI_SCRIPT
 * are named in a warning), then HOME and USERPROFILE (isolated home) and
 * CI_WORKSPACE.  Reads environ: the host must not setenv() meanwhile.
 * out must be zeroed; the caller frees it.  PERCH_OK or NO_MEMORY.
 */
perch_status perch_local_env_build(perch_instance *inst,
				   const perch_local_workflow *wf,
				   const perch_step *step,
				   perch_local_strv *out, perch_error *err);

/* The value of key in an envp-style vector, or NULL. */
const char *perch_local_env_get(const perch_local_strv *env, const char *key);

/* Writes <home>/.netrc (0600) from the step's CI_NETRC_* variables.  0 or
 * -1/errno. */
int perch_local_netrc_write(const perch_local_workflow *wf,
			    const perch_step *step);

/* Removes <home>/.netrc (ignores a missing file). */
void perch_local_netrc_remove(const perch_local_workflow *wf);

/* ---- script.c -------------------------------------------------------- */

/* The script of a commands step: every command is printed as "+ <cmd>"
 * (printf, so that no echo mangles backslashes) and then run.  Meant for
 * `<shell> -e`: the first failing command ends it.  Malloc'd; NULL on OOM. */
char *perch_local_script(const char *const *cmds, size_t n);

/* ---- spawn.c --------------------------------------------------------- */

typedef struct perch_local_spawn_args {
	const char *path;   /* absolute path of the executable */
	char *const *argv;  /* NULL-terminated */
	char *const *envp;  /* NULL-terminated */
	const char *cwd;    /* working directory, NULL: inherit */
	int out_fd;         /* becomes fd 1, and fd 2 unless err_fd >= 0 */
	int err_fd;         /* becomes fd 2; -1: same as out_fd */
} perch_local_spawn_args;

/*
 * Starts a->path in a new process group with stdin from /dev/null, all
 * signals at their default dispositions and unblocked, and no descriptor
 * but 0, 1 and 2.  Everything the child needs is prepared before fork(): the
 * child only makes async-signal-safe calls.  Fills proc->pid (pidfd -1:
 * see perch_local_open_pidfd) and returns 0, or returns -1 with errno and a one-line reason in why (the
 * child, if any, has been reaped).  Thread-safe.
 */
int perch_local_spawn(const perch_local_spawn_args *a, perch_local_proc *proc,
		      char *why, size_t why_len);

/* ---- proc.c ---------------------------------------------------------- */

/* Opens p->pidfd for a just-spawned, unreaped leader (so its pid cannot
 * have been reused).  Leaves -1 on kernels (or valgrinds) without
 * pidfd_open, and stops trying after the first ENOSYS. */
void perch_local_open_pidfd(perch_instance *inst, perch_local_proc *p);

/* Reaps the leader if it has exited (never blocks).  True once reaped, by
 * this call or an earlier one.  Takes inst->lock. */
bool perch_local_try_reap(perch_instance *inst, perch_local_proc *p);

enum {
	PERCH_LOCAL_WAIT_DONE = 0,      /* every leader reaped */
	PERCH_LOCAL_WAIT_CANCELLED = 1, /* cancel_fd became readable */
	PERCH_LOCAL_WAIT_TIMEOUT = 2,   /* deadline_ms passed */
};

/*
 * Blocks until every leader in v has been reaped, cancel_fd (-1: none)
 * becomes readable, or deadline_ms (CLOCK_MONOTONIC; INT64_MAX: none)
 * passes.  Uses the pidfds in a poll(); leaders without one are polled with
 * waitpid(WNOHANG) every few milliseconds.  Never holds inst->lock while
 * blocking.  Returns PERCH_LOCAL_WAIT_*.
 */
int perch_local_wait_leaders(perch_instance *inst, perch_local_proc *const *v,
			     size_t n, int cancel_fd, int64_t deadline_ms);

/*
 * The grandchild rule, for groups whose leaders are reaped: SIGTERM (and
 * SIGCONT) to every group that still has a live process, SIGKILL to those
 * still alive after grace_ms or once cancel_fd is readable, and a short
 * bounded wait until they are gone.  Processes that left the group
 * (setsid, setpgid) escape: nothing in POSIX finds them.
 */
void perch_local_sweep(perch_instance *inst, perch_local_proc *const *v,
		       size_t n, int cancel_fd, int64_t grace_ms);

/*
 * Stops running steps: SIGTERM to every group whose leader runs, SIGKILL
 * after inst->stop_timeout_ms (or at once when cancel_fd becomes
 * readable), reaps the leaders and sweeps the groups.  Bounded: a leader
 * that does not die within seconds of SIGKILL (stuck in the kernel) is
 * logged and left.  Thread-safe; concurrent stops of one group are fine.
 */
/* Sends sig (and SIGCONT) to the step's process group unless its leader is
 * already reaped.  Does not wait. */
void perch_local_signal_group(perch_instance *inst, perch_local_proc *p, int sig);
void perch_local_stop(perch_instance *inst, perch_local_proc *const *v,
		      size_t n, int cancel_fd);

/* The exit code of a reaped leader: its exit status, 128+signal when a
 * signal killed it, -1 when unknown.  Takes inst->lock. */
int32_t perch_local_exit_code(perch_instance *inst, const perch_local_proc *p);

/* ---- plan.c ---------------------------------------------------------- */

/* What to execute for a step. */
typedef struct perch_local_plan {
	char *path;             /* absolute executable */
	perch_local_strv argv;
} perch_local_plan;

/*
 * Decides what runs for step: commands (and services/detached steps with
 * commands) run the script under the shell named by image (sh, bash and zsh
 * directly, other shells once probed for POSIX behaviour); plugin steps
 * (and services without commands) run the executable named by image;
 * clone steps run a generated git script under sh.  env is the step's
 * environment (its PATH is the one searched), cwd its working directory.
 * May block briefly (the shell probe honours ctx).  plan must be zeroed;
 * the caller frees it with perch_local_plan_free.  Thread-safe.
 */
perch_status perch_local_plan_step(perch_instance *inst, const perch_ctx *ctx,
				   perch_local_workflow *wf,
				   const perch_step *step,
				   const perch_local_strv *env, const char *cwd,
				   perch_local_plan *plan, perch_error *err);
void perch_local_plan_free(perch_local_plan *plan);

/* PERCH_OK for the step types the local backend runs (commands, plugin,
 * clone, service); PERCH_ERR_UNSUPPORTED with the reason otherwise. */
perch_status perch_local_plan_check_type(const perch_step *step,
					 perch_error *err);

/* ---- steps.c (the ABI calls) ---------------------------------------- */

pp_setup_workflow_fn perch_local_setup_workflow;
pp_start_step_fn perch_local_start_step;
pp_tail_step_fn perch_local_tail_step;
pp_wait_step_fn perch_local_wait_step;
pp_destroy_step_fn perch_local_destroy_step;
pp_destroy_workflow_fn perch_local_destroy_workflow;

/* Stops and removes every workflow still set up (unload's safety net). */
void perch_local_destroy_all(perch_instance *inst);

#endif /* PERCH_PLUGIN_LOCAL_H */
