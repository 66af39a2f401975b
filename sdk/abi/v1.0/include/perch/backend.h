/*
 * perch/backend.h - the backend entry: the one object a plugin exports.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * `perch_backend_v1`, a const perch_backend defined with PERCH_BACKEND_ENTRY.
 * The host finds it with dlsym, checks abi_major, struct_size, the name and
 * that every required call is present, and then drives the plugin only
 * through it.
 *
 * Call order (per the Go contract):
 *   is_available, load                      once, control thread
 *   setup_workflow                          once per workflow
 *   start_step -> tail_step -> wait_step -> destroy_step    per step
 *   destroy_workflow                        once per workflow, always
 *   unload                                  once, control thread
 *
 * Threads: one instance serves many workflows at once.  setup_workflow,
 * start_step, tail_step, wait_step, destroy_step and destroy_workflow may be
 * called concurrently from any host thread, for the same or different
 * workflows (never twice at once for the same step).  is_available, load,
 * unload and get_capability are called on the host's control thread only.
 *
 * Detached steps (services) end with the workflow: the host calls
 * destroy_workflow while their wait_step may still be blocked, and
 * destroy_workflow must make those waits return; the host then calls
 * destroy_step for them, after destroy_workflow has returned, and that call
 * must succeed (the step is already gone).
 *
 * Ownership: every pointer the host passes (ctx, config, step, task_uuid,
 * out-parameters) is host-owned.  ctx and the out-parameters are valid for
 * the call only; config and step (and all they reach) stay valid until the
 * host's last call for that task has returned (destroy_workflow, or the
 * destroy_step of a detached step that follows it).  A plugin never frees
 * them and must not use them after that last call.
 *
 * Errors: every call returns a perch_status; on failure it may fill err (a
 * host buffer, see perch/abi.h) with one human line.  A plugin never calls
 * abort(), exit() or changes signal dispositions.
 */
#ifndef PERCH_BACKEND_H
#define PERCH_BACKEND_H

#include <perch/abi.h>
#include <perch/flags.h>
#include <perch/host.h>
#include <perch/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The plugin's state for one load; opaque to the host. */
typedef struct perch_instance perch_instance;

typedef struct perch_backend perch_backend;
struct perch_backend {
	uint32_t struct_size; /* sizeof(perch_backend) as compiled */
	uint32_t abi_major;   /* PERCH_ABI_MAJOR as compiled; must equal host's */
	uint32_t abi_minor;   /* PERCH_ABI_MINOR as compiled; informational */
	/* Auto-detect order when the config has no auto_detect list: higher
	 * first, then by name.  Shipped: docker 100, local 10, dummy 0. */
	int32_t priority;
	const char *name;        /* required, [a-z0-9_-]+, e.g. "docker" */
	const char *version;     /* required, the plugin's own, e.g. "1.2.0" */
	const char *description; /* one line; may be NULL */
	/* The plugin's flags, NULL-terminated; may be NULL. */
	const perch_flag *const *flags;

	/* Name()/Flags() of the Go contract are the two fields above. */

	/* IsAvailable: could this backend run here?  Cheap and side-effect
	 * free.  When false, may fill why with the reason.  Control thread;
	 * no instance exists yet.  ctx carries the CLI context.  Required. */
	bool (*is_available)(const perch_host *host, const perch_ctx *ctx,
			     perch_error *why);

	/* Load: create the instance.  Reads flags through the CLI context in
	 * ctx.  Writes *instance (plugin-owned, freed by unload) and fills
	 * info (fields covered by info->struct_size).  host stays valid until
	 * unload returns.  Control thread.  Required. */
	perch_status (*load)(const perch_host *host, const perch_ctx *ctx,
			     perch_instance **instance, perch_backend_info *info,
			     perch_error *err);

	/* SetupWorkflow: create what the workflow shares (network, volume,
	 * temp dir) for task_uuid.  Any thread.  Required. */
	perch_status (*setup_workflow)(perch_instance *inst,
				       const perch_ctx *ctx,
				       const perch_config *config,
				       const char *task_uuid, perch_error *err);

	/* StartStep: start the step and return without waiting for it.  Any
	 * thread.  Required. */
	perch_status (*start_step)(perch_instance *inst, const perch_ctx *ctx,
				   const perch_step *step, const char *task_uuid,
				   perch_error *err);

	/* TailStep: hand the host a readable descriptor with the step's
	 * output (stdout and stderr, interleaved).  Called after start_step
	 * (or resume_step), before wait_step.  *fd becomes host-owned: the
	 * host reads it to end of stream and closes it.  It must reach end of
	 * stream once the step has ended or been destroyed.  O_CLOEXEC is
	 * expected.  Any thread.  Required. */
	perch_status (*tail_step)(perch_instance *inst, const perch_ctx *ctx,
				  const perch_step *step, const char *task_uuid,
				  int *fd, perch_error *err);

	/* WaitStep: block until the step ends and fill state.  Must return
	 * PERCH_ERR_CANCELLED promptly when ctx is cancelled (it may still
	 * fill state).  Any thread; runs concurrently with the host reading
	 * the tail descriptor.  Required. */
	perch_status (*wait_step)(perch_instance *inst, const perch_ctx *ctx,
				  const perch_step *step, const char *task_uuid,
				  perch_state *state, perch_error *err);

	/* DestroyStep: stop the step if it runs and release its resources.
	 * Idempotent; must succeed for a step that failed to start or never
	 * started.  ctx is a fresh, time-limited cleanup context even when the
	 * workflow was cancelled.  Any thread.  Required. */
	perch_status (*destroy_step)(perch_instance *inst, const perch_ctx *ctx,
				     const perch_step *step,
				     const char *task_uuid, perch_error *err);

	/* DestroyWorkflow: stop what still runs (detached steps, services)
	 * and remove everything the workflow created, so task_uuid can be
	 * reused.  Called exactly once per workflow, also after a failed
	 * setup_workflow.  ctx as for destroy_step.  Any thread.  Required. */
	perch_status (*destroy_workflow)(perch_instance *inst,
					 const perch_ctx *ctx,
					 const perch_config *config,
					 const char *task_uuid,
					 perch_error *err);

	/* Unload: join every thread the plugin started and free inst.  No
	 * other call is in flight.  Control thread.  Required. */
	void (*unload)(perch_instance *inst);

	/* A capability table by id ("perch.workflow-discoverer/1"), or NULL.
	 * Tables are plugin-owned and valid until unload.  Control thread
	 * (the host asks once, after load).  Optional: NULL means none. */
	const void *(*get_capability)(perch_instance *inst, const char *id);
	/* Append only. */
};

/* The entry symbol's name carries the ABI major. */
#define PERCH_BACKEND_SYMBOL "perch_backend_v1"

/* Defines the entry object:  PERCH_BACKEND_ENTRY = { PERCH_BACKEND_INIT, ... }; */
#define PERCH_BACKEND_ENTRY                                                   \
	extern PERCH_EXPORT const perch_backend perch_backend_v1;              \
	PERCH_EXPORT const perch_backend perch_backend_v1
#define PERCH_BACKEND_INIT                                                    \
	.struct_size = sizeof(perch_backend), .abi_major = PERCH_ABI_MAJOR,    \
	.abi_minor = PERCH_ABI_MINOR

#ifdef __cplusplus
}
#endif
#endif /* PERCH_BACKEND_H */
