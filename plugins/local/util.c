/*
 * util.c - string vectors (argv, envp) for the local backend.
 *
 * Like pp_buf (plugins/common), a vector remembers an allocation failure
 * instead of failing each push, so that a caller checks once at the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <stdlib.h>
#include <string.h>

void perch_local_strv_take(perch_local_strv *sv, char *s)
{
	if (s == NULL || sv->oom) {
		sv->oom = true;
		free(s);
		return;
	}
	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, cap * sizeof *v);
		if (v == NULL) {
			sv->oom = true;
			free(s);
			return;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void perch_local_strv_push(perch_local_strv *sv, const char *s)
{
	perch_local_strv_take(sv, strdup(s));
}

void perch_local_strv_free(perch_local_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}
