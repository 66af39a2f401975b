/*
 * perch/host.h - what the host offers a plugin: the host table, the opaque
 * context, and the CLI context through which a plugin reads its flags.
 *
 * The host is a table, not a library (DESIGN.md rule 5): plugins call the
 * host only through the perch_host they receive, never through linked
 * symbols.  Each loaded plugin gets its own table (host_data tells the host
 * which plugin is calling), valid until that plugin's unload returns.
 *
 * Threads: every function in perch_host is thread-safe and may be called
 * from any thread, including threads the plugin starts itself.
 */
#ifndef PERCH_HOST_H
#define PERCH_HOST_H

#include <perch/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * perch_ctx: the context of one call.  Opaque and host-owned; valid for the
 * duration of the call it is passed to (a plugin must not keep it after the
 * call returns).  It carries:
 *  - cancellation: ctx_cancelled() answers at once; ctx_cancel_fd() is a file
 *    descriptor that becomes readable (POLLIN) when the context is cancelled,
 *    to put in the plugin's own poll() set.  The plugin never reads, writes or
 *    closes it.  Blocking calls (wait_step above all) must watch it and
 *    return PERCH_ERR_CANCELLED promptly.
 *  - an optional deadline (CLOCK_MONOTONIC milliseconds); the host cancels the
 *    context when it passes, so watching the fd is enough.
 *  - values by key, such as the CLI command under PERCH_CTX_CLI_COMMAND.
 */
typedef struct perch_ctx perch_ctx;

/*
 * perch_cli: the resolved command line (Go: the *cli.Command stored under
 * CliCommand).  Host-owned, read-only, valid while the plugin is loaded.
 * Read it with the cli_* functions of the host table.
 */
typedef struct perch_cli perch_cli;

/* The key under which the context carries a const perch_cli *. */
#define PERCH_CTX_CLI_COMMAND "perch.cli-command"

/* The exact message of Go's ErrNoCliContextFound. */
#define PERCH_NO_CLI_CONTEXT_MESSAGE "no CliContext in context found"

/* Host capability ids answered by perch_host.get_capability (none in 1.0). */

typedef enum perch_log_level {
	PERCH_LOG_ERROR = 0,
	PERCH_LOG_WARN = 1,
	PERCH_LOG_INFO = 2,
	PERCH_LOG_DEBUG = 3,
} perch_log_level;

typedef struct perch_host perch_host;
struct perch_host {
	uint32_t struct_size;
	uint32_t abi_major; /* the host's PERCH_ABI_MAJOR */
	uint32_t abi_minor; /* the host's PERCH_ABI_MINOR */
	uint32_t reserved0;
	const char *host_version; /* perch's version, e.g. "0.1.0" */
	void *host_data;          /* the host's; plugins must not touch it */

	/* Logs one line (no trailing newline needed) as coming from this
	 * plugin.  message is copied before return. */
	void (*log)(const perch_host *host, int32_t level, const char *message);

	/* True once ctx is cancelled (or its deadline passed). */
	bool (*ctx_cancelled)(const perch_ctx *ctx);
	/* A descriptor readable once ctx is cancelled; see perch_ctx. */
	int (*ctx_cancel_fd)(const perch_ctx *ctx);
	/* The deadline in CLOCK_MONOTONIC milliseconds, or INT64_MAX if none. */
	int64_t (*ctx_deadline_ms)(const perch_ctx *ctx);
	/* The value stored under key in ctx or its parents, or NULL.  The value
	 * is host-owned and lives at least as long as ctx. */
	const void *(*ctx_value)(const perch_ctx *ctx, const char *key);

	/* Typed flag lookup.  name is the full flag name ("backend-x-y").  A
	 * name the plugin did not declare, or of another kind, reads as the
	 * zero value (NULL, false, 0, empty list). */
	/* The string value, or NULL when unset with no default.  Host-owned. */
	const char *(*cli_string)(const perch_cli *cli, const char *name);
	bool (*cli_bool)(const perch_cli *cli, const char *name);
	int64_t (*cli_int)(const perch_cli *cli, const char *name);
	/* A duration flag, in milliseconds. */
	int64_t (*cli_duration_ms)(const perch_cli *cli, const char *name);
	/* A string-list flag: sets *items (host-owned) and returns the count. */
	size_t (*cli_list)(const perch_cli *cli, const char *name,
			   const char *const **items);
	/* True when the value came from the command line, the environment or
	 * the config file rather than the default (Go: IsSet). */
	bool (*cli_is_set)(const perch_cli *cli, const char *name);

	/* A host capability table by id, or NULL.  Returned tables are
	 * host-owned and valid while the plugin is loaded. */
	const void *(*get_capability)(const perch_host *host, const char *id);
};

/*
 * The CLI context accessor.  Sets *out to the command line carried by ctx and
 * returns PERCH_OK, or fills err with exactly "no CliContext in context found"
 * and returns PERCH_ERR_NO_CLI_CONTEXT (Go: ErrNoCliContextFound).
 */
static inline perch_status perch_ctx_cli(const perch_host *host,
					 const perch_ctx *ctx,
					 const perch_cli **out, perch_error *err)
{
	const void *v = host->ctx_value(ctx, PERCH_CTX_CLI_COMMAND);
	*out = (const perch_cli *)v;
	if (v == NULL)
		return perch_error_set(err, PERCH_ERR_NO_CLI_CONTEXT, "%s",
				       PERCH_NO_CLI_CONTEXT_MESSAGE);
	return PERCH_OK;
}

/* printf-style logging through the host table.  Thread-safe. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static inline void perch_logf(const perch_host *host, int32_t level,
			      const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	host->log(host, level, line);
}

#ifdef __cplusplus
}
#endif
#endif /* PERCH_HOST_H */
