/*
 * proc.c - waiting for, stopping and sweeping the process groups of steps.
 *
 * The host owns signals, so there is no SIGCHLD handler here.  A leader is
 * watched through its pidfd (Linux >= 5.3), which poll() reports readable
 * when the process exits, side by side with the context's cancel fd; without
 * pidfds, waitpid(WNOHANG) is retried every few milliseconds.  Only
 * waitpid() on our own pid is used for leaders, never waitpid(-1), so the
 * plugin never steals another part of the host's children.
 *
 * The grandchild rule.  When a step's leader exits, the step is over.  Any
 * process still in its process group (`sleep 300 &`, a forgotten server)
 * gets SIGTERM, then SIGKILL after the stop timeout.  Without this, such a
 * process keeps the write end of the log pipe open: the host would never
 * see end of stream, and the process would outlive its workflow.  Processes
 * that leave the group (setsid, setpgid) escape this rule; the host closes a
 * log stream that stays silent after wait_step returned.
 *
 * Signalling a group by id is safe while the leader is unreaped (its pid
 * cannot be reused) and while any member remains (Linux does not hand out
 * an id still used as a process group id).  Once a group was seen empty it
 * is marked done and never signalled again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long SIGKILLed processes get to disappear before we give up on them
 * (a process stuck in uninterruptible sleep cannot be helped). */
#define KILL_WAIT_MS 5000
/* Poll interval bounds while waiting without a pidfd or for a group. */
#define TICK_MIN_MS 1
#define TICK_MAX_MS 50

void perch_local_open_pidfd(perch_instance *inst, perch_local_proc *p)
{
	p->pidfd = -1;
#ifdef SYS_pidfd_open
	if (atomic_load(&inst->no_pidfd) || p->pid <= 0)
		return;
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0u); /* O_CLOEXEC */
	if (p->pidfd < 0) {
		if (errno == ENOSYS)
			atomic_store(&inst->no_pidfd, true);
		p->pidfd = -1;
	}
#endif
}

bool perch_local_try_reap(perch_instance *inst, perch_local_proc *p)
{
	bool done;

	pthread_mutex_lock(&inst->lock);
	if (!p->reaped && p->pid > 0) {
		int status;
		pid_t r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid) {
			p->reaped = true;
			p->wstatus = status;
		} else if (r < 0 && errno == ECHILD) {
			/* Someone else (a host calling waitpid(-1)) took it. */
			p->reaped = true;
			p->lost = true;
		}
	} else if (p->pid <= 0) {
		p->reaped = true;
		p->lost = true;
	}
	done = p->reaped;
	pthread_mutex_unlock(&inst->lock);
	return done;
}

int32_t perch_local_exit_code(perch_instance *inst, const perch_local_proc *p)
{
	int32_t code = -1;

	pthread_mutex_lock(&inst->lock);
	if (p->reaped && !p->lost) {
		if (WIFEXITED(p->wstatus))
			code = WEXITSTATUS(p->wstatus);
		else if (WIFSIGNALED(p->wstatus))
			code = 128 + WTERMSIG(p->wstatus);
	}
	pthread_mutex_unlock(&inst->lock);
	return code;
}

/* Sleeps up to ms; true when cancel_fd (-1: none) is readable. */
static bool nap(int cancel_fd, int64_t ms)
{
	struct pollfd pfd = {.fd = cancel_fd, .events = POLLIN};

	if (ms < 0)
		ms = 0;
	if (cancel_fd < 0) {
		(void)poll(NULL, 0, (int)ms);
		return false;
	}
	return poll(&pfd, 1, (int)ms) > 0 && (pfd.revents & POLLIN) != 0;
}

