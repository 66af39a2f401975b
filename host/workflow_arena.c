/* workflow_arena.c - the arena that owns a parsed workflow and the string
 * index used for uuid and name look-ups.  See workflow_priv.h. */
#include "config.h"

#include "workflow_priv.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- arena ---------------------------------------------------------------- */

/* Chunks grow geometrically so that a workflow of any size needs few of
 * them; an allocation larger than a chunk gets a chunk of its own. */
#define ARENA_FIRST_CHUNK 4096
#define ARENA_MAX_CHUNK (1024 * 1024)
#define ARENA_ALIGN alignof(max_align_t)

struct perch_arena_chunk {
	struct perch_arena_chunk *next;
	size_t cap, used;
	alignas(max_align_t) unsigned char data[];
};

static void arena_overflow(void)
{
	static const char msg[] = "perch: workflow too large for memory\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing left to do */
	}
	_exit(3);
}

void *perch_arena_alloc(perch_arena *a, size_t n)
{
	struct perch_arena_chunk *c = a->head;
	size_t need;
	void *p;

	if (n > SIZE_MAX / 2)
		arena_overflow();
	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	if (c == NULL || c->cap - c->used < need) {
		size_t cap = c == NULL ? ARENA_FIRST_CHUNK : c->cap * 2;
		if (cap > ARENA_MAX_CHUNK)
			cap = ARENA_MAX_CHUNK;
		if (cap < need)
			cap = need;
		c = perch_xmalloc(sizeof *c + cap);
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	c->used += need;
	memset(p, 0, n);
	return p;
}

void *perch_arena_array(perch_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / 2 / size)
		arena_overflow();
	return perch_arena_alloc(a, n * size);
}

const char *perch_arena_strndup(perch_arena *a, const char *s, size_t n)
{
	char *p;
	if (n == 0)
		return "";
	p = perch_arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void perch_arena_free(perch_arena *a)
{
	struct perch_arena_chunk *c = a->head, *next;
	for (; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

/* --- string index ------------------------------------------------------------ */

/* FNV-1a, 64 bit: short keys (uuids, step names), no adversary worth a
 * keyed hash: a hostile document can at worst slow its own parse. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static perch_index_entry *probe(perch_index_entry *slots, size_t cap, const char *key,
				uint64_t h)
{
	size_t mask = cap - 1, i = (size_t)h & mask;
	for (;;) {
		perch_index_entry *e = &slots[i];
		if (e->key == NULL || (e->hash == h && strcmp(e->key, key) == 0))
			return e;
		i = (i + 1) & mask;
	}
}

perch_index_entry *perch_index_get(const perch_index *ix, const char *key)
{
	perch_index_entry *e;
	if (ix->cap == 0)
		return NULL;
	e = probe(ix->slots, ix->cap, key, hash_str(key));
	return e->key != NULL ? e : NULL;
}

static void grow(perch_index *ix)
{
	size_t cap = ix->cap ? ix->cap * 2 : 16, i;
	perch_index_entry *slots = perch_xcalloc(cap, sizeof *slots);
	for (i = 0; i < ix->cap; i++) {
		perch_index_entry *e = &ix->slots[i];
		if (e->key != NULL)
			*probe(slots, cap, e->key, e->hash) = *e;
	}
	free(ix->slots);
	ix->slots = slots;
	ix->cap = cap;
}

perch_index_entry *perch_index_put(perch_index *ix, const char *key, bool *created)
{
	uint64_t h = hash_str(key);
	perch_index_entry *e;
	/* At most half full, so probes stay short and always end. */
	if ((ix->len + 1) * 2 > ix->cap)
		grow(ix);
	e = probe(ix->slots, ix->cap, key, h);
	*created = e->key == NULL;
	if (*created) {
		e->key = key;
		e->hash = h;
		e->a = e->b = 0;
		ix->len++;
	}
	return e;
}

void perch_index_free(perch_index *ix)
{
	free(ix->slots);
	ix->slots = NULL;
	ix->cap = ix->len = 0;
}
