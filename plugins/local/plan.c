/*
 * plan.c - what a local step executes.
 *
 *  commands   image names the shell.  sh, bash and zsh run `-e -c <script>`
 *             at once; any other shell is first probed (once per instance
 *             and resolved path) with Woodpecker's POSIX test and then run
 *             the same way, or refused.  Woodpecker's special cases for
 *             cmd, powershell, fish and nu are Windows or non-POSIX shells:
 *             perch refuses non-POSIX shells with a clear error instead.
 *  plugin     image is an executable (PATH or a path); no arguments, the
 *             settings arrive as PLUGIN_* variables.
 *  clone      a generated sh script of git commands (no plugin-git, no
 *             downloads): init, fetch CI_COMMIT_SHA (else CI_COMMIT_REF,
 *             else HEAD) from CI_REPO_CLONE_URL, check it out.  The script
 *             is echoed like a commands step, so the log shows every git
 *             call.  PLUGIN_DEPTH (the clone's `depth` setting) makes the
 *             fetch shallow.
 *  service    (and any detached step) like commands when it has commands,
 *             like plugin otherwise.  Woodpecker refuses services here.
 *  other      cache and unknown types are refused.
 *
 * A script longer than fits into one argument (Linux caps a single argv
 * string at 128 KiB) is written to a file beside the workspace instead.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Woodpecker's POSIX probe, byte for byte. */
#define POSIX_PROBE "x=1 && [ \"$x\" = \"1\" ] && command -v test >/dev/null && printf ok"
/* How long a shell gets to answer the probe. */
#define PROBE_TIMEOUT_MS 10000
/* Scripts above this go to a file (MAX_ARG_STRLEN is 128 KiB). */
#define SCRIPT_ARG_MAX (100 * 1024)

void perch_local_plan_free(perch_local_plan *plan)
{
	free(plan->path);
	perch_local_strv_free(&plan->argv);
	memset(plan, 0, sizeof *plan);
}

static perch_status oom(perch_error *err)
{
	return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
}

/* The lower-cased base name of a shell path, without ".exe". */
static void shell_base(const char *image, char *out, size_t len)
{
	const char *b = strrchr(image, '/');
	size_t n;

	b = b != NULL ? b + 1 : image;
	snprintf(out, len, "%s", b);
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	n = strlen(out);
	if (n > 4 && strcmp(out + n - 4, ".exe") == 0)
		out[n - 4] = '\0';
}

/* 1: posix, 0: not, -1: not probed yet.  inst->lock held. */
static int shell_cached_locked(perch_instance *inst, const char *path)
{
	for (perch_local_shell *s = inst->shells; s != NULL; s = s->next)
		if (strcmp(s->path, path) == 0)
			return s->posix ? 1 : 0;
	return -1;
}

static int shell_cached(perch_instance *inst, const char *path)
{
	int r;

	pthread_mutex_lock(&inst->lock);
	r = shell_cached_locked(inst, path);
	pthread_mutex_unlock(&inst->lock);
	return r;
}

static void shell_remember(perch_instance *inst, const char *path, bool posix)
{
	perch_local_shell *s = calloc(1, sizeof *s);

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		free(s); /* only a cache: probe again next time */
		return;
	}
	s->posix = posix;
	pthread_mutex_lock(&inst->lock);
	if (shell_cached_locked(inst, path) >= 0) {
		/* Another thread probed it meanwhile. */
		pthread_mutex_unlock(&inst->lock);
		free(s->path);
		free(s);
		return;
	}
	s->next = inst->shells;
	inst->shells = s;
	pthread_mutex_unlock(&inst->lock);
}

/*
 * Runs `<shell> -c POSIX_PROBE` (stderr to /dev/null) and sets *posix when
 * it printed exactly "ok" and exited 0, as Woodpecker's probe demands.
 * Bounded by PROBE_TIMEOUT_MS and by ctx.  Leaves no process behind.
 */
