/*
 * consts.h - one row of the ABI table that consts.inc describes.
 *
 * consts_table.c is compiled twice: once against the frozen v1.0 headers
 * (defining perch_abi_rows_v1_0) and once against the current headers
 * (perch_abi_rows_current).  consts_check.c compares the two, so a changed
 * constant, a moved member or a shrunk struct fails `make check` on any
 * machine, without libabigail.  Not installed.
 */
#ifndef PERCH_ABI_CONSTS_H
#define PERCH_ABI_CONSTS_H

enum {
	PERCH_ABI_ROW_INT = 1,    /* value equal */
	PERCH_ABI_ROW_MINOR = 2,  /* value may grow */
	PERCH_ABI_ROW_TEXT = 3,   /* text equal */
	PERCH_ABI_ROW_FROZEN = 4, /* value (sizeof) equal */
	PERCH_ABI_ROW_GROWS = 5,  /* value (sizeof) may grow */
	PERCH_ABI_ROW_FIELD = 6,  /* value (offsetof) and size equal */
};

typedef struct perch_abi_row {
	const char *name; /* "PERCH_OK", "perch_step", "perch_step.uuid" */
	int kind;         /* PERCH_ABI_ROW_* */
	long long value;  /* the constant, sizeof, or offsetof */
	long long size;   /* FIELD: sizeof the member */
	const char *text; /* TEXT: the string */
} perch_abi_row;

/* Terminated by a row whose name is NULL. */
extern const perch_abi_row perch_abi_rows_v1_0[];
extern const perch_abi_row perch_abi_rows_current[];

#endif
