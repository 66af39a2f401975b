/*
 * workflow.h - the workflow document: Woodpecker's Config JSON in, the SDK's
 * perch_config out, and back again.
 *
 * The JSON is what a Woodpecker server hands its agents (see
 * reference/woodpecker-backends.md, sections 1.2-1.6): {"pipeline": [stages],
 * "network", "volume", "secrets"}, each stage {"steps": [steps]}, each step
 * the 31 fields of perch_step.  Decoding follows Go's encoding/json as
 * Woodpecker uses it (unknown keys are ignored, missing keys and null are
 * the zero value, maps hold strings only), and then refuses what no backend
 * can run: steps without name or uuid, uuids used twice, depends_on naming
 * no step of the same stage, a step depending on itself, cycles.  All of it
 * happens before anything starts, so a bad document never half-runs.
 *
 * Threads: every function here is reentrant and may run on any thread.  A
 * parsed workflow is immutable, so any number of threads may read it at
 * once; freeing it must wait until every reader (including plugins, until
 * destroy_workflow returns) is done.
 */
#ifndef PERCH_HOST_WORKFLOW_H
#define PERCH_HOST_WORKFLOW_H

#include <stddef.h>

#include <perch/types.h>

/* How deeply JSON values may nest (objects, arrays and the value inside the
 * innermost one all count).  A Woodpecker config needs 9 levels; the rest is
 * room for backend_options.  Bounded so that hostile nesting cannot exhaust
 * the stack of json-c's recursive free or of the serialiser. */
#define PERCH_WORKFLOW_MAX_DEPTH 64

struct perch_workflow_priv;

/* A parsed workflow: owns every byte reachable from .config (one arena). */
typedef struct perch_workflow {
	perch_config config; /* what plugins receive; struct_size set on every struct */
	/* private members after this */
	struct perch_workflow_priv *priv;
} perch_workflow;

/*
 * Parses and validates a workflow document.
 *
 * data need not be NUL-terminated; len is its size.  source names the input
 * in errors ("workflow.json", "<stdin>"); NULL means "<input>".
 *
 * Returns a workflow the caller frees with perch_workflow_free, and sets
 * *err to NULL.  On failure returns NULL and sets *err (err must not be
 * NULL) to a malloc'd ONE-LINE message (caller frees)
 * of the form "<source>: <json path>: <what>", for example
 *   "workflow.json: pipeline[1].steps[0].pull: expected a boolean, got a string"
 *   "workflow.json: line 3, column 7: unexpected character"  (syntax errors)
 *   "workflow.json: empty document"
 *   "workflow.json: pipeline[0].steps[2]: step has no uuid"
 *   "workflow.json: pipeline[0].steps[3].uuid: duplicate uuid \"X\" (also pipeline[0].steps[1])"
 *   "workflow.json: pipeline[2].steps[1].depends_on[0]: no step named \"build\" in this stage"
 *   "workflow.json: pipeline[2]: depends_on cycle: a -> b -> a"
 * Map keys appear in paths as ".KEY" when KEY is made of letters, digits,
 * '_' and '-', and as ["KEY"] (JSON-quoted) otherwise.
 *
 * Beyond Go's decoder it also refuses: invalid UTF-8, NUL bytes and \u0000
 * escapes (C strings cannot carry them), NaN/Infinity and other non-JSON
 * numbers inside backend_options, and nesting deeper than
 * PERCH_WORKFLOW_MAX_DEPTH.  A leading UTF-8 byte order mark is skipped.
 * Counts are unlimited; the checks are linear (hashing), so a workflow of
 * ten thousand steps parses in milliseconds.
 */
perch_workflow *perch_workflow_parse(const char *data, size_t len, const char *source,
				     char **err);

/* Reads path ("-" = standard input, named "<stdin>" in errors) and parses
 * it.  Errors as for perch_workflow_parse; a read error names the path. */
perch_workflow *perch_workflow_load(const char *path, char **err);

/* Frees wf and everything reachable from wf->config.  NULL is a no-op. */
void perch_workflow_free(perch_workflow *wf);

/* The step whose uuid is uuid (not NULL) and, when stage_index is not
 * NULL, the index of its stage; NULL when no step has that uuid.  O(1).
 * The result is owned by wf. */
const perch_step *perch_workflow_find_step(const perch_workflow *wf, const char *uuid,
					   size_t *stage_index);

/*
 * Serialises a config to JSON text the way Go's encoding/json marshals
 * Woodpecker's Config: compact, keys in Woodpecker's field order, omitempty
 * fields left out when zero or empty, auth_config always present ({} when
 * empty), "pipeline", "secrets" and Conn "aliases" written as null when
 * their pointer is NULL and as [] when it is not but the count is 0, map
 * keys sorted bytewise, strings escaped like Go (<, >, & as \u003c ...,
 * U+2028/U+2029 escaped, invalid UTF-8 as \ufffd), and backend_options
 * re-emitted verbatim as the JSON text it holds.
 *
 * config (not NULL) is read only; NULL strings count as "", a NULL stage
 * or step is written as null.  Returns a malloc'd,
 * NUL-terminated string the caller frees.  Never NULL (OOM is fatal).
 * perch_workflow_parse of the result gives an equal config.
 */
char *perch_workflow_to_json(const perch_config *config);

#endif
