/*
 * steps.c - the local backend's workflow and step calls.
 *
 * Per workflow: a private directory <temp>/perch-local-XXXXXX with home/
 * and workspace/ (0700).  Per step: a process group, one pipe for stdout and
 * stderr, and a record in the workflow until destroy_step or
 * destroy_workflow.  See local.h for the locking rule and proc.c for the
 * grandchild rule.
 *
 * working_dir (Woodpecker's local backend ignores it): "" runs in the
 * workspace; a relative path runs in that directory below the workspace,
 * created when missing (".." is refused); an absolute path is used when it
 * lies inside the workspace and otherwise ignored, because Woodpecker's
 * compiler fills it with container paths (/woodpecker/src/...) that mean
 * nothing on the host.
 *
 * Exit codes: the exit status, or 128+signal when a signal ended the
 * leader (137 for SIGKILL, 143 for SIGTERM), as shells report it;
 * Woodpecker's local backend reports -1 there.  -1 only when the status is
 * unknown (another part of the host reaped the process).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static perch_status no_workflow(perch_error *err, const char *task_uuid)
{
	return perch_error_set(err, PERCH_ERR_NOT_FOUND,
			       "workflow %s not found (not set up, or already "
			       "destroyed)",
			       task_uuid);
}

/* ---- setup / destroy workflow --------------------------------------- */

static perch_local_workflow *find_locked(perch_instance *inst,
					 const char *task_uuid)
{
	for (perch_local_workflow *wf = inst->workflows; wf; wf = wf->next)
		if (strcmp(wf->task_uuid, task_uuid) == 0)
			return wf;
	return NULL;
}

