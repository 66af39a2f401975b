/* result.c - the JSON form of a run's result (perch run --result). */
#include "config.h"

#include "runtime.h"
#include "util.h"

#include <json-c/json.h>

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

char *perch_run_result_json(const perch_run_result *r, const char *task_uuid)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string(perch_run_status_name(r->status)));
	json_object_object_add(o, "task_uuid", json_object_new_string(task_uuid));
	json_object_object_add(o, "error", str_or_null(r->error));
	json_object_object_add(o, "started", json_object_new_int64(r->started_ns / 1000000000));
	json_object_object_add(o, "finished", json_object_new_int64(r->finished_ns / 1000000000));
	json_object_object_add(o, "duration_ms",
			       json_object_new_int64((r->finished_ns - r->started_ns) / 1000000));
	json_object *steps = json_object_new_array();
	for (size_t i = 0; i < r->n_steps; i++) {
		const perch_step_result *s = &r->steps[i];
		json_object *j = json_object_new_object();
		json_object_object_add(j, "name", json_object_new_string(s->step->name));
		json_object_object_add(j, "uuid", json_object_new_string(s->step->uuid));
		json_object_object_add(j, "stage", json_object_new_int64((int64_t)s->stage));
		json_object_object_add(j, "exit_code", json_object_new_int(s->exit_code));
		json_object_object_add(j, "exited", json_object_new_boolean(s->exited));
		json_object_object_add(j, "oom_killed", json_object_new_boolean(s->oom_killed));
		json_object_object_add(j, "skipped", json_object_new_boolean(s->skipped));
		json_object_object_add(j, "cancelled", json_object_new_boolean(s->cancelled));
		json_object_object_add(j, "error", str_or_null(s->error ? s->error : s->skip_reason));
		json_object_object_add(j, "started", json_object_new_int64(s->started_ns / 1000000000));
		json_object_object_add(j, "finished", json_object_new_int64(s->finished_ns / 1000000000));
		json_object_object_add(j, "log_lines", json_object_new_int64((int64_t)s->log_lines));
		json_object_array_add(steps, j);
	}
	json_object_object_add(o, "steps", steps);
	char *text = perch_xstrdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}
