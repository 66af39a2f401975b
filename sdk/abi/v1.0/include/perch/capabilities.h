/*
 * perch/capabilities.h - optional capabilities a backend may offer.
 *
 * A capability is a const table of functions returned by get_capability(id).
 * Ids are "<namespace>.<name>/<revision>": perch's own use "perch.", third
 * parties use reverse DNS ("org.example.ci.snapshots/1").  A new revision of
 * a capability is a new id; a table never changes meaning under its id.
 * Like every growable struct it starts with struct_size and may gain calls
 * at its end under the same id (the host uses a call only if struct_size
 * covers it); changing or removing a call needs a new id.
 *
 * Backends that cannot discover or resume (local) simply return NULL.
 */
#ifndef PERCH_CAPABILITIES_H
#define PERCH_CAPABILITIES_H

#include <perch/backend.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PERCH_CAP_WORKFLOW_DISCOVERER "perch.workflow-discoverer/1"
#define PERCH_CAP_WORKFLOW_RESUMER "perch.workflow-resumer/1"

/* Receives one discovered workflow.  wf and everything it reaches are valid
 * only during the call (the host copies).  Return false to stop early. */
typedef bool (*perch_discover_fn)(void *user,
				  const perch_discovered_workflow *wf);

/* WorkflowDiscoverer: find the workflows this backend (this host id) still
 * has, so that a restarted or upgraded host can adopt them. */
typedef struct perch_workflow_discoverer_v1 {
	uint32_t struct_size;
	uint32_t reserved0;
	/* Calls emit once per workflow, synchronously, before returning.
	 * Any thread.  Honours cancellation of ctx. */
	perch_status (*discover_workflows)(perch_instance *inst,
					   const perch_ctx *ctx,
					   perch_discover_fn emit, void *user,
					   perch_error *err);
} perch_workflow_discoverer_v1;

/* Where the host's copy of a step's log ends, so that a resumed tail can
 * continue without repeating or losing output.  Host-owned; fields beyond
 * struct_size are absent. */
typedef struct perch_resume_point {
	uint32_t struct_size;
	uint32_t reserved0;
	uint64_t bytes_seen;      /* output bytes the host already has */
	uint64_t lines_seen;      /* complete lines the host already has */
	int64_t last_output_unix_ns; /* when the last of it was read, or 0 */
} perch_resume_point;

/* WorkflowResumer: attach to a step that already runs (or already ended)
 * instead of starting it.  After it returns PERCH_OK, tail_step and
 * wait_step work for the step as after start_step; tail_step then delivers
 * the output after `from` (from may be NULL: everything).  step->uuid names
 * the running step.  Any thread. */
typedef struct perch_workflow_resumer_v1 {
	uint32_t struct_size;
	uint32_t reserved0;
	perch_status (*resume_step)(perch_instance *inst, const perch_ctx *ctx,
				    const perch_step *step,
				    const char *task_uuid,
				    const perch_resume_point *from,
				    perch_error *err);
} perch_workflow_resumer_v1;

#ifdef __cplusplus
}
#endif
#endif /* PERCH_CAPABILITIES_H */
