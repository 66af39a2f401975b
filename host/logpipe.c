/* logpipe.c - see logpipe.h. */
#include "config.h"

#include "logpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* The live view should lag at most this much behind the step. */
#define FLUSH_INTERVAL_MS 250
/* pump_fd's read size, and the pipe buffer it asks for: with the default
 * 64 KiB pipe the step and the reader take turns sleeping; 1 MiB (the
 * unprivileged maximum by default) makes a chatty step about a third
 * faster. */
#define PUMP_READ_BYTES (1024 * 1024)
/* After cancellation, at most this many ready reads before giving up. */
#define PUMP_DRAIN_READS 64

typedef struct sink_slot {
	perch_logsink *sink;
	void *step;
} sink_slot;

struct perch_logstream {
	const perch_masker *masker;
	bool masking; /* the masker has patterns */
	perch_mask_scan scan;

	char *name;
	char *uuid;
	int64_t start_ms;
	int64_t now_ms; /* time of the chunk being processed */
	int64_t last_flush_ms;
	uint64_t lines_at_flush;

	sink_slot *slots;
	size_t n_slots;

	/*
	 * The unfinished line from earlier feeds.  It never holds a '\n'
	 * except as its last byte, and it is processed as soon as it gets
	 * one or fills up, so it stays below carry_max.
	 */
	char *carry;
	size_t carry_len, carry_cap;
	size_t carry_max; /* PERCH_LOG_LINE_MAX + lookahead */
	/*
	 * Bytes that must follow a cut before the piece in front of it can be
	 * emitted: 1 to see that the line goes on, and enough for the
	 * longest secret that may start before the cut to be seen whole.
	 */
	size_t lookahead;
	/* Bytes at the start of the next piece that belong to a secret
	 * already masked at the end of the previous piece. */
	size_t skip;

	perch_buf masked; /* the masked copy of the current line, reused */
	uint64_t lines;
	uint64_t bytes;
	char *err; /* the first sink error */
	bool finished;
};

static void keep_error(perch_logstream *s, char *e)
{
	if (s->err == NULL)
		s->err = e;
	else
		free(e);
}

static void deliver(perch_logstream *s, const char *data, size_t len)
{
	int64_t el = s->now_ms - s->start_ms;
	perch_log_line line = {
		.step_name = s->name,
		.step_uuid = s->uuid,
		.number = s->lines++,
		.elapsed_ms = el > 0 ? el : 0,
		.data = data,
		.len = len,
	};
	for (size_t i = 0; i < s->n_slots; i++)
		s->slots[i].sink->ops->write(s->slots[i].step, &line);
}

/*
 * Emits the line or piece base[off, off + len) of the current block.  cut:
 * the line goes on after it (it is a piece of an over-long line), so a
 * secret may straddle its end.
 */
static void emit(perch_logstream *s, const char *base, size_t off, size_t len, bool cut)
{
	size_t end = off + len, at = off;
	perch_buf *out = &s->masked;
	bool copied = false;

	if (s->skip) {
		size_t k = s->skip < len ? s->skip : len;
		out->len = 0;
		perch_buf_append(out, PERCH_MASK_TEXT, PERCH_MASK_TEXT_LEN);
		copied = true;
		at += k;
		s->skip = cut ? s->skip - k : 0;
	}
	if (s->masking) {
		size_t pos, mlen;
		while (at < end && perch_mask_scan_next(&s->scan, at, &pos, &mlen) && pos < end) {
			if (!copied) {
				out->len = 0;
				copied = true;
			}
			perch_buf_append(out, base + at, pos - at);
			perch_buf_append(out, PERCH_MASK_TEXT, PERCH_MASK_TEXT_LEN);
			if (pos + mlen > end) {
				/* Straddles the cut: the next piece starts with
				 * the rest of this secret. */
				s->skip = pos + mlen - end;
				at = end;
				break;
			}
			at = pos + mlen;
		}
	}
	if (!copied) {
		deliver(s, base + off, len);
		return;
	}
	perch_buf_append(out, base + at, end - at);
	deliver(s, out->data, out->len);
}

/*
 * Emits every line of the n bytes at base that can be emitted now (all of
 * them at eof) and returns how many bytes that consumed.  What is left has
 * no '\n' and is shorter than carry_max.
 */
