/*
 * workflow_priv.h - what the workflow_*.c files share and nobody else sees:
 * the arena that owns a parsed workflow, a string-keyed hash index, and the
 * JSON text helpers (UTF-8, Go-style string escaping).
 *
 * Threads: nothing here is shared between threads; each parse has its own.
 */
#ifndef PERCH_HOST_WORKFLOW_PRIV_H
#define PERCH_HOST_WORKFLOW_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"
#include "workflow.h"

/* --- arena (workflow_arena.c) ------------------------------------------- */

/* Bump allocator: many small allocations, one free.  Zero-initialise. */
typedef struct perch_arena {
	struct perch_arena_chunk *head;
} perch_arena;

/* n bytes, zeroed, aligned for any type; never NULL (OOM is fatal), also
 * for n == 0, so that "an empty list that was given" has a pointer. */
void *perch_arena_alloc(perch_arena *a, size_t n);
/* n * size bytes as above; refuses (fatally) a product that overflows. */
void *perch_arena_array(perch_arena *a, size_t n, size_t size);
/* A NUL-terminated copy of s[0..n). "" for n == 0 (not arena memory). */
const char *perch_arena_strndup(perch_arena *a, const char *s, size_t n);
void perch_arena_free(perch_arena *a);

/* --- string index (workflow_arena.c) ------------------------------------- */

/* An open-addressing hash from borrowed C strings to two size_t values.
 * Zero-initialise; perch_index_free releases it.  Keys must outlive it. */
typedef struct perch_index_entry {
	const char *key; /* NULL: empty slot */
	uint64_t hash;
	size_t a, b;
} perch_index_entry;

typedef struct perch_index {
	perch_index_entry *slots;
	size_t cap; /* a power of two, or 0 */
	size_t len;
} perch_index;

/* The entry for key, or NULL. */
perch_index_entry *perch_index_get(const perch_index *ix, const char *key);
/* The entry for key; a new one (a = b = 0) when *created is set. */
perch_index_entry *perch_index_put(perch_index *ix, const char *key, bool *created);
void perch_index_free(perch_index *ix);

/* --- the parsed workflow's private part ---------------------------------- */

struct perch_workflow_priv {
	perch_arena arena;
	/* uuid -> a: stage index, b: step index */
	perch_index uuids;
};

/* Fills wf->config from the json-c value root (a JSON object) and checks
 * it.  On failure returns false and sets *err (malloc'd, one line, prefixed
 * with source).  workflow_decode.c. */
struct json_object;
bool perch_workflow_decode(perch_workflow *wf, struct json_object *root, const char *source,
			   char **err);

/* Checks the depends_on of one stage (workflow_check.c): each entry names
 * exactly one other step of the stage, and there is no cycle.  On failure
 * returns false and sets *rel_path to the offending place below the stage
 * (".steps[1].depends_on[0]", or "" for the stage itself) and *what to the
 * reason; both malloc'd, caller frees. */
bool perch_workflow_check_stage(const perch_stage *stage, char **rel_path, char **what);

/* --- JSON text (workflow_text.c) ----------------------------------------- */

/* Decodes one UTF-8 sequence at s[0..n), n > 0.  Returns its length (1-4)
 * and sets *cp, or returns 0 when the bytes are not valid UTF-8 (overlong
 * forms, surrogates and values above U+10FFFF are invalid). */
size_t perch_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Appends s[0..n) as a quoted JSON string the way Go's encoding/json does
 * with HTML escaping: \" \\ \b \f \n \r \t, other controls as \u00XX,
 * < > & as \u003c \u003e \u0026, U+2028 and U+2029 escaped, invalid UTF-8
 * as \ufffd. */
void perch_json_put_string(perch_buf *b, const char *s, size_t n);

/* Appends s quoted for an error message: like JSON but without HTML
 * escaping, so only quotes, backslashes and control characters change.  The
 * result never contains a newline. */
void perch_json_put_message_string(perch_buf *b, const char *s);

/* The 1-based line and column (in characters) of data[off]. */
void perch_json_position(const char *data, size_t off, size_t *line, size_t *column);

#endif