static perch_status probe_shell(perch_instance *inst, const perch_ctx *ctx,
				const char *path, const char *image,
				const perch_local_strv *env, const char *cwd,
				bool *posix, perch_error *err)
{
	char *argv[] = {(char *)image, (char *)"-c", (char *)POSIX_PROBE, NULL};
	perch_local_spawn_args a = {.path = path, .argv = argv, .envp = env->v,
				    .cwd = cwd, .out_fd = -1, .err_fd = -1};
	perch_local_proc proc = {.pid = -1, .pidfd = -1};
	perch_local_proc *pv[1] = {&proc};
	int cancel_fd = pp_cancel_fd(inst->host, ctx);
	int64_t deadline = pp_mono_ms() + PROBE_TIMEOUT_MS;
	char out[16], why[PERCH_ERROR_MESSAGE_MAX];
	size_t got = 0;
	bool eof = false, cancelled = false, overflow = false;
	int pp[2], devnull;

	*posix = false;
	if (pipe2(pp, O_CLOEXEC) < 0)
		return perch_error_set(err, PERCH_ERR_IO, "cannot create a pipe: %s",
				       strerror(errno));
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0) {
		int e = errno;
		close(pp[0]);
		close(pp[1]);
		return perch_error_set(err, PERCH_ERR_IO,
				       "cannot open /dev/null: %s", strerror(e));
	}
	a.out_fd = pp[1];
	a.err_fd = devnull;
	if (perch_local_spawn(&a, &proc, why, sizeof why) < 0) {
		close(pp[0]);
		close(pp[1]);
		close(devnull);
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "shell \"%s\": %s", image, why);
	}
	perch_local_open_pidfd(inst, &proc);
	close(pp[1]);
	close(devnull);
	while (!eof && !cancelled && !overflow) {
		struct pollfd pfd[2] = {{.fd = pp[0], .events = POLLIN},
					{.fd = cancel_fd, .events = POLLIN}};
		int64_t left = deadline - pp_mono_ms();
		int r;
		if (left <= 0)
			break;
		r = poll(pfd, cancel_fd >= 0 ? 2 : 1, (int)left);
		if (r < 0 && errno != EINTR)
			break;
		if (cancel_fd >= 0 && (pfd[1].revents & POLLIN)) {
			cancelled = true;
			break;
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(pp[0], out + got, sizeof out - got);
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				eof = true;
			else if (n > 0 && (got += (size_t)n) == sizeof out)
				overflow = true;
		}
	}
	close(pp[0]);
	if (!eof)
		(void)kill(-proc.pid, SIGKILL);
	if (perch_local_wait_leaders(inst, pv, 1, -1, deadline) !=
	    PERCH_LOCAL_WAIT_DONE) {
		(void)kill(-proc.pid, SIGKILL);
		(void)perch_local_wait_leaders(inst, pv, 1, -1,
					       pp_mono_ms() + 5000);
	}
	perch_local_sweep(inst, pv, 1, -1, 0);
	*posix = eof && got == 2 && memcmp(out, "ok", 2) == 0 &&
		 perch_local_exit_code(inst, &proc) == 0;
	if (proc.pidfd >= 0)
		close(proc.pidfd);
	if (cancelled)
		return perch_error_set(err, PERCH_ERR_CANCELLED,
				       "cancelled while probing shell \"%s\"",
				       image);
	return PERCH_OK;
}

/* Sets plan->argv to `<image> -e -c <script>`, or `<image> -e <file>` for
 * a script too long for one argument. */