static size_t process(perch_logstream *s, const char *base, size_t n, bool eof)
{
	size_t p = 0;
	if (s->masking)
		perch_mask_scan_reset(&s->scan, base, n);
	while (p < n) {
		size_t avail = n - p;
		size_t look = avail < PERCH_LOG_LINE_MAX + 1 ? avail : PERCH_LOG_LINE_MAX + 1;
		const char *nl = memchr(base + p, '\n', look);
		if (nl) {
			size_t len = (size_t)(nl - (base + p));
			emit(s, base, p, len, false);
			p += len + 1;
			continue;
		}
		if (avail > PERCH_LOG_LINE_MAX) {
			/* Longer than a line may be: cut a piece, once the
			 * bytes after the cut are known well enough. */
			size_t after = avail - PERCH_LOG_LINE_MAX;
			if (!eof && after < s->lookahead &&
			    !memchr(base + p + PERCH_LOG_LINE_MAX, '\n', after))
				break;
			emit(s, base, p, PERCH_LOG_LINE_MAX, true);
			p += PERCH_LOG_LINE_MAX;
			continue;
		}
		if (eof) {
			emit(s, base, p, avail, false);
			p = n;
		}
		break;
	}
	return p;
}

static void carry_append(perch_logstream *s, const char *p, size_t n)
{
	size_t need = s->carry_len + n;
	if (need > s->carry_cap) {
		size_t cap = s->carry_cap ? s->carry_cap : 4096;
		while (cap < need)
			cap *= 2;
		if (cap > s->carry_max)
			cap = s->carry_max;
		s->carry = perch_xrealloc(s->carry, cap);
		s->carry_cap = cap;
	}
	memcpy(s->carry + s->carry_len, p, n);
	s->carry_len = need;
}

static void carry_process(perch_logstream *s, bool eof)
{
	size_t used = process(s, s->carry, s->carry_len, eof);
	if (used < s->carry_len)
		memmove(s->carry, s->carry + used, s->carry_len - used);
	s->carry_len -= used;
}

static void flush_sinks(perch_logstream *s)
{
	for (size_t i = 0; i < s->n_slots; i++) {
		char *e = NULL;
		if (s->slots[i].sink->ops->flush(s->slots[i].step, &e) < 0)
			keep_error(s, e);
	}
	s->last_flush_ms = s->now_ms;
	s->lines_at_flush = s->lines;
}

perch_logstream *perch_logstream_new(const perch_masker *masker, const char *step_name,
				     const char *step_uuid, int64_t start_ms,
				     perch_logsink *const *sinks, size_t n_sinks, char **err)
{
	perch_logstream *s = perch_xcalloc(1, sizeof *s);
	s->name = perch_xstrdup(step_name ? step_name : "");
	s->uuid = perch_xstrdup(step_uuid ? step_uuid : "");
	s->slots = perch_xcalloc(n_sinks, sizeof *s->slots);
	for (size_t i = 0; i < n_sinks; i++) {
		void *st = sinks[i]->ops->attach(sinks[i], s->name, s->uuid, err);
		if (st == NULL) {
			for (size_t j = 0; j < s->n_slots; j++) {
				char *e = NULL;
				if (s->slots[j].sink->ops->detach(s->slots[j].step, &e) < 0)
					free(e);
			}
			free(s->slots);
			free(s->name);
			free(s->uuid);
			free(s);
			return NULL;
		}
		s->slots[s->n_slots].sink = sinks[i];
		s->slots[s->n_slots].step = st;
		s->n_slots++;
	}
	s->masker = masker;
	s->masking = perch_masker_patterns(masker) > 0;
	perch_mask_scan_init(&s->scan, masker);
	size_t longest = perch_masker_max_len(masker);
	s->lookahead = longest > 2 ? longest - 1 : 1;
	s->carry_max = PERCH_LOG_LINE_MAX + s->lookahead;
	s->start_ms = s->now_ms = s->last_flush_ms = start_ms;
	return s;
}

void perch_logstream_feed(perch_logstream *s, const void *buf, size_t n, int64_t now_ms)
{
	const char *p = buf;
	if (s->finished)
		return;
	s->now_ms = now_ms;
	s->bytes += n;
	while (n > 0) {
		if (s->carry_len == 0) {
			/* Whole lines straight from the caller's buffer. */
			size_t used = process(s, p, n, false);
			if (used < n)
				carry_append(s, p + used, n - used);
			break;
		}
		/* Complete the carried line first: up to its '\n' or until
		 * the carry is full, never beyond. */
		size_t room = s->carry_max - s->carry_len;
		size_t look = n < room ? n : room;
		const char *nl = memchr(p, '\n', look);
		size_t take = nl ? (size_t)(nl - p) + 1 : look;
		carry_append(s, p, take);
		p += take;
		n -= take;
		if (nl || s->carry_len == s->carry_max)
			carry_process(s, false);
	}
	if (s->now_ms - s->last_flush_ms >= FLUSH_INTERVAL_MS)
		flush_sinks(s);
}