perch_status perch_local_setup_workflow(perch_instance *inst,
					const perch_ctx *ctx,
					const perch_config *config,
					const char *task_uuid, perch_error *err)
{
	perch_local_workflow *wf;
	char why[512];
	bool dup;

	if (task_uuid == NULL || *task_uuid == '\0')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "empty task uuid");
	pthread_mutex_lock(&inst->lock);
	dup = find_locked(inst, task_uuid) != NULL;
	pthread_mutex_unlock(&inst->lock);
	if (dup)
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "workflow %s is already set up", task_uuid);

	wf = calloc(1, sizeof *wf);
	if (wf == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	wf->refs = 1;
	pthread_mutex_init(&wf->netrc_lock, NULL);
	wf->task_uuid = strdup(task_uuid);
	wf->base_dir = pp_path_join(inst->temp_dir,
					     "perch-local-XXXXXX");
	if (wf->task_uuid == NULL || wf->base_dir == NULL) {
		perch_local_workflow_unref(inst, wf);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	if (mkdtemp(wf->base_dir) == NULL) {
		int e = errno;
		perch_error_set(err, PERCH_ERR_IO, "cannot create %s: %s",
				wf->base_dir, strerror(e));
		perch_local_workflow_unref(inst, wf);
		return PERCH_ERR_IO;
	}
	wf->home_dir = pp_path_join(wf->base_dir, "home");
	wf->workspace_dir = pp_path_join(wf->base_dir, "workspace");
	if (wf->home_dir == NULL || wf->workspace_dir == NULL) {
		perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	if (mkdir(wf->home_dir, 0700) < 0 || mkdir(wf->workspace_dir, 0700) < 0) {
		perch_error_set(err, PERCH_ERR_IO, "cannot create %s/...: %s",
				wf->base_dir, strerror(errno));
		goto fail;
	}
	/* So that a new instance can find the folder if this process dies
	 * (leftover.c).  Only a crash needs it: a full disk (a record needs a
	 * block, an empty step does not) must not fail the workflow. */
	if (perch_local_owner_write(wf->base_dir, task_uuid) < 0)
		perch_logf(inst->host, PERCH_LOG_WARN,
			   "cannot write %s/.perch-owner (%s): should this process die, "
			   "the folder would be left behind", wf->base_dir, strerror(errno));
	pthread_mutex_lock(&inst->lock);
	dup = find_locked(inst, task_uuid) != NULL;
	if (!dup) {
		wf->next = inst->workflows;
		inst->workflows = wf;
	}
	pthread_mutex_unlock(&inst->lock);
	if (dup) {
		perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				"workflow %s is already set up", task_uuid);
		goto fail;
	}
	perch_logf(inst->host, PERCH_LOG_DEBUG, "local: workflow %s in %s",
		   task_uuid, wf->base_dir);
	return PERCH_OK;
fail:
	(void)pp_remove_tree(wf->base_dir, why, sizeof why);
	perch_local_workflow_unref(inst, wf);
	return err != NULL ? err->code : PERCH_ERR;
}

/* Gives back the step's share of <home>/.netrc; the last one removes it. */
static void release_netrc(perch_local_step *st)
{
	perch_local_workflow *wf = st->wf;

	pthread_mutex_lock(&wf->netrc_lock);
	if (st->netrc) {
		st->netrc = false;
		if (--wf->netrc_users == 0)
			perch_local_netrc_remove(wf);
	}
	pthread_mutex_unlock(&wf->netrc_lock);
}

/* Releases what a stopped step holds: the log pipe when never handed over,
 * and its share of .netrc. */
static void release_step(perch_instance *inst, perch_local_step *st)
{
	int fd;

	pthread_mutex_lock(&inst->lock);
	fd = st->log_fd;
	st->log_fd = -1;
	pthread_mutex_unlock(&inst->lock);
	if (fd >= 0)
		close(fd);
	release_netrc(st);
}

perch_status perch_local_destroy_workflow(perch_instance *inst,
					  const perch_ctx *ctx,
					  const perch_config *config,
					  const char *task_uuid,
					  perch_error *err)
{
	perch_local_workflow *wf, **pp;
	perch_local_step **steps = NULL, *st;
	perch_local_proc **procs = NULL;
	size_t n = 0, i;
	perch_status rc = PERCH_OK;
	char why[512];

	if (task_uuid == NULL)
		return PERCH_OK;
	pthread_mutex_lock(&inst->lock);
	for (pp = &inst->workflows; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->task_uuid, task_uuid) == 0)
			break;
	wf = *pp;
	if (wf == NULL) {
		/* Unknown: setup failed, it was destroyed already, or an
		 * earlier process (a host that was killed) set it up - then
		 * its folder is still there, and goes now. */
		pthread_mutex_unlock(&inst->lock);
		return perch_local_remove_leftovers(inst, task_uuid, err);
	}
	*pp = wf->next;
	wf->next = NULL;
	wf->destroyed = true;
	for (st = wf->steps; st; st = st->next)
		n++;
	steps = calloc(n + 1, sizeof *steps);
	procs = calloc(n + 1, sizeof *procs);
	if (steps == NULL || procs == NULL) {
		/* Cannot batch: stop one by one below, from the list. */
		free(steps);
		free(procs);
		steps = NULL;
		procs = NULL;
	}
	/* The list's references move to the arrays (or stay in the list). */
	for (i = 0, st = wf->steps; steps != NULL && st; st = st->next, i++) {
		steps[i] = st;
		procs[i] = &st->proc;
	}
	if (steps != NULL)
		wf->steps = NULL;
	pthread_mutex_unlock(&inst->lock);

	if (steps != NULL) {
		/* All at once: N services share one grace period. */
		perch_local_stop(inst, procs, n, pp_cancel_fd(inst->host, ctx));
		for (i = 0; i < n; i++) {
			release_step(inst, steps[i]);
			perch_local_step_unref(inst, steps[i]);
		}
	} else {
		for (;;) {
			perch_local_proc *one[1];
			pthread_mutex_lock(&inst->lock);
			st = wf->steps;
			if (st != NULL)
				wf->steps = st->next;
			pthread_mutex_unlock(&inst->lock);
			if (st == NULL)
				break;
			one[0] = &st->proc;
			perch_local_stop(inst, one, 1, pp_cancel_fd(inst->host, ctx));
			release_step(inst, st);
			perch_local_step_unref(inst, st);
		}
	}
	free(steps);
	free(procs);

	if (pp_remove_tree(wf->base_dir, why, sizeof why) < 0)
		rc = perch_error_set(err, PERCH_ERR_IO,
				     "cannot remove workflow directory %s: %s",
				     wf->base_dir, why);
	perch_local_workflow_unref(inst, wf);
	return rc;
}

