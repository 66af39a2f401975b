/*
 * faulty.c - a fixture backend "faulty" that misbehaves on request, for the
 * fault tests (the tests/fault scripts).  Built only for `make check`.
 *
 * Flags (read once, at load, through the CLI context):
 *   --backend-faulty-fail  PERCH_FAULTY_FAIL   the call that fails:
 *       setup, start, tail, wait, destroy-step, destroy-workflow
 *       (with "faulty: injected failure in <call>", status io)
 *   --backend-faulty-mode  PERCH_FAULTY_MODE   a misbehaviour:
 *       hang-<call>        that call never returns and ignores its context,
 *                          the way a buggy plugin can: <call> is setup,
 *                          start, tail, wait, destroy-step or
 *                          destroy-workflow; hang-service is wait_step of
 *                          a detached step only, which then outlives
 *                          destroy_workflow
 *       open-tail          the tail descriptor never reaches end of stream
 *                          until destroy_workflow (a daemon holding it)
 *       block-setup        setup_workflow blocks until its context is
 *                          cancelled (then returns cancelled), as a slow
 *                          engine would: a signal during setup
 *       block-start        the same for start_step
 *       exhaust-fds        the first start_step opens descriptors until the
 *                          process has none left (EMFILE) and keeps them
 *                          until destroy_workflow: a host running out of
 *                          descriptors in the middle of a workflow
 *   --backend-faulty-log   PERCH_FAULTY_LOG    a file to which every call
 *       appends one line, "<call> <step name or task uuid>", so a test can
 *       count them.  load and unload also record how many descriptors the
 *       host process has open ("fds N"), so that a test can see whether
 *       the run left any behind.
 *
 * Otherwise a step "runs" at once: its log is "faulty: <name> ran" and it
 * exits 0.  Everything but the entry is static; the state lives in the
 * instance.
 */
#define _GNU_SOURCE /* pipe2 */
#include <perch/perch.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLAG_FAIL "backend-faulty-fail"
#define FLAG_MODE "backend-faulty-mode"
#define FLAG_LOG "backend-faulty-log"

static const char *const fail_env[] = {"PERCH_FAULTY_FAIL", NULL};
static const char *const mode_env[] = {"PERCH_FAULTY_MODE", NULL};
static const char *const log_env[] = {"PERCH_FAULTY_LOG", NULL};

static const perch_flag fail_flag = {
	PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING, .name = FLAG_FAIL, .env = fail_env,
	.default_value = "", .usage = "the call that fails (setup, start, tail, wait, ...)",
};
static const perch_flag mode_flag = {
	PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING, .name = FLAG_MODE, .env = mode_env,
	.default_value = "", .usage = "hang-<call>, hang-service, open-tail, block-setup, block-start or exhaust-fds",
};
static const perch_flag log_flag = {
	PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING, .name = FLAG_LOG, .env = log_env,
	.default_value = "", .usage = "append one line per call to this file",
};
static const perch_flag *const faulty_flags[] = {&fail_flag, &mode_flag, &log_flag, NULL};

struct perch_instance {
	const perch_host *host;
	char fail[32];
	char mode[32];
	int log_fd; /* -1: no log */
	pthread_mutex_t lock;
	int *held; /* open-tail, exhaust-fds: kept until destroy_workflow */
	size_t n_held;
	bool exhausted;
};

/* Open descriptors of this process, but the log's. */
static int count_fds(const perch_instance *inst)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dirfd(d) && fd != inst->log_fd)
			n++;
	}
	closedir(d);
	return n;
}

static void record(perch_instance *inst, const char *call, const char *what)
{
	if (inst->log_fd < 0)
		return;
	char line[512];
	int n = snprintf(line, sizeof line, "%s %s\n", call, what);
	if (n > 0 && (size_t)n < sizeof line && write(inst->log_fd, line, (size_t)n) != n) {
		/* a test fixture: the test sees the missing line */
	}
}

static bool failing(const perch_instance *inst, const char *call)
{
	return strcmp(inst->fail, call) == 0;
}

