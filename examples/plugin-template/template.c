/*
 * template.c - a complete, minimal perch backend, to copy and rename.
 *
 * Each step runs as `SHELL -e -c SCRIPT` on the host, in a process group of
 * its own, in a temporary folder per workflow; SCRIPT is the step's
 * commands, one per line, so the first failing command ends the step.  The
 * step's image is ignored (a container backend would run the image here).
 *
 * What the contract (perch/backend.h) asks, and where this file does it:
 *  - every required call, each returning a perch_status and filling err
 *    with one line on failure;
 *  - flags declared as data (FLAG_*), read through the CLI context at load;
 *  - threads: one instance serves many workflows at once, so every record
 *    lives under inst->lock, and a step record is reference-counted because
 *    wait_step (of a detached step) may still run while destroy_workflow
 *    removes it;
 *  - wait_step watches the context's cancel descriptor and returns
 *    PERCH_ERR_CANCELLED at once;
 *  - the tail descriptor is a pipe (O_CLOEXEC) whose write end only the
 *    step's processes hold, so it reaches end of stream when they are gone;
 *  - destroy_step and destroy_workflow are idempotent and stop what runs:
 *    SIGTERM to the process group, SIGKILL after the stop timeout;
 *  - no exit(), abort() or signal handler; every descriptor is O_CLOEXEC;
 *    unload leaves no process, thread or descriptor behind.
 *
 * Build it with the installed SDK only:
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags perch) \
 *      -o template.so template.c
 * and test it with `perch-conformance ./template.so`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, O_CLOEXEC, nftw */
#endif
#include <perch/perch.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- flags: data the host merges into perch's command line ---------- */

/* A flag of backend <name> is "backend-<name>-<key>"; its config-file key
 * is backends.<name>.<key with underscores>. */
#define FLAG_SHELL "backend-template-shell"
#define FLAG_STOP_TIMEOUT "backend-template-stop-timeout"

static const char *const shell_env[] = {"PERCH_BACKEND_TEMPLATE_SHELL", NULL};
static const char *const stop_timeout_env[] = {"PERCH_BACKEND_TEMPLATE_STOP_TIMEOUT", NULL};

static const perch_flag shell_flag = {
	PERCH_FLAG_INIT,
	.kind = PERCH_FLAG_STRING,
	.name = FLAG_SHELL,
	.env = shell_env,
	.default_value = "/bin/sh",
	.usage = "the shell that runs each step's commands (an absolute path)",
};

static const perch_flag stop_timeout_flag = {
	PERCH_FLAG_INIT,
	.kind = PERCH_FLAG_DURATION,
	.name = FLAG_STOP_TIMEOUT,
	.env = stop_timeout_env,
	.default_value = "10s",
	.usage = "how long a stopped step gets between SIGTERM and SIGKILL",
};

static const perch_flag *const template_flags[] = {&shell_flag, &stop_timeout_flag, NULL};

/* ---- records ---------------------------------------------------------- */

/* A started step: one process group.  Fields guarded by inst->lock. */
typedef struct tpl_step {
	struct tpl_step *next;
	unsigned refs; /* the workflow's (while listed) + calls in flight */
	char *uuid;
	pid_t pid;     /* the leader; also the process group id */
	int pidfd;     /* readable once the leader exits; -1 without pidfd_open */
	int log_fd;    /* the pipe's read end, until tail_step hands it over */
	bool exited;   /* the leader was reaped; exit_code is valid */
	int32_t exit_code;
} tpl_step;

typedef struct tpl_workflow {
	struct tpl_workflow *next;
	char *task_uuid;
	char *dir; /* the steps' working directory, removed at the end */
	tpl_step *steps;
} tpl_workflow;

struct perch_instance {
	const perch_host *host;
	char *shell;
	int64_t stop_timeout_ms;
	pthread_mutex_t lock;
	tpl_workflow *workflows;
};

/* BackendInfo.platform, in Go's names. */
#if defined(__x86_64__)
#define PLATFORM "linux/amd64"
#elif defined(__aarch64__)
#define PLATFORM "linux/arm64"
#else
#define PLATFORM "linux/unknown"
#endif

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Caller holds inst->lock. */
static tpl_workflow *find_workflow(perch_instance *inst, const char *task_uuid)
{
	for (tpl_workflow *wf = inst->workflows; wf; wf = wf->next)
		if (strcmp(wf->task_uuid, task_uuid) == 0)
			return wf;
	return NULL;
}

/* The step of a call, with a reference the caller drops with step_unref;
 * NULL when the workflow or the step is unknown. */