void perch_local_destroy_all(perch_instance *inst)
{
	for (;;) {
		char *task = NULL;
		perch_error err;
		pthread_mutex_lock(&inst->lock);
		if (inst->workflows != NULL)
			task = strdup(inst->workflows->task_uuid);
		pthread_mutex_unlock(&inst->lock);
		if (task == NULL)
			break;
		memset(&err, 0, sizeof err);
		err.struct_size = sizeof err;
		perch_logf(inst->host, PERCH_LOG_WARN,
			   "local: unload with workflow %s still set up; "
			   "destroying it",
			   task);
		(void)perch_local_destroy_workflow(inst, NULL, NULL, task, &err);
		free(task);
	}
}

/* ---- start ---------------------------------------------------------- */

/* The step's working directory (see the top of this file); malloc'd. */
static perch_status resolve_cwd(perch_instance *inst,
				const perch_local_workflow *wf,
				const perch_step *step, char **out,
				perch_error *err)
{
	const char *wd = step->working_dir != NULL ? step->working_dir : "";
	char *dir;

	*out = NULL;
	if (*wd == '\0') {
		dir = strdup(wf->workspace_dir);
	} else if (wd[0] == '/') {
		if (perch_local_path_within(wd, wf->workspace_dir)) {
			dir = strdup(wd);
		} else {
			perch_logf(inst->host, PERCH_LOG_DEBUG,
				   "step \"%s\": working_dir %s is outside the "
				   "workspace; running in the workspace",
				   step->name, wd);
			dir = strdup(wf->workspace_dir);
		}
	} else {
		if (perch_local_path_climbs(wd))
			return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					       "working_dir \"%s\" leaves the "
					       "workspace",
					       wd);
		dir = pp_path_join(wf->workspace_dir, wd);
	}
	if (dir == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	if (pp_mkdirs(dir, 0755) < 0) {
		int e = errno;
		perch_error_set(err, PERCH_ERR_IO,
				"cannot create working_dir %s: %s", dir,
				strerror(e));
		free(dir);
		return PERCH_ERR_IO;
	}
	*out = dir;
	return PERCH_OK;
}

static bool step_known_locked(const perch_local_workflow *wf, const char *key)
{
	for (const perch_local_step *st = wf->steps; st; st = st->next)
		if (strcmp(st->key, key) == 0)
			return true;
	return false;
}

/* Takes a share of <home>/.netrc for st when the step brings credentials
 * and home is isolated (Woodpecker ignores netrc otherwise).  Every step
 * that brings them rewrites the file; the last to end removes it, so the
 * credentials do not outlive the steps they were given to. */
static perch_status netrc_acquire(perch_local_step *st, const perch_step *step,
				  perch_error *err)
{
	perch_local_workflow *wf = st->wf;
	const char *machine = perch_map_get(&step->environment,
					    "CI_NETRC_MACHINE");
	int rc, e;

	if (machine == NULL || *machine == '\0')
		return PERCH_OK;
	pthread_mutex_lock(&wf->netrc_lock);
	wf->netrc_users++;
	st->netrc = true;
	rc = perch_local_netrc_write(wf, step);
	e = errno;
	pthread_mutex_unlock(&wf->netrc_lock);
	if (rc < 0)
		return perch_error_set(err, PERCH_ERR_IO,
				       "cannot write %s/.netrc: %s", wf->home_dir,
				       strerror(e));
	return PERCH_OK;
}

