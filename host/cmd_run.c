/* cmd_run.c - `perch run` (placeholder: the runtime lands next). */
#include "config.h"

#include "app.h"

#include <stdio.h>

int perch_cmd_run(perch_app *app)
{
	fprintf(stderr, "perch: run is not implemented yet\n");
	return PERCH_EXIT_BACKEND;
}
