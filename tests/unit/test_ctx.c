/*
 * test_ctx.c - perch_ctx: cancellation (flag and pollable fd), parents and
 * children, values, deadlines with their timer thread, and cancellation
 * racing from many threads.  No test asserts how fast anything is; waits
 * are bounded generously so that a hang fails instead of blocking forever.
 * Run under valgrind to check that freeing a timed context joins its
 * thread and leaks nothing.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctx.h"
#include "util.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* A generous bound for anything that should happen "soon". */
#define SOON_MS 10000

/* True if fd is readable right now. */
static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int rc = poll(&p, 1, 0);
	assert_true(rc >= 0);
	return rc == 1 && (p.revents & POLLIN);
}

static void assert_cancelled(const perch_ctx *c)
{
	assert_true(perch_ctx_cancelled(c));
	assert_true(readable(perch_ctx_cancel_fd(c)));
	assert_true(perch_ctx_wait(c, 0));
}

static void assert_live(const perch_ctx *c)
{
	assert_false(perch_ctx_cancelled(c));
	assert_false(readable(perch_ctx_cancel_fd(c)));
	assert_false(perch_ctx_wait(c, 0));
}

static void test_cancel(void **state)
{
	perch_ctx *c = perch_ctx_new(NULL);
	int fd = perch_ctx_cancel_fd(c);
	assert_true(fd >= 0);
	assert_live(c);
	assert_int_equal(perch_ctx_deadline_ms(c), INT64_MAX);
	perch_ctx_cancel(c);
	assert_cancelled(c);
	/* Idempotent, and the fd stays readable (nobody reads it). */
	perch_ctx_cancel(c);
	assert_cancelled(c);
	assert_true(perch_ctx_wait(c, -1));
	perch_ctx_free(c);
}

/* The fd is for plugins' poll sets: it must not leak into children. */
static void test_fd_is_cloexec(void **state)
{
	perch_ctx *c = perch_ctx_new(NULL);
	int flags = fcntl(perch_ctx_cancel_fd(c), F_GETFD);
	assert_true(flags >= 0);
	assert_true(flags & FD_CLOEXEC);
	perch_ctx_free(c);
}

static void test_wait_times_out_when_live(void **state)
{
	perch_ctx *c = perch_ctx_new(NULL);
	assert_false(perch_ctx_wait(c, 20));
	perch_ctx_free(c);
}

static void test_values(void **state)
{
	static const int a = 1, b = 2, c2 = 3;
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx_set_value(root, "a", &a);
	perch_ctx_set_value(root, "b", &b);
	perch_ctx *child = perch_ctx_new(root);
	perch_ctx_set_value(child, "b", &c2); /* shadows the parent's */
	perch_ctx *grandchild = perch_ctx_new(child);
	assert_ptr_equal(perch_ctx_value(root, "a"), &a);
	assert_ptr_equal(perch_ctx_value(root, "b"), &b);
	assert_ptr_equal(perch_ctx_value(child, "a"), &a);
	assert_ptr_equal(perch_ctx_value(child, "b"), &c2);
	assert_ptr_equal(perch_ctx_value(grandchild, "a"), &a);
	assert_ptr_equal(perch_ctx_value(grandchild, "b"), &c2);
	assert_null(perch_ctx_value(grandchild, "c"));
	assert_null(perch_ctx_value(root, "c"));
	/* Setting a key again replaces its value. */
	perch_ctx_set_value(root, "a", &b);
	assert_ptr_equal(perch_ctx_value(grandchild, "a"), &b);
	perch_ctx_free(grandchild);
	perch_ctx_free(child);
	perch_ctx_free(root);
}

static void test_parent_cancel_reaches_children(void **state)
{
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx *a = perch_ctx_new(root);
	perch_ctx *b = perch_ctx_new(root);
	perch_ctx *a1 = perch_ctx_new(a);
	assert_live(a1);
	perch_ctx_cancel(root);
	assert_cancelled(root);
	assert_cancelled(a);
	assert_cancelled(b);
	assert_cancelled(a1);
	perch_ctx_free(a1);
	perch_ctx_free(b);
	perch_ctx_free(a);
	perch_ctx_free(root);
}

static void test_child_of_cancelled_parent(void **state)
{
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx_cancel(root);
	perch_ctx *child = perch_ctx_new(root);
	assert_cancelled(child);
	perch_ctx *grandchild = perch_ctx_new(child);
	assert_cancelled(grandchild);
	perch_ctx *timed = perch_ctx_new_timeout(root, 3600 * 1000);
	assert_cancelled(timed);
	perch_ctx_free(timed);
	perch_ctx_free(grandchild);
	perch_ctx_free(child);
	perch_ctx_free(root);
}