perch_status perch_local_start_step(perch_instance *inst, const perch_ctx *ctx,
				    const perch_step *step,
				    const char *task_uuid, perch_error *err)
{
	const char *key = perch_local_step_key(step);
	perch_local_strv env = {0};
	perch_local_plan plan = {0};
	perch_local_workflow *wf;
	perch_local_step *st = NULL;
	perch_local_spawn_args a;
	char *cwd = NULL, why[PERCH_ERROR_MESSAGE_MAX];
	int pp[2] = {-1, -1};
	perch_status rc;
	bool known, gone;

	if (*key == '\0')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "step has neither uuid nor name");
	wf = perch_local_workflow_get(inst, task_uuid);
	if (wf == NULL)
		return no_workflow(err, task_uuid);
	pthread_mutex_lock(&inst->lock);
	known = step_known_locked(wf, key);
	pthread_mutex_unlock(&inst->lock);
	if (known) {
		rc = perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				     "step %s was already started", key);
		goto out;
	}
	rc = perch_local_plan_check_type(step, err);
	if (rc == PERCH_OK)
		rc = perch_local_env_build(inst, wf, step, &env, err);
	if (rc == PERCH_OK)
		rc = resolve_cwd(inst, wf, step, &cwd, err);
	if (rc == PERCH_OK)
		rc = perch_local_plan_step(inst, ctx, wf, step, &env, cwd, &plan,
					   err);
	if (rc != PERCH_OK)
		goto out;
	st = perch_local_step_new(inst, wf, step);
	if (st == NULL) {
		rc = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	if (inst->isolated_home)
		rc = netrc_acquire(st, step, err);
	if (rc != PERCH_OK)
		goto out;
	if (pipe2(pp, O_CLOEXEC) < 0) {
		rc = perch_error_set(err, PERCH_ERR_IO, "cannot create a pipe: %s",
				     strerror(errno));
		goto out;
	}
	a = (perch_local_spawn_args){.path = plan.path,
				     .argv = plan.argv.v,
				     .envp = env.v,
				     .cwd = cwd,
				     .out_fd = pp[1],
				     .err_fd = -1};
	if (perch_local_spawn(&a, &st->proc, why, sizeof why) < 0) {
		rc = perch_error_set(err, PERCH_ERR_IO, "step \"%s\": %s",
				     step->name, why);
		goto out;
	}
	perch_local_open_pidfd(inst, &st->proc);
	close(pp[1]);
	pp[1] = -1;
	st->log_fd = pp[0];
	pp[0] = -1;

	pthread_mutex_lock(&inst->lock);
	gone = wf->destroyed;
	known = step_known_locked(wf, key);
	if (!gone && !known) {
		st->next = wf->steps;
		wf->steps = st;
		st->refs++; /* the list's */
	}
	pthread_mutex_unlock(&inst->lock);
	if (gone || known) {
		/* destroy_workflow (or a twin start) raced us: undo. */
		perch_local_proc *one[1] = {&st->proc};
		perch_local_stop(inst, one, 1, -1);
		rc = gone ? no_workflow(err, task_uuid)
			  : perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					    "step %s was already started", key);
		goto out;
	}
	rc = PERCH_OK;
out:
	if (pp[0] >= 0)
		close(pp[0]);
	if (pp[1] >= 0)
		close(pp[1]);
	if (st != NULL) {
		if (rc != PERCH_OK)
			release_step(inst, st);
		perch_local_step_unref(inst, st);
	}
	free(cwd);
	perch_local_plan_free(&plan);
	perch_local_strv_free(&env);
	perch_local_workflow_unref(inst, wf);
	return rc;
}

/* ---- tail / wait ---------------------------------------------------- */

/* Looks up the step of a call; on success *out holds a reference. */
static perch_status find_step(perch_instance *inst, const perch_step *step,
			      const char *task_uuid, perch_local_step **out,
			      perch_error *err)
{
	perch_local_workflow *wf = perch_local_workflow_get(inst, task_uuid);
	const char *key = perch_local_step_key(step);

	*out = NULL;
	if (wf == NULL) {
		no_workflow(err, task_uuid);
		return PERCH_ERR_NOT_FOUND;
	}
	*out = perch_local_step_get(inst, wf, key);
	perch_local_workflow_unref(inst, wf);
	if (*out == NULL) {
		perch_error_set(err, PERCH_ERR_NOT_FOUND,
				"step %s not found in workflow %s", key,
				task_uuid);
		return PERCH_ERR_NOT_FOUND;
	}
	return PERCH_OK;
}

