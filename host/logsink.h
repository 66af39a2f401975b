/*
 * logsink.h - where a step's log lines go: the terminal (text), JSON lines,
 * one file per step in a logs directory, or any sink that implements
 * perch_logsink_ops.
 *
 * A sink is shared by every step of a run; each step attaches to it once
 * (perch_logstream_new does that) and gets private per-step state, so the
 * hot path (write) takes no lock.  Lines are buffered per step and written
 * out in batches of whole lines: when the step's buffer fills up, on flush
 * (the stream flushes at least every 250 ms of log time and when idle) and
 * on detach.  The text and JSON sinks take the sink's lock once per batch,
 * so the lines of concurrent steps never interleave mid-line.
 *
 * Errors: a failed write is remembered by the step's state; from then on
 * the step's lines to that sink are dropped, and flush and detach report
 * the error as one line naming the destination.
 */
#ifndef PERCH_HOST_LOGSINK_H
#define PERCH_HOST_LOGSINK_H

#include <stddef.h>
#include <stdint.h>

/* One line of a step's log.  Everything it points to is owned by the
 * caller and valid only during the call it is passed to. */
typedef struct perch_log_line {
	const char *step_name;
	const char *step_uuid;
	uint64_t number;    /* per step, from 0 */
	int64_t elapsed_ms; /* since the step's start, >= 0 */
	const char *data;   /* masked text without the '\n'; any bytes, not NUL-terminated */
	size_t len;         /* <= PERCH_LOG_LINE_MAX bytes before masking */
} perch_log_line;

typedef struct perch_logsink perch_logsink;

/*
 * What a sink implements.  attach, flush, detach may run concurrently for
 * different steps; write, flush and detach for one step are called by that
 * step's thread only, in order, and never after detach.  destroy runs once,
 * after every step has detached.
 */
typedef struct perch_logsink_ops {
	/* Per-step state for a step that starts logging: non-NULL, or NULL
	 * and *err set to a malloc'd one-line reason. */
	void *(*attach)(perch_logsink *sink, const char *step_name, const char *step_uuid,
			char **err);
	/* Takes one line.  Must not fail loudly: remember errors. */
	void (*write)(void *step, const perch_log_line *line);
	/* Pushes buffered lines out.  0, or -1 and *err (malloc'd) set. */
	int (*flush)(void *step, char **err);
	/* Flushes and releases the per-step state, even on error. */
	int (*detach)(void *step, char **err);
	void (*destroy)(perch_logsink *sink);
} perch_logsink_ops;

/* Every sink begins with this; implementations embed it first. */
struct perch_logsink {
	const perch_logsink_ops *ops;
};

/*
 * Terminal text, Woodpecker CLI format: "[<step name>:L<line>:<seconds>s]
 * <text>\n" (seconds since the step's start, rounded down; the text's bytes
 * as they are).  Writes with write(2) to fd, which the caller owns and keeps
 * open until the sink is freed; anything the caller printed to the same fd
 * through stdio must be fflush'ed before the steps start.  Never NULL.
 */
perch_logsink *perch_logsink_text_new(int fd);

/*
 * JSON lines: one object per line,
 *   {"step":"<name>","uuid":"<uuid>","line":12,"time":3,"time_ms":3456,"data":"<text>"}
 * where time is whole seconds (as Woodpecker's LogEntry) and time_ms the
 * milliseconds.  Strings are always valid JSON and UTF-8: each byte that is
 * not part of a well-formed UTF-8 sequence becomes U+FFFD, written as
 * \ufffd; control characters are escaped.  Same fd rules as the text sink.
 */
perch_logsink *perch_logsink_json_new(int fd);

/*
 * A logs directory: one file per step holding its masked lines, each
 * followed by '\n'.  The file is "<name>.log", the name sanitised ('/' and
 * control characters become '_', an empty name is "step", at most 200
 * bytes); when that file name is already taken by an earlier step of this
 * sink, the later step gets "<name>-<uuid>.log" (then "-2", "-3", ... should
 * that be taken too).  Files are created mode 0644 (before umask),
 * truncating an existing file of the same name.  Use one sink per workflow:
 * it remembers every name it handed out.
 *
 * dir is created (with its parents, mode 0755) if missing.  Returns NULL
 * and sets *err (malloc'd, one line naming the path) if dir cannot be
 * created or opened or is not a directory.
 */
perch_logsink *perch_logsink_dir_new(const char *dir, char **err);

/* "<name>" sanitised as above, malloc'd (exposed for tests). */
char *perch_logsink_file_stem(const char *step_name);

/* Frees a sink (any kind; NULL is fine).  Every step must have detached. */
void perch_logsink_free(perch_logsink *sink);

/*
 * Appends the JSON string escape of the n bytes at s (without quotes) to
 * out, which must have room for 6 * n bytes; returns the bytes written.
 * Thread-safe (exposed for tests and other JSON writers).
 */
size_t perch_json_escape(char *out, const char *s, size_t n);

/* Writes v in decimal to out (room for 20 bytes); returns the length. */
size_t perch_fmt_u64(char *out, uint64_t v);

#endif
