/* test_mask.c - which parts of secrets are masked, and how matches are
 * chosen (host/mask.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mask.h"
#include "util.h"

/* Masks text with a masker built from the given values (NULL-terminated
 * list) and checks the result. */
static void check_mask(const char *const *values, const char *text, const char *want)
{
	perch_secret sec[16];
	size_t n = 0;
	while (values[n]) {
		sec[n].name = "s";
		sec[n].value = values[n];
		n++;
	}
	perch_masker *m = perch_masker_new(sec, n);
	size_t len = 0;
	char *got = perch_masker_mask(m, text, strlen(text), &len);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(got);
	perch_masker_free(m);
}

#define V(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_simple(void **state)
{
	(void)state;
	check_mask(V("hunter22"), "password is hunter22.", "password is ********.");
	check_mask(V("hunter22"), "hunter22hunter22 x hunter22",
		   "**************** x ********");
	check_mask(V("hunter22"), "nothing here", "nothing here");
	check_mask(V("hunter22"), "", "");
}

static void test_short_secrets_not_masked(void **state)
{
	(void)state;
	check_mask(V("abc"), "abc abcd", "abc abcd");
	/* Trimmed first: "  ab  " is two bytes long. */
	check_mask(V("  ab  "), "ab  ab", "ab  ab");
	check_mask(V(""), "x", "x");
	check_mask(V("abcd"), "abc abcd", "abc ********");
	const perch_secret none[] = {{"a", "xyz"}, {"b", NULL}, {"c", " \t\n"}};
	perch_masker *m = perch_masker_new(none, 3);
	assert_int_equal(perch_masker_patterns(m), 0);
	assert_int_equal(perch_masker_max_len(m), 0);
	perch_masker_free(m);
}

static void test_trimmed(void **state)
{
	(void)state;
	/* Surrounding whitespace is not part of the secret. */
	check_mask(V("  s3cr3t\n"), "[s3cr3t]", "[********]");
}

static void test_multiline(void **state)
{
	(void)state;
	/* Each part longer than 3 bytes is masked on its own; short parts,
	 * here "==" and "ab", are not (see mask.h). */
	const char *const *v = V("-----BEGIN KEY-----\r\nMIIEvQIBADAN\n  ab\n==\n-----END KEY-----\n");
	check_mask(v, "-----BEGIN KEY-----\r", "********\r");
	check_mask(v, "    MIIEvQIBADAN", "    ********");
	check_mask(v, "ab == -----END KEY-----", "ab == ********");
	perch_secret s = {"k", v[0]};
	perch_masker *m = perch_masker_new(&s, 1);
	assert_int_equal(perch_masker_patterns(m), 3);
	assert_int_equal(perch_masker_max_len(m), strlen("-----BEGIN KEY-----"));
	perch_masker_free(m);
}

static void test_overlapping_leftmost_longest(void **state)
{
	(void)state;
	/* Leftmost wins even when a later-starting one is longer. */
	check_mask(V("cdefghijkl", "abcdef"), "xxabcdefghijklyy", "xx********ghijklyy");
	/* At the same position the longest wins, whatever the order. */
	check_mask(V("abcd", "abcdefgh"), "abcdefgh!", "********!");
	check_mask(V("abcdefgh", "abcd"), "abcdefg!", "********efg!");
	/* A secret inside another: masked once, as the longer one. */
	check_mask(V("1234", "012345"), "x012345x1234", "x********x********");
	/* Self-overlap: non-overlapping, left to right. */
	check_mask(V("aaaa"), "aaaaaaaaaa", "****************aa");
}

static void test_duplicates(void **state)
{
	(void)state;
	const perch_secret s[] = {{"a", "samesame"}, {"b", " samesame "}, {"c", "other1"}};
	perch_masker *m = perch_masker_new(s, 3);
	assert_int_equal(perch_masker_patterns(m), 2);
	perch_masker_free(m);
	check_mask(V("samesame", "samesame"), "samesame", "********");
}

static void test_binary(void **state)
{
	(void)state;
	/* Bytes are bytes: invalid UTF-8 around and inside secrets. */
	check_mask(V("\xff\xfe\x80secret"), "a\xff\xfe\x80secret\xc3", "a********\xc3");
}

