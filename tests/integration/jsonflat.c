/*
 * jsonflat.c - a test helper: reads one JSON document on standard input
 * and prints every leaf as `<path>=<json value>`, one per line, e.g.
 *
 *   [0].name="good"
 *   [0].capabilities[0]="perch.workflow-discoverer/1"
 *   [0].error=null
 *   [1].flags=[]
 *
 * so that shell tests can check JSON with grep.  Exits 1 with one line on
 * standard error when the input is not exactly one valid JSON document.
 */
#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void flat(json_object *o, char *path, size_t len, size_t cap)
{
	if (json_object_is_type(o, json_type_array) && json_object_array_length(o) > 0) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			int n = snprintf(path + len, cap - len, "[%zu]", i);
			if (n > 0 && (size_t)n < cap - len)
				flat(json_object_array_get_idx(o, i), path, len + (size_t)n, cap);
		}
	} else if (json_object_is_type(o, json_type_object) && json_object_object_length(o) > 0) {
		json_object_object_foreach(o, key, val) {
			int n = snprintf(path + len, cap - len, ".%s", key);
			if (n > 0 && (size_t)n < cap - len)
				flat(val, path, len + (size_t)n, cap);
		}
	} else {
		path[len] = '\0';
		printf("%s=%s\n", path,
		       o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE)
			 : "null");
	}
	path[len] = '\0';
}

int main(void)
{
	size_t cap = 1 << 16, len = 0;
	char *in = malloc(cap);
	size_t n;
	if (in == NULL)
		return 1;
	while ((n = fread(in + len, 1, cap - len - 1, stdin)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *bigger = realloc(in, cap *= 2);
			if (bigger == NULL)
				return 1;
			in = bigger;
		}
	}
	in[len] = '\0';
	json_tokener *tok = json_tokener_new();
	json_object *doc = json_tokener_parse_ex(tok, in, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	int rc = 0;
	if (jerr != json_tokener_success) {
		fprintf(stderr, "jsonflat: not valid JSON: %s\n", json_tokener_error_desc(jerr));
		rc = 1;
	} else {
		while (used < len && strchr(" \t\r\n", in[used]))
			used++;
		if (used != len) {
			fprintf(stderr, "jsonflat: trailing data after the JSON document\n");
			rc = 1;
		} else {
			char path[4096] = "";
			flat(doc, path, 0, sizeof path);
		}
	}
	json_object_put(doc);
	json_tokener_free(tok);
	free(in);
	return rc;
}