int perch_local_wait_leaders(perch_instance *inst, perch_local_proc *const *v,
			     size_t n, int cancel_fd, int64_t deadline_ms)
{
	struct pollfd *pfd = calloc(n + 1, sizeof *pfd);
	int64_t tick = TICK_MIN_MS;
	int result;

	for (;;) {
		size_t np = 0;
		bool all = true, need_tick = pfd == NULL;
		int64_t timeout;
		int cancel_idx = -1;

		for (size_t i = 0; i < n; i++) {
			if (perch_local_try_reap(inst, v[i]))
				continue;
			all = false;
			if (v[i]->pidfd >= 0 && pfd != NULL)
				pfd[np++] = (struct pollfd){
					.fd = v[i]->pidfd, .events = POLLIN};
			else
				need_tick = true;
		}
		if (all) {
			result = PERCH_LOCAL_WAIT_DONE;
			break;
		}
		if (cancel_fd >= 0 && pfd != NULL) {
			cancel_idx = (int)np;
			pfd[np++] = (struct pollfd){.fd = cancel_fd,
						    .events = POLLIN};
		}
		timeout = -1;
		if (deadline_ms != INT64_MAX) {
			timeout = deadline_ms - pp_mono_ms();
			if (timeout <= 0) {
				result = PERCH_LOCAL_WAIT_TIMEOUT;
				break;
			}
		}
		if (need_tick) {
			if (timeout < 0 || timeout > tick)
				timeout = tick;
			if (tick < TICK_MAX_MS)
				tick *= 2;
		}
		if (timeout > INT_MAX)
			timeout = INT_MAX;
		if (pfd == NULL) {
			if (nap(cancel_fd, timeout)) {
				result = PERCH_LOCAL_WAIT_CANCELLED;
				break;
			}
			continue;
		}
		if (poll(pfd, np, (int)timeout) < 0 && errno != EINTR)
			(void)nap(-1, TICK_MAX_MS); /* should not happen */
		if (cancel_idx >= 0 && (pfd[cancel_idx].revents & POLLIN)) {
			result = PERCH_LOCAL_WAIT_CANCELLED;
			break;
		}
	}
	free(pfd);
	return result;
}

/* True when a process of group pgid exists that is not a zombie.  Zombies
 * count for kill(), and an init that does not reap (a container's, this
 * sandbox's) would otherwise make every sweep wait its full grace. */