static void test_child_cancel_leaves_parent(void **state)
{
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx *child = perch_ctx_new(root);
	perch_ctx *sibling = perch_ctx_new(root);
	perch_ctx *grandchild = perch_ctx_new(child);
	perch_ctx_cancel(child);
	assert_cancelled(child);
	assert_cancelled(grandchild);
	assert_live(root);
	assert_live(sibling);
	perch_ctx_free(grandchild);
	perch_ctx_free(sibling);
	perch_ctx_free(child);
	perch_ctx_free(root);
}

/* A freed child is unlinked: cancelling the parent later must not touch it
 * (ASan and valgrind would see a use after free). */
static void test_free_child_then_cancel_parent(void **state)
{
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx *a = perch_ctx_new(root);
	perch_ctx *b = perch_ctx_new(root);
	perch_ctx *c = perch_ctx_new(root);
	perch_ctx_free(b); /* the middle of the sibling list */
	perch_ctx_free(c); /* its head */
	perch_ctx_cancel(root);
	assert_cancelled(a);
	perch_ctx_free(a);
	perch_ctx_free(root);
}

/* A child may outlive its parent: it is orphaned, keeps its own state, and
 * no longer sees the parent's values. */
static void test_free_parent_first(void **state)
{
	static const int v = 7;
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx_set_value(root, "k", &v);
	perch_ctx *child = perch_ctx_new(root);
	assert_ptr_equal(perch_ctx_value(child, "k"), &v);
	perch_ctx_free(root);
	assert_live(child);
	assert_null(perch_ctx_value(child, "k"));
	perch_ctx_cancel(child);
	assert_cancelled(child);
	perch_ctx_free(child);
}

static void test_timeout_fires(void **state)
{
	perch_ctx *root = perch_ctx_new(NULL);
	int64_t before = perch_mono_ms();
	perch_ctx *t = perch_ctx_new_timeout(root, 50);
	int64_t deadline = perch_ctx_deadline_ms(t);
	assert_true(deadline >= before + 50);
	assert_true(deadline != INT64_MAX);
	/* The root has no deadline; a child of t inherits t's. */
	assert_int_equal(perch_ctx_deadline_ms(root), INT64_MAX);
	perch_ctx *child = perch_ctx_new(t);
	assert_int_equal(perch_ctx_deadline_ms(child), deadline);
	if (!perch_ctx_wait(t, SOON_MS))
		fail_msg("a 50 ms timeout did not cancel its context within %d ms", SOON_MS);
	assert_cancelled(t);
	/* Cancelling itself reached its child, not its parent. */
	assert_true(perch_ctx_wait(child, SOON_MS));
	assert_live(root);
	perch_ctx_free(child);
	perch_ctx_free(t);
	perch_ctx_free(root);
}

/* A nearer deadline higher up wins. */
static void test_deadline_is_nearest(void **state)
{
	perch_ctx *outer = perch_ctx_new_timeout(NULL, 3600 * 1000);
	perch_ctx *inner = perch_ctx_new_timeout(outer, 7200 * 1000);
	assert_int_equal(perch_ctx_deadline_ms(inner), perch_ctx_deadline_ms(outer));
	perch_ctx *inner2 = perch_ctx_new_timeout(outer, 1000);
	assert_true(perch_ctx_deadline_ms(inner2) < perch_ctx_deadline_ms(outer));
	perch_ctx_free(inner2);
	perch_ctx_free(inner);
	perch_ctx_free(outer);
}

static void test_zero_and_negative_timeout(void **state)
{
	perch_ctx *z = perch_ctx_new_timeout(NULL, 0);
	perch_ctx *n = perch_ctx_new_timeout(NULL, -5);
	assert_true(perch_ctx_wait(z, SOON_MS));
	assert_true(perch_ctx_wait(n, SOON_MS));
	perch_ctx_free(n);
	perch_ctx_free(z);
}

/* Freeing a timed context long before its deadline must wake and join its
 * timer thread (valgrind: no leaked thread stack) and must not block until
 * the deadline: an hour here, so a hang is unmistakable. */
static void test_free_timeout_before_it_fires(void **state)
{
	for (int i = 0; i < 50; i++) {
		perch_ctx *t = perch_ctx_new_timeout(NULL, 3600 * 1000);
		assert_live(t);
		perch_ctx_free(t);
	}
	/* Also when it was cancelled by hand first, and with a parent. */
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx *t = perch_ctx_new_timeout(root, 3600 * 1000);
	perch_ctx_cancel(t);
	assert_cancelled(t);
	perch_ctx_free(t);
	perch_ctx *t2 = perch_ctx_new_timeout(root, 3600 * 1000);
	perch_ctx_cancel(root);
	assert_cancelled(t2);
	perch_ctx_free(t2);
	perch_ctx_free(root);
}

/* Many short timers firing while being freed: the free must not race the
 * timer's own cancel. */
static void test_free_races_timer(void **state)
{
	for (int i = 0; i < 200; i++) {
		perch_ctx *root = perch_ctx_new(NULL);
		perch_ctx *t = perch_ctx_new_timeout(root, i % 3);
		if (i % 2)
			perch_ctx_wait(t, 1);
		perch_ctx_free(t);
		assert_live(root);
		perch_ctx_free(root);
	}
}

