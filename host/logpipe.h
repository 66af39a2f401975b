/*
 * logpipe.h - a step's log stream: bytes in, numbered, timed, masked lines
 * out to sinks (DESIGN.md §4, woodpecker-backends.md §3.7).
 *
 * The stream takes the step's output as arbitrary chunks (feed, or pump_fd
 * reading a descriptor) and:
 *   - splits it on '\n' into lines; the '\n' is not part of the line, a '\r'
 *     is (bytes are bytes, invalid UTF-8 included);
 *   - cuts a line longer than PERCH_LOG_LINE_MAX bytes into pieces of exactly
 *     that size, each a line of its own, the last one holding the rest (a
 *     line of exactly PERCH_LOG_LINE_MAX bytes stays one line);
 *   - keeps the last line even without a trailing '\n' (emitted by finish);
 *   - numbers lines from 0 and stamps them with the milliseconds since the
 *     step's start, as of the feed that completed them;
 *   - masks secrets (mask.h) on assembled lines, so a secret split across
 *     reads is masked.  A secret that straddles the cut between two pieces
 *     of an over-long line is masked too: each piece shows "********" for
 *     its share of the secret;
 *   - hands each line to every sink; flushes the sinks when at least 250 ms
 *     of log time passed since the last flush, on perch_logstream_flush and
 *     on finish.
 *
 * Costs: no allocation and no syscall per line.  A line that contains no
 * secret is passed to the sinks where it lies, in the caller's buffer; only
 * a line that spans feeds is copied, into the stream's carry buffer (at most
 * PERCH_LOG_LINE_MAX plus the longest secret).
 *
 * Threads: a stream belongs to one thread at a time (typically the one that
 * tails the step); streams of different steps run in parallel and share
 * only the masker (immutable) and the sinks (which lock per batch).
 */
#ifndef PERCH_HOST_LOGPIPE_H
#define PERCH_HOST_LOGPIPE_H

#include <stddef.h>
#include <stdint.h>

#include "logsink.h"
#include "mask.h"

/* The longest line, in bytes before masking (Woodpecker's MaxLogLineLength). */
#define PERCH_LOG_LINE_MAX ((size_t)1024 * 1024)

typedef struct perch_logstream perch_logstream;

/*
 * A stream for one step.  masker may be NULL (mask nothing); it and the
 * sinks must outlive the stream.  step_name and step_uuid are copied.
 * start_ms is the step's start on the caller's clock, which every now_ms
 * passed later must share (perch_mono_ms in the host, anything in tests).
 * Attaches to each of the n_sinks sinks; if one fails, detaches the others
 * and returns NULL with *err set (malloc'd, one line).
 */
perch_logstream *perch_logstream_new(const perch_masker *masker, const char *step_name,
				     const char *step_uuid, int64_t start_ms,
				     perch_logsink *const *sinks, size_t n_sinks, char **err);

/* Takes n more bytes of output read at now_ms.  buf is only read during the
 * call.  Must not follow finish. */
void perch_logstream_feed(perch_logstream *s, const void *buf, size_t n, int64_t now_ms);

/* Pushes what the sinks buffered (e.g. when the step is quiet).  A sink
 * error is kept for finish. */
void perch_logstream_flush(perch_logstream *s, int64_t now_ms);

/*
 * End of stream: emits the last partial line (timed now_ms), flushes and
 * detaches every sink.  Returns 0, or -1 with *err (malloc'd, may be NULL
 * to ignore) naming the first sink error seen during the stream's life.
 * Idempotent; the counters stay readable until free.
 */
int perch_logstream_finish(perch_logstream *s, int64_t now_ms, char **err);

/* Finishes (at the last time fed, ignoring errors) if needed and frees.
 * NULL is fine. */
void perch_logstream_free(perch_logstream *s);

/* Lines emitted so far, and bytes fed so far. */
uint64_t perch_logstream_lines(const perch_logstream *s);
uint64_t perch_logstream_bytes(const perch_logstream *s);

/* A clock for pump_fd: milliseconds on the stream's clock. */
typedef int64_t (*perch_log_clock)(void *arg);

/*
 * Reads fd until end of stream, feeding s and stamping each read with
 * clock(clock_arg) (clock NULL: perch_mono_ms).  While output is buffered
 * in the sinks and fd stays quiet, flushes every 250 ms so the live view
 * keeps up.  If cancel_fd (-1: none) becomes readable, reads what fd has
 * ready without waiting and returns (a step whose stray grandchild keeps the
 * pipe open would otherwise hold the tail forever).  Closes nothing and does
 * not finish the stream.  fd may be blocking or not.
 * Returns 0 at end of stream, 1 when cancelled, -1 with *err (malloc'd) on a
 * read error.
 */
int perch_logstream_pump_fd(perch_logstream *s, int fd, int cancel_fd, perch_log_clock clock,
			    void *clock_arg, char **err);

#endif
