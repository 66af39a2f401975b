/*
 * perch/flags.h - how a plugin declares its command-line flags, as data.
 *
 * The host merges every plugin's flags into its own command line and
 * `perch --help`, and resolves each value in this order: the command line,
 * then the flag's environment variables (the first one set wins), then the
 * config file (backends.<plugin>.<key>), then the default.  Plugins read the
 * resolved values through the CLI context (perch/host.h); they never parse
 * argv or getenv() their own flags.
 *
 * Naming: a flag of backend <name> is called "backend-<name>-<key>"; its
 * config-file key is <key> with dashes as underscores
 * (backend-docker-stop-timeout -> backends.docker.stop_timeout).
 */
#ifndef PERCH_FLAGS_H
#define PERCH_FLAGS_H

#include <perch/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum perch_flag_kind {
	PERCH_FLAG_STRING = 1,
	PERCH_FLAG_BOOL = 2,        /* true/false, 1/0, yes/no, on/off */
	PERCH_FLAG_INT = 3,         /* a signed 64-bit decimal integer */
	PERCH_FLAG_DURATION = 4,    /* Go syntax: "1h2m", "1.5s", "250ms" */
	PERCH_FLAG_STRING_LIST = 5, /* comma-separated on the CLI and in env */
} perch_flag_kind;

/* One flag.  Static data in the plugin, valid while the plugin is loaded. */
typedef struct perch_flag {
	uint32_t struct_size; /* sizeof(perch_flag) */
	uint32_t kind;        /* perch_flag_kind */
	const char *name;     /* "backend-dummy-state-dir"; [a-z0-9_-]+ */
	/* Environment variables, NULL-terminated; may be NULL.  First set wins. */
	const char *const *env;
	const char *default_value; /* textual, parsed like any value; NULL: none */
	const char *usage;         /* one line for --help */
} perch_flag;

/* Initialiser for the fixed head of a perch_flag. */
#define PERCH_FLAG_INIT .struct_size = sizeof(perch_flag)

/*
 * Parses a Go-style duration ("300ms", "1.5s", "2h45m", "0") into whole
 * milliseconds (sub-millisecond parts are truncated).  Units: ns, us, ms,
 * s, m, h.  A bare number other than 0 is refused: "10" is ambiguous.
 * Returns true on success.  Thread-safe; shared by host and plugins so that
 * both read durations the same way.
 */
static inline bool perch_parse_duration(const char *s, int64_t *out_ms)
{
	/* Accumulate in nanoseconds as a double to keep fractions exact enough;
	 * bounded to ~292 years, well inside int64 milliseconds. */
	double total_ns = 0;
	bool neg = false;
	if (s == NULL || *s == '\0')
		return false;
	if (*s == '-' || *s == '+')
		neg = (*s++ == '-');
	if (s[0] == '0' && s[1] == '\0') {
		*out_ms = 0;
		return true;
	}
	if (*s == '\0')
		return false;
	while (*s) {
		double v = 0, scale = 1, unit;
		bool digits = false;
		while (*s >= '0' && *s <= '9')
			v = v * 10 + (*s++ - '0'), digits = true;
		if (*s == '.') {
			s++;
			while (*s >= '0' && *s <= '9')
				scale /= 10, v += (*s++ - '0') * scale, digits = true;
		}
		if (!digits)
			return false;
		if (s[0] == 'n' && s[1] == 's')
			unit = 1, s += 2;
		else if (s[0] == 'u' && s[1] == 's')
			unit = 1e3, s += 2;
		else if ((unsigned char)s[0] == 0xc2 && (unsigned char)s[1] == 0xb5 &&
			 s[2] == 's') /* U+00B5 micro sign */
			unit = 1e3, s += 3;
		else if (s[0] == 'm' && s[1] == 's')
			unit = 1e6, s += 2;
		else if (s[0] == 's')
			unit = 1e9, s += 1;
		else if (s[0] == 'm')
			unit = 60e9, s += 1;
		else if (s[0] == 'h')
			unit = 3600e9, s += 1;
		else
			return false;
		total_ns += v * unit;
		if (total_ns > 9.2e18)
			return false;
	}
	*out_ms = (int64_t)(total_ns / 1e6) * (neg ? -1 : 1);
	return true;
}

#ifdef __cplusplus
}
#endif
#endif /* PERCH_FLAGS_H */
