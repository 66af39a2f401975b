/*
 * hold.c - gates that keep a call at a chosen point for as long as a file
 * exists, so that a test can stop the host (SIGKILL, say) in exactly that
 * phase of a workflow and check what the next host makes of it.
 *
 * A sleep would only make such a test likely to hit its phase; a gate makes
 * it certain: the test creates the file, submits, waits until the call says
 * (at info level) that it holds, acts, and removes the file.  The call
 * polls every 20 ms and ends the hold early when its context is cancelled.
 * Knobs that name no file, or a file that does not exist, cost one
 * access(2) and change nothing.
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define HOLD_POLL_MS 20

const char *perch_dummy_workflow_knob(const perch_config *config,
				      const char *key)
{
	if (config == NULL || !PERCH_HAS_FIELD(config, perch_config, n_stages))
		return NULL;
	for (size_t i = 0; i < config->n_stages; i++) {
		const perch_stage *stage = config->stages[i];
		if (stage == NULL)
			continue;
		for (size_t j = 0; j < stage->n_steps; j++) {
			const perch_step *step = stage->steps[j];
			const char *v =
				step != NULL ? perch_map_get(&step->environment, key)
					     : NULL;
			if (v != NULL)
				return v;
		}
	}
	return NULL;
}

perch_status perch_dummy_hold(perch_instance *inst, const perch_ctx *ctx,
			      const char *path, const char *what,
			      perch_error *err)
{
	const perch_host *host = inst->host;
	int cancel_fd;
	bool said = false;

	if (path == NULL || *path == '\0')
		return PERCH_OK;
	cancel_fd = pp_cancel_fd(host, ctx);
	while (access(path, F_OK) == 0) {
		struct pollfd pfd = {.fd = cancel_fd, .events = POLLIN};
		if (!said) {
			perch_logf(host, PERCH_LOG_INFO,
				   "dummy: %s held while %s exists", what, path);
			said = true;
		}
		if (host->ctx_cancelled(ctx) ||
		    (poll(&pfd, cancel_fd >= 0 ? 1 : 0, HOLD_POLL_MS) > 0 &&
		     pfd.revents != 0))
			return perch_error_set(err, PERCH_ERR_CANCELLED,
					       "%s cancelled while held by %s",
					       what, path);
	}
	if (said)
		perch_logf(host, PERCH_LOG_INFO, "dummy: %s goes on", what);
	return PERCH_OK;
}
