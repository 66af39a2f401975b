/*
 * ctx.h - the host side of perch_ctx: cancellation, deadlines and values.
 *
 * A context may have a parent.  It sees its parent's values and is cancelled
 * when its parent is (at once, or at creation if the parent already was);
 * cancelling a child never touches the parent.  The runtime uses a root
 * context (carrying the CLI command), one per workflow (cancelled by a
 * signal or --timeout), and fresh, deadline-bounded cleanup contexts that
 * hang off the root so that a cancelled workflow can still clean up.
 *
 * Threads: every function is thread-safe except perch_ctx_set_value, which
 * must happen before the context is shared, and perch_ctx_free, which must
 * happen after every user is done.  A child reads its parent while it lives
 * and unlinks itself when freed, so a parent and its child must not be
 * freed concurrently: free children first, or both on one thread (a parent
 * freed first orphans its live children, which keep working).
 */
#ifndef PERCH_HOST_CTX_H
#define PERCH_HOST_CTX_H

#include <perch/host.h>

/* A new context; parent may be NULL.  Never NULL (OOM is fatal). */
perch_ctx *perch_ctx_new(perch_ctx *parent);
/* A child whose deadline is timeout_ms from now; it cancels itself then. */
perch_ctx *perch_ctx_new_timeout(perch_ctx *parent, int64_t timeout_ms);
void perch_ctx_free(perch_ctx *ctx);

/* Stores value under key (both host-owned, must outlive ctx). */
void perch_ctx_set_value(perch_ctx *ctx, const char *key, const void *value);
const void *perch_ctx_value(const perch_ctx *ctx, const char *key);

/* Cancels ctx and its children.  Idempotent.  Async-signal-unsafe: signal
 * handlers must hand the request to a thread (see the runtime). */
void perch_ctx_cancel(perch_ctx *ctx);
bool perch_ctx_cancelled(const perch_ctx *ctx);
/* Readable once cancelled; owned by ctx; never read it. */
int perch_ctx_cancel_fd(const perch_ctx *ctx);
/* CLOCK_MONOTONIC ms, or INT64_MAX.  The nearest of ctx's and its parents'. */
int64_t perch_ctx_deadline_ms(const perch_ctx *ctx);

/* Waits up to timeout_ms (-1: forever) for cancellation; true if cancelled. */
bool perch_ctx_wait(const perch_ctx *ctx, int64_t timeout_ms);

#endif
