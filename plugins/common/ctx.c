/*
 * ctx.c - reading the host's context the way every plugin call does: the
 * cancel descriptor to poll beside the call's own descriptors.
 */
#define _GNU_SOURCE
#include "perchplugin.h"

int pp_cancel_fd(const perch_host *host, const perch_ctx *ctx)
{
	if (ctx == NULL || !PERCH_HAS_FIELD(host, perch_host, ctx_cancel_fd) ||
	    host->ctx_cancel_fd == NULL)
		return -1;
	return host->ctx_cancel_fd(ctx);
}
