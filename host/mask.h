/*
 * mask.h - replacing secret values in log lines by "********".
 *
 * Which parts of a secret are masked (DESIGN.md §4; Woodpecker's
 * NewSecretsReplacer, with two deliberate differences marked *):
 *   - the value is trimmed of surrounding ASCII whitespace (Woodpecker trims
 *     Unicode whitespace; perch only ASCII*);
 *   - a value of 3 bytes or fewer is never masked (lengths are in bytes);
 *   - the value is split on '\n' and each part, trimmed again*, is a
 *     pattern if it is longer than 3 bytes.  Woodpecker masks every
 *     non-empty part, so the 2-byte tail "==" of a PEM block would turn every
 *     "==" in the log into stars; perch applies the same length rule to parts
 *     as to whole values.  Trimming parts makes CRLF secrets and indented
 *     multi-line values match too; it only ever masks more.
 * A single-line secret is thus one pattern and a multi-line one masks line
 * by line: log lines never contain '\n', so no pattern needs to either.
 *
 * Matching is leftmost-longest: at the leftmost position where any pattern
 * occurs, the longest pattern occurring there is replaced, and the search
 * goes on after it (Woodpecker lets the earlier secret win a tie).
 *
 * Speed: a workflow has a handful of secrets but a step may print millions of
 * lines.  So the search is one pass over a whole block of lines for all
 * patterns together (Wu-Manber: a window as long as the shortest pattern
 * jumps ahead by a shift looked up from its last two bytes, and only
 * windows whose last two bytes end some pattern's prefix are compared), and
 * the next match is cached: a line without a secret costs one comparison
 * and is never copied.
 */
#ifndef PERCH_HOST_MASK_H
#define PERCH_HOST_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include <perch/types.h>

/* What a secret is replaced by. */
#define PERCH_MASK_TEXT "********"
#define PERCH_MASK_TEXT_LEN 8

typedef struct perch_masker perch_masker;

/* Builds a masker from n secrets (secrets may be NULL when n is 0; a NULL
 * value is skipped).  The values are copied: secrets may be freed afterwards.
 * The masker is immutable, so any number of threads may use it at once.
 * Never NULL (OOM is fatal).  Free with perch_masker_free. */
perch_masker *perch_masker_new(const perch_secret *secrets, size_t n);
void perch_masker_free(perch_masker *m);

/* The number of distinct patterns (0: nothing to mask) and the length of
 * the longest one (0 when there is none).  m may be NULL (no patterns). */
size_t perch_masker_patterns(const perch_masker *m);
size_t perch_masker_max_len(const perch_masker *m);

/* A malloc'd copy of the n bytes at s with every secret masked, NUL
 * terminated, its length in *out_len (may be NULL).  For short texts such as
 * error messages; the log pipeline uses a perch_mask_scan. */
char *perch_masker_mask(const perch_masker *m, const char *s, size_t n, size_t *out_len);

/*
 * A scan: the matches of every pattern in one block of bytes, found lazily
 * and in increasing order.  It belongs to one thread (the log stream that
 * owns it); the masker it reads is shared.
 */
typedef struct perch_mask_scan {
	const perch_masker *m;
	const char *base;
	size_t len;
	/* The first match at or after hit_from: offset and length, or
	 * hit_pos == SIZE_MAX for none; hit_from == SIZE_MAX: not searched. */
	size_t hit_from, hit_pos, hit_len;
} perch_mask_scan;

/* Prepares sc for m (which must outlive sc; NULL masks nothing).  Never
 * fails; perch_mask_scan_free releases what it holds (nothing today). */
void perch_mask_scan_init(perch_mask_scan *sc, const perch_masker *m);
void perch_mask_scan_free(perch_mask_scan *sc);
/* Starts a new block: the len bytes at base, which must stay unchanged until
 * the next reset.  O(1). */
void perch_mask_scan_reset(perch_mask_scan *sc, const char *base, size_t len);
/* The leftmost-longest match starting at offset from or later: true and its
 * offset and length, or false.  Calls must use non-decreasing from within a
 * block (a smaller from may miss matches). */
bool perch_mask_scan_next(perch_mask_scan *sc, size_t from, size_t *pos, size_t *len);

#endif
