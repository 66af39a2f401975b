/*
 * state.h - the daemon's state directory: files that survive a crash.
 *
 *   <dir>/lock                          flock()ed while a daemon uses <dir>
 *   <dir>/plugins/<name>-<n>.so         plugin copies (see daemon_plugins.c)
 *   <dir>/workflows/<id>/workflow.json  the accepted document (mode 0600:
 *                                       it holds the secrets)
 *   <dir>/workflows/<id>/meta.json      state, backend, times
 *   <dir>/workflows/<id>/result.json    once it ended
 *   <dir>/workflows/<id>/steps/<i>.json a step's progress (i: its index in
 *                                       workflow order)
 *   <dir>/workflows/<id>/steps/<i>.log  its masked log, one line per line:
 *                                       "<elapsed ms> <bytes>\n"
 *
 * Records are replaced atomically (a temporary file, fsync, rename, fsync
 * of the folder), and a workflow's folder appears atomically (built as
 * .tmp-<id>, then renamed): whatever a reader or a restarted daemon finds
 * is a whole, acknowledged record.  Logs are appended with one write(2) per
 * batch of whole lines and not fsync'ed: a killed process loses nothing
 * (the page cache keeps it), and after a power loss the resume point is
 * taken from what the file really holds, so a backend that can resume
 * re-sends what is missing.  A trailing partial line (a write cut short by
 * a full disk) is cut off when the log is reopened.
 *
 * Threads: a perch_store may be used from any thread; the functions touch
 * only the files they name, so callers serialise writes to one record.
 */
#ifndef PERCH_HOST_STATE_H
#define PERCH_HOST_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct perch_store perch_store;

/* Opens (creating it and its folders, mode 0700) and locks dir.  Another
 * daemon holding the lock is an error naming its pid.  Removes leftovers
 * of interrupted writes.  NULL with a malloc'd one-line *err on failure. */
perch_store *perch_store_open(const char *dir, char **err);
/* Unlocks and frees.  NULL is fine. */
void perch_store_close(perch_store *s);

const char *perch_store_dir(const perch_store *s);
/* <dir>/plugins (exists). */
const char *perch_store_plugin_dir(const perch_store *s);

/* Writes data to dir/name atomically with the given mode.  0, or -1 with
 * *err (malloc'd). */
int perch_store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
			     int mode, char **err);

/* Creates workflows/<id>/ holding workflow.json and meta.json (and an empty
 * steps/), all at once.  An existing id is an error. */
int perch_store_create(perch_store *s, const char *id, const char *workflow, size_t workflow_len,
		       const char *meta, char **err);

/* Replaces workflows/<id>/<rel> ("meta.json", "steps/3.json") atomically. */
int perch_store_put(perch_store *s, const char *id, const char *rel, const char *text,
		    char **err);

/* Reads workflows/<id>/<rel> into a malloc'd NUL-terminated buffer; NULL
 * with *err (which may be NULL to ignore it) when missing or unreadable. */
char *perch_store_get(perch_store *s, const char *id, const char *rel, size_t *len, char **err);

/* The ids of every workflow folder, sorted (malloc'd array of malloc'd
 * strings; free with perch_store_free_list). */
char **perch_store_list(perch_store *s, size_t *n);
void perch_store_free_list(char **ids, size_t n);

/* Removes a workflow's folder: renamed away first, so that a crash never
 * leaves half a workflow under its id.  Missing is fine.  0 or -1. */
int perch_store_remove(perch_store *s, const char *id, char **err);

/* workflows/<id>/steps/<index>.log (malloc'd). */
char *perch_store_log_path(const perch_store *s, const char *id, size_t index);

/* Opens a step's log for appending (created mode 0600), cutting off a
 * trailing partial line; *lines gets the complete lines it holds.  The fd
 * (O_CLOEXEC) is the caller's.  -1 with *err on failure. */
int perch_store_open_log(perch_store *s, const char *id, size_t index, uint64_t *lines,
			 char **err);

/* The complete lines a step's log holds (cutting off a partial one), 0
 * when it has none or does not exist. */
uint64_t perch_store_log_lines(perch_store *s, const char *id, size_t index);

/* One persisted log line, parsed: "<elapsed ms> <data>". */
typedef struct perch_store_line {
	int64_t elapsed_ms;
	const char *data; /* not NUL-terminated */
	size_t len;
} perch_store_line;

/* Parses the line at buf[0..n) (without its '\n'); false if malformed. */
bool perch_store_parse_line(const char *buf, size_t n, perch_store_line *out);

#endif
