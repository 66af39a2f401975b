/* mask.c - see mask.h. */
#include "config.h"

#include "mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Shorter values are never masked (Woodpecker's rule, in bytes). */
#define MIN_SECRET_LEN 4

/* Scan cache states (perch_mask_scan.hit_from / hit_pos). */
#define UNSEARCHED SIZE_MAX
#define NO_HIT SIZE_MAX
/* The search window is as long as the shortest pattern, but at most this,
 * so that shifts fit a byte. */
#define WINDOW_MAX 255

typedef struct pattern {
	char *s;
	size_t len;
} pattern;

/* A pattern whose window ends with the two bytes h. */
typedef struct candidate {
	uint32_t h;
	uint32_t pat;
} candidate;

struct perch_masker {
	/* Longest first, so that the first pattern found at a position is the
	 * longest one there. */
	pattern *pats;
	size_t n;
	size_t max_len;
	/* Wu-Manber with blocks of two bytes.  A window of w bytes (the
	 * shortest pattern's length, capped) slides over the text; shift[h]
	 * is how far it may jump when its last two bytes are h without
	 * passing an occurrence, 0 when h ends some pattern's first w bytes.
	 * Those patterns are in cands, sorted by h, then longest first. */
	size_t w;
	uint8_t *shift; /* 65536 entries; NULL without patterns */
	candidate *cands;
	/* Bit h set: some pattern starts with the two bytes h.  Rejects most
	 * windows that pass the shift test (say, inside a run of 's' when a
	 * secret holds "ss") before the candidate lookup. */
	uint8_t *starts; /* 65536 bits */
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Narrows [*s, *s + *n) to its part without surrounding ASCII whitespace. */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

static void add_pattern(perch_masker *m, size_t *cap, const char *s, size_t n)
{
	if (n < MIN_SECRET_LEN)
		return;
	if (m->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		m->pats = perch_xrealloc(m->pats, *cap * sizeof *m->pats);
	}
	m->pats[m->n].s = perch_xstrndup(s, n);
	m->pats[m->n].len = n;
	m->n++;
	if (n > m->max_len)
		m->max_len = n;
}

static int cmp_pattern(const void *a, const void *b)
{
	const pattern *pa = a, *pb = b;
	if (pa->len != pb->len)
		return pa->len > pb->len ? -1 : 1;
	return memcmp(pa->s, pb->s, pa->len);
}

static unsigned block(const char *p)
{
	return (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}

static int cmp_candidate(const void *a, const void *b)
{
	const candidate *ca = a, *cb = b;
	if (ca->h != cb->h)
		return ca->h < cb->h ? -1 : 1;
	return ca->pat < cb->pat ? -1 : ca->pat > cb->pat;
}

static void build_tables(perch_masker *m)
{
	size_t w = m->pats[m->n - 1].len; /* the shortest, >= MIN_SECRET_LEN */
	if (w > WINDOW_MAX)
		w = WINDOW_MAX;
	m->w = w;
	m->shift = perch_xmalloc(65536);
	memset(m->shift, (int)(w - 1), 65536);
	m->cands = perch_xcalloc(m->n, sizeof *m->cands);
	m->starts = perch_xcalloc(65536 / 8, 1);
	for (size_t i = 0; i < m->n; i++) {
		const char *p = m->pats[i].s;
		unsigned first = block(p);
		m->starts[first >> 3] |= (uint8_t)(1u << (first & 7));
		/* The block ending at q may end the window w - 1 - q bytes
		 * later than here. */
		for (size_t q = 1; q < w; q++) {
			unsigned h = block(p + q - 1);
			if (m->shift[h] > w - 1 - q)
				m->shift[h] = (uint8_t)(w - 1 - q);
		}
		m->cands[i].h = block(p + w - 2);
		m->cands[i].pat = (uint32_t)i;
	}
	qsort(m->cands, m->n, sizeof *m->cands, cmp_candidate);
}

perch_masker *perch_masker_new(const perch_secret *secrets, size_t n)
{
	perch_masker *m = perch_xcalloc(1, sizeof *m);
	size_t cap = 0;
	for (size_t i = 0; i < n; i++) {
		const char *v = secrets[i].value;
		if (v == NULL)
			continue;
		size_t len = strlen(v);
		trim(&v, &len);
		if (len < MIN_SECRET_LEN)
			continue;
		const char *end = v + len;
		while (v < end) {
			const char *nl = memchr(v, '\n', (size_t)(end - v));
			const char *part_end = nl ? nl : end;
			const char *part = v;
			size_t part_len = (size_t)(part_end - v);
			trim(&part, &part_len);
			add_pattern(m, &cap, part, part_len);
			v = nl ? nl + 1 : end;
		}
	}
	if (m->n > 1) {
		qsort(m->pats, m->n, sizeof *m->pats, cmp_pattern);
		size_t out = 1;
		for (size_t i = 1; i < m->n; i++) {
			if (cmp_pattern(&m->pats[out - 1], &m->pats[i]) == 0) {
				free(m->pats[i].s);
				continue;
			}
			m->pats[out++] = m->pats[i];
		}
		m->n = out;
	}
	if (m->n > 0)
		build_tables(m);
	return m;
}

void perch_masker_free(perch_masker *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->pats[i].s);
	free(m->pats);
	free(m->shift);
	free(m->cands);
	free(m->starts);
	free(m);
}

size_t perch_masker_patterns(const perch_masker *m)
{
	return m ? m->n : 0;
}

size_t perch_masker_max_len(const perch_masker *m)
{
	return m ? m->max_len : 0;
}

void perch_mask_scan_init(perch_mask_scan *sc, const perch_masker *m)
{
	sc->m = m;
	sc->base = NULL;
	sc->len = 0;
	sc->hit_from = UNSEARCHED;
	sc->hit_pos = NO_HIT;
	sc->hit_len = 0;
}

void perch_mask_scan_free(perch_mask_scan *sc)
{
	sc->base = NULL;
}

void perch_mask_scan_reset(perch_mask_scan *sc, const char *base, size_t len)
{
	sc->base = base;
	sc->len = len;
	sc->hit_from = UNSEARCHED;
}

/* The leftmost-longest match in t[from, n), by Wu-Manber. */
static bool search(const perch_masker *m, const char *t, size_t n, size_t from, size_t *pos,
		   size_t *len)
{
	size_t w = m->w;
	if (n < w)
		return false;
	size_t i = from, last = n - w; /* the last window start */
	const uint8_t *shift = m->shift;
	const size_t far = w - 1; /* the shift of a block no pattern has */
	while (i <= last) {
		/* The common case, in a loop of its own: a constant stride
		 * keeps the next load independent of this one, so the CPU
		 * runs ahead instead of waiting for each table lookup. */
		while (shift[block(t + i + w - 2)] == far) {
			i += far;
			if (i > last)
				return false;
		}
		unsigned h = block(t + i + w - 2);
		size_t sh = shift[h];
		if (sh) {
			i += sh;
			continue;
		}
		unsigned first = block(t + i);
		if (!(m->starts[first >> 3] & (1u << (first & 7)))) {
			i++;
			continue;
		}
		/* Lower bound of h among the candidates. */
		size_t lo = 0, hi = m->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (m->cands[mid].h < h)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < m->n && m->cands[lo].h == h; lo++) {
			const pattern *p = &m->pats[m->cands[lo].pat];
			if (p->len <= n - i && memcmp(t + i, p->s, p->len) == 0) {
				*pos = i;
				*len = p->len;
				return true;
			}
		}
		i++;
	}
	return false;
}

