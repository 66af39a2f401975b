/*
 * spawn.c - fork/exec of a step into its own process group.
 *
 * The host is multi-threaded, so between fork() and execve() the child may
 * only make async-signal-safe calls: another thread may have held the
 * malloc lock at fork time.  Everything (argv, envp, paths, the signal
 * set, the descriptor limit) is prepared before fork().
 *
 * All signals are blocked in the forking thread around fork(), so that none
 * of the host's handlers runs in the child before the child has reset every
 * disposition to default; the child then unblocks everything, which is the
 * state a fresh process expects (a host that ignores SIGPIPE must not make
 * `yes | head` spin in a step).
 *
 * The child is started with clone(CLONE_VM | CLONE_VFORK) on a small stack
 * of its own, as glibc's posix_spawn() does: fork() must copy the page
 * tables of a large multi-threaded host, which measured 1.4 ms per step;
 * sharing memory until execve() costs almost nothing.  This is safe because
 * the child only makes raw system calls and writes nothing the parent
 * reads (errno aside, which the parent does not look at on success).
 * Under AddressSanitizer, whose bookkeeping cannot follow a foreign stack,
 * plain fork() is used.
 *
 * Exec failures travel back over a close-on-exec pipe: end of stream means
 * execve() succeeded.  posix_spawn() could do most of this too, but closing
 * every descriptor and changing directory need glibc-only extensions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
	STAGE_SETPGID = 1,
	STAGE_FDS = 2,
	STAGE_CHDIR = 3,
	STAGE_EXEC = 4,
};

/* Prepared in the parent, read-only in the child. */
struct child_plan {
	const perch_local_spawn_args *a;
	int devnull;
	int err_pipe;
	int max_fd;
	struct sigaction dfl;
	sigset_t empty;
};

static void child_fail(int efd, int stage)
{
	int msg[2] = {stage, errno};
	ssize_t r = write(efd, msg, sizeof msg);

	(void)r;
	_exit(127);
}

/* close_range(lo, hi) or, on kernels without it, one close() per fd up to
 * max_fd. */
static void close_fds(unsigned lo, unsigned hi, int max_fd)
{
	if (lo > hi)
		return;
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lo, hi, 0u) == 0)
		return;
#endif
	if (hi > (unsigned)max_fd)
		hi = (unsigned)max_fd;
	for (unsigned fd = lo; fd <= hi; fd++)
		(void)close((int)fd);
}

/* Sets sig to SIG_DFL.  glibc's sigaction() refuses the signals it keeps
 * for itself (SIGCANCEL, SIGSETXID), yet an ancestor may have left them
 * ignored, and ignored survives exec: those go to the kernel directly.  An
 * all-zero kernel sigaction is SIG_DFL, no flags, empty mask, on every
 * architecture, whatever the order of its fields. */
static void reset_signal(int sig, const struct sigaction *dfl)
{
	if (sigaction(sig, dfl, NULL) == 0 || errno != EINVAL)
		return;
#ifdef SYS_rt_sigaction
	{
		static const unsigned long zero[16];
		(void)syscall(SYS_rt_sigaction, sig, zero, NULL,
			      (size_t)(_NSIG - 1) / 8);
	}
#endif
}

/* Async-signal-safe calls only from here to execve(). */
static void child_main(const struct child_plan *cp)
{
	const perch_local_spawn_args *a = cp->a;
	int efd = cp->err_pipe, in, out, err;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			reset_signal(sig, &cp->dfl);
	if (setpgid(0, 0) < 0)
		child_fail(efd, STAGE_SETPGID);
	/* Move every descriptor we need above 2 first: when the host runs
	 * with 0-2 closed, a pipe end may itself be 0, 1 or 2. */
	int e2 = fcntl(efd, F_DUPFD_CLOEXEC, 3);
	if (e2 < 0)
		child_fail(efd, STAGE_FDS);
	efd = e2;
	in = fcntl(cp->devnull, F_DUPFD_CLOEXEC, 3);
	out = fcntl(a->out_fd, F_DUPFD_CLOEXEC, 3);
	err = a->err_fd >= 0 ? fcntl(a->err_fd, F_DUPFD_CLOEXEC, 3) : out;
	if (in < 0 || out < 0 || err < 0)
		child_fail(efd, STAGE_FDS);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		child_fail(efd, STAGE_FDS);
	if (a->cwd != NULL && chdir(a->cwd) < 0)
		child_fail(efd, STAGE_CHDIR);
	/* Nothing of the host leaks into the step: close all but 0-2 and
	 * the error pipe (close-on-exec, it goes away at execve). */
	close_fds(3, (unsigned)efd - 1, cp->max_fd);
	close_fds((unsigned)efd + 1, ~0u, cp->max_fd);
	(void)sigprocmask(SIG_SETMASK, &cp->empty, NULL);
	execve(a->path, a->argv, a->envp);
	child_fail(efd, STAGE_EXEC);
}

