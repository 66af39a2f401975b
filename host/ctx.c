/*
 * ctx.c - perch_ctx.  Cancellation is a flag plus an eventfd that becomes
 * readable, so that plugins can put it into their own poll() sets.  A
 * deadline is enforced by a small thread that sleeps on a condition variable
 * until the deadline passes or the context is freed; contexts with deadlines
 * are few (one per cleanup, one per timed workflow), so a thread each is
 * cheaper than a shared timer wheel in code and in bugs.
 */
#include "config.h"

#include "ctx.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct ctx_value {
	const char *key;
	const void *value;
};

struct perch_ctx {
	perch_ctx *parent;
	pthread_mutex_t lock;  /* guards children, next_sibling links */
	perch_ctx *children;
	perch_ctx *next_sibling;
	atomic_bool cancelled;
	int efd;
	int64_t deadline_ms;   /* INT64_MAX: none */
	struct ctx_value *values;
	size_t n_values;
	/* deadline thread */
	bool has_timer;
	pthread_t timer;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
	bool freeing;
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

perch_ctx *perch_ctx_new(perch_ctx *parent)
{
	perch_ctx *c = perch_xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->timer_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0) {
		/* Without an fd we cannot offer cancellation to plugins. */
		perror("perch: eventfd");
		exit(3);
	}
	c->deadline_ms = INT64_MAX;
	c->parent = parent;
	if (parent) {
		link_child(parent, c);
		if (perch_ctx_cancelled(parent))
			perch_ctx_cancel(c);
	}
	return c;
}

static void *timer_main(void *arg)
{
	perch_ctx *c = arg;
	struct timespec ts = {
		.tv_sec = c->deadline_ms / 1000,
		.tv_nsec = (c->deadline_ms % 1000) * 1000000,
	};
	bool fire = false;
	pthread_mutex_lock(&c->timer_lock);
	while (!c->freeing) {
		int rc = pthread_cond_timedwait(&c->timer_cond, &c->timer_lock, &ts);
		if (rc == ETIMEDOUT) {
			fire = !c->freeing;
			break;
		}
	}
	pthread_mutex_unlock(&c->timer_lock);
	if (fire)
		perch_ctx_cancel(c);
	return NULL;
}

perch_ctx *perch_ctx_new_timeout(perch_ctx *parent, int64_t timeout_ms)
{
	perch_ctx *c = perch_ctx_new(parent);
	c->deadline_ms = perch_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	if (pthread_create(&c->timer, &attr, timer_main, c) == 0)
		c->has_timer = true;
	else
		perch_ctx_cancel(c); /* no timer: fail safe, cancelled now */
	pthread_attr_destroy(&attr);
	return c;
}

void perch_ctx_free(perch_ctx *c)
{
	if (c == NULL)
		return;
	if (c->has_timer) {
		pthread_mutex_lock(&c->timer_lock);
		c->freeing = true;
		pthread_cond_signal(&c->timer_cond);
		pthread_mutex_unlock(&c->timer_lock);
		pthread_join(c->timer, NULL);
	}
	if (c->parent)
		unlink_child(c->parent, c);
	/* Orphan any children still alive: they keep their own state. */
	pthread_mutex_lock(&c->lock);
	for (perch_ctx *ch = c->children; ch; ch = ch->next_sibling)
		ch->parent = NULL;
	pthread_mutex_unlock(&c->lock);
	close(c->efd);
	free(c->values);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->timer_lock);
	pthread_cond_destroy(&c->timer_cond);
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
	uint64_t one = 1;
	if (write(c->efd, &one, sizeof one) < 0) {
		/* EAGAIN only if the counter is saturated: still readable. */
	}
	pthread_mutex_lock(&c->lock);
	for (perch_ctx *ch = c->children; ch; ch = ch->next_sibling)
		perch_ctx_cancel(ch);
	pthread_mutex_unlock(&c->lock);
}

bool perch_ctx_cancelled(const perch_ctx *c)
{
	return atomic_load(&((perch_ctx *)c)->cancelled);
}

int perch_ctx_cancel_fd(const perch_ctx *c) { return c->efd; }

int64_t perch_ctx_deadline_ms(const perch_ctx *c)
{
	int64_t d = INT64_MAX;
	for (; c; c = c->parent)
		if (c->deadline_ms < d)
			d = c->deadline_ms;
	return d;
}

bool perch_ctx_wait(const perch_ctx *c, int64_t timeout_ms)
{
	struct pollfd p = {.fd = c->efd, .events = POLLIN};
	int64_t end = timeout_ms < 0 ? INT64_MAX : perch_mono_ms() + timeout_ms;
	for (;;) {
		if (perch_ctx_cancelled(c))
			return true;
		int64_t left = end == INT64_MAX ? -1 : end - perch_mono_ms();
		if (end != INT64_MAX && left <= 0)
			return false;
		int rc = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc < 0 && errno != EINTR)
			return perch_ctx_cancelled(c);
	}
}
