/*
 * fuzz.h - what every fuzz harness shares.
 *
 * A harness is one LLVMFuzzerTestOneInput.  It is built twice:
 *  - by `make fuzz`, with clang -fsanitize=fuzzer,address,undefined, where
 *    libFuzzer supplies main() and mutates inputs;
 *  - by `make check`, with the project's compiler and regress_main.c as
 *    main(), which replays the committed seed and regression inputs, so a
 *    bug found once stays fixed (and this half works under gcc too).
 *
 * An oracle failure calls FUZZ_FAIL, which prints what broke and aborts:
 * libFuzzer then saves the input as a crash, and the replayer dies loudly.
 * Harnesses may keep static state (a temp file), unlike perch itself: each
 * runs in a process of its own.
 */
#ifndef PERCH_FUZZ_H
#define PERCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The libFuzzer entry point: runs the code under test on one input.
 * Returns 0; any broken invariant aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FAIL(...)                                                         \
	do {                                                                   \
		fprintf(stderr, "fuzz oracle failed at %s:%d: ", __FILE__,     \
			__LINE__);                                             \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond))                                                   \
			FUZZ_FAIL(__VA_ARGS__);                                \
	} while (0)

#endif