static bool group_scan(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool alive = false;

	if (d == NULL)
		return true; /* cannot tell: assume alive, the timeout bounds */
	while (!alive && (e = readdir(d)) != NULL) {
		char path[64], buf[256], state;
		const char *close_paren;
		int ppid, pgrp, fd;
		ssize_t r;

		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (pid <= 0 || *end != '\0')
			continue;
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) S ppid pgrp ...": comm may hold anything. */
		close_paren = strrchr(buf, ')');
		if (close_paren == NULL ||
		    sscanf(close_paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
			continue;
		if (pgrp == pgid && state != 'Z' && state != 'X')
			alive = true;
	}
	closedir(d);
	return alive;
}

/* Is anything alive in the group?  Only for groups whose leader is reaped:
 * the waitpid(-pgid) below would otherwise take the leader's status. */
static bool group_alive(pid_t pgid)
{
	int status;

	/* A host that is a child subreaper inherits the step's orphans:
	 * reap those of this group so they do not linger as zombies. */
	while (waitpid(-pgid, &status, WNOHANG) > 0)
		;
	/* ESRCH: empty.  EPERM: only processes we may not signal are left
	 * (a setuid program): waiting for them would be pointless. */
	if (kill(-pgid, 0) < 0)
		return false;
	return group_scan(pgid);
}

static bool needs_sweep(perch_instance *inst, perch_local_proc *p)
{
	bool r;

	pthread_mutex_lock(&inst->lock);
	r = p->pid > 0 && p->reaped && !p->group_done;
	pthread_mutex_unlock(&inst->lock);
	return r;
}

static void mark_done(perch_instance *inst, perch_local_proc *p)
{
	pthread_mutex_lock(&inst->lock);
	p->group_done = true;
	pthread_mutex_unlock(&inst->lock);
}

/* Marks empty groups done; returns how many still have live members. */
static size_t count_live(perch_instance *inst, perch_local_proc *const *v,
			 size_t n)
{
	size_t live = 0;

	for (size_t i = 0; i < n; i++) {
		if (!needs_sweep(inst, v[i]))
			continue;
		if (group_alive(v[i]->pid))
			live++;
		else
			mark_done(inst, v[i]);
	}
	return live;
}

/* Waits until no group in v has live members or deadline_ms passes (or
 * cancel_fd is readable).  Returns how many groups still live. */
static size_t wait_groups(perch_instance *inst, perch_local_proc *const *v,
			  size_t n, int cancel_fd, int64_t deadline_ms)
{
	int64_t tick = TICK_MIN_MS;
	size_t live;

	while ((live = count_live(inst, v, n)) > 0) {
		int64_t left = deadline_ms - pp_mono_ms();
		if (left <= 0)
			break;
		if (nap(cancel_fd, left < tick ? left : tick))
			break;
		if (tick < TICK_MAX_MS)
			tick *= 2;
	}
	return live;
}

void perch_local_sweep(perch_instance *inst, perch_local_proc *const *v,
		       size_t n, int cancel_fd, int64_t grace_ms)
{
	size_t live = 0;

	for (size_t i = 0; i < n; i++) {
		if (!needs_sweep(inst, v[i]))
			continue;
		if (group_alive(v[i]->pid)) {
			(void)kill(-v[i]->pid, SIGTERM);
			(void)kill(-v[i]->pid, SIGCONT); /* stopped ones too */
			live++;
		} else {
			mark_done(inst, v[i]);
		}
	}
	if (live == 0)
		return;
	if (wait_groups(inst, v, n, cancel_fd,
			pp_mono_ms() + (grace_ms > 0 ? grace_ms : 0)) == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (needs_sweep(inst, v[i]))
			(void)kill(-v[i]->pid, SIGKILL);
	if (wait_groups(inst, v, n, -1, pp_mono_ms() + KILL_WAIT_MS) > 0)
		perch_logf(inst->host, PERCH_LOG_ERROR,
			   "local: processes of a finished step survive SIGKILL");
	/* Done either way: never signal these group ids again. */
	for (size_t i = 0; i < n; i++)
		if (needs_sweep(inst, v[i]))
			mark_done(inst, v[i]);
}

void perch_local_signal_group(perch_instance *inst, perch_local_proc *p, int sig)
{
	/* Only while the leader is unreaped: its pid, and so the group id,
	 * cannot have been reused. */
	if (perch_local_try_reap(inst, p))
		return;
	(void)kill(-p->pid, sig);
	(void)kill(-p->pid, SIGCONT);
}

void perch_local_stop(perch_instance *inst, perch_local_proc *const *v,
		      size_t n, int cancel_fd)
{
	int64_t grace_end = pp_mono_ms() + inst->stop_timeout_ms;
	int64_t left = 0;
	bool running = false;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (perch_local_try_reap(inst, v[i]))
			continue;
		(void)kill(-v[i]->pid, SIGTERM);
		(void)kill(-v[i]->pid, SIGCONT);
		running = true;
	}
	r = running ? perch_local_wait_leaders(inst, v, n, cancel_fd, grace_end)
		    : PERCH_LOCAL_WAIT_DONE;
	if (r == PERCH_LOCAL_WAIT_DONE) {
		left = grace_end - pp_mono_ms();
	} else {
		for (size_t i = 0; i < n; i++)
			if (!perch_local_try_reap(inst, v[i]))
				(void)kill(-v[i]->pid, SIGKILL);
		r = perch_local_wait_leaders(inst, v, n, -1,
					     pp_mono_ms() + KILL_WAIT_MS);
		if (r != PERCH_LOCAL_WAIT_DONE)
			for (size_t i = 0; i < n; i++)
				if (!perch_local_try_reap(inst, v[i]))
					perch_logf(inst->host, PERCH_LOG_ERROR,
						   "local: process %d survives "
						   "SIGKILL; leaving it",
						   (int)v[i]->pid);
	}
	/* The rest of the grace (none after a SIGKILL) for what is left in
	 * the groups; a cancelled cleanup context ends it at once. */
	perch_local_sweep(inst, v, n, cancel_fd, left);
}