static tpl_step *step_get(perch_instance *inst, const char *task_uuid, const char *uuid)
{
	tpl_step *st = NULL;
	pthread_mutex_lock(&inst->lock);
	tpl_workflow *wf = find_workflow(inst, task_uuid);
	for (st = wf ? wf->steps : NULL; st; st = st->next)
		if (strcmp(st->uuid, uuid) == 0) {
			st->refs++;
			break;
		}
	pthread_mutex_unlock(&inst->lock);
	return st;
}

static void step_unref(perch_instance *inst, tpl_step *st)
{
	pthread_mutex_lock(&inst->lock);
	bool last = --st->refs == 0;
	pthread_mutex_unlock(&inst->lock);
	if (!last)
		return;
	/* The last reference goes only after stop_step reaped the leader. */
	if (st->pidfd >= 0)
		close(st->pidfd);
	if (st->log_fd >= 0)
		close(st->log_fd);
	free(st->uuid);
	free(st);
}

/* ---- processes -------------------------------------------------------- */

/*
 * Reaps the leader if it has exited.  Before reaping, whatever is left in
 * its process group is killed: the step is over, and a leftover would hold
 * the log pipe open forever.  The zombie leader keeps the group id
 * reserved until waitpid, so the kill cannot hit a stranger.  Never
 * blocks.  Caller holds inst->lock.
 */
static bool reap_locked(tpl_step *st)
{
	siginfo_t si;
	if (st->exited)
		return true;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)st->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
		/* ECHILD: someone else in the host reaped it; status unknown. */
		st->exited = true;
		st->exit_code = -1;
		return true;
	}
	if (si.si_pid == 0)
		return false;
	kill(-st->pid, SIGKILL);
	int status = 0;
	while (waitpid(st->pid, &status, 0) < 0 && errno == EINTR)
		;
	st->exited = true;
	/* Like a shell: 128 + signal for a step killed by a signal. */
	st->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	return true;
}

/* Waits until the leader is reaped, cancel_fd is readable (-1: never) or
 * deadline_ms passes.  True once reaped. */
static bool wait_leader(perch_instance *inst, tpl_step *st, int cancel_fd, int64_t deadline_ms,
			bool *cancelled)
{
	for (;;) {
		pthread_mutex_lock(&inst->lock);
		bool done = reap_locked(st);
		pthread_mutex_unlock(&inst->lock);
		if (done)
			return true;
		int64_t left = deadline_ms - now_ms();
		if (left <= 0)
			return false;
		int timeout = left > 60000 ? 60000 : (int)left;
		if (st->pidfd < 0 && timeout > 50)
			timeout = 50; /* without a pidfd, look again every 50 ms */
		struct pollfd pfd[2] = {{.fd = cancel_fd, .events = POLLIN},
					{.fd = st->pidfd, .events = POLLIN}};
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			return false;
		if (pfd[0].revents) {
			*cancelled = true;
			return false;
		}
	}
}

/* Stops a step: SIGTERM to its group, SIGKILL after the stop timeout (or
 * at once when ctx is cancelled), and reaps the leader. */
static void stop_step(perch_instance *inst, tpl_step *st, const perch_ctx *ctx)
{
	int cancel_fd = ctx ? inst->host->ctx_cancel_fd(ctx) : -1;
	bool cancelled = false;
	pthread_mutex_lock(&inst->lock);
	if (!reap_locked(st))
		kill(-st->pid, SIGTERM);
	pthread_mutex_unlock(&inst->lock);
	if (wait_leader(inst, st, cancel_fd, now_ms() + inst->stop_timeout_ms, &cancelled))
		return;
	pthread_mutex_lock(&inst->lock);
	if (!reap_locked(st))
		kill(-st->pid, SIGKILL);
	pthread_mutex_unlock(&inst->lock);
	/* SIGKILL is not ignorable; a process stuck in the kernel is logged. */
	if (!wait_leader(inst, st, -1, now_ms() + 5000, &cancelled))
		perch_logf(inst->host, PERCH_LOG_WARN,
			   "template: step %s (pid %d) survived SIGKILL for 5 s; leaving it",
			   st->uuid, (int)st->pid);
}

/* The step's environment: the host's, then the step's (which wins).
 * malloc'd, NULL-terminated; NULL on OOM.  Free with free_strv. */