struct race {
	perch_ctx *ctx;
	pthread_barrier_t *go;
};

static void *cancel_thread(void *arg)
{
	struct race *r = arg;
	pthread_barrier_wait(r->go);
	perch_ctx_cancel(r->ctx);
	return NULL;
}

#define N_THREADS 16

/* Many threads cancel the same context (and its parent) at once: every
 * context ends cancelled exactly once, the fd is readable, nothing
 * deadlocks. */
static void test_concurrent_cancel(void **state)
{
	for (int round = 0; round < 50; round++) {
		perch_ctx *root = perch_ctx_new(NULL);
		perch_ctx *mid = perch_ctx_new(root);
		perch_ctx *leaves[4];
		for (int i = 0; i < 4; i++)
			leaves[i] = perch_ctx_new(mid);
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, N_THREADS);
		pthread_t th[N_THREADS];
		struct race r[N_THREADS];
		for (int i = 0; i < N_THREADS; i++) {
			/* Half cancel the root, a quarter the middle, the rest a
			 * leaf: parent and child cancellations interleave. */
			r[i].ctx = i % 2 ? root : i % 4 ? mid : leaves[(i / 4) % 4];
			r[i].go = &go;
			assert_int_equal(pthread_create(&th[i], NULL, cancel_thread, &r[i]), 0);
		}
		for (int i = 0; i < N_THREADS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&go);
		assert_cancelled(root);
		assert_cancelled(mid);
		for (int i = 0; i < 4; i++)
			assert_cancelled(leaves[i]);
		/* Exactly one wake-up was written to each fd: cancel is
		 * idempotent under contention too. */
		uint64_t count = 0;
		assert_int_equal(read(perch_ctx_cancel_fd(root), &count, sizeof count),
				 sizeof count);
		assert_int_equal(count, 1);
		for (int i = 0; i < 4; i++)
			perch_ctx_free(leaves[i]);
		perch_ctx_free(mid);
		perch_ctx_free(root);
	}
}

struct spawner {
	perch_ctx *parent;
	pthread_barrier_t *go;
	perch_ctx *made[32];
};

static void *spawn_thread(void *arg)
{
	struct spawner *s = arg;
	pthread_barrier_wait(s->go);
	for (int i = 0; i < 32; i++)
		s->made[i] = perch_ctx_new(s->parent);
	return NULL;
}

/* Children created while the parent is being cancelled: whichever wins the
 * race, every child ends up cancelled. */
static void test_create_while_cancelling(void **state)
{
	for (int round = 0; round < 20; round++) {
		perch_ctx *root = perch_ctx_new(NULL);
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 5);
		struct spawner s[4];
		pthread_t th[4];
		for (int i = 0; i < 4; i++) {
			s[i].parent = root;
			s[i].go = &go;
			assert_int_equal(pthread_create(&th[i], NULL, spawn_thread, &s[i]), 0);
		}
		pthread_barrier_wait(&go);
		perch_ctx_cancel(root);
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 32; k++) {
				assert_cancelled(s[i].made[k]);
				perch_ctx_free(s[i].made[k]);
			}
		perch_ctx_free(root);
	}
}

/* A waiter blocked in perch_ctx_wait(-1) returns when another thread
 * cancels. */
static void *waiter(void *arg)
{
	return perch_ctx_wait(arg, -1) ? arg : NULL;
}

static void test_wait_wakes_on_cancel(void **state)
{
	perch_ctx *root = perch_ctx_new(NULL);
	perch_ctx *child = perch_ctx_new(root);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, waiter, child), 0);
	perch_ctx_cancel(root);
	void *ret = NULL;
	pthread_join(th, &ret);
	assert_ptr_equal(ret, child);
	perch_ctx_free(child);
	perch_ctx_free(root);
}

static void test_free_null(void **state)
{
	perch_ctx_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_fd_is_cloexec),
		cmocka_unit_test(test_wait_times_out_when_live),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_parent_cancel_reaches_children),
		cmocka_unit_test(test_child_of_cancelled_parent),
		cmocka_unit_test(test_child_cancel_leaves_parent),
		cmocka_unit_test(test_free_child_then_cancel_parent),
		cmocka_unit_test(test_free_parent_first),
		cmocka_unit_test(test_timeout_fires),
		cmocka_unit_test(test_deadline_is_nearest),
		cmocka_unit_test(test_zero_and_negative_timeout),
		cmocka_unit_test(test_free_timeout_before_it_fires),
		cmocka_unit_test(test_free_races_timer),
		cmocka_unit_test(test_concurrent_cancel),
		cmocka_unit_test(test_create_while_cancelling),
		cmocka_unit_test(test_wait_wakes_on_cancel),
		cmocka_unit_test(test_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
