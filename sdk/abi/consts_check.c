/*
 * consts_check.c - `make check`'s half of the ABI check: every row of the
 * v1.0 table (constants, struct sizes, member offsets and sizes) must hold
 * under the current headers, by its kind's rule (consts.h).  Prints one line
 * per broken row and exits 1, or says how many rows hold and exits 0.  The
 * other half, `make abi-check` (libabigail), also compares member types and
 * function-pointer signatures.
 */
#include <stdio.h>
#include <string.h>

#include "consts.h"

static const perch_abi_row *find(const char *name)
{
	for (const perch_abi_row *r = perch_abi_rows_current; r->name; r++)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

int main(void)
{
	int broken = 0, rows = 0;
	for (const perch_abi_row *old = perch_abi_rows_v1_0; old->name; old++, rows++) {
		const perch_abi_row *now = find(old->name);
		const char *why = NULL;
		if (now == NULL)
			why = "missing from the current table";
		else if (now->kind != old->kind)
			why = "changed kind";
		else if (old->kind == PERCH_ABI_ROW_TEXT)
			why = strcmp(old->text, now->text) != 0 ? "changed text" : NULL;
		else if (old->kind == PERCH_ABI_ROW_MINOR || old->kind == PERCH_ABI_ROW_GROWS)
			why = now->value < old->value ? "shrank" : NULL;
		else if (now->value != old->value)
			why = old->kind == PERCH_ABI_ROW_FIELD ? "moved" : "changed";
		else if (old->kind == PERCH_ABI_ROW_FIELD && now->size != old->size)
			why = "changed size";
		if (why == NULL)
			continue;
		broken++;
		if (now && old->kind == PERCH_ABI_ROW_TEXT)
			printf("ABI break: %s %s: \"%s\" in v1.0, \"%s\" now\n", old->name, why,
			       old->text, now->text);
		else if (now && old->kind == PERCH_ABI_ROW_FIELD)
			printf("ABI break: %s %s: offset %lld size %lld in v1.0, offset %lld size "
			       "%lld now\n", old->name, why, old->value, old->size, now->value,
			       now->size);
		else if (now)
			printf("ABI break: %s %s: %lld in v1.0, %lld now\n", old->name, why,
			       old->value, now->value);
		else
			printf("ABI break: %s %s\n", old->name, why);
	}
	if (broken) {
		printf("%d of %d v1.0 ABI rows broken: a v1 plugin or host built against v1.0 "
		       "would misread these.  Undo the change, or make it a new major.\n",
		       broken, rows);
		return 1;
	}
	printf("all %d v1.0 ABI rows hold under the current headers\n", rows);
	return 0;
}