static perch_status script_argv(perch_instance *inst, perch_local_workflow *wf,
				const char *argv0, const char *const *cmds,
				size_t n, perch_local_plan *plan,
				perch_error *err)
{
	char *script = perch_local_script(cmds, n);

	if (script == NULL)
		return oom(err);
	perch_local_strv_push(&plan->argv, argv0);
	perch_local_strv_push(&plan->argv, "-e");
	if (strlen(script) <= SCRIPT_ARG_MAX) {
		perch_local_strv_push(&plan->argv, "-c");
		perch_local_strv_take(&plan->argv, script);
	} else {
		unsigned seq;
		char *file;
		pthread_mutex_lock(&inst->lock);
		seq = wf->scripts++;
		pthread_mutex_unlock(&inst->lock);
		file = pp_format("%s/script-%u.sh", wf->base_dir, seq);
		if (file == NULL) {
			free(script);
			return oom(err);
		}
		if (pp_write_file(file, script, strlen(script), 0600, false,
				  NULL, 0) < 0) {
			int e = errno;
			free(script);
			perch_error_set(err, PERCH_ERR_IO, "cannot write %s: %s",
					file, strerror(e));
			free(file);
			return PERCH_ERR_IO;
		}
		free(script);
		perch_local_strv_take(&plan->argv, file);
	}
	return plan->argv.oom ? oom(err) : PERCH_OK;
}

static perch_status plan_commands(perch_instance *inst, const perch_ctx *ctx,
				  perch_local_workflow *wf,
				  const perch_step *step,
				  const perch_local_strv *env, const char *cwd,
				  perch_local_plan *plan, perch_error *err)
{
	const char *image = step->image;
	char base[64];
	int posix;

	if (image == NULL || *image == '\0')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "no shell set (image)");
	if (step->commands.len == 0)
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "no commands set");
	plan->path = perch_local_which(image, perch_local_env_get(env, "PATH"),
				       cwd);
	if (plan->path == NULL) {
		if (errno == ENOMEM)
			return oom(err);
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       strchr(image, '/') != NULL
					       ? "shell \"%s\" not found"
					       : "shell \"%s\" not found in PATH",
				       image);
	}
	shell_base(image, base, sizeof base);
	if (strcmp(base, "sh") == 0 || strcmp(base, "bash") == 0 ||
	    strcmp(base, "zsh") == 0) {
		posix = 1;
	} else if ((posix = shell_cached(inst, plan->path)) < 0) {
		bool ok;
		perch_status st = probe_shell(inst, ctx, plan->path, image, env,
					      cwd, &ok, err);
		if (st != PERCH_OK)
			return st;
		shell_remember(inst, plan->path, ok);
		posix = ok;
	}
	if (!posix)
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "shell \"%s\" is not a POSIX shell", image);
	return script_argv(inst, wf, image, step->commands.items,
			   step->commands.len, plan, err);
}

/* plugin steps, and services without commands: run image, no arguments. */
static perch_status plan_exec(const perch_step *step, const char *what,
			      const perch_local_strv *env, const char *cwd,
			      perch_local_plan *plan, perch_error *err)
{
	const char *image = step->image;

	if (image == NULL || *image == '\0')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "no %s executable set (image)", what);
	plan->path = perch_local_which(image, perch_local_env_get(env, "PATH"),
				       cwd);
	if (plan->path == NULL) {
		if (errno == ENOMEM)
			return oom(err);
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       strchr(image, '/') != NULL
					       ? "%s \"%s\" not found"
					       : "%s \"%s\" not found in PATH",
				       what, image);
	}
	perch_local_strv_push(&plan->argv, image);
	return plan->argv.oom ? oom(err) : PERCH_OK;
}