static perch_status injected(perch_error *err, const char *call)
{
	return perch_error_set(err, PERCH_ERR_IO, "faulty: injected failure in %s", call);
}

static bool faulty_is_available(const perch_host *host, const perch_ctx *ctx, perch_error *why)
{
	return true;
}

static perch_status faulty_load(const perch_host *host, const perch_ctx *ctx,
				perch_instance **instance, perch_backend_info *info,
				perch_error *err)
{
	const perch_cli *cli;
	perch_status st = perch_ctx_cli(host, ctx, &cli, err);
	if (st != PERCH_OK)
		return st;
	perch_instance *inst = calloc(1, sizeof *inst);
	if (inst == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	inst->host = host;
	const char *v = host->cli_string(cli, FLAG_FAIL);
	snprintf(inst->fail, sizeof inst->fail, "%s", v ? v : "");
	v = host->cli_string(cli, FLAG_MODE);
	snprintf(inst->mode, sizeof inst->mode, "%s", v ? v : "");
	inst->log_fd = -1;
	v = host->cli_string(cli, FLAG_LOG);
	if (v && *v) {
		inst->log_fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (inst->log_fd < 0) {
			st = perch_error_set(err, PERCH_ERR_IO, "faulty: %s: %s", v,
					     strerror(errno));
			free(inst);
			return st;
		}
	}
	pthread_mutex_init(&inst->lock, NULL);
	char fds[32];
	snprintf(fds, sizeof fds, "%d", count_fds(inst));
	record(inst, "load-fds", fds);
	if (PERCH_HAS_FIELD(info, perch_backend_info, platform))
		snprintf(info->platform, sizeof info->platform, "fixture/faulty");
	*instance = inst;
	return PERCH_OK;
}

/* Blocks until ctx is cancelled, the way a well-behaved slow call waits. */
static perch_status block_until_cancelled(perch_instance *inst, const perch_ctx *ctx,
					  const char *call, perch_error *err)
{
	struct pollfd p = {.fd = inst->host->ctx_cancel_fd(ctx), .events = POLLIN};
	while (!inst->host->ctx_cancelled(ctx))
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			break;
	return perch_error_set(err, PERCH_ERR_CANCELLED, "faulty: %s cancelled", call);
}

/* Blocks for good, deaf to the context, if the mode is "hang-<call>": what
 * a buggy plugin does. */
static void maybe_hang(const perch_instance *inst, const char *call)
{
	if (strncmp(inst->mode, "hang-", 5) != 0 || strcmp(inst->mode + 5, call) != 0)
		return;
	for (;;)
		sleep(60);
}

static perch_status faulty_setup(perch_instance *inst, const perch_ctx *ctx,
				 const perch_config *config, const char *task_uuid,
				 perch_error *err)
{
	record(inst, "setup_workflow", task_uuid);
	maybe_hang(inst, "setup");
	if (strcmp(inst->mode, "block-setup") == 0)
		return block_until_cancelled(inst, ctx, "setup_workflow", err);
	return failing(inst, "setup") ? injected(err, "setup_workflow") : PERCH_OK;
}

/* Keeps fd until destroy_workflow.  Called with the lock held. */
static bool hold(perch_instance *inst, int fd)
{
	int *held = realloc(inst->held, (inst->n_held + 1) * sizeof *held);
	if (held == NULL)
		return false;
	inst->held = held;
	inst->held[inst->n_held++] = fd;
	return true;
}

/* Opens descriptors until there are none left (at most 1 << 20). */
static void exhaust_fds(perch_instance *inst)
{
	pthread_mutex_lock(&inst->lock);
	if (!inst->exhausted) {
		inst->exhausted = true;
		for (size_t i = 0; i < ((size_t)1 << 20); i++) {
			int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				break;
			if (!hold(inst, fd)) {
				close(fd);
				break;
			}
		}
	}
	pthread_mutex_unlock(&inst->lock);
}

static perch_status faulty_start(perch_instance *inst, const perch_ctx *ctx,
				 const perch_step *step, const char *task_uuid, perch_error *err)
{
	record(inst, "start_step", step->name);
	maybe_hang(inst, "start");
	if (strcmp(inst->mode, "block-start") == 0)
		return block_until_cancelled(inst, ctx, "start_step", err);
	if (strcmp(inst->mode, "exhaust-fds") == 0)
		exhaust_fds(inst);
	return failing(inst, "start") ? injected(err, "start_step") : PERCH_OK;
}

static perch_status faulty_tail(perch_instance *inst, const perch_ctx *ctx,
				const perch_step *step, const char *task_uuid, int *fd,
				perch_error *err)
{
	record(inst, "tail_step", step->name);
	maybe_hang(inst, "tail");
	if (failing(inst, "tail"))
		return injected(err, "tail_step");
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return perch_error_set(err, PERCH_ERR_IO, "faulty: pipe: %s", strerror(errno));
	char line[256];
	int n = snprintf(line, sizeof line, "faulty: %s ran\n", step->name);
	if (n > 0 && write(p[1], line, (size_t)n) != n) {
		/* the pipe is empty and large enough: cannot happen */
	}
	if (strcmp(inst->mode, "open-tail") == 0) {
		pthread_mutex_lock(&inst->lock);
		if (hold(inst, p[1]))
			p[1] = -1;
		pthread_mutex_unlock(&inst->lock);
	}
	if (p[1] >= 0)
		close(p[1]);
	*fd = p[0];
	return PERCH_OK;
}


static perch_status faulty_wait(perch_instance *inst, const perch_ctx *ctx,
				const perch_step *step, const char *task_uuid, perch_state *state,
				perch_error *err)
{
	record(inst, "wait_step", step->name);
	maybe_hang(inst, "wait");
	if (step->detach)
		maybe_hang(inst, "service");
	if (failing(inst, "wait"))
		return injected(err, "wait_step");
	if (PERCH_HAS_FIELD(state, perch_state, exited)) {
		state->exit_code = 0;
		state->exited = true;
	}
	return PERCH_OK;
}

static perch_status faulty_destroy_step(perch_instance *inst, const perch_ctx *ctx,
					const perch_step *step, const char *task_uuid,
					perch_error *err)
{
	record(inst, "destroy_step", step->name);
	maybe_hang(inst, "destroy-step");
	return failing(inst, "destroy-step") ? injected(err, "destroy_step") : PERCH_OK;
}

static perch_status faulty_destroy_workflow(perch_instance *inst, const perch_ctx *ctx,
					    const perch_config *config, const char *task_uuid,
					    perch_error *err)
{
	record(inst, "destroy_workflow", task_uuid);
	maybe_hang(inst, "destroy-workflow");
	pthread_mutex_lock(&inst->lock);
	for (size_t i = 0; i < inst->n_held; i++)
		close(inst->held[i]);
	inst->n_held = 0;
	pthread_mutex_unlock(&inst->lock);
	return failing(inst, "destroy-workflow") ? injected(err, "destroy_workflow") : PERCH_OK;
}

static void faulty_unload(perch_instance *inst)
{
	char fds[32];
	snprintf(fds, sizeof fds, "%d", count_fds(inst));
	record(inst, "unload-fds", fds);
	for (size_t i = 0; i < inst->n_held; i++)
		close(inst->held[i]);
	free(inst->held);
	if (inst->log_fd >= 0)
		close(inst->log_fd);
	pthread_mutex_destroy(&inst->lock);
	free(inst);
}

PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.priority = -100,
	.name = "faulty",
	.version = "1.0.0",
	.description = "fixture: fails or hangs in the call it is told to",
	.flags = faulty_flags,
	.is_available = faulty_is_available,
	.load = faulty_load,
	.setup_workflow = faulty_setup,
	.start_step = faulty_start,
	.tail_step = faulty_tail,
	.wait_step = faulty_wait,
	.destroy_step = faulty_destroy_step,
	.destroy_workflow = faulty_destroy_workflow,
	.unload = faulty_unload,
};