static void test_null_masker(void **state)
{
	(void)state;
	assert_int_equal(perch_masker_patterns(NULL), 0);
	size_t len;
	char *s = perch_masker_mask(NULL, "abc\0def", 7, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(s, "abc\0def", 7);
	free(s);
	perch_masker *m = perch_masker_new(NULL, 0);
	assert_int_equal(perch_masker_patterns(m), 0);
	perch_masker_free(m);
	perch_masker_free(NULL);
}

static void test_scan(void **state)
{
	(void)state;
	const perch_secret s[] = {{"a", "alpha"}, {"b", "beta"}};
	perch_masker *m = perch_masker_new(s, 2);
	perch_mask_scan sc;
	perch_mask_scan_init(&sc, m);
	const char *text = "beta alpha\nalphabeta x";
	perch_mask_scan_reset(&sc, text, strlen(text));
	size_t pos, len, at = 0;
	size_t want_pos[] = {0, 5, 11, 16};
	size_t want_len[] = {4, 5, 5, 4};
	for (size_t i = 0; i < 4; i++) {
		assert_true(perch_mask_scan_next(&sc, at, &pos, &len));
		assert_int_equal(pos, want_pos[i]);
		assert_int_equal(len, want_len[i]);
		at = pos + len;
	}
	assert_false(perch_mask_scan_next(&sc, at, &pos, &len));
	/* Reset starts over on a new block. */
	perch_mask_scan_reset(&sc, "xbeta", 5);
	assert_true(perch_mask_scan_next(&sc, 0, &pos, &len));
	assert_int_equal(pos, 1);
	perch_mask_scan_free(&sc);
	perch_masker_free(m);
}

/* The obvious leftmost-longest masking, to check the fast one against. */
static char *naive_mask(const char *const *pats, size_t n_pats, const char *t, size_t n)
{
	perch_buf out = {0};
	size_t i = 0;
	while (i < n) {
		size_t best = 0;
		for (size_t k = 0; k < n_pats; k++) {
			size_t l = strlen(pats[k]);
			if (l > best && l <= n - i && memcmp(t + i, pats[k], l) == 0)
				best = l;
		}
		if (best) {
			perch_buf_puts(&out, PERCH_MASK_TEXT);
			i += best;
		} else {
			perch_buf_putc(&out, t[i++]);
		}
	}
	return perch_buf_steal(&out);
}

static uint32_t rnd(uint32_t *state)
{
	*state = *state * 1664525u + 1013904223u;
	return *state >> 8;
}

static void test_against_naive(void **state)
{
	(void)state;
	/* A tiny alphabet makes overlaps, shared prefixes and near misses
	 * common.  Deterministic: a fixed seed. */
	uint32_t seed = 12345;
	for (int round = 0; round < 2000; round++) {
		char pats[6][40];
		const char *pp[6];
		perch_secret sec[6];
		size_t np = 1 + rnd(&seed) % 6;
		for (size_t k = 0; k < np; k++) {
			size_t l = 4 + rnd(&seed) % (round % 2 ? 30 : 6);
			for (size_t j = 0; j < l; j++)
				pats[k][j] = "abc"[rnd(&seed) % 3];
			pats[k][l] = '\0';
			pp[k] = pats[k];
			sec[k].name = "p";
			sec[k].value = pats[k];
		}
		char text[400];
		size_t n = rnd(&seed) % sizeof text;
		for (size_t j = 0; j < n; j++)
			text[j] = "abcc"[rnd(&seed) % 4];
		perch_masker *m = perch_masker_new(sec, np);
		size_t got_len;
		char *got = perch_masker_mask(m, text, n, &got_len);
		char *want = naive_mask(pp, np, text, n);
		if (strcmp(got, want) != 0)
			fail_msg("round %d: got %s want %s", round, got, want);
		free(got);
		free(want);
		perch_masker_free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_short_secrets_not_masked),
		cmocka_unit_test(test_trimmed),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_overlapping_leftmost_longest),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_null_masker),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_against_naive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