static bool all_digits(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* clone: git, run by sh, echoed like a commands step.  The commands name
 * the variables rather than their values, so the log never shows a URL
 * with credentials in it. */
static perch_status plan_clone(perch_instance *inst, perch_local_workflow *wf,
			       const perch_step *step,
			       const perch_local_strv *env,
			       perch_local_plan *plan, perch_error *err)
{
	const char *path_env = perch_local_env_get(env, "PATH");
	const char *url = perch_local_env_get(env, "CI_REPO_CLONE_URL");
	const char *sha = perch_local_env_get(env, "CI_COMMIT_SHA");
	const char *depth = perch_local_env_get(env, "PLUGIN_DEPTH");
	char *git, *fetch_sha = NULL, *fetch_ref = NULL, *fetch_either = NULL;
	const char *cmds[4];
	char dopt[48] = "";
	perch_status st;
	size_t n = 0;

	git = perch_local_which("git", path_env, NULL);
	if (git == NULL)
		return errno == ENOMEM
			       ? oom(err)
			       : perch_error_set(err, PERCH_ERR_UNAVAILABLE,
						 "git not found in PATH: the local "
						 "backend clones with the host's git");
	free(git);
	if (url == NULL || *url == '\0')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "clone step \"%s\": CI_REPO_CLONE_URL is "
				       "not set",
				       step->name);
	plan->path = perch_local_which("sh", path_env, NULL);
	if (plan->path == NULL)
		return errno == ENOMEM
			       ? oom(err)
			       : perch_error_set(err, PERCH_ERR_UNAVAILABLE,
						 "sh not found in PATH");
	if (all_digits(depth) && strcmp(depth, "0") != 0 && strlen(depth) < 10)
		snprintf(dopt, sizeof dopt, " --depth=%s", depth);
	fetch_ref = pp_format(
		"git fetch --no-tags%s origin \"${CI_COMMIT_REF:-HEAD}\"", dopt);
	fetch_sha = pp_format(
		"git fetch --no-tags%s origin \"$CI_COMMIT_SHA\"", dopt);
	if (fetch_ref != NULL && fetch_sha != NULL)
		fetch_either = pp_format("%s || %s", fetch_sha,
						  fetch_ref);
	if (fetch_either == NULL) {
		st = oom(err);
		goto out;
	}
	cmds[n++] = "git init -q";
	cmds[n++] = "git remote add origin \"$CI_REPO_CLONE_URL\" 2>/dev/null "
		    "|| git remote set-url origin \"$CI_REPO_CLONE_URL\"";
	if (sha != NULL && *sha != '\0') {
		/* The SHA itself first (any reachable commit, protocol v2);
		 * servers that refuse that still serve the ref. */
		cmds[n++] = fetch_either;
		cmds[n++] = "git checkout -qf \"$CI_COMMIT_SHA\"";
	} else {
		cmds[n++] = fetch_ref;
		cmds[n++] = "git checkout -qf FETCH_HEAD";
	}
	st = script_argv(inst, wf, "sh", cmds, n, plan, err);
out:
	free(fetch_ref);
	free(fetch_sha);
	free(fetch_either);
	return st;
}

perch_status perch_local_plan_check_type(const perch_step *step,
					perch_error *err)
{
	static const char *const known[] = {PERCH_STEP_COMMANDS, PERCH_STEP_PLUGIN,
					    PERCH_STEP_CLONE, PERCH_STEP_SERVICE,
					    NULL};
	const char *type = step->type != NULL ? step->type : "";

	for (size_t i = 0; known[i] != NULL; i++)
		if (strcmp(type, known[i]) == 0)
			return PERCH_OK;
	return perch_error_set(err, PERCH_ERR_UNSUPPORTED,
			       "step type \"%s\" is not supported by the local "
			       "backend",
			       type);
}

perch_status perch_local_plan_step(perch_instance *inst, const perch_ctx *ctx,
				   perch_local_workflow *wf,
				   const perch_step *step,
				   const perch_local_strv *env, const char *cwd,
				   perch_local_plan *plan, perch_error *err)
{
	const char *type = step->type != NULL ? step->type : "";

	if (strcmp(type, PERCH_STEP_COMMANDS) == 0)
		return plan_commands(inst, ctx, wf, step, env, cwd, plan, err);
	if (strcmp(type, PERCH_STEP_PLUGIN) == 0)
		return plan_exec(step, "plugin", env, cwd, plan, err);
	if (strcmp(type, PERCH_STEP_CLONE) == 0)
		return plan_clone(inst, wf, step, env, plan, err);
	if (strcmp(type, PERCH_STEP_SERVICE) == 0)
		return step->commands.len > 0
			       ? plan_commands(inst, ctx, wf, step, env, cwd,
					       plan, err)
			       : plan_exec(step, "service", env, cwd, plan, err);
	return perch_local_plan_check_type(step, err);
}
