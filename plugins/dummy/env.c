/*
 * env.c - the step environment knobs that drive a simulated step, read the
 * way Woodpecker's Go dummy reads them (strconv.ParseBool, Atoi of the
 * trimmed value, time.ParseDuration), and turned into a record once, at
 * start_step, so that the outcome can be persisted and replayed.
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define ENV_SLEEP "SLEEP"
#define ENV_EXIT_CODE "STEP_EXIT_CODE"
#define ENV_OOM_KILLED "STEP_OOM_KILLED"

/* A simulated step never lasts longer than this (100 years), which keeps
 * start + SLEEP inside int64 nanoseconds. */
#define MAX_SLEEP_MS (100LL * 365 * 24 * 3600 * 1000)

bool perch_dummy_parse_bool(const char *s)
{
	static const char *const truths[] = {"1", "t", "T", "TRUE", "true",
					     "True"};
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < sizeof truths / sizeof truths[0]; i++)
		if (strcmp(s, truths[i]) == 0)
			return true;
	return false;
}

static bool is_go_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

/* Atoi(TrimSpace(s)): an optional sign and decimal digits only.  Exit
 * codes are int32 in perch, so a wider value is refused too. */
static bool parse_exit_code(const char *s, int32_t *out)
{
	const char *end;
	char buf[32];
	size_t n;
	long long v;
	char *stop;

	while (is_go_space(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_go_space(end[-1]))
		end--;
	n = (size_t)(end - s);
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!(buf[0] == '-' || buf[0] == '+' || (buf[0] >= '0' && buf[0] <= '9')))
		return false;
	if ((buf[0] == '-' || buf[0] == '+') &&
	    !(buf[1] >= '0' && buf[1] <= '9'))
		return false;
	errno = 0;
	v = strtoll(buf, &stop, 10);
	if (errno != 0 || *stop != '\0' || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

static char *dup_or_null(const char *s)
{
	return strdup(s != NULL ? s : "");
}

void perch_dummy_record_free(perch_dummy_record *rec)
{
	free(rec->name);
	free(rec->type);
	free(rec->bad_sleep);
	free(rec->log);
	memset(rec, 0, sizeof *rec);
}

perch_status perch_dummy_record_from_step(perch_instance *inst,
					  const perch_step *step,
					  perch_dummy_record *rec,
					  perch_error *err)
{
	const perch_map *env = &step->environment;
	const char *sleep = perch_map_get(env, ENV_SLEEP);
	const char *code = perch_map_get(env, ENV_EXIT_CODE);
	int64_t now = pp_real_ns();

	memset(rec, 0, sizeof *rec);
	rec->name = dup_or_null(step->name);
	rec->type = dup_or_null(step->type);
	rec->log = perch_dummy_log_text(step, &rec->log_len);
	if (rec->name == NULL || rec->type == NULL || rec->log == NULL)
		goto oom;

	/* Woodpecker: SLEEP wins over the service rule; a service without
	 * SLEEP runs until its workflow is destroyed; anything else ends at
	 * once. */
	if (sleep != NULL) {
		int64_t ms = 0;
		if (perch_parse_duration(sleep, &ms)) {
			if (ms < 0) /* time.Sleep of a negative duration */
				ms = 0;
			if (ms > MAX_SLEEP_MS)
				ms = MAX_SLEEP_MS;
			rec->mode = PERCH_DUMMY_UNTIL_DEADLINE;
			rec->deadline_real_ns = now + ms * 1000000;
		} else {
			rec->mode = PERCH_DUMMY_BAD_SLEEP;
			rec->bad_sleep = strdup(sleep);
			if (rec->bad_sleep == NULL)
				goto oom;
		}
	} else if (strcmp(rec->type, PERCH_STEP_SERVICE) == 0) {
		rec->mode = PERCH_DUMMY_UNTIL_DESTROYED;
	} else {
		rec->mode = PERCH_DUMMY_UNTIL_DEADLINE;
		rec->deadline_real_ns = now;
	}

	/* Like Go's ignored Atoi error: a bad value reads as 0.  Said aloud,
	 * because a typo here silently turns a failing test step green. */
	if (code != NULL && !parse_exit_code(code, &rec->exit_code)) {
		rec->exit_code = 0;
		perch_logf(inst->host, PERCH_LOG_WARN,
			   "dummy: step %s: %s=\"%s\" is not an int32, using 0",
			   rec->name, ENV_EXIT_CODE, code);
	}
	rec->oom_killed = perch_dummy_parse_bool(perch_map_get(env, ENV_OOM_KILLED));
	return PERCH_OK;
oom:
	perch_dummy_record_free(rec);
	return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
}
