/*
 * consts_table.c - expands consts.inc against whichever perch headers the
 * include path finds; PERCH_ABI_TABLE names the result (see consts.h).
 */
#include <perch/perch.h>

#include "consts.h"

#ifndef PERCH_ABI_TABLE
#error "define PERCH_ABI_TABLE"
#endif

#define PERCH_ABI_INT(n) {#n, PERCH_ABI_ROW_INT, (long long)(n), 0, NULL},
#define PERCH_ABI_MINOR_ROW(n) {#n, PERCH_ABI_ROW_MINOR, (long long)(n), 0, NULL},
#define PERCH_ABI_TEXT(n) {#n, PERCH_ABI_ROW_TEXT, 0, 0, n},
#define PERCH_ABI_FROZEN(t) {#t, PERCH_ABI_ROW_FROZEN, (long long)sizeof(t), 0, NULL},
#define PERCH_ABI_GROWS(t) {#t, PERCH_ABI_ROW_GROWS, (long long)sizeof(t), 0, NULL},
#define PERCH_ABI_FIELD(t, m)                                                               \
	{#t "." #m, PERCH_ABI_ROW_FIELD, (long long)offsetof(t, m),                        \
	 (long long)sizeof(((t *)0)->m), NULL},

const perch_abi_row PERCH_ABI_TABLE[] = {
#include "consts.inc"
	{NULL, 0, 0, 0, NULL},
};