#if defined(__SANITIZE_ADDRESS__)
#define PERCH_LOCAL_USE_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PERCH_LOCAL_USE_FORK 1
#endif
#endif

#ifndef PERCH_LOCAL_USE_FORK
#define CHILD_STACK (64 * 1024)

static int child_entry(void *arg)
{
	child_main(arg);
	return 127;
}
#endif

/* Starts child_main(cp) in a new process; the parent resumes once the child
 * has exec'd or exited. */
static pid_t start_child(struct child_plan *cp)
{
#ifdef PERCH_LOCAL_USE_FORK
	pid_t pid = fork();
	if (pid == 0)
		child_main(cp); /* never returns */
	return pid;
#else
	void *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	pid_t pid = clone(child_entry, (char *)stack + CHILD_STACK,
			  CLONE_VM | CLONE_VFORK | SIGCHLD, cp);
	int e = errno;
	munmap(stack, CHILD_STACK);
	errno = e;
	return pid;
#endif
}

static int max_fd_guess(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (1u << 20))
		return (int)rl.rlim_cur - 1;
	return (1 << 16) - 1;
}

static const char *stage_name(int stage)
{
	switch (stage) {
	case STAGE_SETPGID: return "setpgid";
	case STAGE_FDS: return "set up descriptors";
	case STAGE_CHDIR: return "chdir";
	default: return "exec";
	}
}

int perch_local_spawn(const perch_local_spawn_args *a, perch_local_proc *proc,
		      char *why, size_t why_len)
{
	struct child_plan cp = {.a = a, .devnull = -1, .err_pipe = -1};
	int ep[2] = {-1, -1}, msg[2], e;
	sigset_t all, old;
	ssize_t got = 0;
	pid_t pid;

	proc->pid = -1;
	proc->pidfd = -1;
	proc->reaped = proc->lost = proc->group_done = false;
	cp.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (cp.devnull < 0) {
		e = errno;
		snprintf(why, why_len, "cannot open /dev/null: %s", strerror(e));
		errno = e;
		return -1;
	}
	if (pipe2(ep, O_CLOEXEC) < 0) {
		e = errno;
		close(cp.devnull);
		snprintf(why, why_len, "cannot create a pipe: %s", strerror(e));
		errno = e;
		return -1;
	}
	cp.err_pipe = ep[1];
	cp.max_fd = max_fd_guess();
	memset(&cp.dfl, 0, sizeof cp.dfl);
	cp.dfl.sa_handler = SIG_DFL;
	sigemptyset(&cp.dfl.sa_mask);
	sigemptyset(&cp.empty);
	sigfillset(&all);

	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = start_child(&cp);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(ep[1]);
	close(cp.devnull);
	if (pid < 0) {
		close(ep[0]);
		snprintf(why, why_len, "cannot fork: %s", strerror(e));
		errno = e;
		return -1;
	}
	/* Also from here, so that no signal to the group can race the
	 * child's own setpgid().  EACCES (it already exec'd) is fine. */
	(void)setpgid(pid, pid);
	for (;;) {
		ssize_t r = read(ep[0], (char *)msg + got, sizeof msg - (size_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
		if ((size_t)got == sizeof msg)
			break;
	}
	close(ep[0]);
	if ((size_t)got == sizeof msg) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		snprintf(why, why_len, "cannot %s %s: %s",
			 stage_name(msg[0]),
			 msg[0] == STAGE_CHDIR && a->cwd ? a->cwd : a->path,
			 strerror(msg[1]));
		errno = msg[1];
		return -1;
	}
	proc->pid = pid;
	return 0;
}