perch_status perch_local_tail_step(perch_instance *inst, const perch_ctx *ctx,
				   const perch_step *step,
				   const char *task_uuid, int *fd,
				   perch_error *err)
{
	perch_local_step *st;
	perch_status rc = find_step(inst, step, task_uuid, &st, err);

	*fd = -1;
	if (rc != PERCH_OK)
		return rc;
	pthread_mutex_lock(&inst->lock);
	*fd = st->log_fd;
	st->log_fd = -1;
	pthread_mutex_unlock(&inst->lock);
	if (*fd < 0)
		rc = perch_error_set(err, PERCH_ERR,
				     "the log of step %s was already handed over",
				     st->key);
	perch_local_step_unref(inst, st);
	return rc;
}

perch_status perch_local_wait_step(perch_instance *inst, const perch_ctx *ctx,
				   const perch_step *step,
				   const char *task_uuid, perch_state *state,
				   perch_error *err)
{
	perch_local_step *st;
	perch_local_proc *one[1];
	perch_status rc = find_step(inst, step, task_uuid, &st, err);
	int cancel_fd = pp_cancel_fd(inst->host, ctx);
	int32_t code;
	bool finished, lost;

	if (rc != PERCH_OK)
		return rc;
	one[0] = &st->proc;
	pthread_mutex_lock(&inst->lock);
	finished = st->finished;
	code = st->exit_code;
	pthread_mutex_unlock(&inst->lock);
	if (!finished) {
		if (perch_local_wait_leaders(inst, one, 1, cancel_fd, INT64_MAX) ==
		    PERCH_LOCAL_WAIT_DONE) {
			/* The grandchild rule: the leader is gone, so is the
			 * step; a cancel during the grace ends it early. */
			perch_local_sweep(inst, one, 1, cancel_fd,
					  inst->stop_timeout_ms);
		} else {
			/* Cancelled: return promptly, as the contract asks.  The
			 * group is asked to stop now; destroy_step, which runs on
			 * the host's cleanup context, gives it the grace period
			 * and kills what is left - so that a second signal to
			 * the host (which cancels cleanup) can cut that short. */
			perch_local_signal_group(inst, &st->proc, SIGTERM);
			perch_local_step_unref(inst, st);
			return perch_error_set(err, PERCH_ERR_CANCELLED,
					       "step \"%s\" cancelled", st->name);
		}
		code = perch_local_exit_code(inst, &st->proc);
		pthread_mutex_lock(&inst->lock);
		st->finished = true;
		st->exit_code = code;
		lost = st->proc.lost;
		pthread_mutex_unlock(&inst->lock);
		if (lost)
			perch_logf(inst->host, PERCH_LOG_WARN,
				   "local: the exit status of step \"%s\" was "
				   "taken by another waitpid() in the host",
				   st->name);
		release_netrc(st);
	}
	if (PERCH_HAS_FIELD(state, perch_state, exit_code))
		state->exit_code = code;
	if (PERCH_HAS_FIELD(state, perch_state, exited))
		state->exited = true;
	if (PERCH_HAS_FIELD(state, perch_state, oom_killed))
		state->oom_killed = false; /* not knowable for a host process */
	perch_local_step_unref(inst, st);
	return rc;
}

/* ---- destroy step --------------------------------------------------- */

perch_status perch_local_destroy_step(perch_instance *inst,
				      const perch_ctx *ctx,
				      const perch_step *step,
				      const char *task_uuid, perch_error *err)
{
	perch_local_workflow *wf = perch_local_workflow_get(inst, task_uuid);
	const char *key = perch_local_step_key(step);
	perch_local_step *st = NULL, **pp;
	perch_local_proc *one[1];

	/* Idempotent cleanup: an unknown workflow or step is already clean. */
	if (wf == NULL)
		return PERCH_OK;
	pthread_mutex_lock(&inst->lock);
	for (pp = &wf->steps; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0) {
			st = *pp;
			*pp = st->next;
			st->next = NULL;
			break;
		}
	pthread_mutex_unlock(&inst->lock);
	perch_local_workflow_unref(inst, wf);
	if (st == NULL)
		return PERCH_OK;
	one[0] = &st->proc;
	perch_local_stop(inst, one, 1, pp_cancel_fd(inst->host, ctx));
	release_step(inst, st);
	perch_local_step_unref(inst, st); /* the list's */
	return PERCH_OK;
}
