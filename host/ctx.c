/*
 * ctx.c - perch_ctx.  Cancellation is a flag plus a descriptor that becomes
 * readable, so that plugins can put it into their own poll() sets.  The
 * descriptor is a timerfd: cancelling arms it to expire at once, and a
 * deadline arms it to expire at the deadline, so deadlines need no thread
 * (a cleanup context is made for every destroy_step, so a thread each was
 * measurable per step).  Nobody ever reads the timerfd: once expired it
 * stays readable.
 */
#include "config.h"

#include "ctx.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct ctx_value {
	const char *key;
	const void *value;
};

struct perch_ctx {
	perch_ctx *parent;
	pthread_mutex_t lock;  /* guards children and next_sibling links */
	perch_ctx *children;
	perch_ctx *next_sibling;
	atomic_bool cancelled;
	int tfd;
	int64_t deadline_ms;   /* effective (own or inherited); INT64_MAX: none */
	struct ctx_value *values;
	size_t n_values;
};

static void link_child(perch_ctx *parent, perch_ctx *child)
{
	pthread_mutex_lock(&parent->lock);
	child->next_sibling = parent->children;
	parent->children = child;
	pthread_mutex_unlock(&parent->lock);
}

static void unlink_child(perch_ctx *parent, perch_ctx *child)
{
	pthread_mutex_lock(&parent->lock);
	for (perch_ctx **p = &parent->children; *p; p = &(*p)->next_sibling) {
		if (*p == child) {
			*p = child->next_sibling;
			break;
		}
	}
	pthread_mutex_unlock(&parent->lock);
}

static void arm(perch_ctx *c, int64_t at_ms)
{
	if (c->tfd < 0)
		return;
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	if (at_ms <= 0) {
		its.it_value.tv_nsec = 1; /* relative: expire now */
		timerfd_settime(c->tfd, 0, &its, NULL);
	} else {
		its.it_value.tv_sec = at_ms / 1000;
		its.it_value.tv_nsec = (at_ms % 1000) * 1000000;
		timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	}
}

static perch_ctx *ctx_new(perch_ctx *parent, int64_t deadline_ms)
{
	perch_ctx *c = perch_xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->tfd < 0) {
		/* Out of descriptors (or timers).  Exiting here would skip the
		 * cleanup of everything running, so degrade instead: the
		 * context still answers ctx_cancelled (flag and deadline), but
		 * its descriptor is -1, which poll() ignores; plugins then
		 * notice cancellation at their next check.  Said once per
		 * context, so the operator knows why cancellation is slow. */
		static const char msg[] = "perch: warning: no descriptor for a context "
					  "(too many open files?); cancellation is polled\n";
		if (write(2, msg, sizeof msg - 1) < 0) {
			/* nothing more to do */
		}
	}
	c->deadline_ms = deadline_ms;
	if (parent && parent->deadline_ms < c->deadline_ms)
		c->deadline_ms = parent->deadline_ms;
	if (c->deadline_ms != INT64_MAX)
		arm(c, c->deadline_ms > 0 ? c->deadline_ms : 1);
	c->parent = parent;
	if (parent) {
		link_child(parent, c);
		if (perch_ctx_cancelled(parent))
			perch_ctx_cancel(c);
	}
	return c;
}

perch_ctx *perch_ctx_new(perch_ctx *parent)
{
	return ctx_new(parent, INT64_MAX);
}

perch_ctx *perch_ctx_new_timeout(perch_ctx *parent, int64_t timeout_ms)
{
	return ctx_new(parent, perch_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms));
}

void perch_ctx_free(perch_ctx *c)
{
	if (c == NULL)
		return;
	if (c->parent)
		unlink_child(c->parent, c);
	/* A child still alive is orphaned: it keeps its own values and
	 * cancellation.  (ctx.h: never free a parent while a child is being
	 * freed or used on another thread.) */
	pthread_mutex_lock(&c->lock);
	for (perch_ctx *ch = c->children; ch; ch = ch->next_sibling)
		ch->parent = NULL;
	pthread_mutex_unlock(&c->lock);
	if (c->tfd >= 0)
		close(c->tfd);
	free(c->values);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void perch_ctx_set_value(perch_ctx *c, const char *key, const void *value)
{
	for (size_t i = 0; i < c->n_values; i++) {
		if (strcmp(c->values[i].key, key) == 0) {
			c->values[i].value = value;
			return;
		}
	}
	c->values = perch_xrealloc(c->values, (c->n_values + 1) * sizeof *c->values);
	c->values[c->n_values].key = key;
	c->values[c->n_values].value = value;
	c->n_values++;
}

const void *perch_ctx_value(const perch_ctx *c, const char *key)
{
	/* Values are set before sharing and parents outlive children, so the
	 * walk needs no lock. */
	for (; c; c = c->parent)
		for (size_t i = 0; i < c->n_values; i++)
			if (strcmp(c->values[i].key, key) == 0)
				return c->values[i].value;
	return NULL;
}

void perch_ctx_cancel(perch_ctx *c)
{
	bool expected = false;
	if (!atomic_compare_exchange_strong(&c->cancelled, &expected, true))
		return;
	arm(c, 0);
	pthread_mutex_lock(&c->lock);
	for (perch_ctx *ch = c->children; ch; ch = ch->next_sibling)
		perch_ctx_cancel(ch);
	pthread_mutex_unlock(&c->lock);
}

bool perch_ctx_cancelled(const perch_ctx *c)
{
	if (atomic_load(&((perch_ctx *)c)->cancelled))
		return true;
	/* A passed deadline is a cancellation too; latch it so that the
	 * children are told as well. */
	if (c->deadline_ms != INT64_MAX && perch_mono_ms() >= c->deadline_ms) {
		perch_ctx_cancel((perch_ctx *)c);
		return true;
	}
	return false;
}

int perch_ctx_cancel_fd(const perch_ctx *c) { return c->tfd; }

int64_t perch_ctx_deadline_ms(const perch_ctx *c)
{
	return c->deadline_ms; /* children inherit their parent's at creation */
}

bool perch_ctx_wait(const perch_ctx *c, int64_t timeout_ms)
{
	struct pollfd p = {.fd = c->tfd, .events = POLLIN};
	int64_t end = timeout_ms < 0 ? INT64_MAX : perch_mono_ms() + timeout_ms;
	for (;;) {
		if (perch_ctx_cancelled(c))
			return true;
		int64_t left = end == INT64_MAX ? -1 : end - perch_mono_ms();
		if (end != INT64_MAX && left <= 0)
			return false;
		if (left > INT32_MAX)
			left = INT32_MAX;
		/* Without a descriptor (see ctx_new), look again every 50 ms. */
		if (c->tfd < 0 && (left < 0 || left > 50))
			left = 50;
		int rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno != EINTR)
			return perch_ctx_cancelled(c);
	}
}