void perch_logstream_flush(perch_logstream *s, int64_t now_ms)
{
	if (s->finished)
		return;
	s->now_ms = now_ms;
	flush_sinks(s);
}

int perch_logstream_finish(perch_logstream *s, int64_t now_ms, char **err)
{
	if (!s->finished) {
		s->now_ms = now_ms;
		if (s->carry_len > 0)
			carry_process(s, true);
		s->skip = 0;
		for (size_t i = 0; i < s->n_slots; i++) {
			char *e = NULL;
			if (s->slots[i].sink->ops->detach(s->slots[i].step, &e) < 0)
				keep_error(s, e);
		}
		s->n_slots = 0;
		s->finished = true;
		free(s->carry);
		s->carry = NULL;
		s->carry_cap = 0;
		perch_buf_free(&s->masked);
	}
	if (s->err == NULL)
		return 0;
	if (err)
		*err = perch_xstrdup(s->err);
	return -1;
}

void perch_logstream_free(perch_logstream *s)
{
	if (s == NULL)
		return;
	perch_logstream_finish(s, s->now_ms, NULL);
	perch_mask_scan_free(&s->scan);
	free(s->slots);
	free(s->name);
	free(s->uuid);
	free(s->err);
	free(s);
}

uint64_t perch_logstream_lines(const perch_logstream *s)
{
	return s->lines;
}

uint64_t perch_logstream_bytes(const perch_logstream *s)
{
	return s->bytes;
}

static int64_t mono_clock(void *arg)
{
	(void)arg;
	return perch_mono_ms();
}

int perch_logstream_pump_fd(perch_logstream *s, int fd, int cancel_fd, perch_log_clock clock,
			    void *clock_arg, char **err)
{
	if (clock == NULL)
		clock = mono_clock;
#ifdef F_SETPIPE_SZ
	/* Best effort: over the user's pipe quota the default size works,
	 * only slower. */
	struct stat sb;
	if (fstat(fd, &sb) == 0 && S_ISFIFO(sb.st_mode) && fcntl(fd, F_GETPIPE_SZ) < PUMP_READ_BYTES)
		(void)fcntl(fd, F_SETPIPE_SZ, PUMP_READ_BYTES);
#endif
	char *buf = perch_xmalloc(PUMP_READ_BYTES);
	int rc = 0;
	bool cancelled = false;
	unsigned drained = 0;
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = fd, .events = POLLIN},
			{.fd = cancel_fd, .events = POLLIN},
		};
		int timeout = -1;
		if (cancelled)
			timeout = 0;
		else if (s->lines != s->lines_at_flush) {
			int64_t left = s->last_flush_ms + FLUSH_INTERVAL_MS - clock(clock_arg);
			timeout = left < 0 ? 0 : left > FLUSH_INTERVAL_MS ? FLUSH_INTERVAL_MS : (int)left;
		}
		int r = poll(pfd, cancel_fd >= 0 && !cancelled ? 2 : 1, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			*err = perch_xasprintf("log of step %s: poll: %s", s->name, strerror(errno));
			rc = -1;
			break;
		}
		if (r == 0) {
			if (cancelled) {
				rc = 1;
				break;
			}
			perch_logstream_flush(s, clock(clock_arg));
			continue;
		}
		/* An invalid cancel fd counts as cancelled, not as a spin. */
		if (!cancelled && cancel_fd >= 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
			cancelled = true;
		if (pfd[0].revents == 0)
			continue; /* only the cancel fd: drain with timeout 0 */
		if (cancelled && drained++ >= PUMP_DRAIN_READS) {
			rc = 1;
			break;
		}
		ssize_t got = read(fd, buf, PUMP_READ_BYTES);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			*err = perch_xasprintf("log of step %s: read: %s", s->name, strerror(errno));
			rc = -1;
			break;
		}
		if (got == 0)
			break; /* end of stream (even if also cancelled) */
		perch_logstream_feed(s, buf, (size_t)got, clock(clock_arg));
	}
	free(buf);
	return rc;
}