static char **build_env(const perch_step *step)
{
	size_t n = 0, k = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + step->environment.len + 1, sizeof *env);
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t len = strcspn(environ[i], "=");
		bool overridden = false;
		for (size_t j = 0; j < step->environment.len && !overridden; j++) {
			const char *key = step->environment.items[j].key;
			overridden = strlen(key) == len && strncmp(key, environ[i], len) == 0;
		}
		if (!overridden && (env[k++] = strdup(environ[i])) == NULL)
			goto oom;
	}
	for (size_t j = 0; j < step->environment.len; j++) {
		const perch_kv *kv = &step->environment.items[j];
		if (asprintf(&env[k++], "%s=%s", kv->key, kv->value) < 0) {
			env[k - 1] = NULL;
			goto oom;
		}
	}
	return env;
oom:
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The commands, one per line.  malloc'd; NULL on OOM. */
static char *build_script(const perch_step *step)
{
	size_t len = 1;
	for (size_t i = 0; i < step->commands.len; i++)
		len += strlen(step->commands.items[i]) + 1;
	char *s = malloc(len), *p = s;
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < step->commands.len; i++)
		p += sprintf(p, "%s\n", step->commands.items[i]);
	*p = '\0';
	return s;
}

/*
 * Starts argv[0] in a new process group with stdout and stderr into out_fd
 * and stdin from /dev/null.  Everything is prepared before fork(): in a
 * threaded process the child may only make async-signal-safe calls.
 */
static pid_t spawn(char *const argv[], char *const envp[], const char *dir, int out_fd)
{
	sigset_t none;
	struct sigaction dfl;
	sigemptyset(&none);
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	pid_t pid = fork();
	if (pid != 0)
		return pid; /* the parent, or -1 */
	setpgid(0, 0);
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0 ||
	    chdir(dir) < 0)
		_exit(127);
	/* The host ignores SIGPIPE and may block signals: steps get the
	 * defaults back (exec keeps ignored dispositions and the mask). */
	sigaction(SIGPIPE, &dfl, NULL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(argv[0], argv, envp);
	_exit(127);
}

/* ---- the calls -------------------------------------------------------- */

static bool template_is_available(const perch_host *host, const perch_ctx *ctx, perch_error *why)
{
	/* Cheap and side-effect free: is the shell there? */
	const perch_cli *cli = NULL;
	const char *shell = NULL;
	if (perch_ctx_cli(host, ctx, &cli, NULL) == PERCH_OK)
		shell = host->cli_string(cli, FLAG_SHELL);
	if (shell == NULL)
		shell = "/bin/sh";
	if (access(shell, X_OK) != 0) {
		perch_error_set(why, PERCH_ERR_UNAVAILABLE, "shell %s: %s", shell, strerror(errno));
		return false;
	}
	return true;
}

static perch_status template_load(const perch_host *host, const perch_ctx *ctx,
				  perch_instance **out, perch_backend_info *info,
				  perch_error *err)
{
	const perch_cli *cli = NULL;
	*out = NULL;
	/* A field the host table may lack is used only when struct_size covers
	 * it; cli_duration_ms is the newest this plugin needs. */
	if (!PERCH_HAS_FIELD(host, perch_host, cli_duration_ms))
		return perch_error_set(err, PERCH_ERR_UNSUPPORTED, "host table too old");
	/* The flags come with the CLI context; without it, fail with the
	 * contract's exact error. */
	perch_status st = perch_ctx_cli(host, ctx, &cli, err);
	if (st != PERCH_OK)
		return st;
	const char *shell = host->cli_string(cli, FLAG_SHELL);
	if (shell == NULL || shell[0] != '/')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "--%s must be an absolute path (got \"%s\")", FLAG_SHELL,
				       shell ? shell : "");
	perch_instance *inst = calloc(1, sizeof *inst);
	if (inst == NULL || (inst->shell = strdup(shell)) == NULL) {
		free(inst);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	inst->host = host;
	inst->stop_timeout_ms = host->cli_duration_ms(cli, FLAG_STOP_TIMEOUT);
	pthread_mutex_init(&inst->lock, NULL);
	/* Fill only what info->struct_size covers. */
	if (PERCH_HAS_FIELD(info, perch_backend_info, platform))
		snprintf(info->platform, sizeof info->platform, "%s", PLATFORM);
	*out = inst;
	return PERCH_OK;
}

