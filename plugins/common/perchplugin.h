/*
 * perchplugin.h - what the shipped plugins (dummy, local, docker) share:
 * a small convenience library linked statically into each of them, never
 * part of the ABI and never installed (DESIGN.md §1).
 *
 * Like the plugins it sees only the SDK headers and links only libc and
 * pthread.  It is built with -fvisibility=hidden, so none of the names
 * below leaves a plugin: each still exports perch_backend_v1 alone.  The
 * prefix is pp_ ("perch plugin"); host/ has perch_plugin_* of its own.
 *
 * Files, one concern each:
 *   buf.c     a growable byte buffer that latches out-of-memory, and
 *             malloc'd formatting
 *   clock.c   the monotonic and the real-time clock
 *   ctx.c     the cancel descriptor of a call's context
 *   script.c  POSIX shell quoting and the "+ command" trace line
 *   fs.c      mkdir -p, atomic file writes, rm -rf that stays put
 *   thread.c  plugin threads with signals blocked, and writing into the
 *             host's pipe from them
 *
 * Nothing here holds state: every function is thread-safe, except that a
 * pp_buf has one owner at a time.
 */
#ifndef PERCH_PLUGIN_COMMON_H
#define PERCH_PLUGIN_COMMON_H

#include <perch/perch.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__) || defined(__clang__)
#define PP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PP_PRINTF(f, a)
#endif

/* ---- the step calls ---- */

/* The types of perch_backend's workflow and step calls (perch/backend.h),
 * so that a plugin declares its implementations in one line each, e.g.
 * `pp_start_step_fn perch_local_start_step;`.  Contracts (threads,
 * ownership, errors) as documented there. */
typedef perch_status pp_setup_workflow_fn(perch_instance *inst,
					  const perch_ctx *ctx,
					  const perch_config *config,
					  const char *task_uuid,
					  perch_error *err);
typedef perch_status pp_start_step_fn(perch_instance *inst,
				      const perch_ctx *ctx,
				      const perch_step *step,
				      const char *task_uuid, perch_error *err);
typedef perch_status pp_tail_step_fn(perch_instance *inst,
				     const perch_ctx *ctx,
				     const perch_step *step,
				     const char *task_uuid, int *fd,
				     perch_error *err);
typedef perch_status pp_wait_step_fn(perch_instance *inst,
				     const perch_ctx *ctx,
				     const perch_step *step,
				     const char *task_uuid, perch_state *state,
				     perch_error *err);
typedef perch_status pp_destroy_step_fn(perch_instance *inst,
					const perch_ctx *ctx,
					const perch_step *step,
					const char *task_uuid,
					perch_error *err);
typedef perch_status pp_destroy_workflow_fn(perch_instance *inst,
					    const perch_ctx *ctx,
					    const perch_config *config,
					    const char *task_uuid,
					    perch_error *err);

/* ---- ctx.c ---- */

/* The readable-on-cancel descriptor of ctx (host-owned: poll it, never
 * close it), or -1 when ctx is NULL or the host table has none. */
int pp_cancel_fd(const perch_host *host, const perch_ctx *ctx);

/* ---- buf.c ---- */

/* A growable byte buffer, NUL-terminated once anything was added.
 * Zero-initialise to use.  The first failed allocation sets oom and turns
 * later appends into no-ops, so that a builder checks once at the end (a
 * plugin must not exit on OOM).  One owner at a time. */
typedef struct pp_buf {
	char *data;
	size_t len;
	size_t cap;
	bool oom;
} pp_buf;

void pp_buf_add(pp_buf *b, const void *p, size_t n);
void pp_buf_puts(pp_buf *b, const char *s);
void pp_buf_printf(pp_buf *b, const char *fmt, ...) PP_PRINTF(2, 3);
void pp_buf_vprintf(pp_buf *b, const char *fmt, va_list ap) PP_PRINTF(2, 0);
/* Hands the data to the caller (malloc'd; "" when nothing was added) and
 * resets b; NULL (and b freed) when an allocation failed. */
char *pp_buf_steal(pp_buf *b);
void pp_buf_free(pp_buf *b);

/* A malloc'd printf result, or NULL on OOM.  Caller frees. */
char *pp_format(const char *fmt, ...) PP_PRINTF(1, 2);

/* dir + "/" + name (one slash), malloc'd, or NULL on OOM. */
char *pp_path_join(const char *dir, const char *name);

/* ---- clock.c ---- */

/* CLOCK_MONOTONIC in nanoseconds and in milliseconds; CLOCK_REALTIME in
 * nanoseconds since the epoch. */
int64_t pp_mono_ns(void);
int64_t pp_mono_ms(void);
int64_t pp_real_ns(void);

/* ---- script.c ---- */

/* Appends s quoted for a POSIX shell the way Python's shlex.quote does
 * (Woodpecker's shellescape.Quote): bare when s is non-empty and only
 * [A-Za-z0-9_@%+=:,./-], else between single quotes. */
void pp_shell_quote(pp_buf *b, const char *s);

/* Appends the two lines a commands step runs per command:
 *   printf '%s\n' <"+ cmd", quoted>
 *   cmd
 * Woodpecker echoes the trace line; printf is used because dash's, zsh's
 * and busybox's echo interpret backslashes, so echo would log
 * `printf "a\nb"` as two lines.  For ordinary commands the log is the
 * same. */
void pp_script_command(pp_buf *b, const char *cmd);

/* ---- fs.c ---- */

/* mkdir -p path, creating missing components with mode; path must end up
 * a directory.  0, or -1 with errno. */
int pp_mkdirs(const char *path, mode_t mode);

/* fsync of a folder (after a rename or unlink in it).  0, or -1/errno. */
int pp_fsync_dir(const char *dir);

/* Writes data[0..len) to path whole and atomically, with mode: a
 * temporary ".<name>.XXXXXX" beside it (a leading dot, so that listings
 * of record names skip it), then rename.  durable: fsync the file before
 * and its folder after the rename, so that a crash leaves the old content
 * or the new, never half.  0, or -1 with errno and one line in why (what
 * failed, on which file). */
int pp_write_file(const char *path, const void *data, size_t len,
		  mode_t mode, bool durable, char *why, size_t why_len);

/* rm -rf path without following symbolic links and without crossing into
 * other file systems; folders without rwx for the owner (a step's, or Go's
 * module cache) are made accessible first.  Missing is fine.  0, or -1
 * with errno and one line in why. */
int pp_remove_tree(const char *path, char *why, size_t why_len);

/* ---- thread.c ---- */

/* pthread_create with every signal blocked in the new thread: the host's
 * handlers never run on a plugin thread, and a write to a pipe the host
 * closed fails with EPIPE instead of killing the process.  attr may be
 * NULL.  Returns pthread_create's result. */
int pp_thread_start(pthread_t *t, const pthread_attr_t *attr,
		    void *(*fn)(void *), void *arg);

/* Writes all of data to fd (a non-blocking pipe's write end), polling for
 * room; gives up as soon as stop_fd (-1: none) is readable.  0 once all
 * was written; -1 with errno: ECANCELED (stopped), EPIPE (the reader is
 * gone), or the write's error.  Call it on a thread started by
 * pp_thread_start: the SIGPIPE a write to a closed pipe raises stays
 * blocked there, and is taken back before this returns, so that it never
 * reaches the host. */
int pp_write_pipe(int fd, int stop_fd, const void *data, size_t len);

#endif /* PERCH_PLUGIN_COMMON_H */