bool perch_mask_scan_next(perch_mask_scan *sc, size_t from, size_t *pos, size_t *len)
{
	if (perch_masker_patterns(sc->m) == 0)
		return false;
	/* The cached answer holds while from has not passed the hit: nothing
	 * matched between hit_from and hit_pos. */
	if (sc->hit_from == UNSEARCHED || sc->hit_from > from ||
	    (sc->hit_pos != NO_HIT && sc->hit_pos < from)) {
		sc->hit_from = from;
		if (!search(sc->m, sc->base, sc->len, from, &sc->hit_pos, &sc->hit_len))
			sc->hit_pos = NO_HIT;
	}
	if (sc->hit_pos == NO_HIT)
		return false;
	*pos = sc->hit_pos;
	*len = sc->hit_len;
	return true;
}

char *perch_masker_mask(const perch_masker *m, const char *s, size_t n, size_t *out_len)
{
	perch_buf out = {0};
	perch_mask_scan sc;
	perch_mask_scan_init(&sc, m);
	perch_mask_scan_reset(&sc, s, n);
	size_t at = 0, pos, len;
	while (at < n && perch_mask_scan_next(&sc, at, &pos, &len)) {
		perch_buf_append(&out, s + at, pos - at);
		perch_buf_append(&out, PERCH_MASK_TEXT, PERCH_MASK_TEXT_LEN);
		at = pos + len;
	}
	perch_buf_append(&out, s + at, n - at);
	perch_mask_scan_free(&sc);
	if (out_len)
		*out_len = out.len;
	return perch_buf_steal(&out);
}