static perch_status template_setup_workflow(perch_instance *inst, const perch_ctx *ctx,
					    const perch_config *config, const char *task_uuid,
					    perch_error *err)
{
	const char *tmp = getenv("TMPDIR");
	tpl_workflow *wf = calloc(1, sizeof *wf);
	if (wf == NULL || (wf->task_uuid = strdup(task_uuid)) == NULL ||
	    asprintf(&wf->dir, "%s/perch-template-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
		if (wf)
			free(wf->task_uuid);
		free(wf);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	if (mkdtemp(wf->dir) == NULL) {
		perch_error_set(err, PERCH_ERR_IO, "cannot create %s: %s", wf->dir, strerror(errno));
		goto fail;
	}
	pthread_mutex_lock(&inst->lock);
	bool dup = find_workflow(inst, task_uuid) != NULL;
	if (!dup) {
		wf->next = inst->workflows;
		inst->workflows = wf;
	}
	pthread_mutex_unlock(&inst->lock);
	if (!dup)
		return PERCH_OK;
	rmdir(wf->dir);
	perch_error_set(err, PERCH_ERR_INVALID_INPUT, "workflow %s is already set up", task_uuid);
fail:
	free(wf->dir);
	free(wf->task_uuid);
	free(wf);
	return err ? err->code : PERCH_ERR;
}

static perch_status template_start_step(perch_instance *inst, const perch_ctx *ctx,
					const perch_step *step, const char *task_uuid,
					perch_error *err)
{
	char *dir = NULL;
	pthread_mutex_lock(&inst->lock);
	tpl_workflow *wf = find_workflow(inst, task_uuid);
	if (wf)
		dir = strdup(wf->dir);
	pthread_mutex_unlock(&inst->lock);
	if (wf == NULL)
		return perch_error_set(err, PERCH_ERR_NOT_FOUND, "workflow %s is not set up",
				       task_uuid);
	tpl_step *known = step_get(inst, task_uuid, step->uuid);
	if (known) {
		step_unref(inst, known);
		free(dir);
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT, "step %s was already started",
				       step->uuid);
	}

	perch_status rc = PERCH_OK;
	char *script = build_script(step);
	char **env = build_env(step);
	tpl_step *st = calloc(1, sizeof *st);
	int p[2] = {-1, -1};
	if (st)
		st->pidfd = st->log_fd = -1;
	if (dir == NULL || script == NULL || env == NULL || st == NULL ||
	    (st->uuid = strdup(step->uuid)) == NULL) {
		rc = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = perch_error_set(err, PERCH_ERR_IO, "pipe: %s", strerror(errno));
		goto out;
	}
	char *argv[] = {inst->shell, (char *)"-e", (char *)"-c", script, NULL};
	st->pid = spawn(argv, env, dir, p[1]);
	if (st->pid < 0) {
		rc = perch_error_set(err, PERCH_ERR_IO, "fork: %s", strerror(errno));
		goto out;
	}
	setpgid(st->pid, st->pid); /* also here, so that no kill races the child */
	close(p[1]);
	p[1] = -1;
	st->log_fd = p[0];
	p[0] = -1;
#ifdef SYS_pidfd_open
	st->pidfd = (int)syscall(SYS_pidfd_open, st->pid, 0);
#else
	st->pidfd = -1;
#endif
	st->refs = 1; /* the workflow's */
	pthread_mutex_lock(&inst->lock);
	wf = find_workflow(inst, task_uuid);
	if (wf) {
		st->next = wf->steps;
		wf->steps = st;
	}
	pthread_mutex_unlock(&inst->lock);
	if (wf == NULL) {
		/* destroy_workflow came first: undo. */
		stop_step(inst, st, NULL);
		rc = perch_error_set(err, PERCH_ERR_NOT_FOUND, "workflow %s was destroyed",
				     task_uuid);
		goto out;
	}
	st = NULL;
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (st) {
		if (st->log_fd >= 0)
			close(st->log_fd);
		if (st->pidfd >= 0)
			close(st->pidfd);
		free(st->uuid);
		free(st);
	}
	free_strv(env);
	free(script);
	free(dir);
	return rc;
}

static perch_status template_tail_step(perch_instance *inst, const perch_ctx *ctx,
				       const perch_step *step, const char *task_uuid, int *fd,
				       perch_error *err)
{
	tpl_step *st = step_get(inst, task_uuid, step->uuid);
	if (st == NULL)
		return perch_error_set(err, PERCH_ERR_NOT_FOUND, "step %s is not running",
				       step->uuid);
	pthread_mutex_lock(&inst->lock);
	*fd = st->log_fd; /* the host owns it from now on */
	st->log_fd = -1;
	pthread_mutex_unlock(&inst->lock);
	step_unref(inst, st);
	if (*fd < 0)
		return perch_error_set(err, PERCH_ERR, "the log of step %s was handed over already",
				       step->uuid);
	return PERCH_OK;
}

static perch_status template_wait_step(perch_instance *inst, const perch_ctx *ctx,
				       const perch_step *step, const char *task_uuid,
				       perch_state *state, perch_error *err)
{
	tpl_step *st = step_get(inst, task_uuid, step->uuid);
	if (st == NULL)
		return perch_error_set(err, PERCH_ERR_NOT_FOUND, "step %s is not running",
				       step->uuid);
	bool cancelled = false;
	perch_status rc = PERCH_OK;
	if (!wait_leader(inst, st, inst->host->ctx_cancel_fd(ctx), INT64_MAX, &cancelled)) {
		/* The host destroys the step next; stopping it is that call's job. */
		rc = cancelled ? perch_error_set(err, PERCH_ERR_CANCELLED, "step %s cancelled",
						 step->uuid)
			       : perch_error_set(err, PERCH_ERR_IO, "poll: %s", strerror(errno));
	} else {
		pthread_mutex_lock(&inst->lock);
		if (PERCH_HAS_FIELD(state, perch_state, exit_code))
			state->exit_code = st->exit_code;
		if (PERCH_HAS_FIELD(state, perch_state, exited))
			state->exited = true;
		pthread_mutex_unlock(&inst->lock);
	}
	step_unref(inst, st);
	return rc;
}

static perch_status template_destroy_step(perch_instance *inst, const perch_ctx *ctx,
					  const perch_step *step, const char *task_uuid,
					  perch_error *err)
{
	tpl_step *st = NULL;
	pthread_mutex_lock(&inst->lock);
	tpl_workflow *wf = find_workflow(inst, task_uuid);
	for (tpl_step **pp = wf ? &wf->steps : NULL; pp && *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->uuid, step->uuid) == 0) {
			st = *pp;
			*pp = st->next; /* its list reference is ours now */
			break;
		}
	pthread_mutex_unlock(&inst->lock);
	if (st == NULL)
		return PERCH_OK; /* never started, failed to start, or destroyed: clean */
	stop_step(inst, st, ctx);
	step_unref(inst, st);
	return PERCH_OK;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static perch_status template_destroy_workflow(perch_instance *inst, const perch_ctx *ctx,
					      const perch_config *config,
					      const char *task_uuid, perch_error *err)
{
	pthread_mutex_lock(&inst->lock);
	tpl_workflow **pp = &inst->workflows;
	while (*pp && strcmp((*pp)->task_uuid, task_uuid) != 0)
		pp = &(*pp)->next;
	tpl_workflow *wf = *pp;
	if (wf)
		*pp = wf->next;
	pthread_mutex_unlock(&inst->lock);
	if (wf == NULL)
		return PERCH_OK; /* setup failed, or never happened: nothing to clean */
	/* Detached steps (services) still run; their wait_step returns once
	 * they are stopped, and their destroy_step then finds nothing. */
	while (wf->steps) {
		tpl_step *st = wf->steps;
		wf->steps = st->next;
		stop_step(inst, st, ctx);
		step_unref(inst, st);
	}
	perch_status rc = PERCH_OK;
	if (nftw(wf->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		rc = perch_error_set(err, PERCH_ERR_IO, "cannot remove %s: %s", wf->dir,
				     strerror(errno));
	free(wf->dir);
	free(wf->task_uuid);
	free(wf);
	return rc;
}

static void template_unload(perch_instance *inst)
{
	/* A host that exits with workflows set up gets them cleaned, not
	 * orphaned. */
	while (inst->workflows) {
		perch_error err = {.struct_size = sizeof err};
		perch_logf(inst->host, PERCH_LOG_WARN, "template: destroying workflow %s at unload",
			   inst->workflows->task_uuid);
		template_destroy_workflow(inst, NULL, NULL, inst->workflows->task_uuid, &err);
	}
	pthread_mutex_destroy(&inst->lock);
	free(inst->shell);
	free(inst);
}

/*
 * Optional capabilities are tables looked up by id.  This backend offers
 * none: its steps are children of the host and end with it, so it cannot
 * discover or resume them.  A backend whose steps survive the host (in a
 * container engine, say) returns its perch_workflow_discoverer_v1 and
 * perch_workflow_resumer_v1 tables here, and its own features under
 * reverse-DNS ids ("org.example.snapshots/1").
 */
static const void *template_get_capability(perch_instance *inst, const char *id)
{
	return NULL;
}

/* The one exported symbol.  Everything above is static. */
PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.priority = 1,
	.name = "template",
	.version = "0.1.0",
	.description = "example backend: runs each step's commands with a shell on the host",
	.flags = template_flags,
	.is_available = template_is_available,
	.load = template_load,
	.setup_workflow = template_setup_workflow,
	.start_step = template_start_step,
	.tail_step = template_tail_step,
	.wait_step = template_wait_step,
	.destroy_step = template_destroy_step,
	.destroy_workflow = template_destroy_workflow,
	.unload = template_unload,
	.get_capability = template_get_capability,
};
