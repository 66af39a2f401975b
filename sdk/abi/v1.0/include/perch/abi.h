/*
 * perch/abi.h - versions, status codes, the error buffer and the
 * struct_size rule that every other SDK header relies on.
 *
 * The perch plugin ABI is header-only: a plugin includes these headers and
 * links nothing of perch.  Everything a plugin needs from the host arrives
 * through the perch_host table (perch/host.h) at run time.
 *
 * Versioning (DESIGN.md section 3):
 *  - PERCH_ABI_MAJOR is part of the entry symbol's name (perch_backend_v1).
 *    A major bump renames the symbol, so an old host reports "not a perch v1
 *    plugin" instead of misreading a struct.
 *  - PERCH_ABI_MINOR is informational.  Hosts never compare minors to gate
 *    features: a field is usable when struct_size covers it, a capability when
 *    get_capability() returns it.
 */
#ifndef PERCH_ABI_H
#define PERCH_ABI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PERCH_ABI_MAJOR 1
#define PERCH_ABI_MINOR 0

/* Makes the one entry object visible while the plugin is built with
 * -fvisibility=hidden (which perch recommends for everything else). */
#if defined(__GNUC__) || defined(__clang__)
#define PERCH_EXPORT __attribute__((visibility("default")))
#else
#define PERCH_EXPORT
#endif

/*
 * The struct_size rule.  Every struct that crosses the boundary and may grow
 * starts with `uint32_t struct_size`, set by whoever allocated it to the
 * sizeof() it was compiled with.  Fields are only ever appended, and a new
 * field starts at or after the struct's previous sizeof() - never in its
 * tail padding, which an older writer need not have zeroed.  A reader (or a
 * writer into a buffer it did not allocate) touches a field only when
 * struct_size covers it; a field that is not covered is absent (zero/NULL).
 * `make abi-check` enforces this against the committed v1 baseline.
 */
#define PERCH_HAS_FIELD(ptr, type, field)                                     \
	((ptr) != NULL &&                                                      \
	 (size_t)(ptr)->struct_size >=                                         \
		 offsetof(type, field) + sizeof(((type *)0)->field))

/*
 * Status codes.  Every ABI call that can fail returns one and may fill a
 * perch_error with a human sentence.  Codes are stable forever; new ones are
 * appended.  A host treats an unknown non-zero code like PERCH_ERR.
 */
typedef int32_t perch_status;
enum {
	PERCH_OK = 0,
	PERCH_ERR = 1,                /* failed, no more specific code */
	PERCH_ERR_NOT_FOUND = 2,      /* no such workflow, step, image ... */
	PERCH_ERR_CANCELLED = 3,      /* the context was cancelled */
	PERCH_ERR_UNSUPPORTED = 4,    /* the backend cannot do this */
	PERCH_ERR_UNAVAILABLE = 5,    /* the engine/service cannot be reached */
	PERCH_ERR_NO_CLI_CONTEXT = 6, /* no CliContext in context found */
	PERCH_ERR_INVALID_INPUT = 7,  /* the step/config cannot be run as given */
	PERCH_ERR_NO_MEMORY = 8,
	PERCH_ERR_TIMEOUT = 9,        /* a deadline passed */
	PERCH_ERR_IO = 10,            /* an OS call failed */
};

/* A short, stable name for a status code ("not-found"); never NULL. */
static inline const char *perch_status_name(perch_status s)
{
	switch (s) {
	case PERCH_OK: return "ok";
	case PERCH_ERR: return "failed";
	case PERCH_ERR_NOT_FOUND: return "not-found";
	case PERCH_ERR_CANCELLED: return "cancelled";
	case PERCH_ERR_UNSUPPORTED: return "unsupported";
	case PERCH_ERR_UNAVAILABLE: return "unavailable";
	case PERCH_ERR_NO_CLI_CONTEXT: return "no-cli-context";
	case PERCH_ERR_INVALID_INPUT: return "invalid-input";
	case PERCH_ERR_NO_MEMORY: return "no-memory";
	case PERCH_ERR_TIMEOUT: return "timeout";
	case PERCH_ERR_IO: return "io";
	default: return "unknown";
	}
}

/*
 * The error buffer.  Host-owned: the host allocates one per call (zeroed,
 * struct_size set) and passes it; a plugin writes into it and never keeps the
 * pointer.  No allocation crosses the boundary for errors.  Frozen: this
 * struct never grows, so the message capacity is part of the v1 ABI.
 */
#define PERCH_ERROR_MESSAGE_MAX 1024
typedef struct perch_error {
	uint32_t struct_size;
	perch_status code; /* set together with message by perch_error_set() */
	char message[PERCH_ERROR_MESSAGE_MAX];
} perch_error;

/* Fills err (which may be NULL) and returns code, so that a plugin can write
 * `return perch_error_set(err, PERCH_ERR_NOT_FOUND, "no step %s", uuid);`.
 * The message is one line: the host prints it after the plugin's name. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static inline perch_status perch_error_set(perch_error *err, perch_status code,
					   const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		char *nl;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof err->message, fmt, ap);
		va_end(ap);
		err->code = code;
		/* One line: a newline would break the host's one-line errors. */
		for (nl = err->message; *nl; nl++)
			if (*nl == '\n' || *nl == '\r')
				*nl = ' ';
	}
	return code;
}

#ifdef __cplusplus
}
#endif
#endif /* PERCH_ABI_H */
